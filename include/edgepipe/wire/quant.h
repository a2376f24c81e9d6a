// quant: the stream format of the quantising tensor methods (q8), which code a float or double
// tensor's values in blocks, each between its own minimum and maximum.
#pragma once
#include <cstdint>

namespace edgepipe {

// q8: a float or double tensor's n values, in memory order, in blocks of kQ8Block (the last one
// shorter). Per block, its minimum `lo` and `scale` = (max - lo) / 255 as float32 (0 when all
// its values are equal; at least FLT_MIN otherwise, so that 1 / scale is finite), and per value
// the byte q = round((x - lo) / scale), which decodes to lo + q * scale in the tensor's dtype:
// |x' - x| <= scale / 2 (plus float rounding). The stream is the blocks' (lo, scale) pairs, then
// the n bytes: q8_stream_bytes(n) bytes, about a quarter of float32 (an eighth of float64).
constexpr uint64_t kQ8Block = 4096;
constexpr uint64_t q8_stream_bytes(uint64_t values) {
  return (values + kQ8Block - 1) / kQ8Block * 2 * sizeof(float) + values;
}

}  // namespace edgepipe
