#include "edgepipe/records/runlog.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>

#include "edgepipe/base/error.h"
#include "edgepipe/io/h5.h"

namespace edgepipe {

std::string default_log_path(const std::string& output) {
  const std::string ext = ".h5";
  std::string base = output;
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
    base.resize(base.size() - ext.size());
  return base + ".log.h5";
}

// ---- summary --------------------------------------------------------------------------------

void summarise(RunLog& log) {
  RunSummary& s = log.summary;
  s.images_per_s = s.wall_s > 0 ? s.images / s.wall_s : 0;
  s.period_s = s.steady_images_per_s > 0 ? s.batch_size / s.steady_images_per_s : 0;
  s.predicted_period_s = log.plan_period_s;

  // The verdict: the stage busy for most of the period sets the pace (by compute or by its
  // codec); else a stage that waits for its sends points at the link after it; else rank 0.
  double busiest = -1, most_send_wait = -1;
  int busy_stage = -1, wait_stage = -1;
  for (const RankLog& r : log.ranks) {
    if (r.stage < 0 || r.counters.batches <= 0) continue;
    const StageCounters& c = r.counters;
    // With overlap the blocks compute on a thread of their own, beside the decode and encode.
    const double busy = log.overlap
                            ? std::max(c.time_compute, c.time_decode + c.time_encode) / c.batches
                            : (c.time_decode + c.time_compute + c.time_encode) / c.batches;
    if (busy > busiest) busiest = busy, busy_stage = r.stage;
    const double sw = c.time_send_wait / c.batches;
    if (sw > most_send_wait) most_send_wait = sw, wait_stage = r.stage;
  }
  const double P = s.period_s;
  char why[400];
  if (busy_stage >= 0 && P > 0 && busiest >= 0.7 * P) {
    const StageCounters& c = log.ranks[busy_stage + 1].counters;
    const double codec = (c.time_encode + c.time_decode) / c.batches;
    const double compute = c.time_compute / c.batches;
    s.bottleneck_stage = busy_stage;
    s.bottleneck_rank = busy_stage + 1;
    s.bottleneck_cause = codec > compute ? "codec" : "compute";
    std::snprintf(why, sizeof why,
                  "stage %d (rank %d) is busy %.0f%% of the %.2f ms period: compute %.2f ms %s "
                  "codec %.2f ms per batch",
                  busy_stage, busy_stage + 1, 100 * busiest / P, 1e3 * P, 1e3 * compute,
                  log.overlap ? "beside" : "+", 1e3 * codec);
  } else if (wait_stage >= 0 && P > 0 && most_send_wait >= 0.3 * P) {
    s.bottleneck_stage = wait_stage;
    s.bottleneck_rank = wait_stage + 1;
    s.bottleneck_cause = "link";
    const int links = static_cast<int>(log.ranks.size());  // K ranks: links 1..K
    const int link = wait_stage + 2, to = link == links ? 0 : link;
    std::snprintf(why, sizeof why,
                  "stage %d (rank %d) waits %.2f ms of the %.2f ms period for its sends to "
                  "rank %d to complete (link %d)",
                  wait_stage, wait_stage + 1, 1e3 * most_send_wait, 1e3 * P, to, link);
  } else {
    s.bottleneck_stage = -1;
    s.bottleneck_rank = 0;
    s.bottleneck_cause = "dispatcher";
    std::snprintf(why, sizeof why,
                  "no stage is busy for most of the %.2f ms period (the busiest %.0f%%): rank 0 "
                  "(reading inputs, writing outputs) or --inflight sets the pace",
                  1e3 * P, P > 0 ? 100 * std::max(busiest, 0.0) / P : 0.0);
  }
  s.bottleneck_reason = why;

  s.energy_j = 0;
  bool rapl = false, model = false;
  for (const RankLog& r : log.ranks) {
    s.energy_j += r.energy_j;
    (r.energy_source.rfind("RAPL", 0) == 0 ? rapl : model) = true;
  }
  s.energy_per_image_j = s.images > 0 ? s.energy_j / s.images : 0;
  if (rapl && model)
    s.energy_source = "mixed: RAPL on some hosts, the model on others (see /ranks/<r>/totals)";
  else if (!log.ranks.empty())
    s.energy_source = log.ranks[0].energy_source;
}

// ---- writing --------------------------------------------------------------------------------

namespace {

H5Id group(hid_t parent, const std::string& name) {
  return H5Id(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
              "creating group " + name);
}

void attr(hid_t obj, const std::string& name, double v) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace");
  H5Id a(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
         H5Aclose, "attribute " + name);
  h5_check(H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &v), "writing attribute " + name);
}

