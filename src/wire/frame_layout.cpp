// What the frame's layout implies: tensor sizes, the bound of a frame, its checksum.
#include <algorithm>
#include <cstring>

#include "checksum.h"
#include "edgepipe/wire/frame.h"
#include "frame_engine.h"
#include "method.h"

namespace edgepipe {

int64_t TensorMeta::bytes() const {
  int64_t n = static_cast<int64_t>(c10::elementSize(dtype));
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<TensorMeta> metas_of(const std::vector<at::Tensor>& tensors) {
  std::vector<TensorMeta> metas;
  for (const auto& t : tensors) metas.push_back({t.scalar_type(), t.sizes().vec()});
  return metas;
}

size_t frame_bound(const std::vector<TensorMeta>& metas) {
  size_t head = sizeof(FrameHeader), payloads = 0;
  for (const auto& m : metas) {
    size_t table = 0;
    for (size_t k = 0; k < kMethodCount; ++k) table = std::max(table, kMethods[k].table_bound(m));
    head += sizeof(TensorDesc) + (m.shape.size() + table) * sizeof(int64_t);
    payloads += frame_align_up(static_cast<size_t>(m.bytes()));
  }
  return frame_align_up(head) + payloads;
}

bool known_dtype(uint8_t d) {
  switch (static_cast<c10::ScalarType>(d)) {
    case c10::ScalarType::Float:
    case c10::ScalarType::Double:
    case c10::ScalarType::Half:
    case c10::ScalarType::BFloat16:
    case c10::ScalarType::Long:
    case c10::ScalarType::Int:
    case c10::ScalarType::Short:
    case c10::ScalarType::Char:
    case c10::ScalarType::Byte:
    case c10::ScalarType::Bool:
      return true;
    default:
      return false;
  }
}

uint32_t frame_checksum(const char* frame, size_t size) {
  if (size < sizeof(FrameHeader)) return 0;
  // The header as if its checksum field were 0, then everything after it.
  char header[sizeof(FrameHeader)];
  std::memcpy(header, frame, sizeof header);
  std::memset(header + kHeaderCrcAt, 0, sizeof(FrameHeader::frame_crc32));
  const size_t rest = size - sizeof header;
  return crc32_joined(crc32_serial(header, sizeof header), crc32_of(frame + sizeof header, rest),
                      rest);
}

}  // namespace edgepipe
