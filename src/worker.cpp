#include "edgepipe/worker.h"

#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/freeze_module.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "edgepipe/bytes.h"
#include "edgepipe/error.h"
#include "edgepipe/cluster.h"
#include "edgepipe/energy.h"
#include "edgepipe/memory.h"
#include "edgepipe/metrics.h"
#include "edgepipe/probe.h"
#include "edgepipe/signals.h"
#include "edgepipe/stage.h"
#include "edgepipe/trace.h"

namespace edgepipe {

std::string StageSetup::to_bytes() const {
  ByteWriter w;
  w.put<uint8_t>(ok ? 1 : nothing_to_do ? 2 : 0);
  w.put<int32_t>(stage);
  w.put<int32_t>(num_stages);
  w.put<int32_t>(prev);
  w.put<int32_t>(next);
  w.put<uint64_t>(max_in_bytes);
  w.put<uint8_t>(static_cast<uint8_t>(out_codec.kind));
  w.put<uint8_t>(out_codec.lz4);
  w.put<double>(out_codec.param);
  w.put<uint32_t>(static_cast<uint32_t>(inputs.size()));
  for (const auto& m : inputs) {
    w.put<int8_t>(static_cast<int8_t>(m.dtype));
    w.put<uint32_t>(static_cast<uint32_t>(m.shape.size()));
    for (int64_t d : m.shape) w.put<int64_t>(d);
  }
  w.put_vector(members);
  w.put_string(module_bytes);
  return w.out;
}

StageSetup StageSetup::from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "stage set-up message"};
  StageSetup s;
  const auto status = r.get<uint8_t>();
  s.ok = status == 1;
  s.nothing_to_do = status == 2;
  s.stage = r.get<int32_t>();
  s.num_stages = r.get<int32_t>();
  s.prev = r.get<int32_t>();
  s.next = r.get<int32_t>();
  s.max_in_bytes = r.get<uint64_t>();
  const auto kind = r.get<uint8_t>();
  EP_CHECK(kind <= static_cast<uint8_t>(CodecKind::zfp_relacc), "stage set-up message is corrupt");
  s.out_codec.kind = static_cast<CodecKind>(kind);
  s.out_codec.lz4 = r.get<uint8_t>() != 0;
  s.out_codec.param = r.get<double>();
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
  s.module_bytes = r.get_string();
  return s;
}

namespace {

// Loads the stage, optimises it for inference (checked against the unoptimised stage) and runs
// it twice so that the JIT's profiling runs and one-time allocations happen before the first
// real batch.
StageRunner prepare_stage(const StageSetup& setup, const RunConfig& cfg, const Log& log) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<c10::ScalarType> dtypes;
  for (const auto& m : setup.inputs) {
    shapes.push_back(m.shape);
    dtypes.push_back(m.dtype);
  }
  std::vector<at::Tensor> sample = random_inputs(shapes, dtypes);
  auto load = [&] { return load_module_bytes(setup.module_bytes); };
  std::string why;
  torch::jit::Module module = cfg.optimize ? optimize_checked(load, sample, 1e-5, &why) : load();
  if (!why.empty()) log.warn("stage " + std::to_string(setup.stage) + ": " + why);
  StageRunner stage(module);
  for (int i = 0; i < 2; ++i) stage.run(sample);
  return stage;
}

