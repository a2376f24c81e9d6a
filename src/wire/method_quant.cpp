// The quantising methods: float and double tensors coded at 8, 4 or 2 bits per value, per block
// of kQuantBlock values, each block between its own minimum and maximum (q8) or its own range
// clipped where that lowers its error (q4, q2); TensorMethods q8, q4, q2, with lz4 over them as
// q8_lz4, q4_lz4, q2_lz4. The format is in quant.h. Blocks are independent, so the encoder and
// the decoder code them in parallel (parallel_chunks, one block at a time): the stream does not
// depend on the number of threads.
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

constexpr size_t kParamBytes = 2 * sizeof(float);  // a block's base and scale

// One block's state in the encoder, filled by the thread that coded it.
struct QuantBlock {
  double maxabs = 0;  // largest magnitude
  bool ok = true;     // the quantiser can take its values
  ErrorSums err;
};

// The value a code decodes to; the encoder measures its error with the same expression.
template <typename T>
T quant_value(T lo, T scale, uint32_t q) {
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

// The smallest and largest of n >= 1 values, and whether a quantiser can take them: the policy
// of zfp's lossy modes (no NaN or infinity, nothing within a few binades of the largest value),
// against float's largest also for double tensors, as a block's base and scale are float32. One
// pass of integer minima and maxima (ordered): NaN and infinity fall outside the limit.
template <typename T>
bool quant_range(const T* p, size_t n, T* lo, T* hi) {
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

// A block's base and scale for the range [lo, hi] at `top` + 1 codes: the base as float32,
// rounded down (a double may not be a float), so that x - base >= 0 for x >= lo; the scale 0
// when hi is the base, else at least FLT_MIN, so that 1 / scale is finite.
template <typename T>
void quant_params(T lo, T hi, uint32_t top, float* base, float* scale) {
  float lo_f = static_cast<float>(lo);
  if (static_cast<T>(lo_f) > lo) lo_f = std::nextafter(lo_f, -std::numeric_limits<float>::max());
  const T span = hi - static_cast<T>(lo_f);
  *base = lo_f;
  *scale = span > 0 ? std::max(static_cast<float>(span / static_cast<T>(top)),
                               std::numeric_limits<float>::min())
                    : 0;
}

// q8's codes: (x - base) * inv is in [0, 255] but for rounding, never below 0 (base <= x):
// rounded by adding 0.5 and truncating, and capped in integers (a float clamp would not
// vectorise).
template <typename T>
void q8_codes(const T* x, size_t n, float base_f, float scale, uint8_t* q) {
  const T base = base_f, inv = scale > 0 ? 1 / static_cast<T>(scale) : 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t k = static_cast<int32_t>((x[i] - base) * inv + T(0.5));
    q[i] = static_cast<uint8_t>(k < 255 ? k : 255);
  }
}

// A code of q4 or q2, whose range may be clipped: (x - base) * inv clamped to [0, top] as a
// float first (a clipped value may lie far outside it), then rounded.
template <typename T>
int32_t clipped_code(T x, T base, T inv, T top) {
  // std::max and std::min compile to branch-free min and max instructions, which vectorise.
  return static_cast<int32_t>(std::min(std::max((x - base) * inv + T(0.5), T(0)), top));
}

// The squared error of n values coded with base and scale at B bits (summed in T: it only
// ranks the candidate ranges of one block).
template <unsigned B, typename T>
T clipped_sse(const T* x, size_t n, float base_f, float scale_f) {
  const T base = base_f, scale = scale_f, inv = scale_f > 0 ? 1 / scale : 0, top = T((1u << B) - 1);
  // 8 partial sums, so that the loop is not one chain of dependent additions (and vectorises).
  T part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t k = 0; k < 8; ++k) {
      const T d = base + static_cast<T>(clipped_code(x[i + k], base, inv, top)) * scale - x[i + k];
      part[k] += d * d;
    }
  for (; i < n; ++i) {
    const T d = base + static_cast<T>(clipped_code(x[i], base, inv, top)) * scale - x[i];
    part[0] += d * d;
  }
  T sse = 0;
  for (T p : part) sse += p;
  return sse;
}

