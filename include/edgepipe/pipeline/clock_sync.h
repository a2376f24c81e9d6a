// clock_sync: aligning every rank's steady clock with rank 0's at start-up (after the stages are
// loaded, before the stream), for the run log's timestamps. Rank 0 exchanges kClockRounds
// ping-pongs with every other rank in turn; the one with the smallest round trip gives that
// rank's offset (its clock minus rank 0's, error at most half that round trip). The pings also
// carry the number of batches to come, so that a stage rank can reserve its trace.
#pragma once
#include <cstdint>

#include "edgepipe/records/trace.h"
#include "edgepipe/wire/channel.h"

namespace edgepipe {

constexpr int kClockRounds = 8;

// Rank 0's side: the offsets of every rank of `ch`.
ClockSync sync_clocks_root(Channel& ch, int64_t batches, double timeout_s);
// A stage rank's side; returns the number of batches rank 0 announced.
int64_t sync_clocks_worker(Channel& ch, double timeout_s);

}  // namespace edgepipe
