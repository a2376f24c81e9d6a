// single: the whole model in one process, frozen and optimised as the stages are. The baseline
// every pipeline must beat, and the reference its outputs are checked against.
#pragma once
#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"

namespace edgepipe {

// Runs `edgepipe single`; returns the exit code.
int run_single(const RunConfig& cfg, const Log& log);

}  // namespace edgepipe
