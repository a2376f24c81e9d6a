#include "edgepipe/wire/protocol.h"

#include <cstring>

#include "edgepipe/base/bytes.h"
#include "edgepipe/base/error.h"

namespace edgepipe {

// ---- set-up ----

std::string StageSetup::to_bytes() const {
  ByteWriter w;
  w.put<uint8_t>(ok ? 1 : nothing_to_do ? 2 : stopped ? 3 : 0);
  w.put<int32_t>(stage);
  w.put<int32_t>(num_stages);
  w.put<int32_t>(replica);
  w.put<int32_t>(prev);
  w.put<int32_t>(next);
  w.put<uint64_t>(max_in_bytes);
  w.put<uint8_t>(static_cast<uint8_t>(out_codec.kind));
  w.put<uint8_t>(out_codec.lz4);
  w.put<double>(out_codec.param);
  w.put<uint8_t>(overlap ? 1 : 0);
  w.put<uint32_t>(static_cast<uint32_t>(inputs.size()));
  for (const auto& m : inputs) {
    w.put<int8_t>(static_cast<int8_t>(m.dtype));
    w.put<uint32_t>(static_cast<uint32_t>(m.shape.size()));
    for (int64_t d : m.shape) w.put<int64_t>(d);
  }
  w.put_vector(members);
  w.put_vector(route_replicas);
  w.put_vector(route_ranks);
  w.put_vector(route_weights);
  w.put_string(module_sha256);
  w.put<uint64_t>(module_size);
  w.put_string(module_bytes);
  return w.out;
}

StageSetup StageSetup::from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "stage set-up message"};
  StageSetup s;
  const auto status = r.get<uint8_t>();
  s.ok = status == 1;
  s.nothing_to_do = status == 2;
  s.stopped = status == 3;
  s.stage = r.get<int32_t>();
  s.num_stages = r.get<int32_t>();
  s.replica = r.get<int32_t>();
  s.prev = r.get<int32_t>();
  s.next = r.get<int32_t>();
  s.max_in_bytes = r.get<uint64_t>();
  const auto kind = r.get<uint8_t>();
  EP_CHECK(kind <= static_cast<uint8_t>(kLastCodecKind), "stage set-up message is corrupt");
  s.out_codec.kind = static_cast<CodecKind>(kind);
  s.out_codec.lz4 = r.get<uint8_t>() != 0;
  s.out_codec.param = r.get<double>();
  s.overlap = r.get<uint8_t>() != 0;
  auto n = r.get<uint32_t>();
  EP_CHECK(n <= 1024, "stage set-up message is corrupt");
  for (uint32_t i = 0; i < n; ++i) {
    TensorMeta m;
    m.dtype = static_cast<c10::ScalarType>(r.get<int8_t>());
    auto nd = r.get<uint32_t>();
    EP_CHECK(nd <= 16, "stage set-up message is corrupt");
    for (uint32_t k = 0; k < nd; ++k) m.shape.push_back(r.get<int64_t>());
    s.inputs.push_back(std::move(m));
  }
  s.members = r.get_vector<int32_t>();
  s.route_replicas = r.get_vector<int32_t>();
  s.route_ranks = r.get_vector<int32_t>();
  s.route_weights = r.get_vector<int32_t>();
  s.module_sha256 = r.get_string();
  EP_CHECK(s.module_sha256.empty() ||
               (s.module_sha256.size() == 64 &&
                s.module_sha256.find_first_not_of("0123456789abcdef") == std::string::npos),
           "stage set-up message is corrupt (the stage's SHA-256)");
  s.module_size = r.get<uint64_t>();
  s.module_bytes = r.get_string();
  EP_CHECK(r.pos == bytes.size(), "stage set-up message is corrupt (", bytes.size() - r.pos,
           " bytes left over)");
  return s;
}

// ---- the stage cache's answer ----

std::string stage_cache_answer_to_bytes(bool hit) { return std::string(1, hit ? 'h' : 'm'); }

bool stage_cache_answer_from_bytes(const std::string& bytes) {
  EP_CHECK(bytes == "h" || bytes == "m", "the stage cache's answer is corrupt (", bytes.size(),
           " bytes)");
  return bytes == "h";
}

// ---- start-up measurements ----

std::string ProfileRequest::to_bytes() const {
  ByteWriter w;
  w.put<uint8_t>(static_cast<uint8_t>(ProbeKind::profile));
  w.put<uint64_t>(blocks.size());
  for (const std::string& b : blocks) w.put_string(b);
  w.put_string(input_frame);
  w.put<uint8_t>(optimize ? 1 : 0);
  return w.out;
}

ProfileRequest ProfileRequest::from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "the profile request"};
  EP_CHECK(r.get<uint8_t>() == static_cast<uint8_t>(ProbeKind::profile),
           "unexpected start-up message from rank 0");
  ProfileRequest p;
  const auto n = r.get<uint64_t>();
  EP_CHECK(n <= 1 << 20, "the profile request is corrupt");
  for (uint64_t b = 0; b < n; ++b) p.blocks.push_back(r.get_string());
  p.input_frame = r.get_string();
  p.optimize = r.get<uint8_t>() != 0;
  return p;
}

std::string ProbeOrder::to_bytes() const {
  ByteWriter w;
  w.put<uint8_t>(static_cast<uint8_t>(kind));
  if (kind == ProbeKind::ping) {
    w.put<int32_t>(peer);
    w.put<uint8_t>(initiator ? 1 : 0);
    w.put<int64_t>(bytes);
  }
  return w.out;
}

