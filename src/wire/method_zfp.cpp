// zfp: float and double tensors through zfp 1.0 in any mode (TensorMethod zfp; zfp_lz4 with lz4
// over it), as independent chunks (zfp_field.h) coded in parallel. The descriptor records the
// mode, the parameter used, the field and each chunk's stream bytes.
#include <ATen/ops/empty.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "edgepipe/base/error.h"
#include "method.h"
#include "parallel_chunks.h"
#include "zfp_stream.h"

namespace edgepipe {

namespace {

// Largest magnitude, and whether zfp can take the values, in one pass: not NaN or infinity,
// which zfp cannot encode, and for lossy modes not within a few binades of the type's largest
// value, where zfp's rounding can overflow to infinity (reversible mode is exact everywhere).
template <typename T>
bool scan(const T* p, size_t n, bool lossy, double* maxabs) {
  T m = 0;
  int bad = 0;
  const T big = std::numeric_limits<T>::max();
  for (size_t i = 0; i < n; ++i) {
    T a = std::fabs(p[i]);
    bad |= !(a <= big);
    m = std::max(m, a);
  }
  *maxabs = static_cast<double>(m);
  const T limit = lossy ? std::ldexp(big, -8) : big;
  return !bad && m <= limit;
}

// One zfp chunk's state: its own zfp stream and scratch buffer, so that chunks can be coded on
// different threads at once, and what its thread found. Encoder and decoder keep one per chunk,
// growing to the most chunks seen and reused.
struct ZfpChunk {
  ZfpStream zfp;
  size_t bound = 0;   // the most bytes its stream can have
  size_t bytes = 0;   // its stream's bytes
  size_t offset = 0;  // where its stream starts among the tensor's chunk streams
  size_t used = 0;    // decoding: stream bytes consumed, 0 on failure
  double maxabs = 0;  // encoding: largest magnitude, and whether zfp can take the values
  bool ok = true;
  ErrorSums err;
};

// A descriptor's zfp field (its dimensions checked).
ZfpField field_of(const TensorDesc& d) {
  ZfpField field;
  field.dims = d.zfp_dims;
  for (int k = 0; k < 3; ++k) field.n[k] = d.zfp_n[k] ? d.zfp_n[k] : 1;
  return field;
}

uint64_t chunk_size(const char* table, uint32_t k) {
  uint64_t b = 0;
  std::memcpy(&b, table + k * sizeof b, sizeof b);
  return b;
}

class ZfpCoder : public TensorCoder {
 public:
  explicit ZfpCoder(const MethodOptions& o) : options_(o) {}

  size_t planned_table(const at::Tensor& t, const CodecSpec& codec) const override {
    if (!codec.is_zfp() || zfp_type_of(t.scalar_type()) == zfp_type_none || t.nbytes() == 0)
      return 0;
    return zfp_chunks_of(zfp_field_of(t.sizes(), field_dims(codec)), t.element_size(),
                         options_.zfp_chunk_bytes)
        .count;
  }

  bool encode(EncodeJob& job, MethodStream* out) override;
  ErrorSums measure(const EncodeJob& job, const char* stream) override;
  void validate(const DescCheck& c) const override;
  at::Tensor decode(const DecodeJob& job) override;

 private:
  // The zfp field's dimensions for this codec. Measured (docs/codecs.md): for a given error
  // bound, zfp's accuracy mode compresses 2-D fields further than 3-D ones (it keeps more bit
  // planes in 3-D to guarantee the bound); at a given rate, 3-D fields have the smaller error.
  int field_dims(const CodecSpec& codec) const {
    return options_.zfp_max_dims > 0                      ? options_.zfp_max_dims
           : zfp_mode_of(codec.kind) == ZfpMode::accuracy ? 2
                                                          : 3;
  }
  // fn(chunk, its field, its first value) for every chunk of the tensor being coded, in parallel.
  template <typename F>
  void each_chunk(const F& fn) {
    parallel_chunks(chunks_.count, [&](uint32_t k) {
      uint64_t first = 0;
      const ZfpField cf = zfp_chunk_field(field_, chunks_, k, &first);
      fn(state_[k], cf, first);
    });
  }
  // The largest magnitude over the chunks, false if zfp cannot take one of them.
  bool scan_chunks(const at::Tensor& t, bool lossy, double* maxabs);

