// tensor_meta: how a frame describes one tensor: its dtype and shape, and the method it was
// encoded with. Light (no ATen), for the frame engine's parts that need no more.
#pragma once
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

namespace edgepipe {

// Dtype and shape of one tensor, as a frame describes it.
struct TensorMeta {
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<int64_t> shape;
  int64_t bytes() const;
};

// How one tensor of a frame was encoded. A zfp or quantising (q8, q4, q2) codec sends float and
// double tensors through zfp or the quantiser and others (int64 indices, bool masks, half)
// through lz4; a tensor that does not shrink, or holds NaN or infinity (which zfp and the
// quantisers cannot encode), is sent raw or through lz4.
enum class TensorMethod : uint8_t {
  raw = 0,
  lz4 = 1,
  zfp = 2,
  zfp_lz4 = 3,
  q8 = 4,
  q8_lz4 = 5,
  q4 = 6,
  q4_lz4 = 7,
  q2 = 8,
  q2_lz4 = 9,
};

}  // namespace edgepipe
