// probe: what a run measures about its ranks and links at start-up, for the planner (issue 4,
// docs/planner.md "Measured at start-up"). Rank 0 sends every stage rank the model's blocks and
// one input batch; every stage rank builds (and optimises) them, then times every block when
// rank 0 says so: one rank per host at a time, so that a rank's times are its own and not its
// neighbours' contention. Each reports its host, usable cores and memory limit; then one pair of
// ranks per pair of hosts measures their link with a ping-pong, one pair at a time (the other
// pairs on the same hosts get its figures). This is the protocol (messages in wire/protocol.h);
// what the measurements are and how they become the planner's Cluster is plan/measured.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/plan/measured.h"
#include "edgepipe/wire/channel.h"

namespace edgepipe {

// Rank 0. `blocks` are the model's blocks as stage archives (stage.h), `input_frame` one batch
// as a frame (codec.h), `probe_bytes` the size of the large ping-pong message (the largest
// frame, capped).
StartupProfile probe_cluster(Channel& ch, const std::vector<std::string>& blocks,
                             const std::string& input_frame, int64_t probe_bytes,
                             const RunConfig& cfg, const Log& log);

// A stage rank, once it has received rank 0's kTagProbe request: profiles, answers, and takes
// part in the link probes until rank 0 says they are done.
void answer_probe(Channel& ch, const std::string& request, const RunConfig& cfg);

}  // namespace edgepipe
