// checksum: the CRC-32 of a frame's bytes, computed in parallel for large frames.
#pragma once
#include <cstddef>
#include <cstdint>

namespace edgepipe {

// zlib's CRC-32 of n bytes, on one thread.
uint32_t crc32_serial(const char* p, size_t n);

// The same CRC-32, computed on pieces of at least 256 KiB in parallel (parallel_chunks) and
// combined with zlib's crc32_combine: the same value for any number of threads.
uint32_t crc32_of(const char* p, size_t n);

}  // namespace edgepipe
