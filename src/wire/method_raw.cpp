// raw: a tensor's bytes as they are (TensorMethod raw), or lz4 over them (TensorMethod lz4): what
// every codec but raw sends tensors in that its method cannot take (other dtypes, NaN).
#include <ATen/ops/from_blob.h>

#include "edgepipe/base/error.h"
#include "method.h"
#include "method_lz4.h"

namespace edgepipe {

namespace {

class RawCoder : public TensorCoder {
 public:
  // The stream is the tensor's bytes, where they are: nothing to code.
  bool encode(EncodeJob& job, MethodStream* out) override {
    out->data = static_cast<const char*>(job.tensor.data_ptr());
    out->bytes = job.tensor.nbytes();
    return true;
  }

  void validate(const DescCheck& c) const override {
    const TensorDesc& d = c.desc;
    if (!c.lz4) {
      EP_CHECK_AS(FrameError, d.encoded_bytes == d.raw_bytes, "frame tensor ", c.tensor,
                  " is raw but claims ", d.encoded_bytes, " encoded bytes for ", d.raw_bytes,
                  " raw");
      return;
    }
    EP_CHECK_AS(FrameError,
                d.encoded_bytes > 0 && d.encoded_bytes < d.raw_bytes && lz4_fits(d.raw_bytes),
                "frame tensor ", c.tensor, ": lz4 claims ", d.encoded_bytes, " bytes for ",
                d.raw_bytes, " raw");
  }

  at::Tensor decode(const DecodeJob& job) override {
    if (!job.lz4)  // from_blob does not copy: the tensor views the caller's buffer
      return at::from_blob(const_cast<char*>(job.payload), job.meta.shape,
                           at::TensorOptions().dtype(job.meta.dtype));
    at::Tensor t = job.output();
    lz4_decode_exact(job.payload, job.desc.encoded_bytes, static_cast<char*>(t.data_ptr()),
                     job.desc.raw_bytes, job.tensor, nullptr);
    return t;
  }
};

}  // namespace

std::unique_ptr<TensorCoder> make_raw_coder(const MethodOptions&) {
  return std::make_unique<RawCoder>();
}

}  // namespace edgepipe
