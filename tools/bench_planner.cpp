// bench_planner: how far the baselines are from the exact planner, how much replicas gain, and
// how fast the planner is.
//
// 1. On N random heterogeneous instances (R distinct ranks, n blocks; see random_instance in
//    bench_planner_instances.h) of each scenario (kScenarios), it plans with the exact planner
//    and each baseline, and reports the ratio of each baseline's predicted period to the optimum
//    (mean, median, max), how often the baseline found a plan that fits, and the mean time per
//    plan. It checks, in the same run, that no baseline beats the optimum.
// 2. It times the exact planner on 64 ranks of 4 types (median of several runs) on chains of
//    several lengths.
// 3. With --configs DIR, it plans a ResNet50-shaped chain on DIR/cluster-*.ini.
// 4.-6. The same with replicas (bench_planner_replicas.cpp): the optimum with replicas against
//    the best single pipeline and data parallelism on each scenario and on 16 ranks in 4 classes,
//    its time on 64 ranks of 4 types, and the shipped cluster descriptions.
// Periods are predictions of the cost model in docs/planner.md, not measurements of runs.
//
// Usage: bench_planner [--instances N] [--ranks R] [--blocks n] [--seed S] [--repeats K]
//                      [--configs DIR] [--csv FILE]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench_planner_instances.h"
#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"
#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/plan/resnet50_shaped.h"

using namespace edgepipe;
using namespace edgepipe::bench;

namespace {

struct MethodStats {
  std::string name;
  std::vector<double> ratios;  // over instances where it found a plan that fits
  size_t found = 0, beat_optimum = 0;
  double seconds = 0;
};

size_t parse_count(const char* flag, const char* text) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  EP_CHECK(end != text && *end == '\0' && v > 0, flag, " needs a positive whole number, got '",
           text, "'");
  return static_cast<size_t>(v);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf(
          "usage: bench_planner [--instances N] [--ranks R] [--blocks n] [--seed S] "
          "[--repeats K] [--configs DIR] [--csv FILE]\n");
      std::exit(0);
    }
    EP_CHECK(i + 1 < argc, a, " needs a value");
    const char* v = argv[++i];
    if (a == "--instances")
      o.instances = parse_count(a.c_str(), v);
    else if (a == "--ranks")
      o.ranks = parse_count(a.c_str(), v);
    else if (a == "--blocks")
      o.blocks = parse_count(a.c_str(), v);
    else if (a == "--seed")
      o.seed = parse_count(a.c_str(), v);
    else if (a == "--repeats")
      o.repeats = parse_count(a.c_str(), v);
    else if (a == "--configs")
      o.configs = v;
    else if (a == "--csv")
      o.csv = v;
    else
      EP_FAIL("unknown option ", a, " (see --help)");
  }
  EP_CHECK(o.ranks <= 16,
           "--ranks: at most 16 distinct ranks (the exact planner is exponential "
           "in the number of distinct ranks)");
  return o;
}

using Planner = std::function<Plan(const ModelCosts&, const Cluster&, const PlanOptions&)>;
const std::vector<std::pair<std::string, Planner>>& baseline_methods() {
  static const std::vector<std::pair<std::string, Planner>> methods = {
      {"random", plan_random},
      {"greedy", plan_greedy},
      {"equal-blocks", plan_equal_blocks},
      {"pipeedge", plan_pipeedge},
  };
  return methods;
}

// One instance: the optimum, then each baseline's ratio to it. False if nothing fits at all.
bool bench_instance(const Instance& in, const PlanOptions& po, MethodStats& optimal,
                    std::vector<MethodStats>& stats, std::vector<double>& stage_counts) {
  auto t0 = std::chrono::steady_clock::now();
  Plan opt;
  try {
    opt = plan_optimal(in.model, in.cluster, po);
  } catch (const Error&) {  // does not fit at all: not an instance for ratios
    return false;
  }
  optimal.seconds += seconds_since(t0);
  optimal.found++;
  optimal.ratios.push_back(1.0);
  stage_counts.push_back(static_cast<double>(opt.stages.size()));
  for (size_t k = 0; k < baseline_methods().size(); ++k) {
    MethodStats& s = stats[k];
    s.name = baseline_methods()[k].first;
    t0 = std::chrono::steady_clock::now();
    const Plan p = baseline_methods()[k].second(in.model, in.cluster, po);
    s.seconds += seconds_since(t0);
    if (p.period_s() == INFINITY) continue;
    s.found++;
    const double ratio = p.period_s() / opt.period_s();
    if (ratio < 1 - 1e-12) s.beat_optimum++;
    s.ratios.push_back(ratio);
  }
  return true;
}