// How far from the mean (in standard deviations) q4 and q2 try to clip a block, before its full
// range: about the optimal clips of a Laplace and a normal distribution at each bit width (Banner
// et al. 2019, ACIQ) and wider, as the measured error decides.
constexpr double kClip4[] = {6, 4.5, 3.5, 2.75, 2};
constexpr double kClip2[] = {4, 3, 2.25, 1.75, 1.25};

// The range that q4 or q2 codes a block of n values with: [lo, hi], or mean +- k std inside it
// for the k of smallest squared error (the full range wins ties). Writes the base and scale.
template <unsigned B, typename T>
void clipped_params(const T* x, size_t n, T lo, T hi, float* base, float* scale) {
  constexpr uint32_t top = (1u << B) - 1;
  quant_params(lo, hi, top, base, scale);
  if (*scale == 0 || n < 2) return;
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / double(n);
  for (size_t i = 0; i < n; ++i) sum2 += (x[i] - mean) * (x[i] - mean);
  const double sd = std::sqrt(sum2 / double(n));
  T best = clipped_sse<B>(x, n, *base, *scale);
  for (double k : B == 4 ? kClip4 : kClip2) {
    const T a = static_cast<T>(std::max(double(lo), mean - k * sd));
    const T b = static_cast<T>(std::min(double(hi), mean + k * sd));
    if (!(b > a) || (a == lo && b == hi)) continue;
    float cb = 0, cs = 0;
    quant_params(a, b, top, &cb, &cs);
    const T sse = clipped_sse<B>(x, n, cb, cs);
    if (sse < best) best = sse, *base = cb, *scale = cs;
  }
}

// q4's and q2's codes, packed (quant.h); the last byte's unused bits are 0.
template <unsigned B, typename T>
void packed_codes(const T* x, size_t n, float base_f, float scale, uint8_t* q) {
  constexpr size_t per = 8 / B;
  const T base = base_f, inv = scale > 0 ? 1 / static_cast<T>(scale) : 0, top = T((1u << B) - 1);
  const size_t whole = n / per;
  for (size_t j = 0; j < whole; ++j) {
    uint32_t byte = 0;
    for (size_t k = 0; k < per; ++k)
      byte |= uint32_t(clipped_code(x[j * per + k], base, inv, top)) << (k * B);
    q[j] = static_cast<uint8_t>(byte);
  }
  if (whole * per == n) return;
  uint32_t byte = 0;
  for (size_t k = 0; whole * per + k < n; ++k)
    byte |= uint32_t(clipped_code(x[whole * per + k], base, inv, top)) << (k * B);
  q[whole] = static_cast<uint8_t>(byte);
}

// Code i of a block whose codes start at q.
template <unsigned B>
uint32_t code_at(const uint8_t* q, size_t i) {
  if (B == 8) return q[i];
  constexpr size_t per = 8 / B;
  return (q[i / per] >> ((i % per) * B)) & ((1u << B) - 1);
}

// fn(std::integral_constant<unsigned, B>) for B = bits (8, 4 or 2): the loops above are compiled
// for each bit width.
template <typename F>
auto with_bits(unsigned bits, const F& fn) {
  if (bits == 8) return fn(std::integral_constant<unsigned, 8>{});
  if (bits == 4) return fn(std::integral_constant<unsigned, 4>{});
  return fn(std::integral_constant<unsigned, 2>{});
}

// Codes one block of n values: its base and scale into params (2 floats), its codes into q (the
// block's first byte). Returns false, having written nothing of use, if the values cannot be
// quantised (quant_range).
template <typename T>
bool encode_block(const T* x, size_t n, unsigned bits, char* params, uint8_t* q, double* maxabs) {
  T lo = 0, hi = 0;
  if (!quant_range(x, n, &lo, &hi)) return false;
  *maxabs = std::max(std::fabs(static_cast<double>(lo)), std::fabs(static_cast<double>(hi)));
  float base = 0, scale = 0;
  with_bits(bits, [&](auto b) {
    constexpr unsigned B = decltype(b)::value;
    if constexpr (B == 8) {
      quant_params(lo, hi, 255, &base, &scale);
      q8_codes(x, n, base, scale, q);
    } else {
      clipped_params<B>(x, n, lo, hi, &base, &scale);
      packed_codes<B>(x, n, base, scale, q);
    }
  });
  std::memcpy(params, &base, sizeof base);
  std::memcpy(params + sizeof base, &scale, sizeof scale);
  return true;
}

