// frame_layout: the bytes of a frame (format version kFrameVersion, frame.h), as the frame engine
// writes and checks them. Shared by the engine (src/wire/frame_*.cpp), the codec tests and the
// fuzz target, so that tools which damage or forge frames on purpose compute every offset from
// these structs, never from numbers of their own.
//
// A frame is a FrameHeader, then per tensor a TensorDesc followed by its ndim int64 dims and its
// zfp_chunks uint64 chunk sizes, padded to kFrameAlign; then one payload per tensor, each
// starting on a kFrameAlign boundary. All fields are little-endian (the machines edgepipe runs
// on).
#pragma once
#include <cstddef>
#include <cstdint>

namespace edgepipe {

constexpr uint32_t kFrameMagic = 0x52465045;  // "EPFR" little-endian
constexpr size_t kFrameAlign = 64;            // descriptors and payloads start on these bounds
constexpr size_t kMaxFrameTensors = 1024;
constexpr size_t kMaxTensorDims = 16;

// zfp's mode as a frame records it, per tensor.
enum class ZfpMode : uint8_t { none = 0, reversible = 1, rate = 2, precision = 3, accuracy = 4 };

#pragma pack(push, 1)
struct FrameHeader {
  uint32_t magic;
  uint16_t version;
  uint8_t codec;      // CodecKind of the link
  uint8_t codec_lz4;  // 1: the link's codec is a zfp mode + lz4
  uint32_t flags;
  uint32_t num_tensors;
  uint64_t seq;
  uint64_t payload_bytes;  // from the first payload's start to the frame's end
  uint32_t frame_crc32;    // frame_checksum(): the whole frame, this field taken as 0
  uint32_t reserved;
  double codec_param;  // the link's codec parameter (each tensor records what it used)
};
struct TensorDesc {
  uint8_t dtype;
  uint8_t ndim;
  uint8_t method;    // TensorMethod
  uint8_t zfp_mode;  // ZfpMode (zfp methods only)
  uint8_t zfp_dims;  // 1..3
  uint8_t reserved;
  uint16_t zfp_chunks;  // zfp methods: the chunks of the stream (ZfpChunks), else 0
  double zfp_param;     // rate (bits/value), precision (bit planes) or absolute tolerance used
  uint64_t zfp_n[3];    // zfp field dimensions, fastest first
  uint64_t raw_bytes;
  uint64_t encoded_bytes;  // bytes in the payload
  uint64_t stream_bytes;   // the zfp stream's bytes (its chunks' sum) or the q8 stream's, before
                           // lz4 for zfp_lz4 and q8_lz4
  // followed by ndim int64 dims, then zfp_chunks uint64 byte counts, one per chunk, in order
};
#pragma pack(pop)
static_assert(sizeof(FrameHeader) == 48 && sizeof(TensorDesc) == 64, "frame layout changed");

// Where the fields are, from the frame's start (header) or from a descriptor's start.
constexpr size_t kHeaderSeqAt = offsetof(FrameHeader, seq);
constexpr size_t kHeaderFlagsAt = offsetof(FrameHeader, flags);
constexpr size_t kHeaderPayloadBytesAt = offsetof(FrameHeader, payload_bytes);
constexpr size_t kHeaderCrcAt = offsetof(FrameHeader, frame_crc32);
constexpr size_t kFirstDescAt = sizeof(FrameHeader);  // tensor 0's descriptor
constexpr size_t kDescDimsAt = sizeof(TensorDesc);    // a descriptor's dims follow it

constexpr size_t frame_align_up(size_t n) {
  return (n + kFrameAlign - 1) / kFrameAlign * kFrameAlign;
}

// The checksum a frame's header must hold: CRC-32 (zlib) of the whole frame, header, descriptors
// and payloads, with the checksum field taken as 0 (so no field can change unseen; computed in
// parallel for large frames). 0 if the frame is shorter than a header.
uint32_t frame_checksum(const char* frame, size_t size);

}  // namespace edgepipe