// The table of one scenario; returns how many times a baseline beat the optimum.
size_t print_scenario(const Scenario& sc, const std::vector<MethodStats>& rows, size_t feasible,
                      CsvOut& csv) {
  size_t violations = 0;
  std::printf(
      "# ratio = baseline's predicted period / optimal period, over the instances where "
      "the baseline found a plan that fits\n");
  std::printf("%-13s %9s %11s %13s %10s %14s\n", "method", "fits", "mean_ratio", "median_ratio",
              "max_ratio", "time_per_plan");
  for (const MethodStats& s : rows) {
    const double mean = mean_of(s.ratios);
    const double mx = s.ratios.empty() ? NAN : *std::max_element(s.ratios.begin(), s.ratios.end());
    const double ms = feasible ? s.seconds / static_cast<double>(feasible) * 1e3 : NAN;
    const std::string fits = strprintf("%zu/%zu", s.found, feasible);
    std::printf("%-13s %9s %10.2fx %12.2fx %9.2fx %11.3f ms\n", s.name.c_str(), fits.c_str(), mean,
                percentile(s.ratios, 0.5), mx, ms);
    csv.row(strprintf("baselines-%s,%s,%zu,%.6f,%.6f,%.6f,%.6f", sc.name, s.name.c_str(), s.found,
                      mean, percentile(s.ratios, 0.5), mx, ms));
    violations += s.beat_optimum;
  }
  return violations;
}

// 1. Baselines against the optimum on one scenario's random instances; returns the violations.
size_t bench_scenario(const Options& o, const Scenario& sc, CsvOut& csv) {
  std::mt19937_64 rng(o.seed);
  std::vector<MethodStats> stats(baseline_methods().size());
  MethodStats optimal;
  optimal.name = "optimal";
  std::vector<double> stage_counts;
  size_t infeasible = 0;
  for (size_t it = 0; it < o.instances; ++it) {
    const Instance in = random_instance(rng, o.ranks, o.blocks, sc);
    PlanOptions po;
    po.seed = o.seed * 1000003 + it;
    if (!bench_instance(in, po, optimal, stats, stage_counts)) ++infeasible;
  }
  std::printf(
      "# Scenario '%s': links %s..%s, latency %.1f..%.1f ms, speeds %.2f..%.2f; %zu "
      "instances, %zu ranks, %zu blocks, seed %llu (%zu did not fit at all: skipped)\n",
      sc.name, format_bandwidth(sc.bw_min / 8).c_str(), format_bandwidth(sc.bw_max / 8).c_str(),
      sc.lat_min * 1e3, sc.lat_max * 1e3, sc.speed_min, sc.speed_max, o.instances, o.ranks,
      o.blocks, static_cast<unsigned long long>(o.seed), infeasible);
  std::vector<MethodStats> rows = {optimal};
  rows.insert(rows.end(), stats.begin(), stats.end());
  const size_t violations = print_scenario(sc, rows, o.instances - infeasible, csv);
  std::printf("optimal plans used %.1f stages on average (of %zu ranks)\n\n", mean_of(stage_counts),
              o.ranks);
  return violations;
}

