#include "edgepipe/pipeline/setup.h"

#include <algorithm>

#include "edgepipe/base/hash.h"
#include "edgepipe/base/units.h"
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
    setup.module_sha256 = sha256_bytes(setup.module_bytes);
    setup.module_size = setup.module_bytes.size();
    for (size_t r = 0; r < routing.ranks(s).size(); ++r) {
      setup.replica = static_cast<int>(r);
      setups.push_back(setup);
    }
  }
  return setups;
}

std::vector<ShippedStage> ship_stages(Channel& world, Channel& pipeline, const RunPlan& plan,
                                      double timeout_s) {
  StageSetup idle;
  idle.ok = false;
  idle.nothing_to_do = true;
  for (int rank = 1; rank < world.size(); ++rank)
    if (std::find(plan.members.begin(), plan.members.end(), rank) == plan.members.end())
      send_chunked(world, rank, kTagSetup, idle.to_bytes(), timeout_s);
  std::vector<ShippedStage> shipped(plan.setups.size());
  // Every rank looks its stage up at once; then each gets its bytes if it must.
  for (size_t s = 0; s < plan.setups.size(); ++s) {
    StageSetup head = plan.setups[s];
    head.module_bytes.clear();
    const std::string bytes = head.to_bytes();
    send_chunked(pipeline, static_cast<int>(s + 1), kTagSetup, bytes, timeout_s);
    shipped[s].setup_bytes = static_cast<int64_t>(bytes.size());
  }
  for (size_t s = 0; s < plan.setups.size(); ++s) {
    const int rank = static_cast<int>(s + 1);
    shipped[s].cache_hit =
        stage_cache_answer_from_bytes(recv_bytes(pipeline, rank, kTagCache, timeout_s,
                                                 "rank " + std::to_string(plan.members.at(s + 1)) +
                                                     " to look its stage up in its stage cache"));
    if (shipped[s].cache_hit) continue;
    send_chunked(pipeline, rank, kTagSetup, plan.setups[s].module_bytes, timeout_s);
    shipped[s].setup_bytes += static_cast<int64_t>(plan.setups[s].module_bytes.size());
  }
  return shipped;
}

std::string describe_shipped(const std::vector<ShippedStage>& shipped) {
  size_t hits = 0;
  double sent = 0;
  for (const ShippedStage& s : shipped) {
    hits += s.cache_hit ? 1 : 0;
    sent += static_cast<double>(s.setup_bytes);
  }
  return "stages: " + std::to_string(hits) + " from the nodes' caches, " +
         std::to_string(shipped.size() - hits) + " sent (" + format_bytes(sent) +
         " of set-up in all)";
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