void attr_int(hid_t obj, const std::string& name, int64_t v) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace");
  H5Id a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
         H5Aclose, "attribute " + name);
  h5_check(H5Awrite(a.get(), H5T_NATIVE_INT64, &v), "writing attribute " + name);
}

void attr(hid_t obj, const std::string& name, const std::string& v) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  h5_check(H5Tset_size(type.get(), std::max<size_t>(v.size(), 1)), "string size");
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace");
  H5Id a(H5Acreate2(obj, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         "attribute " + name);
  std::string padded = v.empty() ? std::string(1, '\0') : v;
  h5_check(H5Awrite(a.get(), type.get(), padded.data()), "writing attribute " + name);
}

void attr(hid_t obj, const std::string& name, const char* v) { attr(obj, name, std::string(v)); }

template <typename T>
void dataset_1d(hid_t parent, const std::string& name, const std::vector<T>& v, hid_t file_type,
                hid_t mem_type) {
  hsize_t n = v.size();
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, "dataspace of " + name);
  H5Id d(H5Dcreate2(parent, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT),
         H5Dclose, "creating dataset " + name);
  if (n)
    h5_check(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
             "writing dataset " + name);
}

void doubles(hid_t parent, const std::string& name, const std::vector<double>& v,
             const std::string& units) {
  dataset_1d(parent, name, v, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
  H5Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "dataset " + name);
  attr(d.get(), "units", units);
}

void ints(hid_t parent, const std::string& name, const std::vector<int64_t>& v) {
  dataset_1d(parent, name, v, H5T_STD_I64LE, H5T_NATIVE_INT64);
}

// A compound type whose members are all double except those named in `ints` (int64).
struct Field {
  const char* name;
  size_t offset;
  bool is_int;
};

H5Id compound(size_t size, const std::vector<Field>& fields) {
  H5Id t(H5Tcreate(H5T_COMPOUND, size), H5Tclose, "compound type");
  for (const Field& f : fields)
    h5_check(H5Tinsert(t.get(), f.name, f.offset, f.is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE),
             std::string("compound member ") + f.name);
  return t;
}

const std::vector<Field>& batch_fields() {
  static const std::vector<Field> f = {
      {"seq", offsetof(BatchRecord, seq), true},
      {"t_begin_s", offsetof(BatchRecord, t_begin), false},
      {"t_end_s", offsetof(BatchRecord, t_end), false},
      {"time_recv_wait_s", offsetof(BatchRecord, time_recv_wait), false},
      {"time_decode_s", offsetof(BatchRecord, time_decode), false},
      {"time_compute_s", offsetof(BatchRecord, time_compute), false},
      {"time_send_wait_s", offsetof(BatchRecord, time_send_wait), false},
      {"time_encode_s", offsetof(BatchRecord, time_encode), false},
      {"time_compute_wait_s", offsetof(BatchRecord, time_compute_wait), false},
      {"time_other_s", offsetof(BatchRecord, time_other), false},
      {"bytes_in", offsetof(BatchRecord, bytes_in), false},
      {"bytes_out", offsetof(BatchRecord, bytes_out), false},
  };
  return f;
}

const std::vector<Field>& dispatch_fields() {
  static const std::vector<Field> f = {
      {"seq", offsetof(DispatchRecord, seq), true},
      {"t_sent_s", offsetof(DispatchRecord, t_sent), false},
      {"t_arrived_s", offsetof(DispatchRecord, t_arrived), false},
      {"time_read_s", offsetof(DispatchRecord, time_read), false},
      {"time_encode_s", offsetof(DispatchRecord, time_encode), false},
      {"time_decode_s", offsetof(DispatchRecord, time_decode), false},
      {"time_write_s", offsetof(DispatchRecord, time_write), false},
      {"bytes_out", offsetof(DispatchRecord, bytes_out), false},
      {"bytes_in", offsetof(DispatchRecord, bytes_in), false},
  };
  return f;
}

// One row of /links.
struct LinkRow {
  int64_t link, from_rank, to_rank;
  char codec[sizeof(LinkCounters::codec)];
  double frames, bytes_raw, bytes_encoded, bytes_frames, ratio, time_encode, time_decode,
      time_error, error_max_rel, error_rel_l2;
};