ProbeOrder ProbeOrder::from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "a link probe order"};
  ProbeOrder o;
  const auto kind = r.get<uint8_t>();
  EP_CHECK(kind >= static_cast<uint8_t>(ProbeKind::ping) &&
               kind <= static_cast<uint8_t>(ProbeKind::hello),
           "unexpected start-up message from rank 0");
  o.kind = static_cast<ProbeKind>(kind);
  if (o.kind == ProbeKind::ping) {
    o.peer = r.get<int32_t>();
    o.initiator = r.get<uint8_t>() != 0;
    o.bytes = r.get<int64_t>();
    EP_CHECK(o.peer >= 0 && o.bytes > 0, "a link probe order is corrupt");
  }
  return o;
}

std::string rank_profile_to_bytes(const RankProfile& p) {
  ByteWriter w;
  w.put_string(p.host);
  w.put<int32_t>(p.threads);
  w.put<double>(p.cores);
  w.put_vector(p.block_ms);
  w.put_vector(p.block_ms_busy);
  w.put<int64_t>(p.memory_limit);
  w.put_string(p.memory_source);
  w.put<double>(p.seconds);
  w.put<int64_t>(p.resident_bytes);
  return w.out;
}

RankProfile rank_profile_from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "a rank's profile"};
  RankProfile p;
  p.host = r.get_string();
  p.threads = r.get<int32_t>();
  p.cores = r.get<double>();
  p.block_ms = r.get_vector<double>();
  p.block_ms_busy = r.get_vector<double>();
  p.memory_limit = r.get<int64_t>();
  p.memory_source = r.get_string();
  p.seconds = r.get<double>();
  p.resident_bytes = r.get<int64_t>();
  return p;
}

std::string link_to_bytes(const Link& link) {
  ByteWriter w;
  w.put<double>(link.latency_s);
  w.put<double>(link.bandwidth_Bps);
  return w.out;
}

Link link_from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "a link probe"};
  Link link;
  link.latency_s = r.get<double>();
  link.bandwidth_Bps = r.get<double>();
  return link;
}

// ---- clock alignment ----

std::string clock_ping_to_bytes(const ClockPing& p) {
  ByteWriter w;
  w.put<double>(p.t_root);
  w.put<int64_t>(p.batches);
  return w.out;
}

ClockPing clock_ping_from_bytes(const std::string& bytes) {
  EP_CHECK(bytes.size() == sizeof(double) + sizeof(int64_t), "clock ping of ", bytes.size(),
           " bytes");
  ByteReader r{bytes, "a clock ping"};
  ClockPing p;
  p.t_root = r.get<double>();
  p.batches = r.get<int64_t>();
  return p;
}

std::string clock_answer_to_bytes(double t_rank) {
  ByteWriter w;
  w.put<double>(t_rank);
  return w.out;
}

double clock_answer_from_bytes(const std::string& bytes) {
  EP_CHECK(bytes.size() == sizeof(double), "clock reply of ", bytes.size(), " bytes");
  ByteReader r{bytes, "a clock reply"};
  return r.get<double>();
}

// ---- watchdog and stop notices ----

std::string signal_notice_to_bytes(int signal) {
  ByteWriter w;
  w.put<int32_t>(signal);
  return w.out;
}

int signal_notice_from_bytes(const std::string& bytes) {
  if (bytes.size() != sizeof(int32_t)) return 15;
  ByteReader r{bytes, "a signal notice"};
  return r.get<int32_t>();
}

// ---- a stage's failure ----

std::string stage_failure_to_bytes(const StageFailure& f) {
  ByteWriter w;
  w.put<int64_t>(f.seq);
  w.put<int64_t>(f.batch_rows);
  w.put_vector(f.bad_rows);
  w.put<uint8_t>(f.rows_checked ? 1 : 0);
  w.put_string(f.what);
  return w.out;
}

StageFailure stage_failure_from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "a stage's failure notice"};
  StageFailure f;
  f.seq = r.get<int64_t>();
  f.batch_rows = r.get<int64_t>();
  f.bad_rows = r.get_vector<int64_t>();
  f.rows_checked = r.get<uint8_t>() != 0;
  f.what = r.get_string();
  return f;
}

// ---- end of stream ----

std::string counters_to_bytes(const StageCounters& c) {
  std::string out(sizeof c, '\0');
  std::memcpy(out.data(), &c, sizeof c);
  return out;
}

StageCounters counters_from_bytes(const std::string& bytes) {
  StageCounters c;
  EP_CHECK(bytes.size() == sizeof c, "counters message has ", bytes.size(), " bytes, expected ",
           sizeof c);
  std::memcpy(&c, bytes.data(), sizeof c);
  return c;
}

std::string trace_to_bytes(const RankFacts& facts, const std::vector<BatchRecord>& records) {
  std::string out(sizeof facts + records.size() * sizeof(BatchRecord), '\0');
  std::memcpy(out.data(), &facts, sizeof facts);
  if (!records.empty())
    std::memcpy(out.data() + sizeof facts, records.data(), records.size() * sizeof(BatchRecord));
  return out;
}

void trace_from_bytes(const std::string& bytes, RankFacts* facts,
                      std::vector<BatchRecord>* records) {
  EP_CHECK(
      bytes.size() >= sizeof *facts && (bytes.size() - sizeof *facts) % sizeof(BatchRecord) == 0,
      "trace message has ", bytes.size(), " bytes: not facts + whole records");
  std::memcpy(facts, bytes.data(), sizeof *facts);
  records->resize((bytes.size() - sizeof *facts) / sizeof(BatchRecord));
  if (!records->empty())
    std::memcpy(records->data(), bytes.data() + sizeof *facts,
                records->size() * sizeof(BatchRecord));
}

}  // namespace edgepipe
