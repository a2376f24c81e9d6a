#include "edgepipe/records/runlog.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>

#include "edgepipe/base/error.h"
#include "edgepipe/io/h5_attributes.h"
#include "edgepipe/records/profile_log.h"
#include "edgepipe/records/runlog_tables.h"

namespace edgepipe {

std::string default_log_path(const std::string& output) {
  const std::string ext = ".h5";
  std::string base = output;
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
    base.resize(base.size() - ext.size());
  return base + ".log.h5";
}

namespace {

void write_run_group(hid_t f, const RunLog& log) {
  H5Id g = h5_create_group(f, "run");
  h5_write_text_attr(g.get(), "command_line", log.command_line);
  h5_write_text_attr(g.get(), "config", log.config);
  h5_write_text_attr(g.get(), "model", log.model);
  h5_write_text_attr(g.get(), "model_sha256", log.model_sha256);
  h5_write_text_attr(g.get(), "output", log.output);
  h5_write_text_attr(g.get(), "start_time_utc", log.start_time_utc);
  h5_write_text_attr(g.get(), "versions", log.versions);
  h5_write_int_attr(g.get(), "ranks", static_cast<int64_t>(log.ranks.size()));
  std::string hosts;
  for (const RankLog& r : log.ranks)
    hosts += (hosts.empty() ? "" : ",") + std::string(r.facts.host);
  h5_write_text_attr(g.get(), "hosts", hosts);
  h5_write_int_attr(g.get(), "stopped_by_signal", log.stopped_by_signal);
  h5_write_int_attr(g.get(), "complete", log.complete() ? 1 : 0);
  h5_write_text_attr(g.get(), "failure", log.failure);
  h5_write_int_attr(g.get(), "trace", log.trace ? 1 : 0);
  h5_write_text_attr(g.get(), "time_origin",
                     "seconds since rank 0 started streaming, on rank 0's steady clock; other "
                     "ranks' clocks aligned at start-up");
}

// /plan/error_budget: what --error-budget chose per link and what it measured (docs/runlog.md).
void write_error_budget(hid_t plan, const ErrorBudgetReport& b) {
  H5Id g = h5_create_group(plan, "error_budget");
  h5_write_double_attr(g.get(), "budget", b.budget);
  h5_write_int_attr(g.get(), "calibration_rows", b.calibration_rows);
  h5_write_int_attr(g.get(), "candidates", static_cast<int64_t>(b.candidates));
  h5_write_double_attr(g.get(), "error_sum", b.error_sum);
  h5_write_double_attr(g.get(), "measured_error", b.measured_error);
  h5_write_double_attr(g.get(), "predicted_period_raw_s", b.period_raw_s);
  h5_write_double_attr(g.get(), "predicted_period_s", b.period_s);
  std::string codecs, tightened;
  std::vector<int64_t> cut;
  std::vector<double> raw, bytes, enc, dec, err;
  for (const BudgetedLink& l : b.links) {
    codecs += (codecs.empty() ? "" : ",") + l.codec;
    cut.push_back(static_cast<int64_t>(l.cut));
    raw.push_back(l.raw_bytes);
    bytes.push_back(l.bytes);
    enc.push_back(l.encode_ms / 1e3);
    dec.push_back(l.decode_ms / 1e3);
    err.push_back(l.error);
  }
  for (const std::string& t : b.tightened) tightened += t + "\n";
  h5_write_text_attr(g.get(), "link_codecs", codecs);
  h5_write_text_attr(g.get(), "tightened", tightened);
  h5_write_ints(g.get(), "link_cut", cut);
  h5_write_doubles(g.get(), "link_bytes_raw", raw, "bytes per batch, the raw frame");
  h5_write_doubles(g.get(), "link_bytes", bytes, "bytes per batch under the chosen codec");
  h5_write_doubles(g.get(), "link_encode_s", enc, "seconds per batch on rank 0");
  h5_write_doubles(g.get(), "link_decode_s", dec, "seconds per batch on rank 0");
  h5_write_doubles(g.get(), "link_error", err,
                   "the outputs' relative L2 error (worst row) with this link alone coded");
}

void write_plan_group(hid_t f, const RunLog& log) {
  H5Id g = h5_create_group(f, "plan");
  h5_write_int_attr(g.get(), "stages", static_cast<int64_t>(log.stage_rank.size()));
  h5_write_double_attr(g.get(), "predicted_period_s", log.summary.predicted_period_s);
  h5_write_ints(g.get(), "cuts", log.cuts);
  h5_write_text_attr(g.get(), "method", log.plan_method);
  h5_write_int_attr(g.get(), "overlap", log.overlap ? 1 : 0);
  h5_write_ints(g.get(), "stage_rank", log.stage_rank);
  h5_write_ints(g.get(), "stage_first_block", log.stage_first_block);
  h5_write_ints(g.get(), "stage_end_block", log.stage_end_block);
  h5_write_doubles(g.get(), "stage_compute_s", log.stage_compute_s,
                   "seconds per batch, predicted: decode + the stage's blocks on its rank + "
                   "encode (with overlap: the larger of the blocks and decode + encode)");
  h5_write_doubles(g.get(), "stage_recv_s", log.stage_recv_s,
                   "seconds per batch, predicted: the stage's input over its link");
  h5_write_doubles(g.get(), "stage_send_s", log.stage_send_s,
                   "seconds per batch, predicted: the stage's output over its link");
  h5_write_doubles(g.get(), "stage_memory_bytes", log.stage_memory_bytes,
                   "bytes: weights + largest block peak activation");
  h5_write_ints(g.get(), "stage_replicas", log.stage_replicas);
  h5_write_ints(g.get(), "replica_ranks", log.replica_ranks);
  h5_write_ints(g.get(), "replica_weights", log.replica_weights);
  if (log.budget.on()) write_error_budget(g.get(), log.budget);
}

// Rank 0's totals: the sums of its batch records (kept without --no-trace's records).
void write_dispatcher_totals(hid_t g, const RankLog& r) {
  const DispatchRecord& d = r.dispatch_totals;
  h5_write_double_attr(g, "batches", static_cast<double>(d.seq));
  h5_write_double_attr(g, "time_read_s", d.time_read);
  h5_write_double_attr(g, "time_encode_s", d.time_encode);
  h5_write_double_attr(g, "time_decode_s", d.time_decode);
  h5_write_double_attr(g, "time_write_s", d.time_write);
  h5_write_double_attr(g, "bytes_out", d.bytes_out);
  h5_write_double_attr(g, "bytes_in", d.bytes_in);
}

// A stage rank's totals: its counters, and the rest of its wall time as time_other_s.
void write_stage_totals(hid_t g, const RankLog& r) {
  const RankFacts& f = r.facts;
  const StageCounters& c = r.counters;
  const double wall = f.t_end - f.t_begin;
  const double recv_wait = c.time_recv_wait + f.time_first_wait;
  const double busy = c.time_decode + c.time_compute + c.time_encode;
  const double named = recv_wait + c.time_decode +
                       (c.overlap ? c.time_compute_wait : c.time_compute) + c.time_send_wait +
                       c.time_encode + c.time_probe + f.time_drain;
  h5_write_double_attr(g, "batches", c.batches);
  h5_write_double_attr(g, "time_recv_wait_s", recv_wait);
  h5_write_double_attr(g, "time_decode_s", c.time_decode);
  h5_write_double_attr(g, "time_compute_s", c.time_compute);
  h5_write_double_attr(g, "time_send_wait_s", c.time_send_wait);
  h5_write_double_attr(g, "time_encode_s", c.time_encode);
  h5_write_double_attr(g, "time_compute_wait_s", c.time_compute_wait);
  h5_write_double_attr(g, "time_probe_s", c.time_probe);
  h5_write_double_attr(g, "time_drain_s", f.time_drain);
  h5_write_double_attr(g, "time_other_s", wall - named);
  h5_write_double_attr(g, "time_busy_s", busy);
  h5_write_double_attr(g, "utilisation", wall > 0 ? busy / wall : 0.0);
  h5_write_double_attr(g, "bytes_in", c.bytes_in);
  h5_write_double_attr(g, "bytes_out", c.bytes_out);
  h5_write_double_attr(g, "bytes_out_raw", c.link_out.bytes_raw);
  h5_write_double_attr(g, "bytes_out_encoded", c.link_out.bytes_encoded);
  h5_write_double_attr(g, "records_dropped", f.records_dropped);
}

// A stage rank's memory by phase (RankMemory), and what the plan gave its stage: the goal is a
// peak within rss_baseline_bytes + 1.5 x stage_planned_memory_bytes (docs/runlog.md).
void write_memory(hid_t g, const RankMemory& m, double planned) {
  h5_write_double_attr(g, "rss_baseline_bytes", m.rss_baseline);
  h5_write_double_attr(g, "profile_request_bytes", m.profile_request);
  h5_write_double_attr(g, "peak_rss_profile_bytes", m.peak_rss_profile);
  h5_write_double_attr(g, "rss_after_profile_bytes", m.rss_after_profile);
  h5_write_double_attr(g, "rss_after_profile_trim_bytes", m.rss_after_profile_trim);
  h5_write_double_attr(g, "stage_archive_bytes", m.stage_archive);
  h5_write_double_attr(g, "max_frame_in_bytes", m.max_frame_in);
  h5_write_double_attr(g, "peak_rss_load_bytes", m.peak_rss_load);
  h5_write_double_attr(g, "rss_after_load_bytes", m.rss_after_load);
  h5_write_double_attr(g, "rss_after_load_trim_bytes", m.rss_after_load_trim);
  h5_write_double_attr(g, "peak_rss_stream_bytes", m.peak_rss_stream);
  h5_write_double_attr(g, "rss_end_bytes", m.rss_end);
  h5_write_int_attr(g, "peaks_per_phase", m.peaks_per_phase);
  if (planned > 0) h5_write_double_attr(g, "stage_planned_memory_bytes", planned);
}

void write_totals(hid_t g, const RankLog& r, double planned_memory) {
  const RankFacts& f = r.facts;
  const double wall = f.t_end - f.t_begin;
  h5_write_double_attr(g, "wall_s", wall);
  h5_write_double_attr(g, "cpu_user_s", f.cpu_user);
  h5_write_double_attr(g, "cpu_system_s", f.cpu_system);
  h5_write_double_attr(g, "cpu_utilisation", wall > 0 ? (f.cpu_user + f.cpu_system) / wall : 0.0);
  h5_write_double_attr(g, "peak_rss_bytes", f.peak_rss_bytes);
  h5_write_int_attr(g, "threads", f.threads);
  h5_write_int_attr(g, "intra_op_threads", f.intra_op_threads);
  h5_write_double_attr(g, "energy_j", r.energy_j);
  h5_write_text_attr(g, "energy_source", r.energy_source);
  if (f.rapl_joules >= 0) h5_write_double_attr(g, "rapl_package_j", f.rapl_joules);
  if (r.stage < 0)
    write_dispatcher_totals(g, r);
  else
    write_stage_totals(g, r);
  if (r.stage >= 0 && f.memory.rss_baseline > 0) write_memory(g, f.memory, planned_memory);
}

void write_ranks_group(hid_t f, const RunLog& log) {
  H5Id ranks = h5_create_group(f, "ranks");
  for (const RankLog& r : log.ranks) {
    H5Id g = h5_create_group(ranks.get(), std::to_string(r.rank));
    h5_write_text_attr(g.get(), "role", r.stage < 0 ? "dispatcher" : "stage");
    h5_write_int_attr(g.get(), "stage", r.stage);
    h5_write_text_attr(g.get(), "host", r.facts.host);
    h5_write_text_attr(g.get(), "cpus", r.facts.cpus);
    h5_write_double_attr(g.get(), "clock_offset_s", r.clock_offset_s);
    h5_write_double_attr(g.get(), "clock_rtt_s", r.clock_rtt_s);
    h5_write_double_attr(g.get(), "t_begin_s", r.facts.t_begin);
    h5_write_double_attr(g.get(), "t_end_s", r.facts.t_end);
    if (r.setup_bytes >= 0) h5_write_int_attr(g.get(), "setup_bytes", r.setup_bytes);
    if (r.stage_cache_hit >= 0) h5_write_int_attr(g.get(), "stage_cache_hit", r.stage_cache_hit);
    if (r.stage < 0)
      h5_write_table(g.get(), "batches", r.dispatch, dispatch_record_type());
    else
      h5_write_table(g.get(), "batches", r.batches, batch_record_type());
    H5Id t = h5_create_group(g.get(), "totals");
    const size_t s = static_cast<size_t>(r.stage);
    write_totals(t.get(), r,
                 r.stage >= 0 && s < log.stage_memory_bytes.size() ? log.stage_memory_bytes[s] : 0);
  }
}

// Link i + 1 carries into stage i (pipeline order); the last one back to rank 0. Its ends are
// named by the job's ranks, from the plan.
void write_links(hid_t f, const RunLog& log) {
  std::vector<LinkRow> rows;
  const size_t k = log.links.size();
  auto rank_of_stage = [&](size_t s) {
    return s < log.stage_rank.size() ? log.stage_rank[s] : static_cast<int64_t>(s + 1);
  };
  for (size_t i = 0; i < k; ++i) {
    const LinkCounters& c = log.links[i];
    LinkRow row{};
    row.link = static_cast<int64_t>(i + 1);
    row.from_rank = i == 0 ? 0 : rank_of_stage(i - 1);
    row.to_rank = i + 1 == k ? 0 : rank_of_stage(i);
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
  h5_write_table(f, "links", rows, link_row_type());
}

void write_summary_group(hid_t f, const RunLog& log) {
  const RunSummary& s = log.summary;
  H5Id g = h5_create_group(f, "summary");
  h5_write_int_attr(g.get(), "images", s.images);
  h5_write_int_attr(g.get(), "batches", s.batches);
  h5_write_int_attr(g.get(), "batch_size", s.batch_size);
  h5_write_double_attr(g.get(), "wall_s", s.wall_s);
  h5_write_double_attr(g.get(), "images_per_s", s.images_per_s);
  h5_write_double_attr(g.get(), "steady_images_per_s", s.steady_images_per_s);
  h5_write_double_attr(g.get(), "period_s", s.period_s);
  h5_write_double_attr(g.get(), "predicted_period_s", s.predicted_period_s);
  h5_write_int_attr(g.get(), "bottleneck_stage", s.bottleneck_stage);
  h5_write_int_attr(g.get(), "bottleneck_rank", s.bottleneck_rank);
  h5_write_text_attr(g.get(), "bottleneck_cause", s.bottleneck_cause);
  h5_write_text_attr(g.get(), "bottleneck_reason", s.bottleneck_reason);
  h5_write_double_attr(g.get(), "energy_j", s.energy_j);
  h5_write_double_attr(g.get(), "energy_per_image_j", s.energy_per_image_j);
  h5_write_text_attr(g.get(), "energy_source", s.energy_source);
  std::vector<double> energy, util;
  for (const RankLog& r : log.ranks) {
    energy.push_back(r.energy_j);
    const double wall = r.facts.t_end - r.facts.t_begin;
    const StageCounters& c = r.counters;
    util.push_back(
        r.stage >= 0 && wall > 0 ? (c.time_decode + c.time_compute + c.time_encode) / wall : 0.0);
  }
  h5_write_doubles(g.get(), "rank_energy_j", energy,
                   "joules, in the order of /ranks (rank 0, then the stages in pipeline order)");
  h5_write_doubles(g.get(), "rank_utilisation", util,
                   "fraction of the rank's wall time spent decoding, computing, encoding (rank 0: "
                   "0), in the order of rank_energy_j");
  h5_write_ints(g.get(), "rank", [&] {
    std::vector<int64_t> ranks;
    for (const RankLog& r : log.ranks) ranks.push_back(r.rank);
    return ranks;
  }());
}

}  // namespace

void write_run_log(const std::string& path, const RunLog& log) {
  const std::string tmp = path + ".tmp";
  {
    H5Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
              "cannot create run log '" + tmp + "'");
    const hid_t f = file.get();
    h5_write_text_attr(f, "format", "edgepipe run log 1 (docs/runlog.md)");
    write_run_group(f, log);
    write_plan_group(f, log);
    if (!log.profile.measurements.startup.ranks.empty()) write_profile_group(f, log.profile);
    write_ranks_group(f, log);
    write_links(f, log);
    write_summary_group(f, log);
    h5_check(H5Fflush(f, H5F_SCOPE_GLOBAL), "flushing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  EP_CHECK(!ec, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

}  // namespace edgepipe