// A block's base and scale as a frame gives them, in the tensor's dtype.
template <typename T>
void block_params(const char* params, T* lo, T* scale) {
  float p[2];
  std::memcpy(p, params, sizeof p);
  *lo = p[0];
  *scale = p[1];
}

// Whether a block's base and scale decode to finite values only (a corrupt frame's may not).
template <typename T>
bool block_params_ok(const char* params, unsigned bits) {
  T lo = 0, scale = 0;
  block_params(params, &lo, &scale);
  return std::isfinite(lo) && std::isfinite(scale) && scale >= 0 &&
         std::isfinite(quant_value(lo, scale, (1u << bits) - 1));
}

template <typename T>
void decode_block(const char* params, const uint8_t* q, size_t n, unsigned bits, T* out) {
  T lo = 0, scale = 0;
  block_params(params, &lo, &scale);
  with_bits(bits, [&](auto b) {
    constexpr unsigned B = decltype(b)::value;
    for (size_t i = 0; i < n; ++i) out[i] = quant_value(lo, scale, code_at<B>(q, i));
  });
}

// The error of a coded block against its values, without writing the decoded values anywhere.
template <typename T>
ErrorSums block_error_sums(const T* x, const char* params, const uint8_t* q, size_t n,
                           unsigned bits) {
  T lo = 0, scale = 0;
  block_params(params, &lo, &scale);
  return with_bits(bits, [&](auto b) {
    constexpr unsigned B = decltype(b)::value;
    return error_sums_of(x, n, [&](size_t i) { return quant_value(lo, scale, code_at<B>(q, i)); });
  });
}

class QuantCoder : public TensorCoder {
 public:
  QuantCoder(unsigned bits, const char* name) : bits_(bits), name_(name) {}
  bool encode(EncodeJob& job, MethodStream* out) override;
  ErrorSums measure(const EncodeJob& job, const char* stream) override;
  void validate(const DescCheck& c) const override;
  at::Tensor decode(const DecodeJob& job) override;

 private:
  // fn(block, its index, its first value, its value count) for every block of `values`, in
  // parallel.
  template <typename F>
  void each_block(uint64_t values, const F& fn) {
    parallel_chunks(static_cast<uint32_t>(quant_blocks_of(values)), [&](uint32_t b) {
      const uint64_t first = b * kQuantBlock;
      fn(blocks_[b], b, first, static_cast<size_t>(std::min(kQuantBlock, values - first)));
    });
  }
  // Where the codes of the block starting at value `first` begin (kQuantBlock is a multiple of 8,
  // so every block starts on a byte).
  size_t code_byte(uint64_t first) const { return static_cast<size_t>(first * bits_ / 8); }

  unsigned bits_;
  const char* name_;
  std::vector<QuantBlock> blocks_;  // per block of the tensor being encoded
};

