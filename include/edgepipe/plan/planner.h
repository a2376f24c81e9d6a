// planner: what every planner is asked (PlanOptions) and what it answers (Plan). The planners:
// exact_planner.h (the optimum), baselines.h, brute_force.h. Pure: no MPI, no Torch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/plan/cost_model.h"

namespace edgepipe {

// A plan and what it costs. Methods that find nothing return no stages and say why in `note`.
struct Plan {
  // "optimal", "brute-force", "random", "greedy", "equal-blocks", "pipeedge", "single-pipeline",
  // "data-parallel"
  std::string method;
  std::vector<Stage> stages;
  PlanCost cost;
  std::string note;
  size_t rank_types = 0;  // "optimal" / "pipeedge": types of interchangeable ranks it planned over
  bool found() const { return !stages.empty(); }
  // Ranks that run a stage (replicas included); the others stay idle.
  size_t ranks_used() const;
  // Predicted period in seconds; infinity if nothing was found or a stage does not fit.
  double period_s() const;
  // Samples per second at `batch` samples per batch.
  double throughput(double batch) const { return batch / period_s(); }
};

struct PlanOptions {
  size_t max_stages = 0;  // 0: up to one stage per stage rank
  // At least this many stages (0 or 1: no minimum); `edgepipe run --stages N` sets both bounds
  // to N. Honoured exactly by plan_optimal and plan_pipeedge (the optimum over plans of
  // min_stages..max_stages stages, even when fewer would be faster), by plan_random (draws its
  // number of stages in that range) and by plan_equal_blocks (always the most stages allowed).
  // plan_greedy ignores it: it may return fewer. Those that honour it throw edgepipe::Error if
  // it exceeds max_stages (when nonzero), the stage ranks or the model's blocks.
  size_t min_stages = 0;
  // Ranks whose block times, memory and links agree within this relative tolerance are planned
  // as one type, with the type's worst values (slowest block, least memory, slowest link), so that
  // a plan stays feasible and its true period is at most the one planned. 0 = only identical ranks:
  // the plan is then exact. Measured profiles of alike nodes differ by noise: use e.g. 0.05.
  // Negative: no grouping at all (every rank its own type; for tests).
  double group_tolerance = 0;
  // Ranks per stage (docs/planner.md, "Replicas"): at most max_replicas ranks run each stage's
  // blocks, each taking whichever batch is ready (0: as many as the exact planner finds best;
  // 1: none, every stage on one rank). Only plan_optimal plans replicas. 1 by default, and in
  // `edgepipe run`, until the runtime routes batches to replicas.
  size_t max_replicas = 1;
  // At least this many ranks per stage (0 or 1: no minimum): with min_replicas = max_replicas = N,
  // every stage has N replicas (N pipelines side by side when every stage's replicas are alike).
  // plan_optimal throws edgepipe::Error if it exceeds max_replicas (when nonzero) or the ranks.
  size_t min_replicas = 0;
  // The exact planner refuses (edgepipe::Error) instances whose tables would exceed this.
  double max_table_bytes = 1024.0 * 1024 * 1024;
  uint64_t seed = 1;          // "random"
  size_t random_tries = 100;  // "random": draws until one fits in memory
};

}  // namespace edgepipe
