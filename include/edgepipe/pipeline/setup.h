// setup: rank 0's side of shipping the plan. Each stage's StageSetup (its blocks as a TorchScript
// archive, its neighbours in pipeline order, its input shapes and output codec) goes to its
// rank; ranks the plan leaves idle are told there is nothing to do, and when set-up fails, every
// rank is told so (each then exits on its own, without waiting for the others).
#pragma once
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

// Sends every idle rank of `world` "nothing to do" and every stage its set-up (over `pipeline`,
// the ranks in pipeline order).
void ship_stages(Channel& world, Channel& pipeline, const RunPlan& plan, double timeout_s);

// Tells every rank of `world` but rank 0 that there is no stage for it: nothing to do (the run
// is complete already) or set-up failed (rank 0 has said why).
enum class NoStage { nothing_to_do, failed, stopped };
void tell_every_rank(Channel& world, NoStage why, double timeout_s);

}  // namespace edgepipe