bool QuantCoder::encode(EncodeJob& job, MethodStream* out) {
  const at::Tensor& t = job.tensor;
  const uint64_t values = static_cast<uint64_t>(t.numel());
  const size_t bytes = quant_stream_bytes(values, bits_);
  out->bytes = bytes;
  // The stream straight into the frame, or, for lz4 over it, into the scratch buffer; none when
  // it would not shrink the tensor (a value or two).
  char* stream = job.place(bytes);
  if (!stream) return true;
  const uint64_t blocks = quant_blocks_of(values);
  if (blocks_.size() < blocks) blocks_.resize(blocks);
  auto* codes = reinterpret_cast<uint8_t*>(stream + blocks * kParamBytes);
  const bool is_float = t.scalar_type() == at::kFloat;
  const void* src = t.data_ptr();
  each_block(values, [&](QuantBlock& q, uint32_t b, uint64_t first, size_t n) {
    char* params = stream + b * kParamBytes;
    uint8_t* c = codes + code_byte(first);
    q.ok =
        is_float
            ? encode_block(static_cast<const float*>(src) + first, n, bits_, params, c, &q.maxabs)
            : encode_block(static_cast<const double*>(src) + first, n, bits_, params, c, &q.maxabs);
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
  const auto* codes =
      reinterpret_cast<const uint8_t*>(stream + quant_blocks_of(values) * kParamBytes);
  const bool is_float = t.scalar_type() == at::kFloat;
  const void* src = t.data_ptr();
  each_block(values, [&](QuantBlock& q, uint32_t b, uint64_t first, size_t count) {
    const char* params = stream + b * kParamBytes;
    const uint8_t* c = codes + code_byte(first);
    q.err =
        is_float
            ? block_error_sums(static_cast<const float*>(src) + first, params, c, count, bits_)
            : block_error_sums(static_cast<const double*>(src) + first, params, c, count, bits_);
  });
  ErrorSums sums;  // added in block order: the same for any number of threads
  for (uint64_t b = 0; b < quant_blocks_of(values); ++b) sums.add(blocks_[b].err);
  return sums;
}

// Each block's base and scale are checked before it is decoded; here, the sizes.
void QuantCoder::validate(const DescCheck& c) const {
  const TensorDesc& d = c.desc;
  check_float_dtype(c, name_);
  EP_CHECK_AS(FrameError,
              d.zfp_mode == 0 && d.zfp_dims == 0 && d.zfp_param == 0 && d.zfp_n[0] == 0 &&
                  d.zfp_n[1] == 0 && d.zfp_n[2] == 0,
              "frame tensor ", c.tensor, " is ", name_, "-encoded but has zfp parameters");
  const uint64_t want = quant_stream_bytes(c.values, bits_);
  EP_CHECK_AS(FrameError, d.stream_bytes == want, "frame tensor ", c.tensor, ": its ", name_,
              " stream claims ", d.stream_bytes, " bytes, but its ", c.values, " values make ",
              want);
  check_stream_counts(c, name_);
}

at::Tensor QuantCoder::decode(const DecodeJob& job) {
  at::Tensor t = job.output();
  const char* stream = job.stream();
  // Every block's base and scale, then the blocks in parallel. Any code is valid.
  const bool is_float = job.meta.dtype == c10::ScalarType::Float;
  const uint64_t values = static_cast<uint64_t>(t.numel()), blocks = quant_blocks_of(values);
  for (uint64_t b = 0; b < blocks; ++b) {
    const char* params = stream + b * kParamBytes;
    EP_CHECK_AS(
        FrameError,
        is_float ? block_params_ok<float>(params, bits_) : block_params_ok<double>(params, bits_),
        "frame tensor ", job.tensor, ": its ", name_, " block ", b, " of ", blocks,
        " has a bad minimum or scale (not finite, negative, or overflowing)");
  }
  const auto* codes = reinterpret_cast<const uint8_t*>(stream + blocks * kParamBytes);
  void* out = t.data_ptr();
  parallel_chunks(static_cast<uint32_t>(blocks), [&](uint32_t b) {
    const uint64_t first = b * kQuantBlock;
    const size_t n = static_cast<size_t>(std::min(kQuantBlock, values - first));
    const char* params = stream + b * kParamBytes;
    const uint8_t* c = codes + code_byte(first);
    if (is_float)
      decode_block(params, c, n, bits_, static_cast<float*>(out) + first);
    else
      decode_block(params, c, n, bits_, static_cast<double*>(out) + first);
  });
  return t;
}

}  // namespace

bool q8_serves(const CodecSpec& codec) { return codec.kind == CodecKind::q8; }
bool q4_serves(const CodecSpec& codec) { return codec.kind == CodecKind::q4; }
bool q2_serves(const CodecSpec& codec) { return codec.kind == CodecKind::q2; }

std::unique_ptr<TensorCoder> make_q8_coder(const MethodOptions&) {
  return std::make_unique<QuantCoder>(8, "q8");
}
std::unique_ptr<TensorCoder> make_q4_coder(const MethodOptions&) {
  return std::make_unique<QuantCoder>(4, "q4");
}
std::unique_ptr<TensorCoder> make_q2_coder(const MethodOptions&) {
  return std::make_unique<QuantCoder>(2, "q2");
}

}  // namespace edgepipe
