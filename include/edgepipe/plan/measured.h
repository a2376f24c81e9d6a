// measured: what a run measures about its ranks and links at start-up (pipeline/probe.h takes the
// measurements), and the pure host model that turns them into the planner's Cluster: ranks that
// share a host's cores are slowed by the sharing, by the interference measured there and by rank
// 0's own work on that host. Pure: no MPI, no Torch (docs/planner.md, "Inside edgepipe run").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/plan/cluster.h"

namespace edgepipe {

// One rank as measured at start-up.
struct RankProfile {
  std::string host;
  int threads = 1;
  double cores = 1;                   // cores the rank may use (affinity, cgroup quota)
  std::vector<double> block_ms;       // median time of each block, timed alone (empty for rank 0)
  std::vector<double> block_ms_busy;  // the same while every stage rank of the job computes
  int64_t memory_limit = 0;           // what the rank may use: --max-memory, else the node's limit
  std::string memory_source;          // where memory_limit came from
  int ranks_on_host = 1;              // ranks of the job on the same host (they share its memory)
  int64_t resident_bytes = 0;         // the process's resident memory when it said hello (MPI,
                                      // LibTorch): under a node's limit, no stage can have it
  double seconds = 0;                 // time the rank spent profiling
};

// The blocks [first, end) every stage rank builds and times at start-up (pipeline/probe.h): a
// stage rank never receives the whole model. The other blocks' times on a rank are rank 0's times
// scaled by that rank's speed on these (extend_block_times).
struct ProbeWindow {
  size_t first = 0, end = 0;
  size_t size() const { return end - first; }
};

// Every rank and link of a job as measured at start-up.
struct StartupProfile {
  std::vector<RankProfile> ranks;        // by rank
  std::vector<std::vector<Link>> links;  // links[a][b], measured both ways as one round trip
  double seconds = 0;                    // the whole start-up measurement, on rank 0
  ProbeWindow window;                    // the blocks the stage ranks timed (end 0: every one)
};

// The window of consecutive blocks the stage ranks time: of those that hold at most
// max(the largest block's, 1 / stage_ranks of the model's) weights, take at most
// max(the slowest block's, 1 / stage_ranks of the model's) compute on rank 0 (`ref_ms`), and
// need at most `memory_cap` as a stage would (weights + the largest block's activations; 0: no
// cap), the one with the most compute (ties: the fewest weights). A single block always
// qualifies.
ProbeWindow choose_probe_window(const std::vector<double>& ref_ms,
                                const std::vector<int64_t>& param_bytes,
                                const std::vector<int64_t>& act_bytes, size_t stage_ranks,
                                double memory_cap = 0);

// What a window needs on a rank, counted as the planner counts a stage: its weights and its
// largest block's activations.
double window_memory(const std::vector<int64_t>& param_bytes, const std::vector<int64_t>& act_bytes,
                     ProbeWindow window);

// A rank's time of every block from its times of the window's blocks (`window_ms`): those as
// measured, the others rank 0's (`ref_ms`) times the rank's speed ratio over the window.
std::vector<double> extend_block_times(const std::vector<double>& window_ms,
                                       const std::vector<double>& ref_ms, ProbeWindow window);

// What a set of measurements is valid for: a run may plan from an earlier run's measurements
// (--profile LOG) only if these agree.
struct MeasuredIdentity {
  std::string model_sha256;
  int64_t batch = 0;
  int64_t threads = 0;
  std::vector<int64_t> input_shape;  // one sample's shape (no batch dimension)
  std::string codec;                 // the links' codecs (LinkCodecs::text())
};

// "3x224x224": a shape in the tables and messages.
std::string shape_text(const std::vector<int64_t>& shape);

// "" when `stored` describes the same job as `current`; else every field that differs, e.g.
// "model SHA-256 1a2b... (this run 3c4d...); batch 2 (this run 4)".
std::string identity_differences(const MeasuredIdentity& stored, const MeasuredIdentity& current);

// What a stage on rank p may use: --max-memory (what the rank's memory may grow by), else the
// node's limit shared among the job's ranks on it, less what the rank held when it said hello
// (its MPI and LibTorch: about 200 MiB); 0 when nothing says (no limit).
double stage_memory(const RankProfile& p);

// Stage ranks of the job on a host.
size_t stage_ranks_on(const StartupProfile& profile, const std::string& host);

// The planner's cluster: rank r's block times, slowed by host_slowdown(), and memory
// (stage_memory); the measured links.
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

// A table of the profile: rank, host, total block ms, memory, and the links, under a heading
// that says where the measurements come from ("measured at start-up (3.20 s):").
std::string describe_profile(const StartupProfile& profile,
                             const std::string& source = "measured at start-up");

}  // namespace edgepipe