H5Id link_type() {
  H5Id t = compound(sizeof(LinkRow), {{"link", offsetof(LinkRow, link), true},
                                      {"from_rank", offsetof(LinkRow, from_rank), true},
                                      {"to_rank", offsetof(LinkRow, to_rank), true}});
  H5Id str(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  h5_check(H5Tset_size(str.get(), sizeof(LinkRow::codec)), "string size");
  h5_check(H5Tinsert(t.get(), "codec", offsetof(LinkRow, codec), str.get()), "codec member");
  const std::vector<Field> rest = {{"frames", offsetof(LinkRow, frames), false},
                                   {"bytes_raw", offsetof(LinkRow, bytes_raw), false},
                                   {"bytes_encoded", offsetof(LinkRow, bytes_encoded), false},
                                   {"bytes_frames", offsetof(LinkRow, bytes_frames), false},
                                   {"ratio", offsetof(LinkRow, ratio), false},
                                   {"time_encode_s", offsetof(LinkRow, time_encode), false},
                                   {"time_decode_s", offsetof(LinkRow, time_decode), false},
                                   {"time_error_s", offsetof(LinkRow, time_error), false},
                                   {"error_max_rel", offsetof(LinkRow, error_max_rel), false},
                                   {"error_rel_l2", offsetof(LinkRow, error_rel_l2), false}};
  for (const Field& f : rest)
    h5_check(H5Tinsert(t.get(), f.name, f.offset, H5T_NATIVE_DOUBLE), f.name);
  return t;
}

template <typename T>
void table(hid_t parent, const std::string& name, const std::vector<T>& rows, const H5Id& type) {
  dataset_1d(parent, name, rows, type.get(), type.get());
}

void write_totals(hid_t g, const RankLog& r) {
  const RankFacts& f = r.facts;
  const double wall = f.t_end - f.t_begin;
  attr(g, "wall_s", wall);
  attr(g, "cpu_user_s", f.cpu_user);
  attr(g, "cpu_system_s", f.cpu_system);
  attr(g, "cpu_utilisation", wall > 0 ? (f.cpu_user + f.cpu_system) / wall : 0.0);
  attr(g, "peak_rss_bytes", f.peak_rss_bytes);
  attr_int(g, "threads", f.threads);
  attr_int(g, "intra_op_threads", f.intra_op_threads);
  attr(g, "energy_j", r.energy_j);
  attr(g, "energy_source", r.energy_source);
  if (f.rapl_joules >= 0) attr(g, "rapl_package_j", f.rapl_joules);
  if (r.stage < 0) {
    const DispatchRecord& d = r.dispatch_totals;
    attr(g, "batches", static_cast<double>(d.seq));
    attr(g, "time_read_s", d.time_read);
    attr(g, "time_encode_s", d.time_encode);
    attr(g, "time_decode_s", d.time_decode);
    attr(g, "time_write_s", d.time_write);
    attr(g, "bytes_out", d.bytes_out);
    attr(g, "bytes_in", d.bytes_in);
    return;
  }
  const StageCounters& c = r.counters;
  const double recv_wait = c.time_recv_wait + f.time_first_wait;
  const double named = recv_wait + c.time_decode +
                       (c.overlap ? c.time_compute_wait : c.time_compute) + c.time_send_wait +
                       c.time_encode + f.time_drain;
  attr(g, "batches", c.batches);
  attr(g, "time_recv_wait_s", recv_wait);
  attr(g, "time_decode_s", c.time_decode);
  attr(g, "time_compute_s", c.time_compute);
  attr(g, "time_send_wait_s", c.time_send_wait);
  attr(g, "time_encode_s", c.time_encode);
  attr(g, "time_compute_wait_s", c.time_compute_wait);
  attr(g, "time_drain_s", f.time_drain);
  attr(g, "time_other_s", wall - named);
  attr(g, "time_busy_s", c.time_decode + c.time_compute + c.time_encode);
  attr(g, "utilisation", wall > 0 ? (c.time_decode + c.time_compute + c.time_encode) / wall : 0.0);
  attr(g, "bytes_in", c.bytes_in);
  attr(g, "bytes_out", c.bytes_out);
  attr(g, "bytes_out_raw", c.link_out.bytes_raw);
  attr(g, "bytes_out_encoded", c.link_out.bytes_encoded);
  attr(g, "records_dropped", f.records_dropped);
}

}  // namespace

