// The frame engine's decoding half: checks the header, every descriptor (its own fields here,
// its method's in the method's validate()), the sizes and the checksum before anything is
// allocated or decoded, then decodes each tensor with its method. Every error is a FrameError
// naming the defect.
#include <cmath>
#include <cstring>
#include <ios>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame.h"
#include "frame_engine.h"
#include "method.h"

namespace edgepipe {

at::Tensor DecodeBuffers::output(size_t i, const TensorMeta& m) {
  if (pool.size() <= i) pool.resize(i + 1);
  const int64_t numel = m.bytes() / static_cast<int64_t>(c10::elementSize(m.dtype));
  at::Tensor& b = pool[i];
  if (!b.defined() || b.scalar_type() != m.dtype || b.numel() < numel)
    b = at::empty({numel}, at::TensorOptions().dtype(m.dtype));
  return b.narrow(0, 0, numel).view(m.shape);
}

struct FrameDecoder::Impl {
  uint64_t max_bytes = 0;
  std::vector<std::unique_ptr<TensorCoder>> coders;  // one per method, in kMethods's order
  DecodeBuffers buffers;
  std::vector<TensorMeta> metas;
  std::vector<TensorDesc> descs;
  std::vector<const char*> chunk_tables;  // per tensor: its chunk sizes in the frame

