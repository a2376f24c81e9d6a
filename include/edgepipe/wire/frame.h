// frame: tensors <-> self-describing frames, the unit of everything sent between ranks, encoded
// with a link's codec (raw, lz4, zfp in any mode, zfp + lz4, q8, q8 + lz4; see codec_spec.h and
// docs/codecs.md).
//
// A frame (format version 4) is: a fixed header (magic "EPFR", format version, the link's codec
// and its parameter, flags, batch sequence number, tensor count, payload bytes, CRC-32 of the
// whole frame), one descriptor per tensor (dtype, shape, how this tensor was encoded: raw, lz4,
// zfp, zfp + lz4, q8 or q8 + lz4, with zfp's mode, parameter and field dimensions, raw and encoded
// byte counts, the byte count of the zfp or q8 stream before lz4, and the byte count of each zfp
// chunk), then the payloads, each starting on a 64-byte boundary: frame_layout.h has the bytes.
// A zfp tensor is coded as independent chunks (slabs of whole zfp blocks along the field's
// slowest axis, zfp_field.h), encoded and decoded in parallel on the threads LibTorch is given
// (at::set_num_threads); the chunks depend only on the shape, so the frame is the same for any
// number of threads. A q8 tensor is its values in memory order cut into blocks, each quantised to
// 8 bits between its own minimum and maximum (quant.h); its blocks are coded in parallel the same
// way. The decoder needs nothing but the frame.
// Decoding checks every count against the frame's size and against what the decoder may
// allocate, so a truncated or corrupt frame raises a FrameError naming what is wrong and never
// reads or writes out of bounds (zfp streams are decoded from a buffer padded to the longest
// stream their field and mode allow; a q8 stream must have exactly the size its value count
// makes).
//
// The code: the frame engine (src/wire/frame_encoder.cpp, frame_decoder.cpp) walks the tensors,
// writes and checks headers and descriptors; each tensor method is a file of its own behind one
// interface (src/wire/method.h: method_raw.cpp, method_zfp.cpp, method_quant.cpp; lz4 over any
// method's stream in method_lz4.cpp).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edgepipe/records/metrics.h"
#include "edgepipe/wire/codec_spec.h"
#include "edgepipe/wire/quant.h"
#include "edgepipe/wire/tensor_meta.h"
#include "edgepipe/wire/zfp_field.h"

namespace edgepipe {

constexpr uint16_t kFrameVersion = 4;        // the frame format this edgepipe writes and reads
constexpr uint32_t kFrameEnd = 1;            // flag: end of stream, no tensors
constexpr uint32_t kFrameFlags = kFrameEnd;  // every flag a frame may carry; others are refused

std::vector<TensorMeta> metas_of(const std::vector<at::Tensor>& tensors);

// The largest frame that tensors of these dtypes and shapes (or smaller) can produce with any
// codec: an encoded tensor that would not be smaller than its raw bytes is sent raw.
size_t frame_bound(const std::vector<TensorMeta>& metas);

// A decoded frame.
struct Frame {
  uint64_t seq = 0;
  uint32_t flags = 0;
  CodecSpec codec;                            // the link's codec, as the header says
  std::vector<at::Tensor> tensors;            // valid until the decoder's next decode and while the
                                              // frame's buffer is unchanged (raw tensors view it)
  std::vector<TensorMethod> methods;          // per tensor
  uint64_t bytes_raw = 0, bytes_encoded = 0;  // tensor bytes before and after encoding
};

// Encodes frames with one link's codec. Owns the zfp, q8 and lz4 state and scratch buffers,
// reused from frame to frame: once warm, encoding allocates nothing. Keeps the link's totals
// (bytes, time, and for lossy codecs the error of the tensors, measured by decoding them again).
class FrameEncoder {
 public:
  // error_every: with a lossy codec, measure the error of every tensor of the first frame and of
  // one frame in error_every after it (0: never). Measuring costs about a decode, so the
  // pipeline samples (the default) rather than doubling the codec's cost on every batch.
  // zfp_max_dims 1..3 forces zfp_field_of's max_dims (to compare layouts: tools/bench_codecs);
  // 0 chooses by zfp mode, as edgepipe runs. zfp_chunk_bytes: the zfp chunks' target size
  // (zfp_chunks_of; 0: the default; tests use small ones to get many chunks from small tensors).
  explicit FrameEncoder(const CodecSpec& codec = {}, int error_every = 8, int zfp_max_dims = 0,
                        size_t zfp_chunk_bytes = 0);
  ~FrameEncoder();
  FrameEncoder(FrameEncoder&&) noexcept;
  FrameEncoder& operator=(FrameEncoder&&) noexcept;

  // Writes a frame into `out`, reusing its capacity. Non-contiguous tensors are made contiguous.
  // zfp chunks and q8 blocks are encoded with at::parallel_for (LibTorch's intra-op threads).
  void encode(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
              std::vector<char>& out);
  const CodecSpec& codec() const;
  const LinkCounters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes frames of any codec. Compressed tensors are decoded into buffers it owns and reuses
// (the tensors of one frame are overwritten by the next decode); raw tensors view the frame.
class FrameDecoder {
 public:
  // A frame whose tensors add up to more than max_bytes is refused before anything is
  // allocated: pass the most this rank can legitimately receive.
  explicit FrameDecoder(uint64_t max_bytes = uint64_t(1) << 34);
  ~FrameDecoder();
  FrameDecoder(FrameDecoder&&) noexcept;
  FrameDecoder& operator=(FrameDecoder&&) noexcept;

  // Checks and decodes a frame; throws edgepipe::FrameError naming the defect. zfp chunks and q8
  // blocks are decoded with at::parallel_for.
  Frame decode(const char* data, size_t size);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-off conveniences: a raw frame, and decoding a frame of any codec (its compressed tensors
// get storage of their own).
void encode_frame(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
                  std::vector<char>& out);
Frame decode_frame(const char* data, size_t size);

}  // namespace edgepipe
