// memory: how much memory this rank may use: --max-memory, else the node's cgroup limit if one
// is set, else its physical memory.
#pragma once
#include <cstdint>
#include <string>

namespace edgepipe {

// The node's limit: cgroup v2 memory.max or v1 memory.limit_in_bytes, else MemTotal.
int64_t node_memory_limit();

// `max_memory` ("512MiB", "2GB"; "" = node_memory_limit()) in bytes, and where it came from.
int64_t rank_memory_limit(const std::string& max_memory, std::string* source);

}  // namespace edgepipe
