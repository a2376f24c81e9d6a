// q8: float and double tensors quantised to a byte per value, per block of kQ8Block values
// between the block's own minimum and maximum (TensorMethod q8; q8_lz4 with lz4 over it). The
// format is in quant.h. Blocks are independent, so the encoder and the decoder code them in
// parallel (parallel_chunks, one block at a time): the stream does not depend on the number of
// threads.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/quant.h"
#include "method.h"
#include "parallel_chunks.h"

namespace edgepipe {

namespace {

constexpr size_t kParamBytes = 2 * sizeof(float);  // a block's minimum and scale

uint64_t q8_blocks_of(uint64_t values) { return (values + kQ8Block - 1) / kQ8Block; }

// One q8 block's state in the encoder, filled by the thread that coded it.
struct Q8Block {
  double maxabs = 0;  // largest magnitude
  bool ok = true;     // q8 can take its values
  ErrorSums err;
};

// The value a code decodes to; the encoder measures its error with the same expression.
template <typename T>
T q8_value(T lo, T scale, uint8_t q) {
  return lo + static_cast<T>(q) * scale;
}

// Floats as integers that order as the floats do: sign and magnitude to two's complement (-0
// and +0 are both 0; NaN lies beyond infinity, at either end). Integer minima and maxima
// vectorise, where float ones do not without -ffast-math (with NaN, their result depends on the
// order of the values).
template <typename T>
using OrderedInt = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

template <typename T>
OrderedInt<T> ordered(T x) {
  using I = OrderedInt<T>;
  I bits;
  std::memcpy(&bits, &x, sizeof bits);
  const I magnitude = bits & std::numeric_limits<I>::max();
  return bits < 0 ? -magnitude : magnitude;
}

template <typename T>
T from_ordered(OrderedInt<T> k) {
  using I = OrderedInt<T>;
  const I bits = k < 0 ? (-k) | std::numeric_limits<I>::min() : k;
  T x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// The smallest and largest of n >= 1 values, and whether q8 can take them: the policy of zfp's
// lossy modes (no NaN or infinity, nothing within a few binades of the largest value), against
// float's largest also for double tensors, as a block's minimum and scale are float32. One pass
// of integer minima and maxima (ordered): NaN and infinity fall outside the limit.
template <typename T>
bool q8_range(const T* p, size_t n, T* lo, T* hi) {
  using I = OrderedInt<T>;
  I kmin = std::numeric_limits<I>::max(), kmax = std::numeric_limits<I>::min();
  for (size_t i = 0; i < n; ++i) {
    const I k = ordered(p[i]);
    kmin = std::min(kmin, k);
    kmax = std::max(kmax, k);
  }
  const I limit =
      ordered(static_cast<T>(std::ldexp(double(std::numeric_limits<float>::max()), -8)));
  *lo = from_ordered<T>(kmin);
  *hi = from_ordered<T>(kmax);
  return kmin >= -limit && kmax <= limit;
}

// Codes one block of n values: its minimum and scale into params (2 floats), its codes into q.
// Returns false, having written nothing of use, if q8 cannot take the values (q8_range).
template <typename T>
bool q8_encode_block(const T* x, size_t n, char* params, uint8_t* q, double* maxabs) {
  T lo = 0, hi = 0;
  if (!q8_range(x, n, &lo, &hi)) return false;
  *maxabs = std::max(std::fabs(static_cast<double>(lo)), std::fabs(static_cast<double>(hi)));
  // lo as float32, rounded down (a double's minimum may not be a float), so that x - lo >= 0.
  float lo_f = static_cast<float>(lo);
  if (static_cast<T>(lo_f) > lo) lo_f = std::nextafter(lo_f, -std::numeric_limits<float>::max());
  // The scale: 0 when every value is lo; else at least FLT_MIN, so that 1 / scale is finite
  // (the error bound, scale / 2, is then below 6e-39).
  const T span = hi - static_cast<T>(lo_f);
  const float scale =
      span > 0 ? std::max(static_cast<float>(span / 255), std::numeric_limits<float>::min()) : 0;
  std::memcpy(params, &lo_f, sizeof lo_f);
  std::memcpy(params + sizeof lo_f, &scale, sizeof scale);
  // (x - base) * inv is in [0, 255] but for rounding, never below 0 (base <= x): rounded by
  // adding 0.5 and truncating, and capped in integers (a float clamp would not vectorise).
  const T base = lo_f, inv = scale > 0 ? 1 / static_cast<T>(scale) : 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t k = static_cast<int32_t>((x[i] - base) * inv + T(0.5));
    q[i] = static_cast<uint8_t>(k < 255 ? k : 255);
  }
  return true;
}

// A block's minimum and scale as a frame gives them, in the tensor's dtype.
template <typename T>
void q8_params(const char* params, T* lo, T* scale) {
  float p[2];
  std::memcpy(p, params, sizeof p);
  *lo = p[0];
  *scale = p[1];
}

// Whether a block's minimum and scale decode to finite values only (a corrupt frame's may not).
template <typename T>
bool q8_params_ok(const char* params) {
  T lo = 0, scale = 0;
  q8_params(params, &lo, &scale);
  return std::isfinite(lo) && std::isfinite(scale) && scale >= 0 &&
         std::isfinite(q8_value(lo, scale, 255));
}

template <typename T>
void q8_decode_block(const char* params, const uint8_t* q, size_t n, T* out) {
  T lo = 0, scale = 0;
  q8_params(params, &lo, &scale);
  for (size_t i = 0; i < n; ++i) out[i] = q8_value(lo, scale, q[i]);
}

// The error of a coded block against its values, without writing the decoded values anywhere.
template <typename T>
ErrorSums q8_error_sums(const T* x, const char* params, const uint8_t* q, size_t n) {
  T lo = 0, scale = 0;
  q8_params(params, &lo, &scale);
  return error_sums_of(x, n, [&](size_t i) { return q8_value(lo, scale, q[i]); });
}

class QuantCoder : public TensorCoder {
 public:
  bool encode(EncodeJob& job, MethodStream* out) override;
  ErrorSums measure(const EncodeJob& job, const char* stream) override;
  void validate(const DescCheck& c) const override;
  at::Tensor decode(const DecodeJob& job) override;