  MethodOptions options_;
  std::vector<ZfpChunk> state_;  // per chunk of the tensor being coded
  ZfpField field_;               // of the tensor being coded
  ZfpChunks chunks_;
  at::Tensor check_;  // the encoder's own decode of a lossy tensor, to measure its error
};

bool ZfpCoder::scan_chunks(const at::Tensor& t, bool lossy, double* maxabs) {
  const bool is_float = t.scalar_type() == at::kFloat;
  const char* src = static_cast<const char*>(t.data_ptr());
  each_chunk([&](ZfpChunk& c, const ZfpField& cf, uint64_t first) {
    const size_t n = cf.n[0] * cf.n[1] * cf.n[2];
    c.ok = is_float ? scan(reinterpret_cast<const float*>(src) + first, n, lossy, &c.maxabs)
                    : scan(reinterpret_cast<const double*>(src) + first, n, lossy, &c.maxabs);
  });
  *maxabs = 0;
  for (uint32_t k = 0; k < chunks_.count; ++k) {
    if (!state_[k].ok) return false;
    *maxabs = std::max(*maxabs, state_[k].maxabs);
  }
  return true;
}

bool ZfpCoder::encode(EncodeJob& job, MethodStream* out) {
  const at::Tensor& t = job.tensor;
  const size_t vbytes = t.element_size();
  char* src = static_cast<char*>(t.data_ptr());
  const zfp_type type = zfp_type_of(t.scalar_type());
  const ZfpMode mode = zfp_mode_of(job.codec.kind);
  field_ = zfp_field_of(t.sizes(), field_dims(job.codec));
  chunks_ = zfp_chunks_of(field_, vbytes, options_.zfp_chunk_bytes);
  if (state_.size() < chunks_.count) state_.resize(chunks_.count);

  // Can zfp take the values, and their largest magnitude (for zfp-relacc's bound)?
  if (!scan_chunks(t, job.codec.lossy(), &job.maxabs)) return false;
  double param = job.codec.param;
  if (job.codec.kind == CodecKind::zfp_relacc) param = job.codec.param * job.maxabs;
  if (mode == ZfpMode::reversible) param = 0;

  // Each chunk into its own stream, in its own scratch buffer.
  each_chunk([&](ZfpChunk& c, const ZfpField& cf, uint64_t first) {
    c.bound = c.zfp.configure(type, cf, mode, param, src + first * vbytes);
    c.zfp.reserve(c.bound);
    c.bytes = c.zfp.compress();
  });
  size_t zbytes = 0;
  for (uint32_t k = 0; k < chunks_.count; ++k) {
    ZfpChunk& c = state_[k];
    EP_CHECK(c.bytes <= c.bound, "internal: zfp wrote ", c.bytes, " bytes, more than its bound ",
             c.bound);
    c.offset = zbytes;
    zbytes += c.bytes;
  }
  out->bytes = zbytes;
  char* to = job.place(zbytes);
  if (!to) return true;  // not sent: the engine sends the tensor raw
  parallel_chunks(chunks_.count, [&](uint32_t k) {
    std::memcpy(to + state_[k].offset, state_[k].zfp.scratch(), state_[k].bytes);
  });
  out->data = to;
  TensorDesc& d = job.desc;
  d.zfp_mode = static_cast<uint8_t>(mode);
  d.zfp_param = param;
  d.zfp_dims = static_cast<uint8_t>(field_.dims);
  for (int k = 0; k < 3; ++k) d.zfp_n[k] = k < field_.dims ? field_.n[k] : 0;
  d.stream_bytes = zbytes;
  d.zfp_chunks = static_cast<uint16_t>(chunks_.count);
  for (uint32_t k = 0; k < chunks_.count; ++k) job.table.push_back(state_[k].bytes);
  return true;
}

// Decodes what was encoded (in parallel too) and measures its error.
ErrorSums ZfpCoder::measure(const EncodeJob& job, const char*) {
  const at::Tensor& t = job.tensor;
  const bool is_float = t.scalar_type() == at::kFloat;
  const size_t vbytes = t.element_size();
  const char* src = static_cast<const char*>(t.data_ptr());
  if (!check_.defined() || check_.scalar_type() != t.scalar_type() || check_.numel() < t.numel())
    check_ = at::empty({t.numel()}, t.options());
  char* out = static_cast<char*>(check_.data_ptr());
  each_chunk([&](ZfpChunk& c, const ZfpField& cf, uint64_t first) {
    const size_t values = cf.n[0] * cf.n[1] * cf.n[2];
    c.used = c.zfp.decompress(out + first * vbytes);
    const auto sums = [&](auto* x, auto* y) {
      return error_sums_of(x + first, values, [&](size_t i) { return y[first + i]; });
    };
    c.err = is_float ? sums(reinterpret_cast<const float*>(src), reinterpret_cast<float*>(out))
                     : sums(reinterpret_cast<const double*>(src), reinterpret_cast<double*>(out));
  });
  ErrorSums sums;  // added in chunk order: the same for any number of threads
  for (uint32_t k = 0; k < chunks_.count; ++k) {
    EP_CHECK(state_[k].used > 0, "zfp failed to decode its own stream");
    sums.add(state_[k].err);
  }
  return sums;
}

void ZfpCoder::validate(const DescCheck& c) const {
  const TensorDesc& d = c.desc;
  const uint32_t i = c.tensor;
  const auto mode = static_cast<ZfpMode>(d.zfp_mode);
  check_float_dtype(c, "zfp");
  EP_CHECK_AS(FrameError, zfp_param_ok(mode, d.zfp_param), "frame tensor ", i,
              " has a bad zfp mode ", int(d.zfp_mode), " or parameter ", d.zfp_param);
  EP_CHECK_AS(FrameError, d.zfp_dims >= 1 && d.zfp_dims <= 3, "frame tensor ", i,
              " has a zfp field of ", int(d.zfp_dims), " dimensions");
  uint64_t n = 1;
  for (int k = 0; k < 3; ++k) {
    const uint64_t nk = d.zfp_n[k];
    EP_CHECK_AS(FrameError, k < d.zfp_dims ? nk >= 1 && nk <= (uint64_t(1) << 48) : nk == 0,
                "frame tensor ", i, " has a bad zfp field dimension ", nk);
    if (k < d.zfp_dims) n = n <= (uint64_t(1) << 48) / nk ? n * nk : ~uint64_t(0);
  }
  EP_CHECK_AS(FrameError, n == c.values, "frame tensor ", i,
              ": its zfp field does not match its shape");
  const ZfpField field = field_of(d);
  ZfpChunks cs;
  EP_CHECK_AS(FrameError, zfp_chunk_count_ok(zfp_layers_of(field), d.zfp_chunks, &cs),
              "frame tensor ", i, ": bad zfp chunk count ", d.zfp_chunks, " for a field of ",
              zfp_layers_of(field), " block layers");
  check_stream_counts(c, "zfp");
  // Each chunk's bound is checked before it is decoded; here, that the sizes add up.
  uint64_t sum = 0;
  for (uint32_t k = 0; k < cs.count; ++k) {
    const uint64_t b = chunk_size(c.table, k);
    EP_CHECK_AS(FrameError, b > 0 && b <= d.stream_bytes - sum, "frame tensor ", i, ": zfp chunk ",
                k, " claims ", b, " bytes, more than the stream's ", d.stream_bytes);
    sum += b;
  }
  EP_CHECK_AS(FrameError, sum == d.stream_bytes, "frame tensor ", i, ": its zfp chunks add up to ",
              sum, " bytes but its stream has ", d.stream_bytes);
}

at::Tensor ZfpCoder::decode(const DecodeJob& job) {
  const TensorDesc& d = job.desc;
  at::Tensor t = job.output();
  field_ = field_of(d);
  zfp_chunk_count_ok(zfp_layers_of(field_), d.zfp_chunks, &chunks_);  // checked by validate()
  if (state_.size() < chunks_.count) state_.resize(chunks_.count);
  // Every chunk's stream against the most its slab and mode allow, then room for it; only then
  // is lz4 undone into a buffer of the stream's size (which the chunks add up to, validate()):
  // a forged stream size cannot make the decoder allocate more than the field allows.
  const zfp_type type = zfp_type_of(job.meta.dtype);
  const size_t vbytes = c10::elementSize(job.meta.dtype);
  size_t offset_in = 0;
  for (uint32_t k = 0; k < chunks_.count; ++k) {
    ZfpChunk& c = state_[k];
    uint64_t first = 0;
    const ZfpField cf = zfp_chunk_field(field_, chunks_, k, &first);
    c.bytes = chunk_size(job.table, k);
    c.bound = c.zfp.configure(type, cf, static_cast<ZfpMode>(d.zfp_mode), d.zfp_param, nullptr);
    EP_CHECK_AS(FrameError, c.bytes <= c.bound, "frame tensor ", job.tensor, ": its zfp chunk ", k,
                " has ", c.bytes, " bytes, more than its field and mode allow (", c.bound, ")");
    c.zfp.reserve(c.bound);
    c.offset = offset_in;
    offset_in += c.bytes;
  }
  const char* streams = job.stream();
  // Copy each stream into its chunk's scratch (padded to its bound) and decode it into its
  // slab of the tensor, chunks in parallel. The bit stream may read on past the stream's end
  // into the scratch buffer (never past it: see ZfpStream::configure); a stream that did is
  // corrupt.
  char* out = static_cast<char*>(t.data_ptr());
  each_chunk([&](ZfpChunk& c, const ZfpField&, uint64_t first) {
    std::memcpy(c.zfp.scratch(), streams + c.offset, c.bytes);
    c.used = c.zfp.decompress(out + first * vbytes);
  });
  for (uint32_t k = 0; k < chunks_.count; ++k)
    EP_CHECK_AS(FrameError, state_[k].used > 0 && state_[k].used <= (state_[k].bytes + 7) / 8 * 8,
                "frame tensor ", job.tensor, ": its zfp stream is corrupt (chunk ", k, " of ",
                chunks_.count, ")");
  return t;
}

}  // namespace

bool zfp_serves(const CodecSpec& codec) { return codec.is_zfp(); }

// The most chunks any encoder can give a tensor of this dtype and shape.
size_t zfp_table_bound(const TensorMeta& m) {
  if (zfp_type_of(m.dtype) == zfp_type_none || m.bytes() == 0) return 0;
  uint64_t layers = 1;
  for (int dims = 1; dims <= 3; ++dims)
    layers = std::max(layers, zfp_layers_of(zfp_field_of(m.shape, dims)));
  return static_cast<size_t>(std::min<uint64_t>(layers, kMaxZfpChunks));
}

std::unique_ptr<TensorCoder> make_zfp_coder(const MethodOptions& options) {
  return std::make_unique<ZfpCoder>(options);
}

}  // namespace edgepipe
