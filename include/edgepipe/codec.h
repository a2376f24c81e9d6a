// codec: tensors <-> self-describing frames, the unit of everything sent between ranks.
//
// A frame is: a fixed header (magic "EPFR", format version, codec, flags, batch sequence number,
// tensor count, payload bytes, CRC-32 of the payload), one descriptor per tensor (dtype, shape,
// raw and encoded byte counts), then the payloads, each starting on a 64-byte boundary.
// Decoding checks every count against the frame's size, so a truncated or corrupt frame raises
// an error naming what is wrong and never reads out of bounds.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace edgepipe {

enum class Codec : uint8_t { raw = 0 };

constexpr uint32_t kFrameEnd = 1;  // flag: end of stream, no tensors

// Dtype and shape of one tensor, as a frame describes it.
struct TensorMeta {
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<int64_t> shape;
  int64_t bytes() const;
};

std::vector<TensorMeta> metas_of(const std::vector<at::Tensor>& tensors);

// The largest frame that tensors of these dtypes and shapes (or smaller) can produce.
size_t frame_bound(const std::vector<TensorMeta>& metas);

// Writes a frame into `out`, reusing its capacity. Non-contiguous tensors are made contiguous.
void encode_frame(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
                  std::vector<char>& out);

struct Frame {
  uint64_t seq = 0;
  uint32_t flags = 0;
  std::vector<at::Tensor> tensors;  // views into the decoded buffer: valid while it is unchanged
};

// Checks and decodes a frame; throws edgepipe::Error naming the defect.
Frame decode_frame(const char* data, size_t size);

}  // namespace edgepipe