// 2. The exact planner's time on 64 ranks of 4 types; returns the slowest median in seconds.
double bench_typed64(const Options& o, CsvOut& csv) {
  std::printf("# Exact planner time, 64 ranks of 4 types (16 each), median of %zu runs\n",
              o.repeats);
  std::printf("%-28s %7s %6s %7s %11s %12s\n", "model", "blocks", "types", "stages", "period_ms",
              "plan_time");
  struct Case {
    std::string name;
    ModelCosts model;
  };
  std::vector<Case> cases = {{"resnet50-shaped (batch 1)", resnet50_shaped()}};
  for (size_t n : {50, 100, 150}) {
    std::mt19937_64 r2(o.seed + n);
    cases.push_back({"random chain", typed_instance(r2, n).model});
  }
  std::mt19937_64 r3(o.seed + 7);
  const Cluster typed = typed_instance(r3, 1).cluster;
  double slowest = 0;
  for (const Case& cs : cases) {
    std::vector<double> times;
    Plan p;
    for (size_t k = 0; k < o.repeats + 1; ++k) {  // the first run warms up and is not counted
      auto t0 = std::chrono::steady_clock::now();
      p = plan_optimal(cs.model, typed);
      if (k > 0) times.push_back(seconds_since(t0));
    }
    const double med = percentile(times, 0.5);
    slowest = std::max(slowest, med);
    std::printf("%-28s %7zu %6zu %7zu %11.3f %9.1f ms\n", cs.name.c_str(), cs.model.num_blocks(),
                p.rank_types, p.stages.size(), p.period_s() * 1e3, med * 1e3);
    csv.row(strprintf("typed64,%s,%zu,%zu,%zu,%.6f,%.6f", cs.name.c_str(), cs.model.num_blocks(),
                      p.rank_types, p.stages.size(), p.period_s() * 1e3, med * 1e3));
  }
  return slowest;
}

// 3. The ResNet50-shaped chain on the shipped cluster descriptions.
void bench_configs(const Options& o, CsvOut& csv) {
  const ModelCosts m = resnet50_shaped();
  std::printf(
      "\n# ResNet50-shaped chain (batch 1) on the shipped cluster descriptions: "
      "predicted period in ms (stages)\n");
  std::printf("%-24s %14s %14s %14s %14s %14s\n", "cluster", "optimal", "random", "greedy",
              "equal-blocks", "pipeedge");
  for (const char* name : {"cluster-8-small.ini", "cluster-mixed.ini", "cluster-too-small.ini"}) {
    const Cluster c = load_cluster(o.configs + "/" + name);
    std::printf("%-24s", name);
    for (const Plan& p : {plan_optimal(m, c), plan_random(m, c), plan_greedy(m, c),
                          plan_equal_blocks(m, c), plan_pipeedge(m, c)}) {
      const std::string cell = p.period_s() == INFINITY
                                   ? std::string("no fit")
                                   : strprintf("%.1f (%zu)", p.period_s() * 1e3, p.stages.size());
      std::printf(" %14s", cell.c_str());
      csv.row(strprintf("configs,%s,%s,%.6f,%zu,,", name, p.method.c_str(), p.period_s() * 1e3,
                        p.stages.size()));
    }
    std::printf("\n");
  }
}

int run(const Options& o) {
  CsvOut csv(o.csv);
  size_t violations = 0;
  for (const Scenario& sc : kScenarios) violations += bench_scenario(o, sc, csv);
  const double slowest = bench_typed64(o, csv);
  if (!o.configs.empty()) bench_configs(o, csv);
  std::printf("\n");
  size_t replica_violations = 0;
  for (const Scenario& sc : kScenarios)
    replica_violations += bench_replica_scenario(o, sc, o.ranks, 0, csv);
  replica_violations += bench_replica_scenario(o, kScenarios[1], 16, 4, csv);
  const double replicas_s = bench_typed64_replicas(o, csv);
  if (!o.configs.empty()) bench_configs_replicas(o, csv);
  csv.close();
  const bool ok = violations == 0 && replica_violations == 0 && slowest < 1.0 && replicas_s < 1.0;
  std::printf(
      "\nverdict: %s: no baseline beat the optimum (%zu violations), none the optimum with "
      "replicas (%zu); 64 ranks of 4 types planned in at most %.1f ms without replicas, %.1f ms "
      "with replicas on the ResNet50-shaped chain (goal < 1000 ms)\n",
      ok ? "PASS" : "FAIL", violations, replica_violations, slowest * 1e3, replicas_s * 1e3);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_planner: %s\n", e.what());
    return 2;
  }
}