 private:
  // fn(block, its index, its first value, its value count) for every block of `values`, in
  // parallel.
  template <typename F>
  void each_block(uint64_t values, const F& fn) {
    parallel_chunks(static_cast<uint32_t>(q8_blocks_of(values)), [&](uint32_t b) {
      const uint64_t first = b * kQ8Block;
      fn(blocks_[b], b, first, static_cast<size_t>(std::min(kQ8Block, values - first)));
    });
  }

  std::vector<Q8Block> blocks_;  // per block of the tensor being encoded
};

bool QuantCoder::encode(EncodeJob& job, MethodStream* out) {
  const at::Tensor& t = job.tensor;
  const uint64_t values = static_cast<uint64_t>(t.numel());
  const size_t bytes = q8_stream_bytes(values);
  out->bytes = bytes;
  // The stream straight into the frame, or, for lz4 over it, into the scratch buffer; none when
  // it would not shrink the tensor (a value or two).
  char* stream = job.place(bytes);
  if (!stream) return true;
  const uint64_t blocks = q8_blocks_of(values);
  if (blocks_.size() < blocks) blocks_.resize(blocks);
  auto* codes = reinterpret_cast<uint8_t*>(stream + blocks * kParamBytes);
  const bool is_float = t.scalar_type() == at::kFloat;
  const void* src = t.data_ptr();
  each_block(values, [&](Q8Block& q, uint32_t b, uint64_t first, size_t n) {
    char* params = stream + b * kParamBytes;
    q.ok = is_float ? q8_encode_block(static_cast<const float*>(src) + first, n, params,
                                      codes + first, &q.maxabs)
                    : q8_encode_block(static_cast<const double*>(src) + first, n, params,
                                      codes + first, &q.maxabs);
  });
  job.maxabs = 0;
  for (uint64_t b = 0; b < blocks; ++b) {
    if (!blocks_[b].ok) return false;
    job.maxabs = std::max(job.maxabs, blocks_[b].maxabs);
  }
  out->data = stream;
  job.desc.stream_bytes = bytes;
  return true;
}

// The error of the codes against the values, block by block, in parallel.
ErrorSums QuantCoder::measure(const EncodeJob& job, const char* stream) {
  const at::Tensor& t = job.tensor;
  const uint64_t values = static_cast<uint64_t>(t.numel());
  const auto* codes = reinterpret_cast<const uint8_t*>(stream + q8_blocks_of(values) * kParamBytes);
  const bool is_float = t.scalar_type() == at::kFloat;
  const void* src = t.data_ptr();
  each_block(values, [&](Q8Block& q, uint32_t b, uint64_t first, size_t count) {
    const char* params = stream + b * kParamBytes;
    q.err =
        is_float
            ? q8_error_sums(static_cast<const float*>(src) + first, params, codes + first, count)
            : q8_error_sums(static_cast<const double*>(src) + first, params, codes + first, count);
  });
  ErrorSums sums;  // added in block order: the same for any number of threads
  for (uint64_t b = 0; b < q8_blocks_of(values); ++b) sums.add(blocks_[b].err);
  return sums;
}

// Each block's minimum and scale are checked before it is decoded; here, the sizes.
void QuantCoder::validate(const DescCheck& c) const {
  const TensorDesc& d = c.desc;
  check_float_dtype(c, "q8");
  EP_CHECK_AS(FrameError,
              d.zfp_mode == 0 && d.zfp_dims == 0 && d.zfp_param == 0 && d.zfp_n[0] == 0 &&
                  d.zfp_n[1] == 0 && d.zfp_n[2] == 0,
              "frame tensor ", c.tensor, " is q8-encoded but has zfp parameters");
  EP_CHECK_AS(FrameError, d.stream_bytes == q8_stream_bytes(c.values), "frame tensor ", c.tensor,
              ": its q8 stream ", "claims ", d.stream_bytes, " bytes, but its ", c.values,
              " values make ", q8_stream_bytes(c.values));
  check_stream_counts(c, "q8");
}

at::Tensor QuantCoder::decode(const DecodeJob& job) {
  at::Tensor t = job.output();
  const char* stream = job.stream();
  // Every block's minimum and scale, then the blocks in parallel. Any code is valid.
  const bool is_float = job.meta.dtype == c10::ScalarType::Float;
  const uint64_t values = static_cast<uint64_t>(t.numel()), blocks = q8_blocks_of(values);
  for (uint64_t b = 0; b < blocks; ++b) {
    const char* params = stream + b * kParamBytes;
    EP_CHECK_AS(FrameError, is_float ? q8_params_ok<float>(params) : q8_params_ok<double>(params),
                "frame tensor ", job.tensor, ": its q8 block ", b, " of ", blocks,
                " has a bad minimum or scale (not finite, negative, or overflowing)");
  }
  const auto* codes = reinterpret_cast<const uint8_t*>(stream + blocks * kParamBytes);
  void* out = t.data_ptr();
  parallel_chunks(static_cast<uint32_t>(blocks), [&](uint32_t b) {
    const uint64_t first = b * kQ8Block;
    const size_t n = static_cast<size_t>(std::min(kQ8Block, values - first));
    const char* params = stream + b * kParamBytes;
    if (is_float)
      q8_decode_block(params, codes + first, n, static_cast<float*>(out) + first);
    else
      q8_decode_block(params, codes + first, n, static_cast<double*>(out) + first);
  });
  return t;
}

}  // namespace

bool q8_serves(const CodecSpec& codec) { return codec.kind == CodecKind::q8; }

std::unique_ptr<TensorCoder> make_q8_coder(const MethodOptions&) {
  return std::make_unique<QuantCoder>();
}

}  // namespace edgepipe
