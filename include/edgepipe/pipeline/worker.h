// worker: ranks 1..N. Take part in the start-up measurements, receive a stage, load it, then run
// its loop (stage_loop.h) until the end of the stream and send rank 0 the counters and records.
#pragma once
#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/wire/channel.h"

namespace edgepipe {

// Runs one stage rank until the end frame; returns the process exit code. Errors during the
// steady state abort the whole job (the error is printed first, with the rank), and so does a
// wait for rank 0 that times out (a rank that does not answer cannot be waited for at exit).
int run_worker(const RunConfig& cfg, Channel& ch, const Log& log);

}  // namespace edgepipe
