#include "edgepipe/cli/plan_command.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/host.h"
#include "edgepipe/base/log.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/plan/plan_format.h"
#include "edgepipe/plan/policy.h"
#include "edgepipe/records/profile_log.h"

namespace edgepipe {

namespace {

// "ranks 1-2 fast: speed 4, 2.0 GiB; rank 3: ..." (consecutive alike ranks merged).
std::string describe_ranks(const Cluster& c) {
  std::string text;
  const size_t R = c.num_stage_ranks();
  auto alike = [&](size_t a, size_t b) {
    const RankInfo &x = c.ranks[a], &y = c.ranks[b];
    return x.name == y.name && x.speed == y.speed && x.memory_bytes == y.memory_bytes &&
           x.block_ms == y.block_ms;
  };
  for (size_t r = 1; r <= R;) {
    size_t last = r;
    while (last + 1 <= R && alike(r, last + 1)) ++last;
    const RankInfo& ri = c.ranks[r];
    text += text.empty() ? "" : "; ";
    text += last > r ? "ranks " + std::to_string(r) + "-" + std::to_string(last)
                     : "rank " + std::to_string(r);
    if (!ri.name.empty()) text += " " + ri.name;
    text +=
        ri.block_ms.empty() ? strprintf(": speed %g", ri.speed) : std::string(": block_ms given");
    text += ", " + format_bytes(ri.memory_bytes);
    r = last + 1;
  }
  return text;
}

// The chosen plan: its table, predicted period and throughput (the same line `run` prints).
void print_decision(const PlanDecision& d, int64_t batch, std::ostream& out) {
  const Plan& best = d.plan;
  out << "\n";
  out << strprintf("optimal plan (%zu stage%s, planned over %zu type%s of ranks):\n",
                   best.stages.size(), best.stages.size() == 1 ? "" : "s", best.rank_types,
                   best.rank_types == 1 ? "" : "s");
  out << format_plan(best, d.model, d.cluster);
  out << strprintf("throughput: %.3f samples/s (batch %lld / period %.3f ms)\n",
                   best.throughput(static_cast<double>(batch)), static_cast<long long>(batch),
                   best.period_s() * 1e3);
  out << predicted_text(best.period_s(), static_cast<double>(batch)) << "\n";
}

// Each baseline's period on the same model and cluster, against the optimum.
void print_baselines(const PlanDecision& d, const PlanOptions& options, std::ostream& out) {
  const double period = d.plan.period_s();
  out << "\nbaselines (same cost model; ratio = their period / the optimal period):\n";
  using Planner = std::function<Plan(const ModelCosts&, const Cluster&, const PlanOptions&)>;
  const std::vector<std::pair<const char*, Planner>> planners = {
      {"random", plan_random},
      {"greedy", plan_greedy},
      {"equal-blocks", plan_equal_blocks},
      {"pipeedge", plan_pipeedge},
  };
  for (const auto& [name, planner] : planners) {
    Plan p;
    std::string failure;
    try {
      p = planner(d.model, d.cluster, options);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      out << strprintf("  %-13s no plan: %s\n", name, failure.c_str());
    } else if (!p.found()) {
      out << strprintf("  %-13s no plan: %s\n", name, p.note.c_str());
    } else if (!p.cost.fits) {
      out << strprintf("  %-13s its plan does not fit in memory\n", name);
    } else {
      std::string ranks;
      for (const Stage& s : p.stages) ranks += (ranks.empty() ? "" : ",") + std::to_string(s.rank);
      out << strprintf("  %-13s period %10.3f ms  %7.2fx  %zu stage%s on rank%s %s\n", name,
                       p.period_s() * 1e3, p.period_s() / period, p.stages.size(),
                       p.stages.size() == 1 ? "" : "s", p.stages.size() == 1 ? "" : "s",
                       ranks.c_str());
    }
  }
}

// The plan with replicas beside the best single pipeline (--max-replicas; 1 = none). `run` takes
// the plan with replicas when it is predicted faster (same option, same meaning).
void print_replicas(const PlanDecision& d, PlanOptions options, size_t max_replicas,
                    std::ostream& out) {
  if (max_replicas == 1) {
    out << "\nreplicas: none (--max-replicas 1)\n";
    return;
  }
  options.max_replicas = max_replicas;
  out << "\n";
  try {
    out << format_replica_comparison(d.model, d.cluster, options);
  } catch (const Error& e) {
    out << "replicas: no plan: " << e.what() << "\n";
  }
  out << "(edgepipe run --max-replicas " << max_replicas
      << " runs the plan with replicas when it is predicted faster than the one above)\n";
}

// `plan --profile LOG`: the planning step of `run` on the measurements, options and calibration
// timings that run stored, so that it predicts the period that run predicted.
int plan_from_profile(const PlanCommandConfig& cfg, std::ostream& out) {
  const StoredProfile stored = read_stored_profile(cfg.profile);
  const MeasuredIdentity& id = stored.identity;
  if (!cfg.model.empty())
    EP_CHECK_AS(ConfigError, sha256_file(cfg.model) == id.model_sha256, "--profile ", cfg.profile,
                " was measured for another model than ", cfg.model, " (SHA-256 ", id.model_sha256,
                ")");
  out << "profile " << cfg.profile << " (" << stored.source << "): batch " << id.batch << ", "
      << id.threads << " thread" << (id.threads == 1 ? "" : "s") << ", input "
      << shape_text(id.input_shape) << ", codec " << id.codec << "; "
      << stored.measurements.calibrations.size() << " calibration timings\n";
  out << describe_profile(stored.measurements.startup,
                          "measured at the start-up of the run of " + cfg.profile);
  PlanDecision d;
  try {
    d = decide_plan(stored.measurements, stored.policy,
                    replay_calibrations(stored.measurements.calibrations));
  } catch (const Error& e) {
    EP_FAIL("no plan from the profile in ", cfg.profile, ": ", e.what());
  }
  out << strprintf("rank 0's own work per batch: %.2f ms, %.0f%% of a core at the planned period\n",
                   1e3 * d.dispatcher_s, 100 * d.dispatcher_share);
  print_decision(d, id.batch, out);
  // The plans the run chose between, each with its calibration (replayed here).
  const std::string replicas = replicas_text(d, stored.policy);
  if (!replicas.empty()) out << "\n" << replicas << "\n";
  // The baselines plan on one cluster, but here a stage's speed depends on how many stages share
  // its host: on the cluster of the chosen plan they would look faster than they are.
  if (cfg.baselines)
    out << "\nbaselines: not with --profile (they do not model the ranks sharing a host)\n";
  return 0;
}

}  // namespace

Cluster plan_command_cluster(const PlanCommandConfig& cfg) {
  if (!cfg.cluster.empty()) {
    EP_CHECK(std::filesystem::is_regular_file(cfg.cluster), "cluster description file '",
             cfg.cluster, "' does not exist (or is not a file)");
    return load_cluster(cfg.cluster);  // errors name the file, the line and the key
  }
  std::string source;
  const double memory = static_cast<double>(rank_memory_limit(cfg.max_memory, &source));
  EP_CHECK(memory > 0, "cannot tell this node's memory: pass --max-memory");
  Link link;
  link.bandwidth_Bps = parse_bandwidth(cfg.bandwidth);
  link.latency_s = parse_duration(cfg.latency);
  Cluster c = uniform_cluster(static_cast<size_t>(cfg.ranks), 1.0, memory, link);
  for (size_t r = 1; r < c.ranks.size(); ++r) c.ranks[r].name = "local";
  return c;
}

int run_plan_command(const PlanCommandConfig& cfg, std::ostream& out) {
  if (!cfg.profile.empty()) return plan_from_profile(cfg, out);
  // The cluster first: a bad description fails before the (slower) profile.
  const std::string cluster_name = cfg.cluster.empty() ? std::to_string(cfg.ranks) + " rank" +
                                                             (cfg.ranks == 1 ? "" : "s") +
                                                             " like this machine (--ranks)"
                                                       : cfg.cluster;
  const Cluster cluster = plan_command_cluster(cfg);

  ModelGraph mg = load_model_graph(cfg.model);
  std::vector<int64_t> shape = cfg.input_shape.empty() ? mg.input_shape : cfg.input_shape;
  EP_CHECK(!shape.empty(), "the model file ", cfg.model,
           " does not record its input shape: "
           "pass --input-shape, e.g. 1,3,224,224");
  shape[0] = cfg.batch;
  // Random inputs (not zeros): codecs compress zeros far better than real activations.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor input = at::randn(shape, gen);

  ProfileOptions popt;
  popt.optimize = cfg.optimize;
  popt.codecs = {cfg.codec};
  const ModelProfile prof = profile_model(mg, input, popt);
  const ModelCosts costs = model_costs(prof);

  const size_t n = costs.num_blocks();
  double weights = 0, peak_act = 0, total_ms = 0;
  for (const BlockCost& b : costs.blocks) {
    weights += b.param_bytes;
    peak_act = std::max(peak_act, b.act_bytes);
    total_ms += b.ref_ms;
  }
  out << "model " << cfg.model << ": " << n << " blocks, " << format_bytes(weights)
      << " of weights, peak activations " << format_bytes(peak_act) << "; batch "
      << shape_text(shape) << ", " << cfg.threads << " thread" << (cfg.threads == 1 ? "" : "s")
      << ", optimize " << (cfg.optimize ? "on" : "off") << ", codec " << cfg.codec.name() << "\n";
  out << strprintf(
      "profiled on this machine: %.3f ms per batch for all blocks (median of %d runs); "
      "input %s, output %s per batch on the links\n",
      total_ms, popt.reps, format_bytes(costs.cut_bytes[0]).c_str(),
      format_bytes(costs.cut_bytes[n]).c_str());
  out << "cluster " << cluster_name << ": " << cluster.num_stage_ranks()
      << " stage ranks + dispatcher (rank 0); " << describe_ranks(cluster) << "\n";
  out << "speeds are relative to this machine: a block takes (its time measured here) / speed "
         "on a rank (block_ms in the file replace it); memory is what one stage may use "
         "(its weights + its largest peak activation)\n";

  try {
    validate_problem(costs, cluster);
  } catch (const Error& e) {
    EP_FAIL("cluster ", cluster_name, " does not suit model ", cfg.model, ": ", e.what());
  }
  // The planning step of `run` on the described cluster: every rank its own node, so no host
  // sharing; no calibration (the blocks were timed here, scaled by speed); no overlap.
  PlanPolicy policy;
  policy.max_stages = cfg.max_stages;
  policy.group_tolerance = cfg.group_tolerance;
  policy.overlap = "off";
  policy.calibrate = 0;
  PlanDecision d;
  try {
    d = decide_described_plan(costs, cluster, policy);
  } catch (const Error& e) {
    EP_FAIL("no plan for ", cfg.model, " on cluster ", cluster_name, ": ", e.what());
  }
  print_decision(d, cfg.batch, out);
  PlanOptions options;
  options.max_stages = cfg.max_stages;
  options.group_tolerance = cfg.group_tolerance;
  print_replicas(d, options, cfg.max_replicas, out);
  if (cfg.baselines) print_baselines(d, options, out);
  return 0;
}

}  // namespace edgepipe
