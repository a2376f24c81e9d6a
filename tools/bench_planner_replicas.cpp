// bench_planner's half with replicas (docs/planner.md, "Replicas"): how much faster the optimum
// with replicas is predicted to be than the best single pipeline and than data parallelism, and
// how long it takes to plan. Periods are predictions of the cost model, not measured runs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_planner_instances.h"
#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/plan/resnet50_shaped.h"

namespace edgepipe {
namespace bench {

namespace {

PlanOptions with_replicas() {
  PlanOptions o;
  o.max_replicas = 0;  // the planner decides
  return o;
}

struct ReplicaStats {
  std::vector<double> speedup, parallel_ratio, ranks, stages;
  size_t planned = 0, helped = 0, parallel_found = 0, violations = 0;
  double replicas_s = 0, single_s = 0;
};

// One instance: the best single pipeline, the optimum with replicas, data parallelism. False if
// nothing fits at all.
bool bench_replica_instance(const Instance& in, ReplicaStats& st) {
  auto t0 = std::chrono::steady_clock::now();
  Plan single;
  try {
    single = plan_optimal(in.model, in.cluster);
  } catch (const Error&) {
    return false;
  }
  st.single_s += seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const Plan rep = plan_optimal(in.model, in.cluster, with_replicas());
  st.replicas_s += seconds_since(t0);
  ++st.planned;
  const double speedup = single.period_s() / rep.period_s();
  st.speedup.push_back(speedup);
  st.helped += speedup > 1 + 1e-9;
  st.violations += speedup < 1 - 1e-12;
  const Plan parallel = plan_data_parallel(in.model, in.cluster);
  if (parallel.period_s() != INFINITY) {
    ++st.parallel_found;
    st.parallel_ratio.push_back(parallel.period_s() / rep.period_s());
    st.violations += st.parallel_ratio.back() < 1 - 1e-12;
  }
  st.ranks.push_back(static_cast<double>(rep.ranks_used()));
  st.stages.push_back(static_cast<double>(rep.stages.size()));
  return true;
}

void print_ratio_row(const char* name, const std::vector<double>& ratios, size_t found,
                     size_t planned, double seconds, const std::string& table, CsvOut& csv) {
  const double mx = ratios.empty() ? NAN : *std::max_element(ratios.begin(), ratios.end());
  const double ms = planned ? seconds / static_cast<double>(planned) * 1e3 : NAN;
  const std::string fits = strprintf("%zu/%zu", found, planned);
  // "-" where there is nothing to say (data parallelism where no rank holds the whole model,
  // and its time, not measured).
  auto cell = [](double v, const char* format) {
    return std::isnan(v) ? std::string("-") : strprintf(format, v);
  };
  std::printf("%-16s %9s %11s %13s %10s %14s\n", name, fits.c_str(),
              cell(mean_of(ratios), "%.2fx").c_str(),
              cell(percentile(ratios, 0.5), "%.2fx").c_str(), cell(mx, "%.2fx").c_str(),
              cell(ms, "%.3f ms").c_str());
  csv.row(strprintf("%s,%s,%zu,%.6f,%.6f,%.6f,%.6f", table.c_str(), name, found, mean_of(ratios),
                    percentile(ratios, 0.5), mx, ms));
}

}  // namespace

size_t bench_replica_scenario(const Options& o, const Scenario& sc, size_t R, size_t classes,
                              CsvOut& csv) {
  std::mt19937_64 rng(o.seed + 17 * classes);
  ReplicaStats st;
  for (size_t it = 0; it < o.instances; ++it)
    bench_replica_instance(random_instance(rng, R, o.blocks, sc, classes), st);
  const std::string kind =
      classes ? strprintf("in %zu classes of alike ranks", classes) : std::string("all distinct");
  std::printf(
      "# Replicas, scenario '%s': %zu ranks (%s), %zu blocks, %zu instances, seed %llu (%zu did "
      "not fit at all: skipped)\n",
      sc.name, R, kind.c_str(), o.blocks, o.instances, static_cast<unsigned long long>(o.seed),
      o.instances - st.planned);
  std::printf(
      "# ratio = its predicted period / the optimum's with replicas (single-pipeline: the "
      "speed-up replicas bring)\n");
  std::printf("%-16s %9s %11s %13s %10s %14s\n", "method", "fits", "mean_ratio", "median_ratio",
              "max_ratio", "time_per_plan");
  const std::string table = strprintf("replicas-%s-%zu", sc.name, classes);
  print_ratio_row("replicas", std::vector<double>(st.planned, 1.0), st.planned, st.planned,
                  st.replicas_s, table, csv);
  print_ratio_row("single-pipeline", st.speedup, st.planned, st.planned, st.single_s, table, csv);
  print_ratio_row("data-parallel", st.parallel_ratio, st.parallel_found, st.planned, NAN, table,
                  csv);
  std::printf(
      "replicas shortened the period on %zu of %zu instances; the optimum used %.1f of %zu ranks "
      "in %.1f stages on average\n\n",
      st.helped, st.planned, mean_of(st.ranks), R, mean_of(st.stages));
  return st.violations;
}

double bench_typed64_replicas(const Options& o, CsvOut& csv) {
  std::printf(
      "\n# Exact planner time with replicas (max_replicas = 0), 64 ranks of 4 types (16 each), "
      "median of %zu runs\n",
      o.repeats);
  std::printf("%-28s %7s %7s %6s %11s %8s %12s\n", "model", "blocks", "stages", "ranks",
              "period_ms", "speedup", "plan_time");
  std::vector<std::pair<std::string, ModelCosts>> cases = {
      {"resnet50-shaped (batch 1)", resnet50_shaped()}};
  for (size_t n : {50, 100, 150}) {
    std::mt19937_64 r2(o.seed + n);
    cases.push_back({"random chain", typed_instance(r2, n).model});
  }
  std::mt19937_64 r3(o.seed + 7);
  const Cluster typed = typed_instance(r3, 1).cluster;
  double resnet_s = NAN;
  for (const auto& [name, model] : cases) {
    std::vector<double> times;
    Plan p;
    try {
      for (size_t k = 0; k < o.repeats + 1; ++k) {  // the first run warms up and is not counted
        auto t0 = std::chrono::steady_clock::now();
        p = plan_optimal(model, typed, with_replicas());
        if (k > 0) times.push_back(seconds_since(t0));
      }
    } catch (const Error& e) {
      std::printf("%-28s %7zu  refused: %.90s...\n", name.c_str(), model.num_blocks(), e.what());
      csv.row(strprintf("typed64-replicas,%s,%zu,,,,", name.c_str(), model.num_blocks()));
      continue;
    }
    const double med = percentile(times, 0.5);
    if (std::isnan(resnet_s)) resnet_s = med;
    const double speedup = plan_optimal(model, typed).period_s() / p.period_s();
    std::printf("%-28s %7zu %7zu %6zu %11.3f %7.2fx %9.1f ms\n", name.c_str(), model.num_blocks(),
                p.stages.size(), p.ranks_used(), p.period_s() * 1e3, speedup, med * 1e3);
    csv.row(strprintf("typed64-replicas,%s,%zu,%zu,%zu,%.6f,%.6f", name.c_str(), model.num_blocks(),
                      p.stages.size(), p.ranks_used(), p.period_s() * 1e3, med * 1e3));
  }
  return resnet_s;
}

void bench_configs_replicas(const Options& o, CsvOut& csv) {
  const ModelCosts m = resnet50_shaped();
  std::printf(
      "\n# ResNet50-shaped chain (batch 1) with replicas on the shipped cluster descriptions: "
      "predicted period in ms (stages, ranks)\n");
  std::printf("%-24s %16s %16s %16s %9s\n", "cluster", "single-pipeline", "replicas",
              "data-parallel", "speedup");
  for (const char* name : {"cluster-8-small.ini", "cluster-mixed.ini", "cluster-too-small.ini"}) {
    const Cluster c = load_cluster(o.configs + "/" + name);
    const Plan single = plan_single_pipeline(m, c), rep = plan_optimal(m, c, with_replicas());
    std::printf("%-24s", name);
    for (const Plan& p : {single, rep, plan_data_parallel(m, c)}) {
      const std::string cell =
          p.period_s() == INFINITY
              ? std::string("no fit")
              : strprintf("%.1f (%zu, %zu)", p.period_s() * 1e3, p.stages.size(), p.ranks_used());
      std::printf(" %16s", cell.c_str());
      csv.row(strprintf("configs-replicas,%s,%s,%.6f,%zu,%zu,", name, p.method.c_str(),
                        p.period_s() * 1e3, p.stages.size(), p.ranks_used()));
    }
    std::printf(" %8.2fx\n", single.period_s() / rep.period_s());
  }
}

}  // namespace bench
}  // namespace edgepipe
