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

// The CRC-32 of a's bytes followed by b's, from their CRCs and b's length (zlib's crc32_combine).
uint32_t crc32_joined(uint32_t crc_a, uint32_t crc_b, size_t len_b);

}  // namespace edgepipe
