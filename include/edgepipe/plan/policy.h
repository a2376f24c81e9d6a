// policy: the planning step of a run, from its measurements and options to the plan and its
// predicted period. It searches the number of stages (each with the slowdown of that many busy
// ranks per host), takes rank 0's own work on its host into account, decides the overlap, and
// calibrates the best single pipeline and the best plan with replicas by timing their stages (a
// 1-stage plan too: the whole model as one module), taking the faster. Timing is a callback:
// `edgepipe run` times them for real, and a replay of the timings a run stored (`run --profile
// LOG`, `plan --profile LOG`) makes the same measurements give the same plan and predicted period.
// Pure: no MPI, no Torch (docs/planner.md, "Inside edgepipe run").
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edgepipe/plan/measured.h"
#include "edgepipe/plan/plan.h"

namespace edgepipe {

// The options planning runs with (`edgepipe run`'s --stages, --max-stages, --group-tolerance,
// --overlap, --calibrate) and which links carry a codec.
struct PlanPolicy {
  size_t stages = 0;              // exactly this many stages (0: the planner chooses)
  size_t max_stages = 0;          // at most this many (0: one per stage rank)
  double group_tolerance = 0.05;  // PlanOptions::group_tolerance
  std::string overlap = "auto";   // compute thread beside the codec: auto, on, off
  int calibrate = 3;              // rounds of timing the planned stages and planning again
  // PlanOptions::max_replicas (`run --max-replicas`): 1 = no replicas; 0 or N > 1: a plan with
  // replicas (every stage rank busy) is taken when it is predicted faster than the best single
  // pipeline, both calibrated. Never with `stages` set.
  size_t max_replicas = 1;
  // PlanOptions::min_replicas = max_replicas = this (`run --replicas N`): every stage on exactly
  // N ranks, planned so (0: not forced).
  size_t replicas = 0;
  std::vector<int64_t> coded_links;  // numbers of the links whose codec is not raw (1..ranks)
  bool codec_on(size_t link) const;
};

// One timing made by calibration: the stages [node_bounds[s], node_bounds[s + 1]) of a plan, run
// as they will run, and the median milliseconds of each.
struct Calibration {
  std::vector<size_t> node_bounds;
  std::vector<double> stage_ms;
};

// Times the stages [node_bounds[s], node_bounds[s + 1]); returns ms per stage, or nothing when
// it cannot (a replay without that timing): the round then keeps the times it has.
using CalibrateFn = std::function<std::vector<double>(const std::vector<size_t>& node_bounds)>;

// What planning a run starts from: everything measured, as data.
struct PlanMeasurements {
  StartupProfile startup;                 // every rank and link
  ModelCosts model;                       // rank 0's profile of the model (codec_thread unset)
  double read_s = 0;                      // rank 0 reading and checking one input batch, seconds
  std::vector<size_t> block_nodes;        // node position of each cut (blocks + 1 entries)
  std::vector<Calibration> calibrations;  // the timings the planning run made
};

// What a run log's /profile holds: the measurements, the options planning ran with, and what
// they are valid for (docs/runlog.md).
struct StoredProfile {
  PlanMeasurements measurements;
  PlanPolicy policy;
  MeasuredIdentity identity;
  std::string source;  // "measured at start-up", or "from LOG" when the run used --profile
};

// The plan chosen, the ranks and model as it was planned on, and how.
struct PlanDecision {
  Plan plan;                    // stages, ranks and predicted costs (plan.period_s())
  Cluster cluster;              // ranks and links as planned: slowdowns and calibration applied
  ModelCosts model;             // the model as planned (codec_thread = overlap)
  bool overlap = false;         // stages compute on a thread beside their codec work
  size_t busy_stages = 0;       // stage ranks computing at once whose host sharing was planned for
  double dispatcher_s = 0;      // rank 0's CPU per batch: reading and checking inputs, its codec
  double dispatcher_share = 0;  // dispatcher_s / the predicted period
  std::vector<Calibration> calibrations;  // every timing calibration used, in order
  // The plans the choice was made between, each calibrated (its own stages timed) and predicted
  // with rank 0's share settled: the best plan of the stage-count search (a single pipeline, or
  // with --replicas N every stage on N ranks), and the best plan with replicas, every stage rank
  // busy (not found() when replicas were not considered, none fits, or the best had none). `plan`
  // is `replicated` when that is faster by more than 0.1%, else `pipeline`.
  Plan pipeline;
  Plan replicated;
};

// A measured job (`edgepipe run`, `plan --profile`). Throws edgepipe::Error when no plan fits.
PlanDecision decide_plan(const PlanMeasurements& measured, const PlanPolicy& policy,
                         const CalibrateFn& calibrate);

// A described cluster (`edgepipe plan --cluster`, `--ranks`): every rank its own node, rank 0
// too, so no host sharing; no calibration (the block times are this machine's, scaled by speed);
// overlap only with policy.overlap "on".
PlanDecision decide_described_plan(const ModelCosts& model, const Cluster& cluster,
                                   const PlanPolicy& policy);

// Answers with the stored timing of the same bounds, else asks `otherwise` (if given).
CalibrateFn replay_calibrations(std::vector<Calibration> stored, CalibrateFn otherwise = {});

// "replicas (both calibrated): predicted period 2.400 ms against 4.000 ms for the single
// pipeline: 1.67x faster, the plan with replicas is taken": the two plans the choice was made
// between (PlanDecision::pipeline, replicated); "" when `policy` did not consider replicas.
std::string replicas_text(const PlanDecision& decision, const PlanPolicy& policy);

// "predicted: 19.13 ms per batch, 104.53 images/s": what run and plan both print.
std::string predicted_text(double period_s, double batch);

}  // namespace edgepipe
