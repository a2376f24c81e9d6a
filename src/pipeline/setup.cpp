#include "edgepipe/pipeline/setup.h"

#include <algorithm>

#include "edgepipe/model/stage.h"
#include "edgepipe/wire/chunked.h"

namespace edgepipe {

std::vector<StageSetup> stage_setups(const ModelGraph& mg, const ModelProfile& prof,
                                     const PlanDecision& decision, const LinkCodecs& codecs,
                                     const std::vector<int>& members, const Routing& routing) {
  std::vector<StageSetup> setups;
  const int num_stages = static_cast<int>(decision.plan.stages.size());
  std::vector<int32_t> route_replicas, route_ranks, route_weights;
  routing.flatten(&route_replicas, &route_ranks, &route_weights);
  for (int s = 0; s < num_stages; ++s) {
    const size_t b0 = decision.plan.stages[s].first, b1 = decision.plan.stages[s].end;
    StageSetup setup;
    setup.stage = s;
    setup.num_stages = num_stages;
    // Without replicas: stage s is pipeline rank s + 1 (with them the routes say).
    setup.prev = s > 0 ? routing.ranks(s - 1).front() : 0;
    setup.next = s + 1 < num_stages ? routing.ranks(s + 1).front() : 0;
    setup.inputs = prof.cut_metas[b0];
    setup.max_in_bytes = frame_bound(prof.cut_metas[b0]);
    setup.out_codec = codecs.for_link(s + 2);  // links count in pipeline order
    setup.overlap = decision.overlap;
    setup.members = std::vector<int32_t>(members.begin(), members.end());
    setup.route_replicas = route_replicas;
    setup.route_ranks = route_ranks;
    setup.route_weights = route_weights;
    setup.module_bytes = save_module_bytes(build_stage_module(mg, mg.cuts[b0], mg.cuts[b1]));
    for (size_t r = 0; r < routing.ranks(s).size(); ++r) {
      setup.replica = static_cast<int>(r);
      setups.push_back(setup);
    }
  }
  return setups;
}

void ship_stages(Channel& world, Channel& pipeline, const RunPlan& plan, double timeout_s) {
  StageSetup idle;
  idle.ok = false;
  idle.nothing_to_do = true;
  for (int rank = 1; rank < world.size(); ++rank)
    if (std::find(plan.members.begin(), plan.members.end(), rank) == plan.members.end())
      send_chunked(world, rank, kTagSetup, idle.to_bytes(), timeout_s);
  for (size_t s = 0; s < plan.setups.size(); ++s)
    send_chunked(pipeline, static_cast<int>(s + 1), kTagSetup, plan.setups[s].to_bytes(),
                 timeout_s);
}

void tell_every_rank(Channel& world, NoStage why, double timeout_s) {
  StageSetup none;
  none.ok = false;
  none.nothing_to_do = why == NoStage::nothing_to_do;
  none.stopped = why == NoStage::stopped;
  for (int rank = 1; rank < world.size(); ++rank)
    send_chunked(world, rank, kTagSetup, none.to_bytes(), timeout_s);
}

}  // namespace edgepipe
