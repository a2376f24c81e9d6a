// dispatcher: rank 0. Set-up (cut the model, profile, plan, ship stages), then feed inputs to the
// first stage and write the last stage's outputs in input order.
#pragma once
#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/wire/channel.h"

namespace edgepipe {

// Runs rank 0's part of `edgepipe run`; returns the process exit code.
int run_dispatcher(const RunConfig& cfg, Channel& ch, const Log& log);

}  // namespace edgepipe
