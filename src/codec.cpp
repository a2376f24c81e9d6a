#include "edgepipe/codec.h"

#include <zlib.h>
#include <algorithm>
#include <cstring>

#include "edgepipe/error.h"

namespace edgepipe {

namespace {

constexpr uint32_t kMagic = 0x52465045;  // "EPFR" little-endian
constexpr uint16_t kVersion = 1;
constexpr size_t kAlign = 64;
constexpr size_t kMaxTensors = 1024;
constexpr size_t kMaxDims = 16;

#pragma pack(push, 1)
struct Header {
  uint32_t magic;
  uint16_t version;
  uint8_t codec;
  uint8_t reserved;
  uint32_t flags;
  uint32_t num_tensors;
  uint64_t seq;
  uint64_t payload_bytes;  // from the first payload's start to the frame's end
  uint32_t payload_crc32;
  uint32_t reserved2;
};
struct TensorDesc {
  uint8_t dtype;
  uint8_t ndim;
  uint16_t reserved;
  uint32_t reserved2;
  uint64_t raw_bytes;
  uint64_t encoded_bytes;
  // followed by ndim int64 dims
};
#pragma pack(pop)

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

size_t descriptors_size(const std::vector<TensorMeta>& metas) {
  size_t n = sizeof(Header);
  for (const auto& m : metas) n += sizeof(TensorDesc) + m.shape.size() * sizeof(int64_t);
  return align_up(n);
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

uint32_t crc32_of(const char* p, size_t n) {
  // zlib's crc32 is several times faster than a byte-wise table; it takes uInt-sized pieces.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt piece = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), piece);
    p += piece;
    n -= piece;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

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
  size_t n = descriptors_size(metas);
  for (const auto& m : metas) n += align_up(static_cast<size_t>(m.bytes()));
  return n;
}

void encode_frame(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
                  std::vector<char>& out) {
  EP_CHECK(tensors.size() <= kMaxTensors, "too many tensors for one frame: ", tensors.size());
  std::vector<TensorMeta> metas = metas_of(tensors);
  const size_t head = descriptors_size(metas);
  out.resize(frame_bound(metas));
  std::memset(out.data(), 0, head);
  char* p = out.data() + sizeof(Header);
  for (const auto& m : metas) {
    EP_CHECK(known_dtype(static_cast<uint8_t>(m.dtype)) && m.shape.size() <= kMaxDims,
             "cannot send a tensor of dtype ", c10::toString(m.dtype), " with ", m.shape.size(),
             " dimensions");
    TensorDesc d{};
    d.dtype = static_cast<uint8_t>(m.dtype);
    d.ndim = static_cast<uint8_t>(m.shape.size());
    d.raw_bytes = d.encoded_bytes = static_cast<uint64_t>(m.bytes());
    std::memcpy(p, &d, sizeof d);
    p += sizeof d;
    std::memcpy(p, m.shape.data(), m.shape.size() * sizeof(int64_t));
    p += m.shape.size() * sizeof(int64_t);
  }
  size_t offset = head;
  for (const auto& t : tensors) {
    at::Tensor c = t.is_contiguous() ? t : t.contiguous();
    const size_t n = c.nbytes();
    std::memcpy(out.data() + offset, c.data_ptr(), n);
    std::memset(out.data() + offset + n, 0, align_up(n) - n);
    offset += align_up(n);
  }
  out.resize(offset);
  Header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.codec = static_cast<uint8_t>(Codec::raw);
  h.flags = flags;
  h.num_tensors = static_cast<uint32_t>(tensors.size());
  h.seq = seq;
  h.payload_bytes = offset - head;
  h.payload_crc32 = crc32_of(out.data() + head, offset - head);
  std::memcpy(out.data(), &h, sizeof h);
}

Frame decode_frame(const char* data, size_t size) {
  EP_CHECK(size >= sizeof(Header), "frame truncated: ", size, " bytes, shorter than its header (",
           sizeof(Header), " bytes)");
  Header h;
  std::memcpy(&h, data, sizeof h);
  EP_CHECK(h.magic == kMagic, "not an edgepipe frame: bad magic 0x", std::hex, h.magic);
  EP_CHECK(h.version == kVersion, "frame format version ", h.version, " is not supported (this ",
           "edgepipe reads version ", kVersion, ")");
  EP_CHECK(h.codec == static_cast<uint8_t>(Codec::raw), "frame uses unknown codec ",
           int(h.codec));
  EP_CHECK(h.num_tensors <= kMaxTensors, "frame claims ", h.num_tensors, " tensors (at most ",
           kMaxTensors, ")");
  Frame f;
  f.seq = h.seq;
  f.flags = h.flags;
  std::vector<TensorMeta> metas;
  std::vector<uint64_t> encoded;
  size_t pos = sizeof(Header);
  for (uint32_t i = 0; i < h.num_tensors; ++i) {
    EP_CHECK(pos + sizeof(TensorDesc) <= size, "frame truncated in the descriptor of tensor ", i);
    TensorDesc d;
    std::memcpy(&d, data + pos, sizeof d);
    pos += sizeof d;
    EP_CHECK(known_dtype(d.dtype), "frame tensor ", i, " has unknown dtype ", int(d.dtype));
    EP_CHECK(d.ndim <= kMaxDims, "frame tensor ", i, " has ", int(d.ndim), " dimensions");
    EP_CHECK(pos + d.ndim * sizeof(int64_t) <= size, "frame truncated in the shape of tensor ", i);
    TensorMeta m;
    m.dtype = static_cast<c10::ScalarType>(d.dtype);
    m.shape.resize(d.ndim);
    std::memcpy(m.shape.data(), data + pos, d.ndim * sizeof(int64_t));
    pos += d.ndim * sizeof(int64_t);
    uint64_t count = c10::elementSize(m.dtype);
    for (int64_t dim : m.shape) {
      EP_CHECK(dim >= 0 && (dim == 0 || count <= (uint64_t(1) << 48) / uint64_t(dim)),
               "frame tensor ", i, " has a bad dimension ", dim);
      count *= static_cast<uint64_t>(dim);
    }
    EP_CHECK(count == d.raw_bytes && d.encoded_bytes == d.raw_bytes, "frame tensor ", i,
             ": its shape makes ", count, " bytes but it claims ", d.raw_bytes, " raw and ",
             d.encoded_bytes, " encoded");
    metas.push_back(std::move(m));
    encoded.push_back(d.encoded_bytes);
  }
  const size_t head = align_up(pos);
  EP_CHECK(head <= size && size - head == h.payload_bytes, "frame truncated or padded: ",
           size, " bytes, but its header and descriptors say ", head + h.payload_bytes);
  EP_CHECK(crc32_of(data + head, h.payload_bytes) == h.payload_crc32,
           "frame ", h.seq, " failed its checksum (corrupted in transit)");
  size_t offset = head;
  for (size_t i = 0; i < metas.size(); ++i) {
    EP_CHECK(offset + encoded[i] <= size, "frame truncated in the payload of tensor ", i);
    // from_blob does not copy: the tensors view the caller's buffer.
    f.tensors.push_back(at::from_blob(const_cast<char*>(data + offset), metas[i].shape,
                                      at::TensorOptions().dtype(metas[i].dtype)));
    offset += align_up(encoded[i]);
  }
  return f;
}

}  // namespace edgepipe