void write_run_log(const std::string& path, const RunLog& log) {
  const std::string tmp = path + ".tmp";
  {
    H5Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
              "cannot create run log '" + tmp + "'");
    const hid_t f = file.get();
    attr(f, "format", "edgepipe run log 1 (docs/runlog.md)");
    {
      H5Id g = group(f, "run");
      attr(g.get(), "command_line", log.command_line);
      attr(g.get(), "config", log.config);
      attr(g.get(), "model", log.model);
      attr(g.get(), "model_sha256", log.model_sha256);
      attr(g.get(), "output", log.output);
      attr(g.get(), "start_time_utc", log.start_time_utc);
      attr(g.get(), "versions", log.versions);
      attr_int(g.get(), "ranks", static_cast<int64_t>(log.ranks.size()));
      std::string hosts;
      for (const RankLog& r : log.ranks)
        hosts += (hosts.empty() ? "" : ",") + std::string(r.facts.host);
      attr(g.get(), "hosts", hosts);
      attr_int(g.get(), "stopped_by_signal", log.stopped_by_signal);
      attr_int(g.get(), "complete", log.stopped_by_signal == 0 ? 1 : 0);
      attr_int(g.get(), "trace", log.trace ? 1 : 0);
      attr(g.get(), "time_origin",
           "seconds since rank 0 started streaming, on rank 0's steady "
           "clock; other ranks' clocks aligned at start-up");
    }
    {
      H5Id g = group(f, "plan");
      attr_int(g.get(), "stages", static_cast<int64_t>(log.stage_rank.size()));
      attr(g.get(), "predicted_period_s", log.summary.predicted_period_s);
      ints(g.get(), "cuts", log.cuts);
      attr(g.get(), "method", log.plan_method);
      attr_int(g.get(), "overlap", log.overlap ? 1 : 0);
      ints(g.get(), "stage_rank", log.stage_rank);
      ints(g.get(), "stage_first_block", log.stage_first_block);
      ints(g.get(), "stage_end_block", log.stage_end_block);
      doubles(g.get(), "stage_compute_s", log.stage_compute_s,
              "seconds per batch, predicted: decode + the stage's blocks on its rank + encode "
              "(with overlap: the larger of the blocks and decode + encode)");
      doubles(g.get(), "stage_recv_s", log.stage_recv_s,
              "seconds per batch, predicted: the stage's input over its link");
      doubles(g.get(), "stage_send_s", log.stage_send_s,
              "seconds per batch, predicted: the stage's output over its link");
      doubles(g.get(), "stage_memory_bytes", log.stage_memory_bytes,
              "bytes: weights + largest block peak activation");
    }
    if (!log.profile.ranks.empty()) {
      const StartupProfile& p = log.profile;
      H5Id g = group(f, "profile");
      attr(g.get(), "seconds", p.seconds);
      const size_t n = p.ranks.size(), nb = n > 1 ? p.ranks[1].block_ms.size() : 0;
      std::vector<double> block_ms, block_ms_busy, latency, bandwidth, cores;
      std::vector<int64_t> memory, threads, on_host;
      std::string hosts, sources;
      for (size_t r = 0; r < n; ++r) {
        for (size_t b = 0; b < nb; ++b) {
          block_ms.push_back(b < p.ranks[r].block_ms.size() ? p.ranks[r].block_ms[b] : 0.0);
          block_ms_busy.push_back(b < p.ranks[r].block_ms_busy.size() ? p.ranks[r].block_ms_busy[b]
                                                                      : 0.0);
        }
        for (size_t q = 0; q < n; ++q) {
          latency.push_back(p.links[r][q].latency_s);
          bandwidth.push_back(p.links[r][q].bandwidth_Bps);
        }
        memory.push_back(p.ranks[r].memory_limit);
        threads.push_back(p.ranks[r].threads);
        cores.push_back(p.ranks[r].cores);
        on_host.push_back(p.ranks[r].ranks_on_host);
        hosts += (r ? "\n" : "") + p.ranks[r].host;
        sources += (r ? "\n" : "") + p.ranks[r].memory_source;
      }
      attr_int(g.get(), "ranks", static_cast<int64_t>(n));
      attr_int(g.get(), "blocks", static_cast<int64_t>(nb));
      attr(g.get(), "hosts", hosts);
      attr(g.get(), "memory_sources", sources);
      doubles(g.get(), "block_ms", block_ms,
              "milliseconds per batch; ranks x blocks, row-major (row 0, the dispatcher: zeros)");
      doubles(g.get(), "block_ms_busy", block_ms_busy,
              "milliseconds per batch; ranks x blocks: the same, all stage ranks timing at once");
      doubles(g.get(), "link_latency_s", latency, "seconds; ranks x ranks, row-major");
      doubles(g.get(), "link_bandwidth_Bps", bandwidth, "bytes per second; ranks x ranks");
      ints(g.get(), "memory_limit_bytes", memory);
      ints(g.get(), "threads", threads);
      doubles(g.get(), "cores", cores, "cores each rank may use (affinity, cgroup CPU quota)");
      ints(g.get(), "ranks_on_host", on_host);
    }
    {
      H5Id ranks = group(f, "ranks");
      for (const RankLog& r : log.ranks) {
        H5Id g = group(ranks.get(), std::to_string(r.rank));
        attr(g.get(), "role", r.stage < 0 ? "dispatcher" : "stage");
        attr_int(g.get(), "stage", r.stage);
        attr(g.get(), "host", r.facts.host);
        attr(g.get(), "cpus", r.facts.cpus);
        attr(g.get(), "clock_offset_s", r.clock_offset_s);
        attr(g.get(), "clock_rtt_s", r.clock_rtt_s);
        attr(g.get(), "t_begin_s", r.facts.t_begin);
        attr(g.get(), "t_end_s", r.facts.t_end);
        if (r.stage < 0)
          table(g.get(), "batches", r.dispatch,
                compound(sizeof(DispatchRecord), dispatch_fields()));
        else
          table(g.get(), "batches", r.batches, compound(sizeof(BatchRecord), batch_fields()));
        H5Id t = group(g.get(), "totals");
        write_totals(t.get(), r);
      }
    }
    {
      std::vector<LinkRow> rows;
      const int64_t k = static_cast<int64_t>(log.links.size());
      for (int64_t i = 0; i < k; ++i) {
        const LinkCounters& c = log.links[i];
        LinkRow row{};
        row.link = i + 1;
        row.from_rank = i;
        row.to_rank = i + 1 == k ? 0 : i + 1;
        std::memcpy(row.codec, c.codec, sizeof row.codec);
        row.frames = c.frames;
        row.bytes_raw = c.bytes_raw;
        row.bytes_encoded = c.bytes_encoded;
        row.bytes_frames = c.bytes_frames;
        row.ratio = c.bytes_encoded > 0 ? c.bytes_raw / c.bytes_encoded : 0;
        row.time_encode = c.time_encode;
        row.time_decode = c.time_decode;
        row.time_error = c.time_error;
        row.error_max_rel = c.error_max_rel;
        row.error_rel_l2 = c.ref_sq > 0 ? std::sqrt(c.error_sq / c.ref_sq) : 0.0;
        rows.push_back(row);
      }
      table(f, "links", rows, link_type());
    }
    {
      const RunSummary& s = log.summary;
      H5Id g = group(f, "summary");
      attr_int(g.get(), "images", s.images);
      attr_int(g.get(), "batches", s.batches);
      attr_int(g.get(), "batch_size", s.batch_size);
      attr(g.get(), "wall_s", s.wall_s);
      attr(g.get(), "images_per_s", s.images_per_s);
      attr(g.get(), "steady_images_per_s", s.steady_images_per_s);
      attr(g.get(), "period_s", s.period_s);
      attr(g.get(), "predicted_period_s", s.predicted_period_s);
      attr_int(g.get(), "bottleneck_stage", s.bottleneck_stage);
      attr_int(g.get(), "bottleneck_rank", s.bottleneck_rank);
      attr(g.get(), "bottleneck_cause", s.bottleneck_cause);
      attr(g.get(), "bottleneck_reason", s.bottleneck_reason);
      attr(g.get(), "energy_j", s.energy_j);
      attr(g.get(), "energy_per_image_j", s.energy_per_image_j);
      attr(g.get(), "energy_source", s.energy_source);
      std::vector<double> energy, util;
      for (const RankLog& r : log.ranks) {
        energy.push_back(r.energy_j);
        const double wall = r.facts.t_end - r.facts.t_begin;
        const StageCounters& c = r.counters;
        util.push_back(r.stage >= 0 && wall > 0
                           ? (c.time_decode + c.time_compute + c.time_encode) / wall
                           : 0.0);
      }
      doubles(g.get(), "rank_energy_j", energy, "joules, by rank");
      doubles(g.get(), "rank_utilisation", util,
              "fraction of the rank's wall time spent decoding, computing, encoding (rank 0: 0)");
    }
    h5_check(H5Fflush(f, H5F_SCOPE_GLOBAL), "flushing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  EP_CHECK(!ec, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

// ---- reading --------------------------------------------------------------------------------

namespace {

struct AttrMaps {
  std::map<std::string, double>* numbers;
  std::map<std::string, std::string>* texts;
};

herr_t read_one_attr(hid_t obj, const char* name, const H5A_info_t*, void* data) {
  auto* maps = static_cast<AttrMaps*>(data);
  try {
    H5Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, std::string("attribute ") + name);
    H5Id type(H5Aget_type(a.get()), H5Tclose, "attribute type");
    H5Id space(H5Aget_space(a.get()), H5Sclose, "attribute space");
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return 0;
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_STRING) {
      std::string v(H5Tget_size(type.get()), '\0');
      h5_check(H5Aread(a.get(), type.get(), v.data()), "reading attribute");
      (*maps->texts)[name] = v.substr(0, v.find('\0'));
    } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
      double v = 0;
      h5_check(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v), "reading attribute");
      (*maps->numbers)[name] = v;
    }
  } catch (const std::exception&) {
    return -1;
  }
  return 0;
}

