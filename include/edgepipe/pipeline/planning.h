// planning: rank 0 decides the run's plan. It profiles the model on the first input batch
// (shapes, memory, codec costs), measures every rank and link (probe.h) or takes an earlier
// run's measurements (--profile LOG, refused if they were made for another model, batch, thread
// count, input shape or codec), and gives them to the planning step (plan/policy.h), which
// times candidate stages on rank 0 through a callback; then builds each stage's set-up.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/io/data.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/pipeline/routing.h"
#include "edgepipe/plan/codec_choice.h"
#include "edgepipe/plan/policy.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

// Everything set-up decides, kept for the run, its log and the outputs file's attributes.
struct RunPlan {
  StoredProfile profile;              // what the plan was made from (the log's /profile)
  PlanDecision decision;              // the planner's stages, ranks and predicted costs
  std::vector<int> members;           // rank 0, then each stage's replicas' ranks (RemappedChannel)
  std::vector<int> member_stage;      // the stage of each pipeline rank (-1 for rank 0)
  Routing routing;                    // which replica computes which batch (routing.h)
  std::vector<int64_t> node_cuts;     // node positions where the model is cut
  std::vector<StageSetup> setups;     // one per stage rank (replicas too), in pipeline order
  uint64_t max_out_bytes = 0;         // largest frame rank 0 receives
  uint64_t max_out_tensor_bytes = 0;  // the most tensor bytes such a frame decodes to
  LinkCodecs codecs;                  // each link's codec: --codec's, or --error-budget's choice
  ErrorBudgetReport budget;           // what --error-budget chose and measured (off: budget 0)
  size_t num_stages() const { return routing.num_stages(); }
  size_t num_stage_ranks() const { return setups.size(); }
};

// Before any full batch is built: refuses at once, naming the memory limit (--max-memory, else
// the node's) and what is needed, a batch that cannot fit it: one input batch larger than the
// limit, or activations larger than it, estimated from one row profiled under the limit
// (MemoryBudget, model/profile.h) times the batch. The full batch's profile is then run under
// the limit too (plan_run), and so is every stage rank's timing (probe.h).
void check_batch_memory(const ModelGraph& mg, const InputSource& in, const RunConfig& cfg);

// The planning options of `cfg` for a job of `ranks` ranks.
PlanPolicy policy_of(const RunConfig& cfg, int ranks);

// Rank 0's part of set-up up to the plan. `read_s`: what reading and checking one input batch
// costs rank 0; `identity`: what this run's measurements are valid for. Ranks the plan leaves
// out get nothing to do (setup.h).
// With --error-budget, `calibration` holds the input batches the codecs' errors are measured on
// (--calibration-rows rows); rank 0 then chooses every link's codec (RunPlan::codecs, budget).
RunPlan plan_run(const ModelGraph& mg, const RunConfig& cfg, const at::Tensor& input, double read_s,
                 const MeasuredIdentity& identity, Channel& ch, const Log& log,
                 const std::vector<at::Tensor>& calibration = {});

// The start-up table, the plan's table and the predicted period, for rank 0's log.
std::string describe_plan(const ModelGraph& mg, const RunPlan& plan, const RunConfig& cfg);

}  // namespace edgepipe
