// The frame engine's encoding half: walks a frame's tensors, sends each through the method its
// link's codec names (or raw, or lz4, when that method cannot take it or does not shrink it),
// lays out descriptors and payloads, and writes the header with the checksum.
#include <chrono>
#include <cstdio>
#include <cstring>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame.h"
#include "frame_engine.h"
#include "method.h"
#include "method_lz4.h"

namespace edgepipe {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void fill_header(FrameHeader& h, const CodecSpec& codec, uint64_t seq, uint32_t flags,
                 uint32_t count) {
  h = FrameHeader{};
  h.magic = kFrameMagic;
  h.version = kFrameVersion;
  h.codec = static_cast<uint8_t>(codec.kind);
  h.codec_lz4 = codec.lz4 ? 1 : 0;
  h.codec_param = codec.param;
  h.flags = flags;
  h.num_tensors = count;
  h.seq = seq;
}

// The method (index into kMethods) that a codec sends float tensors through; 0 (raw) if none.
size_t method_serving(const CodecSpec& codec) {
  for (size_t m = 1; m < kMethodCount; ++m)
    if (kMethods[m].serves(codec)) return m;
  return 0;
}

}  // namespace

char* EncodeJob::place(size_t bytes) {
  if (lz4 && lz4_fits(bytes)) {
    if (scratch.size() < bytes) scratch.resize(bytes);
    return scratch.data();
  }
  return bytes < tensor.nbytes() ? frame_dst : nullptr;
}

struct FrameEncoder::Impl {
  CodecSpec codec;
  size_t method = 0;         // the method the codec sends float tensors through (kMethods)
  int error_every = 8;       // measure the error of the tensors of one frame in this many
  uint64_t frames_seen = 0;  // frames with tensors encoded so far
  bool measure_now = false;  // this frame's turn
  LinkCounters counters;
  std::vector<std::unique_ptr<TensorCoder>> coders;  // one per method, in kMethods's order
  std::vector<char> scratch;                         // a tensor's stream, for lz4 to go over
  std::vector<at::Tensor> contiguous;
  std::vector<TensorDesc> descs;      // this frame's descriptors
  std::vector<uint64_t> chunk_bytes;  // this frame's chunk tables, all tensors in order

  // Encodes tensor t into dst (room for its raw bytes) and fills d (and chunk_bytes); returns
  // the bytes written.
  size_t encode_tensor(const at::Tensor& t, char* dst, TensorDesc& d);
  // Tensor t through method m (lz4 over its stream if `lz4`): the bytes written at dst, 0 if it
  // did not shrink t, -1 if the method cannot take its values (NaN, infinity, too large).
  int64_t send(size_t m, bool lz4, const at::Tensor& t, char* dst, TensorDesc& d);
  // Lays out descriptors and payloads of the frame in `out` and returns its header's bytes.
  size_t write_tensors(const std::vector<at::Tensor>& tensors, std::vector<char>& out,
                       uint64_t* bytes_raw, uint64_t* bytes_encoded);
};

int64_t FrameEncoder::Impl::send(size_t m, bool lz4, const at::Tensor& t, char* dst,
                                 TensorDesc& d) {
  const MethodEntry& e = kMethods[m];
  EncodeJob job{t, codec, lz4, dst, scratch, d, chunk_bytes};
  MethodStream s;
  if (!coders[m]->encode(job, &s)) return -1;
  const size_t raw = t.nbytes();
  size_t n = 0;
  if (s.data && lz4 && lz4_fits(s.bytes) &&
      (n = lz4_into(s.data, s.bytes, dst, std::min(s.bytes, raw))) > 0)
    d.method = static_cast<uint8_t>(e.over_lz4);
  if (n == 0 && s.data && s.bytes < raw) {
    if (s.data != dst) std::memcpy(dst, s.data, s.bytes);
    n = s.bytes;
    d.method = static_cast<uint8_t>(e.plain);
  }
  if (n == 0) return 0;
  if (measure_now && codec.lossy() && m != 0) {
    const auto t0 = std::chrono::steady_clock::now();
    add_error(coders[m]->measure(job, s.data), job.maxabs, counters);
    counters.time_error += seconds_since(t0);
  }
  return static_cast<int64_t>(n);
}

size_t FrameEncoder::Impl::encode_tensor(const at::Tensor& t, char* dst, TensorDesc& d) {
  const size_t raw = t.nbytes();
  d.method = static_cast<uint8_t>(TensorMethod::raw);
  // The codec's method: the bytes written; 0 if it did not shrink the tensor: sent raw, which is
  // exact; -1 if it cannot take it.
  int64_t result = -1;
  if (method != 0 && is_float_type(t.scalar_type()) && raw > 0) {
    const TensorDesc before = d;
    const size_t table = chunk_bytes.size();
    result = send(method, codec.lz4, t, dst, d);
    if (result > 0) return static_cast<size_t>(result);
    d = before;  // its fields and chunk table go with it
    chunk_bytes.resize(table);
  }
  if (result < 0 && codec.kind != CodecKind::raw) {
    // lz4, or a codec on a tensor its method cannot take (not float or double, NaN or infinity).
    result = send(0, true, t, dst, d);
    if (result > 0) return static_cast<size_t>(result);
    d.method = static_cast<uint8_t>(TensorMethod::raw);
  }
  std::memcpy(dst, t.data_ptr(), raw);
  return raw;
}