void read_attrs(hid_t obj, const std::string& what, std::map<std::string, double>* numbers,
                std::map<std::string, std::string>* texts) {
  std::map<std::string, double> ignore_n;
  std::map<std::string, std::string> ignore_t;
  AttrMaps maps{numbers ? numbers : &ignore_n, texts ? texts : &ignore_t};
  hsize_t idx = 0;
  h5_check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, read_one_attr, &maps),
           "reading the attributes of " + what);
}

H5Id open_group(hid_t parent, const std::string& name, const std::string& file) {
  EP_CHECK(H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0, "'", file, "' has no ", name,
           ": not an edgepipe run log");
  return H5Id(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, "opening " + name);
}

template <typename T>
std::vector<T> read_dataset(hid_t parent, const std::string& name, hid_t mem_type,
                            const std::string& file) {
  EP_CHECK(H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0, "'", file, "' has no ", name);
  H5Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  H5Id space(H5Dget_space(d.get()), H5Sclose, "dataspace of " + name);
  std::vector<T> v(static_cast<size_t>(H5Sget_simple_extent_npoints(space.get())));
  if (!v.empty())
    h5_check(H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
             "reading " + name);
  return v;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == '\n')
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

}  // namespace

StartupProfile read_startup_profile(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  EP_CHECK(std::filesystem::exists(path), "profile '", path, "' does not exist");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
            "cannot open '" + path + "' as HDF5");
  EP_CHECK(H5Lexists(file.get(), "profile", H5P_DEFAULT) > 0, "'", path,
           "' has no /profile: not the run log of an `edgepipe run` that measured its ranks");
  H5Id g = open_group(file.get(), "profile", path);
  std::map<std::string, double> n;
  std::map<std::string, std::string> t;
  read_attrs(g.get(), "/profile", &n, &t);
  const auto ranks = static_cast<size_t>(n["ranks"]), blocks = static_cast<size_t>(n["blocks"]);
  const auto block_ms = read_dataset<double>(g.get(), "block_ms", H5T_NATIVE_DOUBLE, path);
  const auto busy = read_dataset<double>(g.get(), "block_ms_busy", H5T_NATIVE_DOUBLE, path);
  const auto latency = read_dataset<double>(g.get(), "link_latency_s", H5T_NATIVE_DOUBLE, path);
  const auto bandwidth =
      read_dataset<double>(g.get(), "link_bandwidth_Bps", H5T_NATIVE_DOUBLE, path);
  const auto memory = read_dataset<int64_t>(g.get(), "memory_limit_bytes", H5T_NATIVE_INT64, path);
  const auto threads = read_dataset<int64_t>(g.get(), "threads", H5T_NATIVE_INT64, path);
  const auto cores = read_dataset<double>(g.get(), "cores", H5T_NATIVE_DOUBLE, path);
  const auto on_host = read_dataset<int64_t>(g.get(), "ranks_on_host", H5T_NATIVE_INT64, path);
  const auto hosts = split_lines(t["hosts"]), sources = split_lines(t["memory_sources"]);
  EP_CHECK(ranks >= 2 && block_ms.size() == ranks * blocks && busy.size() == block_ms.size() &&
               latency.size() == ranks * ranks && bandwidth.size() == ranks * ranks &&
               memory.size() == ranks && threads.size() == ranks && cores.size() == ranks &&
               on_host.size() == ranks && hosts.size() == ranks && sources.size() == ranks,
           "'", path, "': /profile is inconsistent (", ranks, " ranks, ", blocks, " blocks)");
  StartupProfile p;
  p.seconds = n["seconds"];
  p.ranks.resize(ranks);
  p.links.assign(ranks, std::vector<Link>(ranks));
  for (size_t r = 0; r < ranks; ++r) {
    RankProfile& rp = p.ranks[r];
    rp.host = hosts[r];
    rp.memory_source = sources[r];
    rp.memory_limit = memory[r];
    rp.threads = static_cast<int>(threads[r]);
    rp.cores = cores[r];
    rp.ranks_on_host = static_cast<int>(on_host[r]);
    if (r > 0) {
      rp.block_ms.assign(block_ms.begin() + r * blocks, block_ms.begin() + (r + 1) * blocks);
      rp.block_ms_busy.assign(busy.begin() + r * blocks, busy.begin() + (r + 1) * blocks);
    }
    for (size_t q = 0; q < ranks; ++q)
      p.links[r][q] = Link{latency[r * ranks + q], bandwidth[r * ranks + q]};
  }
  return p;
}

