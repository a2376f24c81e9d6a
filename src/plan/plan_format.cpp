#include "edgepipe/plan/plan_format.h"

#include <sstream>
#include <vector>

#include "edgepipe/base/text.h"
#include "edgepipe/plan/baselines.h"
#include "edgepipe/plan/exact_planner.h"

namespace edgepipe {

namespace {

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

bool has_replicas(const Plan& p) {
  for (const Stage& s : p.stages)
    if (s.replicas().size() > 1) return true;
  return false;
}

// "1-3,5": ascending ranks, runs joined.
std::string rank_list(const std::vector<size_t>& ranks) {
  std::string text;
  for (size_t x = 0; x < ranks.size();) {
    size_t y = x;
    while (y + 1 < ranks.size() && ranks[y + 1] == ranks[y] + 1) ++y;
    text += (text.empty() ? "" : ",") + std::to_string(ranks[x]);
    if (y > x) text += "-" + std::to_string(ranks[y]);
    x = y + 1;
  }
  return text;
}

std::string with_name(const std::string& ranks, const Cluster& c, size_t rank) {
  return c.ranks[rank].name.empty() ? ranks : ranks + " (" + c.ranks[rank].name + ")";
}

// The table of a plan without replicas: one row per stage.
void single_rows(std::ostringstream& out, const Plan& p, const ModelCosts& m, const Cluster& c) {
  out << strprintf("%-5s %-14s %-9s %10s %9s %9s %11s %11s %10s\n", "stage", "rank", "blocks",
                   "compute_ms", "recv_ms", "send_ms", "memory_MiB", "bytes_out", "period_ms");
  for (size_t k = 0; k < p.stages.size(); ++k) {
    const Stage& s = p.stages[k];
    const StageCost& sc = p.cost.stages[k];
    const std::string rank = with_name(std::to_string(s.rank), c, s.rank);
    const std::string blocks = std::to_string(s.first) + "-" + std::to_string(s.end - 1);
    out << strprintf("%-5zu %-14s %-9s %10.3f %9.3f %9.3f %11.1f %11.0f %10.3f%s\n", k,
                     rank.c_str(), blocks.c_str(), sc.compute_s * 1e3, sc.recv_s * 1e3,
                     sc.send_s * 1e3, mib(sc.memory_bytes), m.cut_bytes[s.end], sc.period_s() * 1e3,
                     sc.fits() ? "" : "  (does not fit)");
  }
}

bool same_figures(const ReplicaCost& a, const ReplicaCost& b, const Cluster& c) {
  return c.ranks[a.rank].name == c.ranks[b.rank].name && a.compute_s == b.compute_s &&
         a.recv_s == b.recv_s && a.send_s == b.send_s && a.memory_bytes == b.memory_bytes &&
         a.fits() == b.fits();
}

// The table of a plan with replicas: per stage, one row per group of replicas alike (their
// figures, and each one's period), the stage's period on its first row.
void replica_rows(std::ostringstream& out, const Plan& p, const ModelCosts& m, const Cluster& c) {
  out << strprintf("%-5s %-20s %-9s %10s %9s %9s %11s %11s %10s %9s\n", "stage", "ranks", "blocks",
                   "compute_ms", "recv_ms", "send_ms", "memory_MiB", "bytes_out", "replica_ms",
                   "stage_ms");
  for (size_t k = 0; k < p.stages.size(); ++k) {
    const Stage& s = p.stages[k];
    const std::vector<ReplicaCost>& reps = p.cost.stages[k].replicas;
    for (size_t x = 0; x < reps.size();) {
      std::vector<size_t> ranks = {reps[x].rank};
      size_t y = x + 1;
      for (; y < reps.size() && same_figures(reps[x], reps[y], c); ++y)
        ranks.push_back(reps[y].rank);
      std::string who = with_name(rank_list(ranks), c, reps[x].rank);
      if (ranks.size() > 1) who += strprintf(" x%zu", ranks.size());
      const bool head = x == 0;
      const ReplicaCost& r = reps[x];
      out << strprintf(
          "%-5s %-20s %-9s %10.3f %9.3f %9.3f %11.1f %11s %10.3f %9s%s\n",
          head ? std::to_string(k).c_str() : "", who.c_str(),
          head ? (std::to_string(s.first) + "-" + std::to_string(s.end - 1)).c_str() : "",
          r.compute_s * 1e3, r.recv_s * 1e3, r.send_s * 1e3, mib(r.memory_bytes),
          head ? strprintf("%.0f", m.cut_bytes[s.end]).c_str() : "", r.period_s() * 1e3,
          head ? strprintf("%.3f", p.cost.stages[k].period_s() * 1e3).c_str() : "",
          r.fits() ? "" : "  (does not fit)");
      x = y;
    }
  }
}

}  // namespace

std::string format_plan(const Plan& p, const ModelCosts& m, const Cluster& c) {
  std::ostringstream out;
  if (!p.found()) {
    out << p.method << ": no plan (" << p.note << ")\n";
    return out.str();
  }
  const bool replicas = has_replicas(p);
  (replicas ? replica_rows : single_rows)(out, p, m, c);
  const std::string on_ranks =
      replicas ? strprintf(" on %zu ranks (with replicas)", p.ranks_used()) : "";
  out << strprintf(
      "%s: %zu stages%s, predicted period %.3f ms%s%s\n", p.method.c_str(), p.stages.size(),
      on_ranks.c_str(), p.cost.period_s * 1e3, p.cost.fits ? "" : " (DOES NOT FIT)",
      m.codec_thread ? "; codec beside compute: compute_ms = max(blocks, decode + encode)" : "");
  if (replicas)
    out << strprintf(
        "rank 0 per batch: sends %.3f ms, receives %.3f ms, codec %.3f ms (each replica takes "
        "whichever batch is ready: stage_ms = 1 / sum(1 / replica_ms))\n",
        p.cost.dispatcher_send_s * 1e3, p.cost.dispatcher_recv_s * 1e3, p.cost.dispatcher_s * 1e3);
  return out.str();
}

std::string format_replica_comparison(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  PlanOptions with = o;
  if (with.max_replicas == 1) with.max_replicas = 0;
  const Plan replicated = plan_optimal(m, c, with);
  const Plan single = plan_single_pipeline(m, c, o);
  const Plan parallel = plan_data_parallel(m, c, o);
  std::ostringstream out;
  out << (with.max_replicas == 0
              ? std::string("plan with replicas (as many per stage as pay):\n")
              : strprintf("plan with replicas (at most %zu per stage):\n", with.max_replicas));
  out << format_plan(replicated, m, c) << "\nbest single pipeline (one rank per stage):\n"
      << format_plan(single, m, c) << "\n";
  if (parallel.found() && parallel.cost.fits)
    out << strprintf("data parallelism (the whole model on each of %zu ranks): period %.3f ms\n",
                     parallel.ranks_used(), parallel.period_s() * 1e3);
  else
    out << "data parallelism: no plan (" << parallel.note << ")\n";
  const double speedup = single.period_s() / replicated.period_s();
  out << strprintf(
      "replicas: predicted period %.3f ms against %.3f ms for the single pipeline: %.2fx %s\n",
      replicated.period_s() * 1e3, single.period_s() * 1e3, speedup,
      speedup > 1 + 1e-9 ? "faster" : "(no faster)");
  return out.str();
}

}  // namespace edgepipe
