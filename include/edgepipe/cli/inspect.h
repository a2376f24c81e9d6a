// inspect: print a model's nodes grouped into blocks, its cut candidates with their live tensors
// and bytes, and parameter bytes and compute time per block.
#pragma once
#include <ostream>

#include "edgepipe/cli/config.h"

namespace edgepipe {

int run_inspect(const InspectConfig& cfg, std::ostream& out);

}  // namespace edgepipe
