// method: the interface between the frame engine (frame_encoder.cpp, frame_decoder.cpp: header,
// descriptors, checksum, sizes, the walk over a frame's tensors) and the methods that code one
// tensor's values into a stream (method_raw.cpp, method_zfp.cpp, method_quant.cpp: q8, q4, q2). lz4
// over a method's stream is the engine's (method_lz4.cpp), so each method has two TensorMethods:
// its stream as it is, and lz4 over it (raw's are `raw` and `lz4`).
//
// Adding a method: a file that implements TensorCoder, and its entry in kMethods
// (method_table.cpp).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "edgepipe/wire/codec_spec.h"
#include "edgepipe/wire/frame_layout.h"
#include "edgepipe/wire/tensor_meta.h"
#include "error_sums.h"

namespace edgepipe {

// Options of a FrameEncoder that its methods use (FrameEncoder's constructor says what they do).
struct MethodOptions {
  int zfp_max_dims = 0;
  size_t zfp_chunk_bytes = 0;
};

// A method's stream as its encoder left it: `bytes` at `data`, or data null when a stream of
// that size would not be sent (EncodeJob::place).
struct MethodStream {
  const char* data = nullptr;
  size_t bytes = 0;
};

// One tensor for a method's encoder.
struct EncodeJob {
  const at::Tensor& tensor;      // contiguous
  const CodecSpec& codec;        // the link's
  bool lz4;                      // lz4 goes over the stream when its size allows it
  char* frame_dst;               // the tensor's payload in the frame: room for its raw bytes
  std::vector<char>& scratch;    // the engine's buffer for a stream that lz4 goes over
  TensorDesc& desc;              // the method fills its own fields (zfp_*, stream_bytes)
  std::vector<uint64_t>& table;  // chunk sizes, appended (zfp)
  double maxabs = 0;             // the method sets it: the largest magnitude (for the error)

  // Where to write a stream of `bytes`: the scratch buffer when lz4 goes over it, else the
  // frame when it is smaller than the tensor, else null (it would not be sent).
  char* place(size_t bytes);
};

// The checks of one tensor's descriptor that are its method's, made before anything is
// allocated or decoded. `values`: the tensor's value count (its shape, checked).
struct DescCheck {
  const TensorDesc& desc;
  const TensorMeta& meta;
  const char* table;  // its chunk sizes in the frame (desc.zfp_chunks of them, in bounds)
  uint32_t tensor;    // its index in the frame, for messages
  uint64_t values;
  bool lz4;  // desc.method is the method's lz4 one
};

// What a decoder keeps from frame to frame for its methods: an output tensor per tensor
// position and the buffer that lz4 decodes a stream into. Grown, never shrunk.
struct DecodeBuffers {
  std::vector<at::Tensor> pool;  // decoded compressed tensors, by position in the frame
  std::vector<char> joined;      // a stream under lz4, decoded

  // Tensor i's output, of meta's dtype and shape, in the pool.
  at::Tensor output(size_t i, const TensorMeta& meta);
};

// One tensor for a method's decoder; its descriptor passed the method's checks.
struct DecodeJob {
  const TensorDesc& desc;
  const TensorMeta& meta;
  const char* table;  // its chunk sizes in the frame
  uint32_t tensor;
  const char* payload;  // desc.encoded_bytes, in the frame
  bool lz4;             // the payload is lz4 over the stream
  DecodeBuffers& buffers;
  const char* name;  // the method's, for messages

  at::Tensor output() const { return buffers.output(tensor, meta); }
  // The method's stream: the payload, or what lz4 makes of it (into buffers.joined).
  const char* stream() const;
};

// A way of coding a tensor's values. FrameEncoder and FrameDecoder own one of each (MethodEntry
// ::make), kept from frame to frame with whatever state the method reuses.
class TensorCoder {
 public:
  virtual ~TensorCoder() = default;

  // The chunk-table entries the encoder will write for t under `codec` if t goes through this
  // method: room in the descriptors, reserved before the payloads are coded.
  virtual size_t planned_table(const at::Tensor& t, const CodecSpec& codec) const {
    (void)t;
    (void)codec;
    return 0;
  }
  // Codes job.tensor into a stream at job.place(bytes) (or says where it is) and fills its
  // descriptor fields. False if the method cannot take the values (NaN, infinity, too large).
  virtual bool encode(EncodeJob& job, MethodStream* out) = 0;
  // The error of what encode() coded (called once it is known to be sent; stream: where it is).
  virtual ErrorSums measure(const EncodeJob& job, const char* stream) {
    (void)job;
    (void)stream;
    return {};
  }
  // Checks the method's fields of a descriptor; throws FrameError naming the defect.
  virtual void validate(const DescCheck& c) const = 0;
  // Decodes one tensor.
  virtual at::Tensor decode(const DecodeJob& job) = 0;
};

// One method: its names in frames and messages, and how to make its coder.
struct MethodEntry {
  const char* name;  // in messages: "zfp" -> "inconsistent zfp byte counts"
  TensorMethod plain, over_lz4;
  bool chunked;                            // its descriptors carry a chunk table (zfp)
  bool (*serves)(const CodecSpec& codec);  // sends a link's float tensors through it (raw: null)
  size_t (*table_bound)(const TensorMeta& m);  // the most chunk-table entries any encoder writes
  std::unique_ptr<TensorCoder> (*make)(const MethodOptions& options);
};

// The methods, one file each.
std::unique_ptr<TensorCoder> make_raw_coder(const MethodOptions& options);
bool zfp_serves(const CodecSpec& codec);
size_t zfp_table_bound(const TensorMeta& m);
std::unique_ptr<TensorCoder> make_zfp_coder(const MethodOptions& options);
bool q8_serves(const CodecSpec& codec);
std::unique_ptr<TensorCoder> make_q8_coder(const MethodOptions& options);
bool q4_serves(const CodecSpec& codec);
std::unique_ptr<TensorCoder> make_q4_coder(const MethodOptions& options);
bool q2_serves(const CodecSpec& codec);
std::unique_ptr<TensorCoder> make_q2_coder(const MethodOptions& options);

// Every method; kMethods[0] is raw, the engine's fallback (method_table.cpp).
extern const MethodEntry kMethods[];
extern const size_t kMethodCount;

// The method whose plain or lz4 TensorMethod is `method`, null if none.
const MethodEntry* method_of(uint8_t method);

// One coder of every method, in kMethods's order.
std::vector<std::unique_ptr<TensorCoder>> make_coders(const MethodOptions& options);

// The float types zfp and the quantising methods take (float32, float64).
bool is_float_type(c10::ScalarType t);

// Shared checks of a descriptor, throwing FrameError (messages name tensor c.tensor):
// the tensor is float or double (else "of dtype X claims to be NAME-encoded");
void check_float_dtype(const DescCheck& c, const char* name);
// the encoded and stream byte counts agree with each other, the raw bytes and lz4.
void check_stream_counts(const DescCheck& c, const char* name);

}  // namespace edgepipe
