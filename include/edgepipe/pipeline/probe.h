// probe: what a run measures about its ranks and links at start-up, for the planner (issue 4,
// docs/planner.md "Measured at start-up"). Rank 0 sends every stage rank a window of the
// model's blocks (a bounded part of the model, plan/measured.h) and their input batch; every
// stage rank builds (and optimises) them, then times them when rank 0 says so: one rank per host at
// a time, so that a rank's times are its own and not its neighbours' contention. Each reports its
// host, usable cores and memory limit; then one pair of ranks per pair of hosts measures their link
// with a ping-pong, one pair at a time (the other pairs on the same hosts get its figures). This is
// the protocol (messages in wire/protocol.h); what the measurements are and how they become the
// planner's Cluster is plan/measured.h.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/plan/measured.h"
#include "edgepipe/wire/channel.h"

namespace edgepipe {

// What every stage rank receives to measure its speed: the probe window's blocks, never the
// whole model (plan/measured.h choose_probe_window).
struct ProbeSample {
  ProbeWindow window;
  std::vector<std::string> blocks;  // the window's blocks as stage archives (stage.h)
  std::string input_frame;          // the batch the window's first block takes, as a frame
  std::vector<double> ref_ms;       // rank 0's time of every block of the model
  double window_share = 0;          // the window's share of rank 0's compute
  double memory_need = 0;           // what the window needs on a rank, as a stage (window_memory)
  std::string need_text;            // what memory_need is made of, for the error
};

// Makes the sample for the stage ranks, its window within `memory_cap` (the least any stage
// rank may use for a stage, stage_memory; 0: no limit) where more than one block fits.
using SampleFn = std::function<ProbeSample(double memory_cap)>;

// Rank 0: every stage rank says where it is and what memory it may use; the window is chosen to
// fit them all, and a rank that cannot hold even that stops the run with an error naming it,
// before anything large is sent. Then the window goes to every stage rank, the ranks time it,
// and each rank's times of the other blocks are extrapolated (extend_block_times).
// `probe_bytes`: the size of the large ping-pong message (the largest frame, capped).
StartupProfile probe_cluster(Channel& ch, const SampleFn& make_sample, int64_t probe_bytes,
                             const RunConfig& cfg, const Log& log);

// A stage rank, once it has received rank 0's hello (kTagProbe): says where it is, then builds
// and times the blocks it is sent, answers, and takes part in the link probes until rank 0 says
// they are done. Returns early if rank 0 sends its set-up message instead (it failed). Returns
// the size of the blocks' request it received (0: none).
size_t answer_probe(Channel& ch, const std::string& hello, const RunConfig& cfg);

}  // namespace edgepipe