void stream(const StageSetup& setup, StageRunner& stage, const RunConfig& cfg, Channel& ch,
            StageCounters& c, BatchTrace& trace, RankFacts& facts) {
  double t_start = 0;  // set when the first batch arrives: set-up of other ranks is not counted
  const std::string from = detail::concat("a batch from rank ", setup.prev);
  std::vector<char> in_buf[2], out_buf[2];
  FrameEncoder encoder(setup.out_codec);
  uint64_t max_in_tensor_bytes = 0;  // a frame claiming more is corrupt
  for (const auto& m : setup.inputs) max_in_tensor_bytes += static_cast<uint64_t>(m.bytes());
  FrameDecoder decoder(max_in_tensor_bytes);
  Channel::Handle recv[2], send[2];
  bool sending[2] = {false, false};
  for (int i = 0; i < 2; ++i) {
    in_buf[i].resize(setup.max_in_bytes);
    recv[i] = ch.irecv(setup.prev, kTagData, in_buf[i].data(), in_buf[i].size());
  }
  // A signal to this rank is passed on to rank 0, which stops feeding inputs and drains the
  // pipeline; this rank goes on until the end frame comes.
  int stop_reported = 0;
  Channel::Handle stop_notice = -1;
  auto report_stop = [&] {
    if (stop_reported || !stop_signal()) return;
    stop_reported = stop_signal();
    stop_notice = ch.isend(0, kTagSignal, reinterpret_cast<const char*>(&stop_reported),
                           sizeof stop_reported);
  };
  // Rank 0's watchdog asks every stage what it is waiting for; a stage answers while it waits
  // (one that is computing cannot, and rank 0 says so).
  uint64_t expected = 0;  // sequence number of the next batch
  std::string waiting_for = "its first batch";
  double waiting_since = now_seconds();
  std::string status;
  Channel::Handle status_reply = -1;
  auto service = [&] {
    report_stop();
    size_t n = 0;
    if (!ch.probe(0, kTagStatus, &n)) return;
    recv_bytes(ch, 0, kTagStatus, 5, "rank 0's status request");
    if (status_reply >= 0 && !ch.test(status_reply)) return;  // the previous answer is pending
    status = detail::concat("stage ", setup.stage, " (rank ", setup.members.at(ch.rank()),
                            ") has waited ",
                            static_cast<int>(now_seconds() - waiting_since), " s for ",
                            waiting_for, "; ", c.batches, " batches done");
    status_reply = ch.isend(0, kTagStatus, status.data(), status.size());
  };
  auto waiting = [&](std::string what) {
    waiting_for = std::move(what);
    waiting_since = now_seconds();
  };
  // Rank 0's watchdog fires first, with the whole pipeline's picture; this is the backstop.
  const double timeout = cfg.timeout_s * 1.5 + 10;
  auto wait_send = [&](int s) {
    if (!sending[s]) return;
    waiting(detail::concat("rank ", setup.next, " to take batch ", expected - 1));
    wait_for([&] { return service(), ch.test(send[s]); }, timeout,
             detail::concat("rank ", setup.next, " to take a batch"));
    sending[s] = false;
  };
  int cur = 0, s = 0;
  // Per-batch records cost one clock reading and a copy of the counters per batch: each part is
  // the growth of its counter, and each record starts where the previous one ended.
  facts.t_begin = now_seconds();
  double t_mark = facts.t_begin;
  StageCounters before;
  for (;;) {
    if (trace.enabled()) before = c;
    size_t n = 0;
    if (expected > 0) waiting(detail::concat("batch ", expected, " from rank ", setup.prev));
    if (t_start == 0) {
      wait_for([&] { return service(), ch.test(recv[cur], &n); }, timeout, from);
      t_start = now_seconds();
      facts.time_first_wait = t_start - facts.t_begin;
    } else {
      ScopedTimer t(c.time_recv_wait);
      wait_for([&] { return service(), ch.test(recv[cur], &n); }, timeout, from);
    }
    c.bytes_in += static_cast<double>(n);
    Frame frame;
    {
      ScopedTimer t(c.time_decode);
      frame = decoder.decode(in_buf[cur].data(), n);
    }
    if (frame.flags & kFrameEnd) {
      ScopedTimer drain(facts.time_drain);
      ch.cancel(recv[cur ^ 1]);
      wait_send(0);
      wait_send(1);
      encoder.encode(frame.seq, kFrameEnd, {}, out_buf[0]);
      send[0] = ch.isend(setup.next, kTagData, out_buf[0].data(), out_buf[0].size());
      sending[0] = true;
      wait_send(0);
      break;
    }
    EP_CHECK(frame.seq == expected, "stage ", setup.stage, " received batch ", frame.seq,
             " but expected batch ", expected);
    ++expected;
    std::vector<at::Tensor> out;
    {
      ScopedTimer t(c.time_compute);
      out = stage.run(frame.tensors);
    }
    {
      ScopedTimer t(c.time_send_wait);
      wait_send(s);
    }
    {
      ScopedTimer t(c.time_encode);
      encoder.encode(frame.seq, 0, out, out_buf[s]);
    }
    // Only now is in_buf[cur] free: a stage may pass an input tensor through as an output.
    recv[cur] = ch.irecv(setup.prev, kTagData, in_buf[cur].data(), in_buf[cur].size());
    send[s] = ch.isend(setup.next, kTagData, out_buf[s].data(), out_buf[s].size());
    sending[s] = true;
    c.bytes_out += static_cast<double>(out_buf[s].size());
    c.batches += 1;
    if (trace.enabled()) {
      const double t_begin = t_mark;
      t_mark = now_seconds();
      BatchRecord r = make_batch_record(static_cast<int64_t>(frame.seq), t_begin, t_mark, c, before);
      if (c.batches == 1) {  // the first wait is not in the counters (set-up of other ranks)
        r.time_recv_wait += facts.time_first_wait;
        r.time_other -= facts.time_first_wait;
      }
      trace.add(r);
    }
    cur ^= 1;
    s ^= 1;
  }
  facts.t_end = now_seconds();
  c.time_total = facts.t_end - t_start;
  if (stop_notice >= 0) {  // a small message: sent eagerly, so this does not wait for rank 0
    try {
      wait_for([&] { return ch.test(stop_notice); }, 5, "rank 0 to take the stop notice");
    } catch (const Error&) {
    }
  }
  c.link_out = encoder.counters();
}

}  // namespace

