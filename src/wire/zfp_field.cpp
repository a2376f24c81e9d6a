#include "edgepipe/wire/zfp_field.h"

#include <algorithm>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame_layout.h"

namespace edgepipe {

namespace {

// A chunk is a slab of the field's slowest axis: a contiguous range of the tensor's values, and
// a zfp field of its own (the same dimensions, fewer rows).
uint64_t rows_of(const ZfpField& f) { return f.n[f.dims - 1]; }
uint64_t values_per_row(const ZfpField& f) {
  uint64_t v = 1;
  for (int k = 0; k + 1 < f.dims; ++k) v *= f.n[k];
  return v;
}

}  // namespace

uint64_t zfp_layers_of(const ZfpField& f) { return (rows_of(f) + 3) / 4; }

bool zfp_chunk_count_ok(uint64_t layers, uint64_t count, ZfpChunks* c) {
  if (count < 1 || count > kMaxZfpChunks || count > layers) return false;
  const uint64_t per = (layers + count - 1) / count;
  if ((layers + per - 1) / per != count) return false;
  c->count = static_cast<uint32_t>(count);
  c->layers = per;
  return true;
}

ZfpField zfp_chunk_field(const ZfpField& f, const ZfpChunks& c, uint32_t k, uint64_t* first) {
  const uint64_t rows = rows_of(f), r0 = uint64_t(k) * c.layers * 4;
  ZfpField cf = f;
  cf.n[f.dims - 1] = std::min(rows, r0 + c.layers * 4) - r0;
  *first = r0 * values_per_row(f);
  return cf;
}

ZfpField zfp_field_of(c10::IntArrayRef shape, int max_dims) {
  EP_CHECK(max_dims >= 1 && max_dims <= 3, "a zfp field has 1 to 3 dimensions, not ", max_dims);
  // Axes, slowest first, in a fixed array: this runs for every tensor of every frame.
  uint64_t d[kMaxTensorDims + 1];
  size_t n = 0;
  for (int64_t s : shape)
    if (s != 1 && n < kMaxTensorDims) d[n++] = static_cast<uint64_t>(s);
  if (n == 0) d[n++] = 1;
  auto merge = [&](size_t i) {  // axes i and i + 1 become one
    d[i] *= d[i + 1];
    for (size_t k = i + 1; k + 1 < n; ++k) d[k] = d[k + 1];
    --n;
  };
  // A zfp block spans 4 values along every axis: an axis shorter than that would be mostly
  // padding, so merge it into its slower neighbour (or the faster one if it is the slowest).
  for (size_t i = n; i-- > 0 && n > 1;) {
    if (d[i] >= 4) continue;
    merge(i > 0 ? i - 1 : 0);
  }
  while (n > static_cast<size_t>(max_dims)) merge(0);
  // Partial blocks are padded: a 14x14 map is 16x16 to zfp, which costs a fixed-rate stream 31%
  // more bits. When the map as one axis (196 = 49 blocks) pads much less, use that.
  auto padded = [](uint64_t v) {
    return static_cast<double>((v + 3) / 4 * 4) / static_cast<double>(v);
  };
  if (n == 3 && padded(d[1]) * padded(d[2]) > 1.1 * padded(d[1] * d[2])) merge(1);
  ZfpField f;
  f.dims = static_cast<int>(n);
  for (size_t k = 0; k < n; ++k) f.n[k] = d[n - 1 - k];
  return f;
}

ZfpChunks zfp_chunks_of(const ZfpField& f, size_t value_bytes, size_t chunk_bytes) {
  if (chunk_bytes == 0) chunk_bytes = kZfpChunkBytes;
  const uint64_t layers = zfp_layers_of(f);
  const uint64_t layer_bytes = 4 * values_per_row(f) * value_bytes;
  // Whole layers of about chunk_bytes each, at most kMaxZfpChunks chunks.
  const uint64_t per =
      std::max<uint64_t>({uint64_t(1), (chunk_bytes + layer_bytes / 2) / layer_bytes,
                          (layers + kMaxZfpChunks - 1) / kMaxZfpChunks});
  ZfpChunks c;
  for (uint64_t count = (layers + per - 1) / per; !zfp_chunk_count_ok(layers, count, &c);) --count;
  return c;
}

}  // namespace edgepipe