  // Checks the header; fills the frame's header fields.
  FrameHeader read_header(const char* data, size_t size, Frame& f);
  // Checks descriptor i at data + *pos and moves *pos past it (and its dims and chunk table);
  // adds its raw bytes to *total and its payload's room to *payload.
  void read_descriptor(const char* data, size_t size, uint32_t i, size_t* pos, uint64_t* total,
                       uint64_t* payload);
};

FrameHeader FrameDecoder::Impl::read_header(const char* data, size_t size, Frame& f) {
  EP_CHECK_AS(FrameError, size >= sizeof(FrameHeader), "frame truncated: ", size,
              " bytes, shorter than its header (", sizeof(FrameHeader), " bytes)");
  FrameHeader h;
  std::memcpy(&h, data, sizeof h);
  EP_CHECK_AS(FrameError, h.magic == kFrameMagic, "not an edgepipe frame: bad magic 0x", std::hex,
              h.magic);
  EP_CHECK_AS(FrameError, h.version == kFrameVersion, "frame format version ", h.version,
              " is not supported (this edgepipe reads version ", kFrameVersion, ")");
  EP_CHECK_AS(FrameError,
              h.codec <= static_cast<uint8_t>(kLastCodecKind) && h.codec_lz4 <= 1 &&
                  std::isfinite(h.codec_param),
              "frame names an unknown codec (", int(h.codec), ", lz4 flag ", int(h.codec_lz4), ")");
  EP_CHECK_AS(FrameError, h.num_tensors <= kMaxFrameTensors, "frame claims ", h.num_tensors,
              " tensors (at most ", kMaxFrameTensors, ")");
  EP_CHECK_AS(FrameError, (h.flags & ~kFrameFlags) == 0, "frame has unknown flags 0x", std::hex,
              h.flags & ~kFrameFlags, std::dec, " (this edgepipe knows 0x", std::hex, kFrameFlags,
              ")");
  EP_CHECK_AS(FrameError, !(h.flags & kFrameEnd) || h.num_tensors == 0,
              "frame is marked as the end of the stream but carries ", h.num_tensors, " tensors");
  f.seq = h.seq;
  f.flags = h.flags;
  f.codec.kind = static_cast<CodecKind>(h.codec);
  f.codec.lz4 = h.codec_lz4 != 0;
  f.codec.param = h.codec_param;
  return h;
}

void FrameDecoder::Impl::read_descriptor(const char* data, size_t size, uint32_t i, size_t* pos,
                                         uint64_t* total, uint64_t* payload) {
  EP_CHECK_AS(FrameError, sizeof(TensorDesc) <= size - *pos,
              "frame truncated in the descriptor of tensor ", i);
  TensorDesc& d = descs[i];
  std::memcpy(&d, data + *pos, sizeof d);
  *pos += sizeof d;
  EP_CHECK_AS(FrameError, known_dtype(d.dtype), "frame tensor ", i, " has unknown dtype ",
              int(d.dtype));
  EP_CHECK_AS(FrameError, d.ndim <= kMaxTensorDims, "frame tensor ", i, " has ", int(d.ndim),
              " dimensions");
  EP_CHECK_AS(FrameError, d.ndim * sizeof(int64_t) <= size - *pos,
              "frame truncated in the shape of tensor ", i);
  TensorMeta& m = metas[i];
  m.dtype = static_cast<c10::ScalarType>(d.dtype);
  m.shape.resize(d.ndim);
  if (d.ndim > 0) std::memcpy(m.shape.data(), data + *pos, d.ndim * sizeof(int64_t));
  *pos += d.ndim * sizeof(int64_t);
  const MethodEntry* method = method_of(d.method);
  EP_CHECK_AS(FrameError, method, "frame tensor ", i, " has unknown encoding ", int(d.method));
  EP_CHECK_AS(FrameError, method->chunked || d.zfp_chunks == 0, "frame tensor ", i,
              " is not zfp-encoded but claims ", d.zfp_chunks, " zfp chunks");
  EP_CHECK_AS(FrameError, d.zfp_chunks * sizeof(uint64_t) <= size - *pos,
              "frame truncated in the zfp chunk sizes of tensor ", i);
  chunk_tables[i] = data + *pos;
  *pos += d.zfp_chunks * sizeof(uint64_t);
  uint64_t count = c10::elementSize(m.dtype);
  for (int64_t dim : m.shape) {
    EP_CHECK_AS(FrameError, dim >= 0 && (dim == 0 || count <= (uint64_t(1) << 48) / uint64_t(dim)),
                "frame tensor ", i, " has a bad dimension ", dim);
    count *= static_cast<uint64_t>(dim);
  }
  EP_CHECK_AS(FrameError, count == d.raw_bytes, "frame tensor ", i, ": its shape makes ", count,
              " bytes but it claims ", d.raw_bytes);
  *total += count;
  EP_CHECK_AS(FrameError, *total <= max_bytes, "frame tensors add up to more than the ", max_bytes,
              " bytes this rank accepts (tensor ", i, " has shape ", c10::IntArrayRef(m.shape),
              ")");
  const DescCheck check{d,
                        m,
                        chunk_tables[i],
                        i,
                        count / c10::elementSize(m.dtype),
                        d.method == static_cast<uint8_t>(method->over_lz4)};
  coders[static_cast<size_t>(method - kMethods)]->validate(check);
  EP_CHECK_AS(FrameError, d.encoded_bytes <= size, "frame truncated in the payload of tensor ", i);
  *payload += frame_align_up(d.encoded_bytes);
}

FrameDecoder::FrameDecoder(uint64_t max_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->max_bytes = max_bytes;
  impl_->coders = make_coders(MethodOptions{});
}
FrameDecoder::~FrameDecoder() = default;
FrameDecoder::FrameDecoder(FrameDecoder&&) noexcept = default;
FrameDecoder& FrameDecoder::operator=(FrameDecoder&&) noexcept = default;

Frame FrameDecoder::decode(const char* data, size_t size) {
  Frame f;
  const FrameHeader h = impl_->read_header(data, size, f);
  auto& metas = impl_->metas;
  auto& descs = impl_->descs;
  metas.resize(h.num_tensors);
  descs.resize(h.num_tensors);
  impl_->chunk_tables.assign(h.num_tensors, nullptr);
  uint64_t total = 0, payload = 0;
  size_t pos = sizeof(FrameHeader);
  for (uint32_t i = 0; i < h.num_tensors; ++i)
    impl_->read_descriptor(data, size, i, &pos, &total, &payload);
  const size_t head = frame_align_up(pos);
  EP_CHECK_AS(FrameError, head <= size && size - head == h.payload_bytes,
              "frame truncated or padded: ", size, " bytes, but its header and descriptors say ",
              head + h.payload_bytes);
  EP_CHECK_AS(FrameError, payload == h.payload_bytes, "frame's tensors take ", payload,
              " bytes but its payload has ", h.payload_bytes);
  EP_CHECK_AS(FrameError, frame_checksum(data, size) == h.frame_crc32, "frame ", h.seq,
              " failed its checksum (corrupted in transit)");
  size_t offset = head;
  for (uint32_t i = 0; i < h.num_tensors; ++i) {
    const TensorDesc& d = descs[i];
    EP_CHECK_AS(FrameError, d.encoded_bytes <= size - offset,
                "frame truncated in the payload of tensor ", i);
    const MethodEntry* method = method_of(d.method);  // checked by read_descriptor
    const DecodeJob job{d,
                        metas[i],
                        impl_->chunk_tables[i],
                        i,
                        data + offset,
                        d.method == static_cast<uint8_t>(method->over_lz4),
                        impl_->buffers,
                        method->name};
    f.tensors.push_back(impl_->coders[static_cast<size_t>(method - kMethods)]->decode(job));
    f.methods.push_back(static_cast<TensorMethod>(d.method));
    f.bytes_raw += d.raw_bytes;
    f.bytes_encoded += d.encoded_bytes;
    offset += frame_align_up(d.encoded_bytes);
  }
  return f;
}

Frame decode_frame(const char* data, size_t size) { return FrameDecoder().decode(data, size); }

}  // namespace edgepipe
