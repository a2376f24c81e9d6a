// What the codec tests (tests/test_codec_*.cpp) share: tensors like activations, comparisons,
// and the tools for damaging and forging frames, with every offset taken from frame_layout.h.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame.h"
#include "edgepipe/wire/frame_layout.h"

namespace codec_test {

using edgepipe::FrameHeader;
using edgepipe::TensorDesc;

// Where the fields of a frame's header and of its first tensor's descriptor are.
constexpr size_t kHeader = sizeof(FrameHeader);
constexpr size_t kVersionAt = offsetof(FrameHeader, version);
constexpr size_t kCodecAt = offsetof(FrameHeader, codec);
constexpr size_t kPayloadBytesAt = edgepipe::kHeaderPayloadBytesAt;
constexpr size_t kDesc0 = edgepipe::kFirstDescAt;
constexpr size_t kDtypeAt = kDesc0 + offsetof(TensorDesc, dtype);
constexpr size_t kMethodAt = kDesc0 + offsetof(TensorDesc, method);
constexpr size_t kZfpModeAt = kDesc0 + offsetof(TensorDesc, zfp_mode);
constexpr size_t kChunksAt = kDesc0 + offsetof(TensorDesc, zfp_chunks);
constexpr size_t kZfpParamAt = kDesc0 + offsetof(TensorDesc, zfp_param);
constexpr size_t kZfpNAt = kDesc0 + offsetof(TensorDesc, zfp_n);
constexpr size_t kRawAt = kDesc0 + offsetof(TensorDesc, raw_bytes);
constexpr size_t kEncodedAt = kDesc0 + offsetof(TensorDesc, encoded_bytes);
constexpr size_t kStreamBytesAt = kDesc0 + offsetof(TensorDesc, stream_bytes);
constexpr size_t kDims0At = kDesc0 + edgepipe::kDescDimsAt;  // tensor 0's dims, then its chunks

// The codecs every round-trip test runs.
inline const char* const kAllCodecs[] = {
    "raw",
    "lz4",
    "zfp-reversible",
    "zfp-reversible+lz4",
    "zfp-rate:8",
    "zfp-rate:4+lz4",
    "zfp-precision:16",
    "zfp-precision:12+lz4",
    "zfp-accuracy:1e-3",
    "zfp-accuracy:1e-2+lz4",
    "zfp-relacc:1e-3",
    "zfp-relacc:1e-2+lz4",
    "q8",
    "q8+lz4",
    "q4",
    "q4+lz4",
    "q2",
    "q2+lz4",
};

// The decoder's error for a frame, "" if it decodes. Every error the decoder raises is a
// FrameError: any other exception fails the test that called this.
inline std::string error_of(const std::vector<char>& f, uint64_t max_bytes = uint64_t(1) << 34) {
  try {
    edgepipe::FrameDecoder(max_bytes).decode(f.data(), f.size());
  } catch (const edgepipe::FrameError& e) {
    return e.what();
  }
  return "";
}

inline bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

inline bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// Something like a post-ReLU activation: smooth, half zeros.
inline at::Tensor activation(std::vector<int64_t> shape, double scale = 1.0) {
  at::Tensor x = at::randn(shape);
  if (x.dim() >= 2) x = x + at::roll(x, 1, -1) + at::roll(x, 1, -2);
  return at::relu(x) * scale;
}

template <typename T>
void poke(std::vector<char>& f, size_t at, T v) {
  std::memcpy(f.data() + at, &v, sizeof v);
}
template <typename T>
T peek(const std::vector<char>& f, size_t at) {
  T v;
  std::memcpy(&v, f.data() + at, sizeof v);
  return v;
}

// Where a frame's payload starts (its header's payload bytes before its end).
inline size_t payload_at(const std::vector<char>& f) {
  return f.size() - peek<uint64_t>(f, kPayloadBytesAt);
}

// Recomputes the checksum, as a forger would: the decoder must then survive on its other checks.
inline void refresh_crc(std::vector<char>& f) {
  if (peek<uint64_t>(f, kPayloadBytesAt) > f.size()) return;
  poke(f, edgepipe::kHeaderCrcAt, edgepipe::frame_checksum(f.data(), f.size()));
}

// The decoder's error for a copy of f changed by change(copy) with its checksum made right.
template <typename F>
std::string forged(std::vector<char> f, const F& change) {
  change(f);
  refresh_crc(f);
  return error_of(f);
}

// Sets LibTorch's thread count for a scope (the codec codes zfp chunks on those threads).
class Threads {
 public:
  explicit Threads(int n) : before_(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(before_); }

 private:
  int before_;
};

}  // namespace codec_test
