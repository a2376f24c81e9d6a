// probe: what a run measures about its ranks and links at start-up, for the planner (issue 4,
// docs/planner.md "Measured at start-up"). Rank 0 sends every stage rank the model's blocks and
// one input batch; every stage rank builds (and optimises) them, then times every block when
// rank 0 says so: one rank per host at a time, so that a rank's times are its own and not its
// neighbours' contention. Each reports its host, usable cores and memory limit; then one pair of
// ranks per pair of hosts measures their link with a ping-pong, one pair at a time (the other
// pairs on the same hosts get its figures). The result becomes the
// planner's Cluster, in which ranks that share a host's cores are slowed by the sharing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/plan/cluster.h"
#include "edgepipe/wire/channel.h"

namespace edgepipe {

struct RankProfile {
  std::string host;
  int threads = 1;
  double cores = 1;                   // cores the rank may use (affinity, cgroup quota)
  std::vector<double> block_ms;       // median time of each block, timed alone (empty for rank 0)
  std::vector<double> block_ms_busy;  // the same while every stage rank of the job computes
  int64_t memory_limit = 0;           // what the rank may use: --max-memory, else the node's limit
  std::string memory_source;          // where memory_limit came from
  int ranks_on_host = 1;              // ranks of the job on the same host (they share its memory)
  double seconds = 0;                 // time the rank spent profiling
};

struct StartupProfile {
  std::vector<RankProfile> ranks;        // by rank
  std::vector<std::vector<Link>> links;  // links[a][b], measured both ways as one round trip
  double seconds = 0;                    // the whole start-up measurement, on rank 0
};

// Rank 0. `blocks` are the model's blocks as stage archives (stage.h), `input_frame` one batch
// as a frame (codec.h), `probe_bytes` the size of the large ping-pong message (the largest
// frame, capped).
StartupProfile probe_cluster(Channel& ch, const std::vector<std::string>& blocks,
                             const std::string& input_frame, int64_t probe_bytes,
                             const RunConfig& cfg, const Log& log);

// A stage rank, once it has received rank 0's kTagProbe request: profiles, answers, and takes
// part in the link probes until rank 0 says they are done.
void answer_probe(Channel& ch, const std::string& request, const RunConfig& cfg);

// The planner's cluster: rank r's block times, slowed by share_of_host(), and memory (the
// node's limit shared among the ranks on it, unless --max-memory says what each rank may use);
// the measured links.
// `busy_per_host`: how many stage ranks compute at once on a host (0: all of its stage ranks);
// `dispatcher_cores`: the cores rank 0 keeps busy on its host (host_slowdown).
Cluster cluster_of(const StartupProfile& profile, size_t busy_per_host = 0,
                   double dispatcher_cores = 0);

// How much slower than alone rank r computes while `busy` stage ranks on its host compute
// (0: all of them): max(1, busy ranks x threads / the host's cores), times the interference
// measured on the host when as many of its stage ranks as its cores hold computed at once (shared
// caches, memory bandwidth, sibling hyperthreads; not applied when busy is 1), times 1 / (1 - x)
// for the share x of a stage rank's core that rank 0's work takes if rank 0 is on this host
// (its CPU beyond the spare cores; spread over the cores if the ranks time-slice anyway).
// `dispatcher_cores`: rank 0's CPU seconds per batch / the period.
double host_slowdown(const StartupProfile& profile, size_t rank, size_t busy = 0,
                     double dispatcher_cores = 0);

// Whether every stage rank has 2 x its threads of cores to itself while `busy_per_host` stage
// ranks compute on each host (0: all of them), and rank 0 its threads too on its host if it has
// codec work (`dispatcher_codec`: a codec on its links): then a compute thread beside the codec
// work (--overlap auto) takes nothing from another rank's cores.
bool cores_for_overlap(const StartupProfile& profile, size_t busy_per_host, bool dispatcher_codec);

// A table of the profile: rank, host, total block ms, memory, and the links.
std::string describe_profile(const StartupProfile& profile);

}  // namespace edgepipe
