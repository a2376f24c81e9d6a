// zfp_field: how a tensor's shape becomes the field zfp codes, and how that field is cut into
// chunks coded independently (in parallel). Both depend on the shape alone, so a frame is the
// same on any number of threads and its decoder derives the same layout from the frame.
#pragma once
#include <c10/util/ArrayRef.h>

#include <cstddef>
#include <cstdint>

namespace edgepipe {

// The field zfp sees for a tensor of this shape: dims 1..max_dims, n[0] fastest-varying. Axes of
// size 1 are dropped, axes shorter than a zfp block (4) are merged into a neighbour, and leading
// axes are merged so that at most max_dims remain: an NxCxHxW activation is the 3-D field
// W x H x (N*C), or (H*W) x (N*C) when that pads partial blocks much less (14x14, 7x7 maps), and
// with max_dims 2 the 2-D field W x (N*C*H). The encoder uses 3 for zfp's rate, precision and
// reversible modes and 2 for its accuracy modes (measured: docs/codecs.md).
struct ZfpField {
  int dims = 1;
  uint64_t n[3] = {1, 1, 1};
};
ZfpField zfp_field_of(c10::IntArrayRef shape, int max_dims = 3);

// zfp chunks: a field is cut along its slowest axis into `count` slabs of `layers` layers of
// zfp blocks each (4 rows of that axis per layer; the last slab takes the rest), each its own zfp
// stream. zfp_chunks_of chooses them for about `chunk_bytes` of values each (at most
// kMaxZfpChunks, at least one layer); 0 chooses the default, kZfpChunkBytes.
constexpr size_t kZfpChunkBytes = size_t(128) << 10;
constexpr uint32_t kMaxZfpChunks = 256;
struct ZfpChunks {
  uint32_t count = 1;
  uint64_t layers = 1;  // layers of blocks per chunk
};
ZfpChunks zfp_chunks_of(const ZfpField& field, size_t value_bytes, size_t chunk_bytes = 0);

// The layers of zfp blocks along the field's slowest axis (what chunks are cut from).
uint64_t zfp_layers_of(const ZfpField& f);

// The chunks a frame's count makes: `count` slabs of ceil(layers / count) layers, the last one
// taking the rest. A count is valid when every slab gets at least one layer: the decoder derives
// the layout from the count alone, so the encoder only ever writes valid counts.
bool zfp_chunk_count_ok(uint64_t layers, uint64_t count, ZfpChunks* c);

// Chunk k of field f: its own field, and the index of its first value in the tensor.
ZfpField zfp_chunk_field(const ZfpField& f, const ZfpChunks& c, uint32_t k, uint64_t* first);

}  // namespace edgepipe