RunLogFile read_run_log(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  EP_CHECK(std::filesystem::exists(path), "run log '", path, "' does not exist");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
            "cannot open run log '" + path + "' as HDF5");
  RunLogFile out;
  {
    H5Id g = open_group(file.get(), "run", path);
    read_attrs(g.get(), "/run", &out.run, &out.run_text);
  }
  {
    H5Id g = open_group(file.get(), "summary", path);
    read_attrs(g.get(), "/summary", &out.summary, &out.summary_text);
  }
  {
    H5Id ranks = open_group(file.get(), "ranks", path);
    // Groups are named by the job's rank; ranks the plan left idle have none.
    H5G_info_t info;
    h5_check(H5Gget_info(ranks.get(), &info), "reading /ranks");
    for (int r = 0, found = 0; found < static_cast<int>(info.nlinks) && r < (1 << 20); ++r) {
      const std::string name = std::to_string(r) + "/totals";
      if (H5Lexists(ranks.get(), std::to_string(r).c_str(), H5P_DEFAULT) <= 0) continue;
      ++found;
      H5Id g = open_group(ranks.get(), name, path);
      out.totals.emplace_back();
      out.totals_text.emplace_back();
      read_attrs(g.get(), "/ranks/" + name, &out.totals.back(), &out.totals_text.back());
      H5Id rg = open_group(ranks.get(), std::to_string(r), path);
      std::map<std::string, double> n;
      read_attrs(rg.get(), "/ranks/" + std::to_string(r), &n, &out.totals_text.back());
      out.totals.back()["stage"] = n["stage"];
    }
  }
  if (H5Lexists(file.get(), "links", H5P_DEFAULT) > 0) {
    H5Id d(H5Dopen2(file.get(), "links", H5P_DEFAULT), H5Dclose, "opening /links");
    H5Id space(H5Dget_space(d.get()), H5Sclose, "dataspace of /links");
    std::vector<LinkRow> rows(static_cast<size_t>(H5Sget_simple_extent_npoints(space.get())));
    H5Id type = link_type();
    if (!rows.empty())
      h5_check(H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
               "reading /links");
    for (const LinkRow& row : rows) {
      LinkCounters c;
      std::memcpy(c.codec, row.codec, sizeof c.codec);
      c.codec[sizeof c.codec - 1] = '\0';
      c.frames = row.frames;
      c.bytes_raw = row.bytes_raw;
      c.bytes_encoded = row.bytes_encoded;
      c.bytes_frames = row.bytes_frames;
      c.time_encode = row.time_encode;
      c.time_decode = row.time_decode;
      c.time_error = row.time_error;
      c.error_max_rel = row.error_max_rel;
      out.links.push_back(c);
    }
  }
  return out;
}

}  // namespace edgepipe
