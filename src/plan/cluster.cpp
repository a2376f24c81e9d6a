#include "edgepipe/plan/cluster.h"

namespace edgepipe {

Cluster uniform_cluster(size_t stage_ranks, double speed, double memory_bytes, const Link& link) {
  Cluster c;
  c.ranks.resize(stage_ranks + 1);
  for (size_t r = 1; r <= stage_ranks; ++r) {
    c.ranks[r].speed = speed;
    c.ranks[r].memory_bytes = memory_bytes;
  }
  c.links.assign(stage_ranks + 1, std::vector<Link>(stage_ranks + 1, link));
  return c;
}

}  // namespace edgepipe
