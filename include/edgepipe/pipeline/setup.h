// setup: rank 0's side of shipping the plan. Each stage's StageSetup (its blocks as a TorchScript
// archive, its neighbours in pipeline order, its input shapes and output codec) goes to its
// rank; ranks the plan leaves idle are told there is nothing to do, and when set-up fails, every
// rank is told so (each then exits on its own, without waiting for the others).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/model/graph.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/pipeline/planning.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/codec_spec.h"

namespace edgepipe {

// One StageSetup per stage rank of the decision (every replica of every stage), in pipeline
// order (`members`: rank 0, then each stage's replicas' ranks; `routing` their schedule).
// `prof` gives the tensors at every cut.
std::vector<StageSetup> stage_setups(const ModelGraph& mg, const ModelProfile& prof,
                                     const PlanDecision& decision, const LinkCodecs& codecs,
                                     const std::vector<int>& members, const Routing& routing);

// What one stage rank got from rank 0 at set-up.
struct ShippedStage {
  int64_t setup_bytes = 0;  // bytes of its set-up message, plus its stage's when they were sent
  bool cache_hit = false;   // its node's stage cache held the stage (stage_cache.h)
};

// Sends every idle rank of `world` "nothing to do" and every stage rank its set-up (over
// `pipeline`, the ranks in pipeline order): first each set-up without its stage's bytes (with
// their SHA-256), then, to each rank in turn, after its answer (kTagCache), the bytes if its
// stage cache did not hold them. One entry per stage rank, in pipeline order.
std::vector<ShippedStage> ship_stages(Channel& world, Channel& pipeline, const RunPlan& plan,
                                      double timeout_s);
// "stages: 3 from the nodes' caches, 0 sent (0 B)", for rank 0's log.
std::string describe_shipped(const std::vector<ShippedStage>& shipped);

// Tells every rank of `world` but rank 0 that there is no stage for it: nothing to do (the run
// is complete already) or set-up failed (rank 0 has said why).
enum class NoStage { nothing_to_do, failed, stopped };
void tell_every_rank(Channel& world, NoStage why, double timeout_s);

}  // namespace edgepipe