int run_worker(const RunConfig& cfg, Channel& world, const Log& log) {
  StageSetup setup;
  try {
    // Rank 0 first measures the ranks and links (probe.h), unless it failed before or planned
    // from a saved profile; then it sends each rank its stage, or nothing to do.
    if (wait_for_tag(world, 0, {kTagProbe, kTagSetup}, cfg.timeout_s,
                     "rank 0 to start the run") == kTagProbe) {
      try {
        answer_probe(world, recv_bytes(world, 0, kTagProbe, cfg.timeout_s, "rank 0's request"),
                     cfg);
      } catch (const std::exception& e) {
        log.error(std::string("measuring this rank at start-up: ") + e.what());
        world.abort(1);
      }
    }
    setup = StageSetup::from_bytes(
        recv_bytes(world, 0, kTagSetup, cfg.timeout_s, "the stage from rank 0"));
  } catch (const std::exception& e) {
    log.error(e.what());
    return 1;
  }
  if (!setup.ok) return setup.nothing_to_do ? 0 : 1;  // rank 0 has said why
  // From here on ranks count in pipeline order: stage s is rank s + 1.
  RemappedChannel ch(world, std::vector<int>(setup.members.begin(), setup.members.end()));

  std::optional<StageRunner> stage;
  std::string problem;
  try {
    // The stage's weights plus its frame buffers (two in, two out) must fit this rank's memory.
    std::string source;
    const int64_t limit = rank_memory_limit(cfg.max_memory, &source);
    const double need = static_cast<double>(setup.module_bytes.size()) + 4.0 * setup.max_in_bytes;
    EP_CHECK(limit <= 0 || need <= static_cast<double>(limit), "the stage needs about ",
             format_bytes(need), " (weights ", format_bytes(setup.module_bytes.size()),
             " + frame buffers) but this rank may use ", format_bytes(limit), " (", source, ")");
    stage.emplace(prepare_stage(setup, cfg, log));
  } catch (const std::exception& e) {
    problem = e.what();
  }
  send_bytes(ch, 0, kTagReady, problem, cfg.timeout_s);
  if (!problem.empty()) {
    log.error("stage " + std::to_string(setup.stage) + ": " + problem);
    return 1;
  }

  StageCounters counters;
  try {
    // Rank 0 aligns the clocks and says how many batches to expect (to reserve the trace).
    const int64_t batches = sync_clocks_worker(ch, cfg.timeout_s);
    BatchTrace trace(cfg.trace, static_cast<size_t>(std::max<int64_t>(batches, 0)) + 16);
    const RaplCounters rapl;
    const std::vector<uint64_t> energy0 = rapl.read();
    double user0 = 0, system0 = 0, user1 = 0, system1 = 0;
    process_cpu_seconds(&user0, &system0);
    RankFacts facts;
    stream(setup, *stage, cfg, ch, counters, trace, facts);
    process_cpu_seconds(&user1, &system1);
    const std::vector<uint64_t> energy1 = rapl.read();
    sample_rank_facts(&facts);
    facts.cpu_user = user1 - user0;
    facts.cpu_system = system1 - system0;
    if (!energy0.empty() && !energy1.empty()) {
      facts.rapl_joules = rapl.joules_between(energy0, energy1);
      std::snprintf(facts.rapl_source, sizeof facts.rapl_source, "%s", rapl.names().c_str());
    }
    facts.records_dropped = trace.dropped();
    send_bytes(ch, 0, kTagStats, counters_to_bytes(counters), cfg.timeout_s);
    send_bytes(ch, 0, kTagTrace, trace_to_bytes(facts, trace.records()), cfg.timeout_s);
  } catch (const std::exception& e) {
    log.error("stage " + std::to_string(setup.stage) + ": " + e.what());
    ch.abort(1);
  }
  return 0;
}

}  // namespace edgepipe
