// quant: the stream format of the quantising tensor methods (q8, q4, q2), which code a float or
// double tensor's values in blocks, each between its own minimum and maximum (q8) or its own
// range chosen by measured error (q4, q2).
#pragma once
#include <cstdint>

namespace edgepipe {

// A quantising method's stream, for a float or double tensor's n values in memory order, in
// blocks of kQuantBlock (the last one shorter), at B bits per value (q8: 8, q4: 4, q2: 2): per
// block, its base `lo` and `scale` as float32 (scale 0 when all its values are equal; at least
// FLT_MIN otherwise, so that 1 / scale is finite), and per value a code q in [0, 2^B - 1], which
// decodes to lo + q * scale in the tensor's dtype. The stream is the blocks' (lo, scale) pairs,
// then the codes packed: value i of the tensor in byte i * B / 8, at bit (i mod (8 / B)) * B
// (low bits first; the last byte's unused bits are 0). quant_stream_bytes(n, B) bytes.
//
// q8: lo is the block's minimum and scale = (max - lo) / 255; q = round((x - lo) / scale), so
// |x' - x| <= scale / 2 (plus float rounding): about a quarter of float32's bytes.
// q4, q2: the block's range [lo, hi] is its [minimum, maximum], or that range clipped to
// mean +- k std of the block (k from a short list per bit width, method_quant.cpp) where that gives
// a smaller squared error, measured on the block's own values; scale = (hi - lo) / (2^B - 1) and q
// = round((x - lo) / scale) clamped to the codes: values outside the clipped range decode to its
// ends. An eighth (q4) or a sixteenth (q2) of float32's bytes, plus 8 bytes per block.
constexpr uint64_t kQuantBlock = 4096;
constexpr uint64_t kQ8Block = kQuantBlock;
constexpr uint64_t quant_blocks_of(uint64_t values) {
  return (values + kQuantBlock - 1) / kQuantBlock;
}
constexpr uint64_t quant_stream_bytes(uint64_t values, unsigned bits) {
  return quant_blocks_of(values) * 2 * sizeof(float) + (values * bits + 7) / 8;
}
constexpr uint64_t q8_stream_bytes(uint64_t values) { return quant_stream_bytes(values, 8); }

}  // namespace edgepipe
