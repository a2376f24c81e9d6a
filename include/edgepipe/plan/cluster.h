// cluster: the ranks of a run and the links between them, as the planner sees them. The parser
// of cluster description files is in cluster_file.h. Pure: no MPI, no Torch.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "edgepipe/base/units.h"  // parse_bytes, format_bytes, ... (used with clusters everywhere)

namespace edgepipe {

// A one-way link: sending b bytes over it takes latency_s + b / bandwidth_Bps seconds.
struct Link {
  double latency_s = 0;
  double bandwidth_Bps = 0;  // bytes per second
  // Fraction of packets lost (cluster files' `loss`; tools/emulate drops them). The planner does
  // not model it: TCP retransmits, and a measured link's bandwidth already shows the loss.
  double loss = 0;
  double time_s(double bytes) const { return latency_s + bytes / bandwidth_Bps; }
};

// What the planner knows of one rank.
struct RankInfo {
  std::string name;  // label for tables ("" if none)
  double speed = 1;  // relative to the reference: a block takes ref_ms / speed here
  std::vector<double>
      block_ms;             // measured time of every block on this rank; if set, overrides speed
  double memory_bytes = 0;  // what one stage on this rank may use (weights + activations)
  // The node's CPU share in cores (cluster files' `cpu`: tools/emulate gives the node a cgroup
  // quota of that much); 0 = not said. The planner plans on speed or block_ms, not on this.
  double cpu_cores = 0;
};

// Rank 0 is the dispatcher: it runs no stage; it sends inputs to the first stage and receives
// outputs from the last. Ranks 1..R may each run one stage.
struct Cluster {
  std::vector<RankInfo> ranks;  // ranks[0] is the dispatcher (its speed, memory are unused)
  std::vector<std::vector<Link>> links;  // links[from][to], from != to; (R+1) x (R+1)
  size_t num_ranks() const { return ranks.size(); }
  size_t num_stage_ranks() const { return ranks.empty() ? 0 : ranks.size() - 1; }
  const Link& link(size_t from, size_t to) const { return links[from][to]; }
};

// `stage_ranks` identical ranks plus the dispatcher, every link alike.
Cluster uniform_cluster(size_t stage_ranks, double speed, double memory_bytes, const Link& link);

}  // namespace edgepipe
