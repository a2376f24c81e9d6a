#include "edgepipe/records/report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {

double get(const std::map<std::string, double>& m, const std::string& key, double dflt = 0) {
  auto it = m.find(key);
  return it == m.end() ? dflt : it->second;
}

std::string text(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

std::string f(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// One row per rank: the figures of the table, per batch where it says so.
struct Row {
  int rank = 0, stage = -1;
  double batches = 0, compute_ms = 0, codec_ms = 0, wait_ms = 0, util = 0, mb_out = 0, ratio = 0,
         energy = 0, wall = 0, other = 0;
};

std::vector<Row> rows_of(const RunLogFile& log) {
  std::vector<Row> rows;
  for (size_t r = 0; r < log.totals.size(); ++r) {
    const auto& t = log.totals[r];
    Row row;
    row.rank = static_cast<int>(get(t, "rank", static_cast<double>(r)));
    row.stage = static_cast<int>(get(t, "stage", -1));
    row.batches = get(t, "batches");
    const double b = row.batches > 0 ? row.batches : 1;
    row.compute_ms = 1e3 * get(t, "time_compute_s") / b;
    row.codec_ms = 1e3 * (get(t, "time_encode_s") + get(t, "time_decode_s")) / b;
    row.wait_ms = 1e3 * (get(t, "time_recv_wait_s") + get(t, "time_send_wait_s")) / b;
    row.util = 100 * get(t, "utilisation");
    row.mb_out = get(t, "bytes_out") / 1e6;
    const double enc = get(t, "bytes_out_encoded");
    row.ratio = enc > 0 ? get(t, "bytes_out_raw") / enc : 0;
    row.energy = get(t, "energy_j");
    row.wall = get(t, "wall_s");
    row.other = get(t, "time_other_s");
    rows.push_back(row);
  }
  // In pipeline order (rank 0 first): groups are named by the job's rank, which need not be.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.stage < b.stage; });
  // Rank 0 sends link 1: its ratio is that link's.
  if (!rows.empty() && !log.links.empty() && log.links[0].bytes_encoded > 0)
    rows[0].ratio = log.links[0].bytes_raw / log.links[0].bytes_encoded;
  return rows;
}

// With replicas, one line per replicated stage: its ranks and each one's share of its batches
// (a stage's replicas together compute each of its batches once).
std::string replica_lines(const std::vector<Row>& rows) {
  std::map<int, std::vector<const Row*>> by_stage;
  for (const Row& r : rows)
    if (r.stage >= 0) by_stage[r.stage].push_back(&r);
  std::string out;
  for (const auto& [stage, reps] : by_stage) {
    if (reps.size() < 2) continue;
    double total = 0;
    for (const Row* r : reps) total += r->batches;
    out += "  replicas of stage " + std::to_string(stage) + ":";
    for (const Row* r : reps)
      out += f(" rank %.0f", r->rank) + f(" %.0f%%", total > 0 ? 100 * r->batches / total : 0) +
             f(" (busy %.1f%%)", r->util);
    out += f(", %.0f batches in all\n", total);
  }
  return out;
}

// Memory of each stage rank by phase (docs/runlog.md, RankMemory in trace.h), in MiB, and the
// goal: its peak within its baseline + 1.5 x its stage's planned memory (weights + largest
// block's peak activations). Figures a log lacks (older logs) are "unknown".
std::string memory_lines(const RunLogFile& log) {
  std::vector<const std::map<std::string, double>*> stages;
  for (const auto& t : log.totals)
    if (get(t, "stage", -1) >= 0) stages.push_back(&t);
  if (stages.empty()) return "";
  std::stable_sort(stages.begin(), stages.end(),
                   [](auto* a, auto* b) { return get(*a, "stage") < get(*b, "stage"); });
  constexpr double kMiB = 1024.0 * 1024.0;
  auto mib = [&](const std::map<std::string, double>& t, const char* key) {
    const double v = get(t, key, -1);
    return v > 0 ? f("%.1f", v / kMiB) : std::string("unknown");
  };
  auto with_trim = [&](const std::map<std::string, double>& t, const char* key,
                       const char* trimmed) {
    return get(t, key, -1) > 0 ? mib(t, key) + " (" + mib(t, trimmed) + ")" : "unknown";
  };
  std::string out =
      "\n  memory MiB  baseline  profile peak  after (trim)  load peak  loaded (trim)  stream "
      "peak  planned   bound  peak <= bound\n";
  bool per_phase = true, any = false;
  char line[300];
  for (const auto* tp : stages) {
    const auto& t = *tp;
    const double base = get(t, "rss_baseline_bytes", -1),
                 planned = get(t, "stage_planned_memory_bytes", -1);
    std::string verdict = "unknown";
    std::string bound = "unknown";
    if (base > 0 && planned > 0) {
      const double b = base + 1.5 * planned;
      bound = f("%.1f", b / kMiB);
      const char* phases[] = {"profile", "load", "stream"};
      const char* keys[] = {"peak_rss_profile_bytes", "peak_rss_load_bytes",
                            "peak_rss_stream_bytes"};
      double peak = 0;
      const char* where = "";
      for (int i = 0; i < 3; ++i)
        if (get(t, keys[i]) > peak) peak = get(t, keys[i]), where = phases[i];
      const double stream = get(t, "peak_rss_stream_bytes");
      verdict =
          peak <= b ? std::string("holds") : f("no: +%.1f", (peak - b) / kMiB) + " in " + where;
      if (peak > b)
        verdict += stream <= b ? "; stream holds" : f("; stream +%.1f", (stream - b) / kMiB);
      any = true;
      if (get(t, "peaks_per_phase", 1) == 0) per_phase = false;
    }
    std::snprintf(line, sizeof line,
                  "  stage %-4s  %8s  %12s  %12s  %9s  %13s  %11s  %7s  %6s  %s\n",
                  f("%.0f", get(t, "stage")).c_str(), mib(t, "rss_baseline_bytes").c_str(),
                  mib(t, "peak_rss_profile_bytes").c_str(),
                  with_trim(t, "rss_after_profile_bytes", "rss_after_profile_trim_bytes").c_str(),
                  mib(t, "peak_rss_load_bytes").c_str(),
                  with_trim(t, "rss_after_load_bytes", "rss_after_load_trim_bytes").c_str(),
                  mib(t, "peak_rss_stream_bytes").c_str(),
                  mib(t, "stage_planned_memory_bytes").c_str(), bound.c_str(), verdict.c_str());
    out += line;
  }
  out +=
      "  (resident memory of each stage rank: at start, its peak and its end in the start-up "
      "profiling, loading its stage and the stream; (trim): after malloc_trim gave back what "
      "glibc held; bound = baseline + 1.5 x planned";
  out += !any ? ")\n"
         : per_phase
             ? "; peaks are each phase's own)\n"
             : "; the kernel kept peaks since start: a phase's peak may be an earlier one's)\n";
  return out;
}

}  // namespace

std::string report_text(const RunLogFile& log, const std::string& name) {
  std::ostringstream s;
  const auto& sum = log.summary;
  s << "run log " << name << "\n";
  s << "  " << text(log.run_text, "command_line") << "\n";
  s << "  model " << text(log.run_text, "model") << ", started "
    << text(log.run_text, "start_time_utc") << "\n";
  if (get(log.run, "stopped_by_signal") != 0)
    s << "  stopped by signal " << get(log.run, "stopped_by_signal")
      << " before the end: the figures cover the part that ran\n";
  if (get(log.run, "trace", 1) == 0) s << "  per-batch records off (--no-trace): totals only\n";
  const std::string failure = text(log.run_text, "failure");
  if (!failure.empty())
    s << "  failed before the end (the figures cover what rank 0 knew): "
      << failure.substr(0, failure.find('\n')) << "\n";
  s << "\n  stage  rank  batches  compute ms  codec ms  wait ms  util %  MB out  ratio  energy J\n";
  char line[200];
  for (const Row& r : rows_of(log)) {
    std::snprintf(line, sizeof line,
                  "  %5s  %4d  %7.0f  %10s  %8.2f  %7s  %6s  %6.2f  %5s  %8.2f\n",
                  r.stage < 0 ? "in/out" : std::to_string(r.stage).c_str(), r.rank, r.batches,
                  r.stage < 0 ? "-" : f("%.2f", r.compute_ms).c_str(), r.codec_ms,
                  r.stage < 0 ? "-" : f("%.2f", r.wait_ms).c_str(),
                  r.stage < 0 ? "-" : f("%.1f", r.util).c_str(), r.mb_out,
                  r.ratio > 0 ? f("%.2f", r.ratio).c_str() : "-", r.energy);
    s << line;
  }
  s << "  (ms are per batch; wait = waiting to receive + waiting for sends; util = decode + "
       "compute + encode over the rank's wall time; rank 0 reads inputs and writes outputs)\n";
  s << replica_lines(rows_of(log)) << memory_lines(log) << "\n";
  std::snprintf(line, sizeof line,
                "throughput %.2f images/s (%.2f once full), %0.f images in %.2f s; period %.2f ms "
                "per batch (plan predicted %.2f ms)\n",
                get(sum, "images_per_s"), get(sum, "steady_images_per_s"), get(sum, "images"),
                get(sum, "wall_s"), 1e3 * get(sum, "period_s"),
                1e3 * get(sum, "predicted_period_s"));
  s << line;
  s << "bottleneck: " << text(log.summary_text, "bottleneck_cause") << " - "
    << text(log.summary_text, "bottleneck_reason") << "\n";
  std::snprintf(line, sizeof line, "energy %.2f J, %.3f J per image; ", get(sum, "energy_j"),
                get(sum, "energy_per_image_j"));
  s << line << "source: " << text(log.summary_text, "energy_source") << "\n";
  return s.str();
}

std::string compare_text(const RunLogFile& a, const std::string& name_a, const RunLogFile& b,
                         const std::string& name_b) {
  std::ostringstream s;
  s << "A: " << name_a << "\n   " << text(a.run_text, "command_line") << "\n";
  s << "B: " << name_b << "\n   " << text(b.run_text, "command_line") << "\n\n";
  char line[200];
  auto put = [&](const std::string& what, double va, double vb, const char* fmt) {
    std::snprintf(line, sizeof line, "  %-34s %12s %12s %8s\n", what.c_str(), f(fmt, va).c_str(),
                  f(fmt, vb).c_str(), va != 0 ? f("%.3f", vb / va).c_str() : "-");
    s << line;
  };
  std::snprintf(line, sizeof line, "  %-34s %12s %12s %8s\n", "figure", "A", "B", "B/A");
  s << line;
  put("throughput images/s", get(a.summary, "images_per_s"), get(b.summary, "images_per_s"),
      "%.2f");
  put("steady throughput images/s", get(a.summary, "steady_images_per_s"),
      get(b.summary, "steady_images_per_s"), "%.2f");
  put("period ms/batch", 1e3 * get(a.summary, "period_s"), 1e3 * get(b.summary, "period_s"),
      "%.2f");
  put("wall s", get(a.summary, "wall_s"), get(b.summary, "wall_s"), "%.2f");
  put("energy J/image", get(a.summary, "energy_per_image_j"), get(b.summary, "energy_per_image_j"),
      "%.4f");
  const auto ra = rows_of(a), rb = rows_of(b);
  for (size_t i = 1; i < std::max(ra.size(), rb.size()); ++i) {
    const Row za, &x = i < ra.size() ? ra[i] : za, &y = i < rb.size() ? rb[i] : za;
    const std::string p = "stage " + std::to_string(i - 1) + " ";
    put(p + "compute ms/batch", x.compute_ms, y.compute_ms, "%.2f");
    put(p + "codec ms/batch", x.codec_ms, y.codec_ms, "%.2f");
    put(p + "wait ms/batch", x.wait_ms, y.wait_ms, "%.2f");
    put(p + "MB out", x.mb_out, y.mb_out, "%.2f");
  }
  s << "\nA bottleneck: " << text(a.summary_text, "bottleneck_cause") << " - "
    << text(a.summary_text, "bottleneck_reason") << "\n";
  s << "B bottleneck: " << text(b.summary_text, "bottleneck_cause") << " - "
    << text(b.summary_text, "bottleneck_reason") << "\n";
  return s.str();
}

int run_report(int argc, const char* const argv[], std::ostream& out) {
  std::vector<std::string> args(argv + 2, argv + argc);
  const char* usage =
      "usage: edgepipe report RUN.log.h5\n"
      "       edgepipe report --compare A.log.h5 B.log.h5\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    out << usage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--compare") {
    EP_CHECK(args.size() == 3, "--compare takes two run logs\n", usage);
    out << compare_text(read_run_log(args[1]), args[1], read_run_log(args[2]), args[2]);
    return 0;
  }
  EP_CHECK(args.size() == 1 && args[0][0] != '-', "unexpected arguments\n", usage);
  out << report_text(read_run_log(args[0]), args[0]);
  return 0;
}

}  // namespace edgepipe
