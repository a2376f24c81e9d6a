// cluster_file: the parser of cluster description files (configs/cluster-*.ini; the format is in
// docs/planner.md, "Cluster description files"). Pure: no MPI, no Torch.
#pragma once
#include <string>

#include "edgepipe/plan/cluster.h"

namespace edgepipe {

// Reads a cluster description file. Throws edgepipe::ConfigError naming the file, line and key
// at fault.
Cluster load_cluster(const std::string& path);
// The same from text; `source` names it in errors.
Cluster parse_cluster(const std::string& text, const std::string& source = "<cluster>");

}  // namespace edgepipe