FrameEncoder::FrameEncoder(const CodecSpec& codec, int error_every, int zfp_max_dims,
                           size_t zfp_chunk_bytes)
    : impl_(std::make_unique<Impl>()) {
  EP_CHECK(zfp_max_dims >= 0 && zfp_max_dims <= 3, "zfp fields have 1 to 3 dimensions, not ",
           zfp_max_dims);
  impl_->codec = codec;
  impl_->method = method_serving(codec);
  EP_CHECK(error_every >= 0, "error_every must not be negative");
  impl_->error_every = error_every;
  impl_->coders = make_coders(MethodOptions{zfp_max_dims, zfp_chunk_bytes});
  std::snprintf(impl_->counters.codec, sizeof impl_->counters.codec, "%s", codec.name().c_str());
}
FrameEncoder::~FrameEncoder() = default;
FrameEncoder::FrameEncoder(FrameEncoder&&) noexcept = default;
FrameEncoder& FrameEncoder::operator=(FrameEncoder&&) noexcept = default;
const CodecSpec& FrameEncoder::codec() const { return impl_->codec; }
const LinkCounters& FrameEncoder::counters() const { return impl_->counters; }

size_t FrameEncoder::Impl::write_tensors(const std::vector<at::Tensor>& tensors,
                                         std::vector<char>& out, uint64_t* bytes_raw,
                                         uint64_t* bytes_encoded) {
  auto& ts = contiguous;
  ts.clear();
  descs.clear();
  chunk_bytes.clear();
  // The descriptors' room, with a chunk table for every tensor that may have one; if one does
  // not after all (it did not shrink, or holds NaN), the payloads move down once written.
  size_t planned = sizeof(FrameHeader), bound = 0;
  for (const auto& t : tensors) {
    EP_CHECK(known_dtype(static_cast<uint8_t>(t.scalar_type())) && t.dim() <= int(kMaxTensorDims),
             "cannot send a tensor of dtype ", c10::toString(t.scalar_type()), " with ", t.dim(),
             " dimensions");
    ts.push_back(t.is_contiguous() ? t : t.contiguous());
    planned +=
        sizeof(TensorDesc) +
        (static_cast<size_t>(t.dim()) + coders[method]->planned_table(t, codec)) * sizeof(int64_t);
    bound += frame_align_up(t.nbytes());
  }
  planned = frame_align_up(planned);
  out.resize(planned + bound);
  size_t head = sizeof(FrameHeader), offset = planned;
  for (const auto& t : ts) {
    TensorDesc d{};
    d.dtype = static_cast<uint8_t>(t.scalar_type());
    d.ndim = static_cast<uint8_t>(t.dim());
    d.raw_bytes = t.nbytes();
    const size_t n = encode_tensor(t, out.data() + offset, d);
    d.encoded_bytes = n;
    descs.push_back(d);
    head += sizeof d + (static_cast<size_t>(t.dim()) + d.zfp_chunks) * sizeof(int64_t);
    std::memset(out.data() + offset + n, 0, frame_align_up(n) - n);
    offset += frame_align_up(n);
    *bytes_raw += d.raw_bytes;
    *bytes_encoded += n;
  }
  head = frame_align_up(head);
  if (head < planned) {
    std::memmove(out.data() + head, out.data() + planned, offset - planned);
    offset -= planned - head;
  }
  out.resize(offset);
  std::memset(out.data(), 0, head);
  size_t pos = sizeof(FrameHeader);
  const uint64_t* sizes = chunk_bytes.data();
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorDesc& d = descs[i];
    std::memcpy(out.data() + pos, &d, sizeof d);
    pos += sizeof d;
    if (d.ndim > 0) std::memcpy(out.data() + pos, ts[i].sizes().data(), d.ndim * sizeof(int64_t));
    pos += d.ndim * sizeof(int64_t);
    if (d.zfp_chunks > 0) std::memcpy(out.data() + pos, sizes, d.zfp_chunks * sizeof(uint64_t));
    pos += d.zfp_chunks * sizeof(uint64_t);
    sizes += d.zfp_chunks;
  }
  ts.clear();
  return head;
}

void FrameEncoder::encode(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
                          std::vector<char>& out) {
  const auto t0 = std::chrono::steady_clock::now();
  const double error_before = impl_->counters.time_error;
  EP_CHECK(tensors.size() <= kMaxFrameTensors, "too many tensors for one frame: ", tensors.size());
  impl_->measure_now = impl_->error_every > 0 && !tensors.empty() &&
                       impl_->frames_seen++ % static_cast<uint64_t>(impl_->error_every) == 0;
  uint64_t bytes_raw = 0, bytes_encoded = 0;
  const size_t head = impl_->write_tensors(tensors, out, &bytes_raw, &bytes_encoded);
  FrameHeader h;
  fill_header(h, impl_->codec, seq, flags, static_cast<uint32_t>(tensors.size()));
  h.payload_bytes = out.size() - head;
  std::memcpy(out.data(), &h, sizeof h);
  h.frame_crc32 = frame_checksum(out.data(), out.size());
  std::memcpy(out.data() + kHeaderCrcAt, &h.frame_crc32, sizeof h.frame_crc32);

  auto& c = impl_->counters;
  if (!tensors.empty()) {
    c.frames += 1;
    c.bytes_raw += static_cast<double>(bytes_raw);
    c.bytes_encoded += static_cast<double>(bytes_encoded);
    c.bytes_frames += static_cast<double>(out.size());
    c.time_encode += seconds_since(t0) - (c.time_error - error_before);
  }
}

void encode_frame(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
                  std::vector<char>& out) {
  FrameEncoder(CodecSpec{}, 0).encode(seq, flags, tensors, out);
}

}  // namespace edgepipe
