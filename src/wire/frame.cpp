#include "edgepipe/wire/frame.h"

#include <ATen/Parallel.h>
#include <lz4.h>
#include <zfp.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {

constexpr uint32_t kMagic = 0x52465045;  // "EPFR" little-endian
constexpr size_t kAlign = 64;
constexpr size_t kMaxTensors = 1024;
constexpr size_t kMaxDims = 16;

// zfp's mode as a frame records it, per tensor.
enum class ZfpMode : uint8_t { none = 0, reversible = 1, rate = 2, precision = 3, accuracy = 4 };

#pragma pack(push, 1)
struct Header {
  uint32_t magic;
  uint16_t version;
  uint8_t codec;      // CodecKind of the link
  uint8_t codec_lz4;  // 1: the link's codec is a zfp mode + lz4
  uint32_t flags;
  uint32_t num_tensors;
  uint64_t seq;
  uint64_t payload_bytes;  // from the first payload's start to the frame's end
  uint32_t payload_crc32;
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
static_assert(sizeof(Header) == 48 && sizeof(TensorDesc) == 64, "frame layout changed");

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

zfp_type zfp_type_of(c10::ScalarType t) {
  return t == c10::ScalarType::Float    ? zfp_type_float
         : t == c10::ScalarType::Double ? zfp_type_double
                                        : zfp_type_none;
}

// ---- zfp chunks ---------------------------------------------------------------------------
// A chunk is a slab of the field's slowest axis: a contiguous range of the tensor's values, and
// a zfp field of its own (the same dimensions, fewer rows).

uint64_t rows_of(const ZfpField& f) { return f.n[f.dims - 1]; }
uint64_t values_per_row(const ZfpField& f) {
  uint64_t v = 1;
  for (int k = 0; k + 1 < f.dims; ++k) v *= f.n[k];
  return v;
}
uint64_t layers_of(const ZfpField& f) { return (rows_of(f) + 3) / 4; }

// The chunks a frame's count makes: `count` slabs of ceil(layers / count) layers, the last one
// taking the rest. A count is valid when every slab gets at least one layer: the decoder derives
// the layout from the count alone, so the encoder only ever writes valid counts.
bool chunk_count_ok(uint64_t layers, uint64_t count, ZfpChunks* c) {
  if (count < 1 || count > kMaxZfpChunks || count > layers) return false;
  const uint64_t per = (layers + count - 1) / count;
  if ((layers + per - 1) / per != count) return false;
  c->count = static_cast<uint32_t>(count);
  c->layers = per;
  return true;
}

// Chunk k of field f: its own field, and the index of its first value in the tensor.
ZfpField chunk_field(const ZfpField& f, const ZfpChunks& c, uint32_t k, uint64_t* first) {
  const uint64_t rows = rows_of(f), r0 = uint64_t(k) * c.layers * 4;
  ZfpField cf = f;
  cf.n[f.dims - 1] = std::min(rows, r0 + c.layers * 4) - r0;
  *first = r0 * values_per_row(f);
  return cf;
}

// Runs fn(k) for every chunk k < count on LibTorch's intra-op threads (at::parallel_for; as many
// as at::set_num_threads allows), each thread taking the next chunk when it finishes one: a
// thread that the OS preempts (a shared machine, more ranks than cores) holds up at most the
// chunk it is on, not a fixed share of them. With one thread, or inside a parallel region, the
// chunks run in order on the calling thread. (codec.cpp is compiled with OpenMP, LibTorch's
// parallel backend here: without it, at::parallel_for's inline OpenMP code runs serially.)
template <typename F>
void parallel_chunks(uint32_t count, const F& fn) {
  const int64_t threads = std::min<int64_t>(count, at::get_num_threads());
  if (threads <= 1 || at::in_parallel_region()) {
    for (uint32_t k = 0; k < count; ++k) fn(k);
    return;
  }
  std::atomic<uint32_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (uint32_t k = next++; k < count; k = next++) fn(k);
  });
}

// The most chunks any encoder can give a tensor of this dtype and shape (frame_bound).
size_t max_chunks_of(const TensorMeta& m) {
  if (zfp_type_of(m.dtype) == zfp_type_none || m.bytes() == 0) return 0;
  uint64_t layers = 1;
  for (int dims = 1; dims <= 3; ++dims)
    layers = std::max(layers, layers_of(zfp_field_of(m.shape, dims)));
  return static_cast<size_t>(std::min<uint64_t>(layers, kMaxZfpChunks));
}

size_t descriptors_size(const std::vector<TensorMeta>& metas) {
  size_t n = sizeof(Header);
  for (const auto& m : metas)
    n += sizeof(TensorDesc) + (m.shape.size() + max_chunks_of(m)) * sizeof(int64_t);
  return align_up(n);
}

bool known_dtype(uint8_t d) {
  switch (static_cast<c10::ScalarType>(d)) {
    case c10::ScalarType::Float:
    case c10::ScalarType::Double:
    case c10::ScalarType::Half:
    case c10::ScalarType::BFloat16:
    case c10::ScalarType::Long:
    case c10::ScalarType::Int:
    case c10::ScalarType::Short:
    case c10::ScalarType::Char:
    case c10::ScalarType::Byte:
    case c10::ScalarType::Bool:
      return true;
    default:
      return false;
  }
}

uint32_t crc32_serial(const char* p, size_t n) {
  // zlib's crc32 is several times faster than a byte-wise table; it takes uInt-sized pieces.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt piece = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), piece);
    p += piece;
    n -= piece;
  }
  return static_cast<uint32_t>(crc);
}

// The same CRC-32, computed on pieces of at least 256 KiB in parallel (parallel_chunks) and
// combined with zlib's crc32_combine: the same value for any number of threads.
// zlib's crc32 ran at 2.5-4 GB/s on one core here (bench_codecs prints it): 1-2 ms for a 5 MB
// raw frame, a few tenths of a ms for the same frame at 4x.
uint32_t crc32_of(const char* p, size_t n) {
  constexpr size_t kPiece = size_t(256) << 10, kMaxPieces = 64;
  const size_t pieces = std::min(kMaxPieces, n / kPiece);
  if (pieces <= 1 || at::get_num_threads() <= 1) return crc32_serial(p, n);
  const size_t len = n / pieces;  // the last piece takes the rest
  uint32_t crcs[kMaxPieces];
  parallel_chunks(static_cast<uint32_t>(pieces), [&](uint32_t k) {
    const size_t from = k * len;
    crcs[k] = crc32_serial(p + from, k + 1 == pieces ? n - from : len);
  });
  uLong crc = crcs[0];
  for (size_t k = 1; k < pieces; ++k)
    crc = crc32_combine(crc, crcs[k], static_cast<z_off_t>(k + 1 == pieces ? n - k * len : len));
  return static_cast<uint32_t>(crc);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// ---- zfp ----------------------------------------------------------------------------------

// zfp's stream, field and bit stream each need their own owner: closing a zfp_stream does not
// close its bit stream.
struct ZfpStreamCloser {
  void operator()(zfp_stream* z) const { zfp_stream_close(z); }
};
struct ZfpFieldFreer {
  void operator()(zfp_field* f) const { zfp_field_free(f); }
};
struct BitStreamCloser {
  void operator()(bitstream* b) const { stream_close(b); }
};
using ZfpStreamPtr = std::unique_ptr<zfp_stream, ZfpStreamCloser>;
using ZfpFieldPtr = std::unique_ptr<zfp_field, ZfpFieldFreer>;
using BitStreamPtr = std::unique_ptr<bitstream, BitStreamCloser>;

ZfpMode zfp_mode_of(CodecKind k) {
  switch (k) {
    case CodecKind::zfp_reversible:
      return ZfpMode::reversible;
    case CodecKind::zfp_rate:
      return ZfpMode::rate;
    case CodecKind::zfp_precision:
      return ZfpMode::precision;
    case CodecKind::zfp_accuracy:
    case CodecKind::zfp_relacc:
      return ZfpMode::accuracy;
    default:
      return ZfpMode::none;
  }
}

bool zfp_param_ok(ZfpMode mode, double p) {
  switch (mode) {
    case ZfpMode::reversible:
      return p == 0;
    case ZfpMode::rate:
      return p > 0 && p <= 64;
    case ZfpMode::precision:
      return p >= 1 && p <= 64 && p == std::floor(p);
    case ZfpMode::accuracy:
      return p >= 0 && std::isfinite(p);
    default:
      return false;
  }
}

// One zfp stream and field, configured per tensor, over a scratch buffer that the bit stream
// writes to (encoding) or reads from (decoding). The buffer only grows, so once warm nothing is
// allocated.
class Zfp {
 public:
  Zfp() : zfp_(zfp_stream_open(nullptr)), field_(zfp_field_alloc()) {
    EP_CHECK(zfp_ && field_, "out of memory opening a zfp stream");
  }

  // Configures stream and field for a tensor and returns the most bytes a stream of this field
  // and mode can hold: every block is capped at the bits zfp can ever need for it, so neither
  // the encoder nor the decoder (even of a corrupt stream) touches more.
  size_t configure(zfp_type type, const ZfpField& f, ZfpMode mode, double param, void* data) {
    zfp_field_set_type(field_.get(), type);
    zfp_field_set_pointer(field_.get(), data);
    if (f.dims == 1) zfp_field_set_size_1d(field_.get(), f.n[0]);
    if (f.dims == 2) zfp_field_set_size_2d(field_.get(), f.n[0], f.n[1]);
    if (f.dims == 3) zfp_field_set_size_3d(field_.get(), f.n[0], f.n[1], f.n[2]);
    const unsigned values = 1u << (2 * f.dims);
    switch (mode) {
      case ZfpMode::reversible:
        zfp_stream_set_reversible(zfp_.get());
        break;
      case ZfpMode::rate:
        zfp_stream_set_rate(zfp_.get(), param, type, static_cast<unsigned>(f.dims), zfp_false);
        break;
      case ZfpMode::precision:
        zfp_stream_set_precision(zfp_.get(), static_cast<unsigned>(param));
        break;
      case ZfpMode::accuracy:
        zfp_stream_set_accuracy(zfp_.get(), param);
        break;
      default:
        EP_FAIL("internal: no zfp mode");
    }
    unsigned minbits = 0, maxbits = 0, maxprec = 0;
    int minexp = 0;
    zfp_stream_params(zfp_.get(), &minbits, &maxbits, &maxprec, &minexp);
    // zfp 1.0's own per-block bound (zfp_stream_maximum_size, reversible case, which is the
    // larger): header bits + group tests + every bit plane of every value.
    const unsigned prec = type == zfp_type_float ? 32 : 64;
    const unsigned cap = (type == zfp_type_float ? 15 : 19) + values - 1 + values * prec;
    if (maxbits > cap) {
      maxbits = cap;
      minbits = std::min(minbits, cap);
      EP_CHECK(zfp_stream_set_params(zfp_.get(), minbits, maxbits, maxprec, minexp),
               "zfp rejected its parameters");
    }
    uint64_t blocks = 1;
    for (int d = 0; d < f.dims; ++d) blocks *= (f.n[d] + 3) / 4;
    const uint64_t words = (blocks * maxbits + 63) / 64;
    return static_cast<size_t>(words * 8);
  }

  // Makes the scratch buffer hold at least `bytes` plus a word of slack for zfp's read-ahead.
  void reserve(size_t bytes) {
    const size_t words = bytes / 8 + 2;
    if (words <= scratch_.size() && bits_) return;
    scratch_.assign(std::max(words, scratch_.size()), 0);
    bits_.reset(stream_open(scratch_.data(), scratch_.size() * 8));
    EP_CHECK(bits_, "out of memory opening a zfp bit stream");
    zfp_stream_set_bit_stream(zfp_.get(), bits_.get());
  }

  char* scratch() { return reinterpret_cast<char*>(scratch_.data()); }

  size_t compress() {
    zfp_stream_rewind(zfp_.get());
    size_t n = zfp_compress(zfp_.get(), field_.get());
    EP_CHECK(n > 0, "zfp failed to compress a tensor");
    return n;
  }

  // Returns the bytes of stream consumed (rounded up to words), 0 on failure.
  size_t decompress(void* out) {
    zfp_field_set_pointer(field_.get(), out);
    zfp_stream_rewind(zfp_.get());
    return zfp_decompress(zfp_.get(), field_.get());
  }

 private:
  ZfpStreamPtr zfp_;
  ZfpFieldPtr field_;
  BitStreamPtr bits_;
  std::vector<uint64_t> scratch_;  // words: zfp reads and writes 64-bit words
};

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

// Squared error, squared reference and largest error of a decoded range against the original.
struct ErrorSums {
  double e2 = 0, r2 = 0, emax = 0;
};

template <typename T>
ErrorSums error_sums(const T* x, const T* y, size_t n) {
  ErrorSums s;
  for (size_t i = 0; i < n; ++i) {
    const double xi = static_cast<double>(x[i]);
    const double d = static_cast<double>(y[i]) - xi;
    s.e2 += d * d;
    s.r2 += xi * xi;
    s.emax = std::max(s.emax, std::fabs(d));
  }
  return s;
}

void add_error(const ErrorSums& s, double maxabs, LinkCounters& c) {
  const double e2 = s.e2, r2 = s.r2, emax = s.emax;
  c.lossy_tensors += 1;
  c.error_max_rel = std::max(c.error_max_rel, maxabs > 0 ? emax / maxabs : (emax > 0 ? 1.0 : 0));
  c.error_max_rel_l2 =
      std::max(c.error_max_rel_l2, r2 > 0 ? std::sqrt(e2 / r2) : (e2 > 0 ? 1.0 : 0));
  c.error_sq += e2;
  c.ref_sq += r2;
}

// One zfp chunk's state: its own zfp stream and scratch buffer, so that chunks can be coded on
// different threads at once, and what its thread found. Encoder and decoder keep one per chunk,
// growing to the most chunks seen and reused.
struct ZfpChunk {
  Zfp zfp;
  size_t bound = 0;   // the most bytes its stream can have
  size_t bytes = 0;   // its stream's bytes
  size_t offset = 0;  // where its stream starts among the tensor's chunk streams
  size_t used = 0;    // decoding: stream bytes consumed, 0 on failure
  double maxabs = 0;  // encoding: largest magnitude, and whether zfp can take the values
  bool ok = true;
  ErrorSums err;
};

// ---- q8 -----------------------------------------------------------------------------------
// The format is in codec.h (kQ8Block). Blocks are independent, so the encoder and the decoder
// code them in parallel (parallel_chunks, one block at a time): the stream does not depend on
// the number of threads.

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

// The smallest and largest of n >= 1 values, and whether q8 can take them: the policy of scan()
// for zfp's lossy modes (no NaN or infinity, nothing within a few binades of the largest value),
// against float's largest also for double tensors, as a block's minimum and scale are float32.
// One pass of integer minima and maxima (ordered): NaN and infinity fall outside the limit.
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
  ErrorSums s;
  for (size_t i = 0; i < n; ++i) {
    const double xi = static_cast<double>(x[i]);
    const double d = static_cast<double>(q8_value(lo, scale, q[i])) - xi;
    s.e2 += d * d;
    s.r2 += xi * xi;
    s.emax = std::max(s.emax, std::fabs(d));
  }
  return s;
}

// lz4 takes int sizes.
bool lz4_fits(size_t n) { return n <= static_cast<size_t>(LZ4_MAX_INPUT_SIZE); }

// lz4-compresses n bytes into dst if the result is smaller than `capacity`; 0 if it is not.
size_t lz4_into(const char* src, size_t n, char* dst, size_t capacity) {
  if (n == 0 || !lz4_fits(n) || capacity == 0) return 0;
  int cap = static_cast<int>(std::min(capacity, n) - 1);
  if (cap <= 0) return 0;
  int r = LZ4_compress_default(src, dst, static_cast<int>(n), cap);
  return r > 0 ? static_cast<size_t>(r) : 0;
}

// Undoes lz4 over a tensor's zfp or q8 stream (`over` names which): into `joined`, grown to the
// stream's size and reused; returns the stream.
const char* lz4_stream(const char* src, const TensorDesc& d, std::vector<char>& joined,
                       uint32_t tensor, const char* over) {
  if (joined.size() < d.stream_bytes) joined.resize(d.stream_bytes);
  int r = LZ4_decompress_safe(src, joined.data(), static_cast<int>(d.encoded_bytes),
                              static_cast<int>(d.stream_bytes));
  EP_CHECK(r >= 0 && static_cast<uint64_t>(r) == d.stream_bytes, "frame tensor ", tensor,
           ": its lz4 data (over ", over, ") is corrupt");
  return joined.data();
}

void fill_header(Header& h, const CodecSpec& codec, uint64_t seq, uint32_t flags, uint32_t count) {
  h = Header{};
  h.magic = kMagic;
  h.version = kFrameVersion;
  h.codec = static_cast<uint8_t>(codec.kind);
  h.codec_lz4 = codec.lz4 ? 1 : 0;
  h.codec_param = codec.param;
  h.flags = flags;
  h.num_tensors = count;
  h.seq = seq;
}

}  // namespace

int64_t TensorMeta::bytes() const {
  int64_t n = static_cast<int64_t>(c10::elementSize(dtype));
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<TensorMeta> metas_of(const std::vector<at::Tensor>& tensors) {
  std::vector<TensorMeta> metas;
  for (const auto& t : tensors) metas.push_back({t.scalar_type(), t.sizes().vec()});
  return metas;
}

size_t frame_bound(const std::vector<TensorMeta>& metas) {
  size_t n = descriptors_size(metas);
  for (const auto& m : metas) n += align_up(static_cast<size_t>(m.bytes()));
  return n;
}

ZfpField zfp_field_of(c10::IntArrayRef shape, int max_dims) {
  EP_CHECK(max_dims >= 1 && max_dims <= 3, "a zfp field has 1 to 3 dimensions, not ", max_dims);
  // Axes, slowest first, in a fixed array: this runs for every tensor of every frame.
  uint64_t d[kMaxDims + 1];
  size_t n = 0;
  for (int64_t s : shape)
    if (s != 1 && n < kMaxDims) d[n++] = static_cast<uint64_t>(s);
  if (n == 0) d[n++] = 1;
  auto merge = [&](size_t i) {  // axes i and i + 1 become one
    d[i] *= d[i + 1];
    for (size_t k = i + 1; k + 1 < n; ++k) d[k] = d[k + 1];
    --n;
  };
  // A zfp block spans 4 values along every axis: an axis shorter than that would be mostly
  // padding, so merge it into its slower neighbour (or the faster one if it is the slowest).
  for (size_t i = n; i-- > 0 && n > 1;) {
    if (d[i] >= 4) continue;
    merge(i > 0 ? i - 1 : 0);
  }
  while (n > static_cast<size_t>(max_dims)) merge(0);
  // Partial blocks are padded: a 14x14 map is 16x16 to zfp, which costs a fixed-rate stream 31%
  // more bits. When the map as one axis (196 = 49 blocks) pads much less, use that.
  auto padded = [](uint64_t v) {
    return static_cast<double>((v + 3) / 4 * 4) / static_cast<double>(v);
  };
  if (n == 3 && padded(d[1]) * padded(d[2]) > 1.1 * padded(d[1] * d[2])) merge(1);
  ZfpField f;
  f.dims = static_cast<int>(n);
  for (size_t k = 0; k < n; ++k) f.n[k] = d[n - 1 - k];
  return f;
}

ZfpChunks zfp_chunks_of(const ZfpField& f, size_t value_bytes, size_t chunk_bytes) {
  if (chunk_bytes == 0) chunk_bytes = kZfpChunkBytes;
  const uint64_t layers = layers_of(f);
  const uint64_t layer_bytes = 4 * values_per_row(f) * value_bytes;
  // Whole layers of about chunk_bytes each, at most kMaxZfpChunks chunks.
  const uint64_t per =
      std::max<uint64_t>({uint64_t(1), (chunk_bytes + layer_bytes / 2) / layer_bytes,
                          (layers + kMaxZfpChunks - 1) / kMaxZfpChunks});
  ZfpChunks c;
  for (uint64_t count = (layers + per - 1) / per; !chunk_count_ok(layers, count, &c);) --count;
  return c;
}

// ---- encoder ------------------------------------------------------------------------------

struct FrameEncoder::Impl {
  CodecSpec codec;
  int error_every = 8;       // measure the error of the tensors of one frame in this many
  uint64_t frames_seen = 0;  // frames with tensors encoded so far
  bool measure_now = false;  // this frame's turn
  int zfp_max_dims = 0;
  size_t zfp_chunk_bytes = 0;
  LinkCounters counters;
  std::vector<ZfpChunk> chunks;    // zfp state per chunk of the tensor being encoded
  std::vector<Q8Block> q8_blocks;  // q8 state per block of the tensor being encoded
  std::vector<char> joined;  // a tensor's zfp chunk streams end to end or its q8 stream, for lz4
  at::Tensor check;          // the encoder's own decode of a lossy tensor, to measure its error
  std::vector<at::Tensor> contiguous;
  std::vector<TensorDesc> descs;      // this frame's descriptors
  std::vector<uint64_t> chunk_bytes;  // this frame's zfp chunk sizes, all tensors in order

  // The zfp field's dimensions for this codec. Measured (docs/codecs.md): for a given error
  // bound, zfp's accuracy mode compresses 2-D fields further than 3-D ones (it keeps more bit
  // planes in 3-D to guarantee the bound); at a given rate, 3-D fields have the smaller error.
  int field_dims() const {
    return zfp_max_dims > 0 ? zfp_max_dims : zfp_mode_of(codec.kind) == ZfpMode::accuracy ? 2 : 3;
  }
  // The chunks tensor t would be sent in if it goes through zfp, else 0.
  size_t planned_chunks(const at::Tensor& t) const {
    if (!codec.is_zfp() || zfp_type_of(t.scalar_type()) == zfp_type_none || t.nbytes() == 0)
      return 0;
    return zfp_chunks_of(zfp_field_of(t.sizes(), field_dims()), t.element_size(), zfp_chunk_bytes)
        .count;
  }

  // Encodes tensor t into dst (room for its raw bytes) and fills d (and chunk_bytes); returns
  // the bytes written.
  size_t encode_tensor(const at::Tensor& t, char* dst, TensorDesc& d);
  // zfp: 0 if zfp did not shrink t, -1 if zfp cannot take its values (NaN, infinity, too big).
  int64_t encode_zfp(const at::Tensor& t, zfp_type type, char* dst, TensorDesc& d);
  // q8 (float or double t): the same.
  int64_t encode_q8(const at::Tensor& t, char* dst, TensorDesc& d);
};

int64_t FrameEncoder::Impl::encode_zfp(const at::Tensor& t, zfp_type type, char* dst,
                                       TensorDesc& d) {
  const size_t raw = t.nbytes(), vbytes = t.element_size();
  char* src = static_cast<char*>(t.data_ptr());
  const ZfpMode mode = zfp_mode_of(codec.kind);
  const ZfpField f = zfp_field_of(t.sizes(), field_dims());
  const ZfpChunks cs = zfp_chunks_of(f, vbytes, zfp_chunk_bytes);
  if (chunks.size() < cs.count) chunks.resize(cs.count);
  const auto each_chunk = [&](auto&& fn) {  // fn(chunk, its field, its first value), in parallel
    parallel_chunks(cs.count, [&](uint32_t k) {
      uint64_t first = 0;
      const ZfpField cf = chunk_field(f, cs, k, &first);
      fn(chunks[k], cf, first);
    });
  };

  // Can zfp take the values, and their largest magnitude (for zfp-relacc's bound)?
  each_chunk([&](ZfpChunk& c, const ZfpField& cf, uint64_t first) {
    const size_t n = cf.n[0] * cf.n[1] * cf.n[2];
    c.ok = type == zfp_type_float
               ? scan(reinterpret_cast<const float*>(src) + first, n, codec.lossy(), &c.maxabs)
               : scan(reinterpret_cast<const double*>(src) + first, n, codec.lossy(), &c.maxabs);
  });
  double maxabs = 0;
  for (uint32_t k = 0; k < cs.count; ++k) {
    if (!chunks[k].ok) return -1;
    maxabs = std::max(maxabs, chunks[k].maxabs);
  }
  double param = codec.param;
  if (codec.kind == CodecKind::zfp_relacc) param = codec.param * maxabs;
  if (mode == ZfpMode::reversible) param = 0;

  // Each chunk into its own stream, in its own scratch buffer.
  each_chunk([&](ZfpChunk& c, const ZfpField& cf, uint64_t first) {
    c.bound = c.zfp.configure(type, cf, mode, param, src + first * vbytes);
    c.zfp.reserve(c.bound);
    c.bytes = c.zfp.compress();
  });
  size_t zbytes = 0;
  for (uint32_t k = 0; k < cs.count; ++k) {
    ZfpChunk& c = chunks[k];
    EP_CHECK(c.bytes <= c.bound, "internal: zfp wrote ", c.bytes, " bytes, more than its bound ",
             c.bound);
    c.offset = zbytes;
    zbytes += c.bytes;
  }
  const auto copy_streams = [&](char* to) {
    parallel_chunks(cs.count, [&](uint32_t k) {
      std::memcpy(to + chunks[k].offset, chunks[k].zfp.scratch(), chunks[k].bytes);
    });
  };
  size_t n = 0;
  if (codec.lz4 && lz4_fits(zbytes)) {
    if (joined.size() < zbytes) joined.resize(zbytes);
    copy_streams(joined.data());
    if ((n = lz4_into(joined.data(), zbytes, dst, std::min(zbytes, raw))) > 0)
      d.method = static_cast<uint8_t>(TensorMethod::zfp_lz4);
  }
  if (n == 0 && zbytes < raw) {
    copy_streams(dst);
    n = zbytes;
    d.method = static_cast<uint8_t>(TensorMethod::zfp);
  }
  if (n == 0) return 0;  // zfp did not shrink it
  d.zfp_mode = static_cast<uint8_t>(mode);
  d.zfp_param = param;
  d.zfp_dims = static_cast<uint8_t>(f.dims);
  for (int k = 0; k < 3; ++k) d.zfp_n[k] = k < f.dims ? f.n[k] : 0;
  d.stream_bytes = zbytes;
  d.zfp_chunks = static_cast<uint16_t>(cs.count);
  for (uint32_t k = 0; k < cs.count; ++k) chunk_bytes.push_back(chunks[k].bytes);

  if (codec.lossy() && measure_now) {
    // Decode what was encoded (in parallel too) and measure its error.
    const auto t0 = std::chrono::steady_clock::now();
    if (!check.defined() || check.scalar_type() != t.scalar_type() || check.numel() < t.numel())
      check = at::empty({t.numel()}, t.options());
    char* out = static_cast<char*>(check.data_ptr());
    each_chunk([&](ZfpChunk& c, const ZfpField& cf, uint64_t first) {
      const size_t values = cf.n[0] * cf.n[1] * cf.n[2];
      c.used = c.zfp.decompress(out + first * vbytes);
      c.err = type == zfp_type_float
                  ? error_sums(reinterpret_cast<const float*>(src) + first,
                               reinterpret_cast<const float*>(out) + first, values)
                  : error_sums(reinterpret_cast<const double*>(src) + first,
                               reinterpret_cast<const double*>(out) + first, values);
    });
    ErrorSums sums;  // added in chunk order: the same for any number of threads
    for (uint32_t k = 0; k < cs.count; ++k) {
      EP_CHECK(chunks[k].used > 0, "zfp failed to decode its own stream");
      sums.e2 += chunks[k].err.e2;
      sums.r2 += chunks[k].err.r2;
      sums.emax = std::max(sums.emax, chunks[k].err.emax);
    }
    add_error(sums, maxabs, counters);
    counters.time_error += seconds_since(t0);
  }
  return static_cast<int64_t>(n);
}

int64_t FrameEncoder::Impl::encode_q8(const at::Tensor& t, char* dst, TensorDesc& d) {
  const size_t raw = t.nbytes();
  const uint64_t values = static_cast<uint64_t>(t.numel());
  const size_t bytes = q8_stream_bytes(values);
  if (!codec.lz4 && bytes >= raw) return 0;  // a value or two: q8 would not shrink it
  // The stream straight into the frame, or, for lz4 over it, into the scratch buffer.
  char* stream = dst;
  if (codec.lz4) {
    if (joined.size() < bytes) joined.resize(bytes);
    stream = joined.data();
  }
  const uint64_t blocks = q8_blocks_of(values);
  if (q8_blocks.size() < blocks) q8_blocks.resize(blocks);
  auto* codes = reinterpret_cast<uint8_t*>(stream + blocks * 2 * sizeof(float));
  const bool is_float = t.scalar_type() == at::kFloat;
  const void* src = t.data_ptr();
  // fn(block, its index, its first value, its value count) for every block, in parallel.
  const auto each_block = [&](auto&& fn) {
    parallel_chunks(static_cast<uint32_t>(blocks), [&](uint32_t b) {
      const uint64_t first = b * kQ8Block;
      fn(q8_blocks[b], b, first, static_cast<size_t>(std::min(kQ8Block, values - first)));
    });
  };
  each_block([&](Q8Block& q, uint32_t b, uint64_t first, size_t n) {
    char* params = stream + b * 2 * sizeof(float);
    q.ok = is_float ? q8_encode_block(static_cast<const float*>(src) + first, n, params,
                                      codes + first, &q.maxabs)
                    : q8_encode_block(static_cast<const double*>(src) + first, n, params,
                                      codes + first, &q.maxabs);
  });
  double maxabs = 0;
  for (uint64_t b = 0; b < blocks; ++b) {
    if (!q8_blocks[b].ok) return -1;
    maxabs = std::max(maxabs, q8_blocks[b].maxabs);
  }
  size_t n = 0;
  if (codec.lz4 && lz4_fits(bytes) && (n = lz4_into(stream, bytes, dst, std::min(bytes, raw))) > 0)
    d.method = static_cast<uint8_t>(TensorMethod::q8_lz4);
  if (n == 0 && bytes < raw) {
    if (stream != dst) std::memcpy(dst, stream, bytes);
    n = bytes;
    d.method = static_cast<uint8_t>(TensorMethod::q8);
  }
  if (n == 0) return 0;  // q8 + lz4 did not shrink it
  d.stream_bytes = bytes;

  if (measure_now) {
    // The error of the codes against the values, block by block, in parallel.
    const auto t0 = std::chrono::steady_clock::now();
    each_block([&](Q8Block& q, uint32_t b, uint64_t first, size_t count) {
      const char* params = stream + b * 2 * sizeof(float);
      q.err = is_float ? q8_error_sums(static_cast<const float*>(src) + first, params,
                                       codes + first, count)
                       : q8_error_sums(static_cast<const double*>(src) + first, params,
                                       codes + first, count);
    });
    ErrorSums sums;  // added in block order: the same for any number of threads
    for (uint64_t b = 0; b < blocks; ++b) {
      sums.e2 += q8_blocks[b].err.e2;
      sums.r2 += q8_blocks[b].err.r2;
      sums.emax = std::max(sums.emax, q8_blocks[b].err.emax);
    }
    add_error(sums, maxabs, counters);
    counters.time_error += seconds_since(t0);
  }
  return static_cast<int64_t>(n);
}

size_t FrameEncoder::Impl::encode_tensor(const at::Tensor& t, char* dst, TensorDesc& d) {
  const size_t raw = t.nbytes();
  const char* src = static_cast<const char*>(t.data_ptr());
  d.method = static_cast<uint8_t>(TensorMethod::raw);
  const zfp_type type = zfp_type_of(t.scalar_type());  // zfp and q8 take the same dtypes
  // zfp or q8: the bytes written; 0 if it did not shrink the tensor: sent raw, which is exact;
  // -1 if it cannot take it.
  int64_t result = -1;
  if (type != zfp_type_none && raw > 0) {
    if (codec.is_zfp()) result = encode_zfp(t, type, dst, d);
    if (codec.kind == CodecKind::q8) result = encode_q8(t, dst, d);
    if (result > 0) return static_cast<size_t>(result);
  }
  if (result < 0 && codec.kind != CodecKind::raw) {
    // lz4, or a zfp or q8 codec on a tensor it cannot take (not float or double, NaN or
    // infinity).
    size_t n = lz4_into(src, raw, dst, raw);
    if (n > 0) {
      d.method = static_cast<uint8_t>(TensorMethod::lz4);
      return n;
    }
  }
  std::memcpy(dst, src, raw);
  return raw;
}

FrameEncoder::FrameEncoder(const CodecSpec& codec, int error_every, int zfp_max_dims,
                           size_t zfp_chunk_bytes)
    : impl_(std::make_unique<Impl>()) {
  EP_CHECK(zfp_max_dims >= 0 && zfp_max_dims <= 3, "zfp fields have 1 to 3 dimensions, not ",
           zfp_max_dims);
  impl_->codec = codec;
  EP_CHECK(error_every >= 0, "error_every must not be negative");
  impl_->error_every = error_every;
  impl_->zfp_max_dims = zfp_max_dims;
  impl_->zfp_chunk_bytes = zfp_chunk_bytes;
  std::snprintf(impl_->counters.codec, sizeof impl_->counters.codec, "%s", codec.name().c_str());
}
FrameEncoder::~FrameEncoder() = default;
FrameEncoder::FrameEncoder(FrameEncoder&&) noexcept = default;
FrameEncoder& FrameEncoder::operator=(FrameEncoder&&) noexcept = default;
const CodecSpec& FrameEncoder::codec() const { return impl_->codec; }
const LinkCounters& FrameEncoder::counters() const { return impl_->counters; }

void FrameEncoder::encode(uint64_t seq, uint32_t flags, const std::vector<at::Tensor>& tensors,
                          std::vector<char>& out) {
  const auto t0 = std::chrono::steady_clock::now();
  const double error_before = impl_->counters.time_error;
  EP_CHECK(tensors.size() <= kMaxTensors, "too many tensors for one frame: ", tensors.size());
  auto& ts = impl_->contiguous;
  auto& descs = impl_->descs;
  auto& chunk_bytes = impl_->chunk_bytes;
  ts.clear();
  descs.clear();
  chunk_bytes.clear();
  impl_->measure_now = impl_->error_every > 0 && !tensors.empty() &&
                       impl_->frames_seen++ % static_cast<uint64_t>(impl_->error_every) == 0;
  // The descriptors' room, with a chunk table for every tensor that may go through zfp; if one
  // does not (it did not shrink, or holds NaN), the payloads move down once they are written.
  size_t planned = sizeof(Header), bound = 0;
  for (const auto& t : tensors) {
    EP_CHECK(known_dtype(static_cast<uint8_t>(t.scalar_type())) && t.dim() <= int(kMaxDims),
             "cannot send a tensor of dtype ", c10::toString(t.scalar_type()), " with ", t.dim(),
             " dimensions");
    ts.push_back(t.is_contiguous() ? t : t.contiguous());
    planned += sizeof(TensorDesc) +
               (static_cast<size_t>(t.dim()) + impl_->planned_chunks(t)) * sizeof(int64_t);
    bound += align_up(t.nbytes());
  }
  planned = align_up(planned);
  out.resize(planned + bound);
  size_t head = sizeof(Header), offset = planned;
  uint64_t bytes_raw = 0, bytes_encoded = 0;
  for (const auto& t : ts) {
    TensorDesc d{};
    d.dtype = static_cast<uint8_t>(t.scalar_type());
    d.ndim = static_cast<uint8_t>(t.dim());
    d.raw_bytes = t.nbytes();
    const size_t n = impl_->encode_tensor(t, out.data() + offset, d);
    d.encoded_bytes = n;
    descs.push_back(d);
    head += sizeof d + (static_cast<size_t>(t.dim()) + d.zfp_chunks) * sizeof(int64_t);
    std::memset(out.data() + offset + n, 0, align_up(n) - n);
    offset += align_up(n);
    bytes_raw += d.raw_bytes;
    bytes_encoded += n;
  }
  head = align_up(head);
  if (head < planned) {
    std::memmove(out.data() + head, out.data() + planned, offset - planned);
    offset -= planned - head;
  }
  out.resize(offset);
  std::memset(out.data(), 0, head);
  size_t pos = sizeof(Header);
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
  Header h;
  fill_header(h, impl_->codec, seq, flags, static_cast<uint32_t>(tensors.size()));
  h.payload_bytes = offset - head;
  h.payload_crc32 = crc32_of(out.data() + head, offset - head);
  std::memcpy(out.data(), &h, sizeof h);

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

// ---- decoder ------------------------------------------------------------------------------

struct FrameDecoder::Impl {
  uint64_t max_bytes = 0;
  std::vector<ZfpChunk> chunks;  // zfp state per chunk of the tensor being decoded
  std::vector<char> joined;      // a zfp + lz4 tensor's chunk streams or a q8 + lz4 tensor's
                                 // stream, lz4-decoded
  std::vector<at::Tensor> pool;  // decoded compressed tensors, by position in the frame
  std::vector<TensorMeta> metas;
  std::vector<TensorDesc> descs;
  std::vector<const char*> chunk_tables;  // per tensor: its chunk sizes in the frame (or null)

  at::Tensor buffer(size_t i, const TensorMeta& m) {
    if (pool.size() <= i) pool.resize(i + 1);
    const int64_t numel = m.bytes() / static_cast<int64_t>(c10::elementSize(m.dtype));
    at::Tensor& b = pool[i];
    if (!b.defined() || b.scalar_type() != m.dtype || b.numel() < numel)
      b = at::empty({numel}, at::TensorOptions().dtype(m.dtype));
    return b.narrow(0, 0, numel).view(m.shape);
  }
};

FrameDecoder::FrameDecoder(uint64_t max_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->max_bytes = max_bytes;
}
FrameDecoder::~FrameDecoder() = default;
FrameDecoder::FrameDecoder(FrameDecoder&&) noexcept = default;
FrameDecoder& FrameDecoder::operator=(FrameDecoder&&) noexcept = default;

Frame FrameDecoder::decode(const char* data, size_t size) {
  EP_CHECK(size >= sizeof(Header), "frame truncated: ", size, " bytes, shorter than its header (",
           sizeof(Header), " bytes)");
  Header h;
  std::memcpy(&h, data, sizeof h);
  EP_CHECK(h.magic == kMagic, "not an edgepipe frame: bad magic 0x", std::hex, h.magic);
  EP_CHECK(h.version == kFrameVersion, "frame format version ", h.version,
           " is not supported (this edgepipe reads version ", kFrameVersion, ")");
  EP_CHECK(h.codec <= static_cast<uint8_t>(kLastCodecKind) && h.codec_lz4 <= 1 &&
               std::isfinite(h.codec_param),
           "frame names an unknown codec (", int(h.codec), ", lz4 flag ", int(h.codec_lz4), ")");
  EP_CHECK(h.num_tensors <= kMaxTensors, "frame claims ", h.num_tensors, " tensors (at most ",
           kMaxTensors, ")");
  Frame f;
  f.seq = h.seq;
  f.flags = h.flags;
  f.codec.kind = static_cast<CodecKind>(h.codec);
  f.codec.lz4 = h.codec_lz4 != 0;
  f.codec.param = h.codec_param;
  auto& metas = impl_->metas;
  auto& descs = impl_->descs;
  auto& tables = impl_->chunk_tables;
  metas.resize(h.num_tensors);
  descs.resize(h.num_tensors);
  tables.assign(h.num_tensors, nullptr);
  uint64_t total = 0, payload = 0;
  size_t pos = sizeof(Header);
  for (uint32_t i = 0; i < h.num_tensors; ++i) {
    EP_CHECK(sizeof(TensorDesc) <= size - pos, "frame truncated in the descriptor of tensor ", i);
    TensorDesc& d = descs[i];
    std::memcpy(&d, data + pos, sizeof d);
    pos += sizeof d;
    EP_CHECK(known_dtype(d.dtype), "frame tensor ", i, " has unknown dtype ", int(d.dtype));
    EP_CHECK(d.ndim <= kMaxDims, "frame tensor ", i, " has ", int(d.ndim), " dimensions");
    EP_CHECK(d.ndim * sizeof(int64_t) <= size - pos, "frame truncated in the shape of tensor ", i);
    TensorMeta& m = metas[i];
    m.dtype = static_cast<c10::ScalarType>(d.dtype);
    m.shape.resize(d.ndim);
    if (d.ndim > 0) std::memcpy(m.shape.data(), data + pos, d.ndim * sizeof(int64_t));
    pos += d.ndim * sizeof(int64_t);
    EP_CHECK(d.method <= static_cast<uint8_t>(TensorMethod::q8_lz4), "frame tensor ", i,
             " has unknown encoding ", int(d.method));
    const auto method = static_cast<TensorMethod>(d.method);
    const bool zfp = method == TensorMethod::zfp || method == TensorMethod::zfp_lz4;
    EP_CHECK(zfp || d.zfp_chunks == 0, "frame tensor ", i, " is not zfp-encoded but claims ",
             d.zfp_chunks, " zfp chunks");
    EP_CHECK(d.zfp_chunks * sizeof(uint64_t) <= size - pos,
             "frame truncated in the zfp chunk sizes of tensor ", i);
    tables[i] = data + pos;
    pos += d.zfp_chunks * sizeof(uint64_t);
    uint64_t count = c10::elementSize(m.dtype);
    for (int64_t dim : m.shape) {
      EP_CHECK(dim >= 0 && (dim == 0 || count <= (uint64_t(1) << 48) / uint64_t(dim)),
               "frame tensor ", i, " has a bad dimension ", dim);
      count *= static_cast<uint64_t>(dim);
    }
    EP_CHECK(count == d.raw_bytes, "frame tensor ", i, ": its shape makes ", count,
             " bytes but it claims ", d.raw_bytes);
    total += count;
    EP_CHECK(total <= impl_->max_bytes, "frame tensors add up to more than the ", impl_->max_bytes,
             " bytes this rank accepts (tensor ", i, " has shape ", c10::IntArrayRef(m.shape), ")");
    switch (method) {
      case TensorMethod::raw:
        EP_CHECK(d.encoded_bytes == d.raw_bytes, "frame tensor ", i, " is raw but claims ",
                 d.encoded_bytes, " encoded bytes for ", d.raw_bytes, " raw");
        break;
      case TensorMethod::lz4:
        EP_CHECK(d.encoded_bytes > 0 && d.encoded_bytes < d.raw_bytes && lz4_fits(d.raw_bytes),
                 "frame tensor ", i, ": lz4 claims ", d.encoded_bytes, " bytes for ", d.raw_bytes,
                 " raw");
        break;
      case TensorMethod::zfp:
      case TensorMethod::zfp_lz4: {
        const auto mode = static_cast<ZfpMode>(d.zfp_mode);
        EP_CHECK(zfp_type_of(m.dtype) != zfp_type_none, "frame tensor ", i, " of dtype ",
                 c10::toString(m.dtype), " claims to be zfp-encoded");
        EP_CHECK(zfp_param_ok(mode, d.zfp_param), "frame tensor ", i, " has a bad zfp mode ",
                 int(d.zfp_mode), " or parameter ", d.zfp_param);
        EP_CHECK(d.zfp_dims >= 1 && d.zfp_dims <= 3, "frame tensor ", i, " has a zfp field of ",
                 int(d.zfp_dims), " dimensions");
        uint64_t n = 1;
        for (int k = 0; k < 3; ++k) {
          const uint64_t nk = d.zfp_n[k];
          EP_CHECK(k < d.zfp_dims ? nk >= 1 && nk <= (uint64_t(1) << 48) : nk == 0, "frame tensor ",
                   i, " has a bad zfp field dimension ", nk);
          if (k < d.zfp_dims) n = n <= (uint64_t(1) << 48) / nk ? n * nk : ~uint64_t(0);
        }
        EP_CHECK(n == count / c10::elementSize(m.dtype), "frame tensor ", i,
                 ": its zfp field does not match its shape");
        ZfpField field;
        field.dims = d.zfp_dims;
        for (int k = 0; k < 3; ++k) field.n[k] = d.zfp_n[k] ? d.zfp_n[k] : 1;
        ZfpChunks cs;
        EP_CHECK(chunk_count_ok(layers_of(field), d.zfp_chunks, &cs), "frame tensor ", i,
                 ": bad zfp chunk count ", d.zfp_chunks, " for a field of ", layers_of(field),
                 " block layers");
        EP_CHECK(d.encoded_bytes > 0 && d.encoded_bytes < d.raw_bytes &&
                     (method == TensorMethod::zfp
                          ? d.stream_bytes == d.encoded_bytes
                          : d.encoded_bytes < d.stream_bytes && lz4_fits(d.stream_bytes)),
                 "frame tensor ", i, ": inconsistent zfp byte counts (", d.encoded_bytes,
                 " encoded, ", d.stream_bytes, " zfp, ", d.raw_bytes, " raw)");
        // Each chunk's bound is checked before it is decoded; here, that the sizes add up.
        uint64_t sum = 0;
        for (uint32_t k = 0; k < cs.count; ++k) {
          uint64_t b = 0;
          std::memcpy(&b, tables[i] + k * sizeof b, sizeof b);
          EP_CHECK(b > 0 && b <= d.stream_bytes - sum, "frame tensor ", i, ": zfp chunk ", k,
                   " claims ", b, " bytes, more than the stream's ", d.stream_bytes);
          sum += b;
        }
        EP_CHECK(sum == d.stream_bytes, "frame tensor ", i, ": its zfp chunks add up to ", sum,
                 " bytes but its stream has ", d.stream_bytes);
        break;
      }
      case TensorMethod::q8:
      case TensorMethod::q8_lz4: {
        // Each block's minimum and scale are checked before it is decoded; here, the sizes.
        EP_CHECK(zfp_type_of(m.dtype) != zfp_type_none, "frame tensor ", i, " of dtype ",
                 c10::toString(m.dtype), " claims to be q8-encoded");
        EP_CHECK(d.zfp_mode == 0 && d.zfp_dims == 0 && d.zfp_param == 0 && d.zfp_n[0] == 0 &&
                     d.zfp_n[1] == 0 && d.zfp_n[2] == 0,
                 "frame tensor ", i, " is q8-encoded but has zfp parameters");
        const uint64_t values = count / c10::elementSize(m.dtype);
        EP_CHECK(d.stream_bytes == q8_stream_bytes(values), "frame tensor ", i, ": its q8 stream ",
                 "claims ", d.stream_bytes, " bytes, but its ", values, " values make ",
                 q8_stream_bytes(values));
        EP_CHECK(d.encoded_bytes > 0 && d.encoded_bytes < d.raw_bytes &&
                     (method == TensorMethod::q8
                          ? d.encoded_bytes == d.stream_bytes
                          : d.encoded_bytes < d.stream_bytes && lz4_fits(d.stream_bytes)),
                 "frame tensor ", i, ": inconsistent q8 byte counts (", d.encoded_bytes,
                 " encoded, ", d.stream_bytes, " q8, ", d.raw_bytes, " raw)");
        break;
      }
      default:
        EP_FAIL("frame tensor ", i, " has unknown encoding ", int(d.method));
    }
    EP_CHECK(d.encoded_bytes <= size, "frame truncated in the payload of tensor ", i);
    payload += align_up(d.encoded_bytes);
  }
  const size_t head = align_up(pos);
  EP_CHECK(head <= size && size - head == h.payload_bytes, "frame truncated or padded: ", size,
           " bytes, but its header and descriptors say ", head + h.payload_bytes);
  EP_CHECK(payload == h.payload_bytes, "frame's tensors take ", payload,
           " bytes but its payload has ", h.payload_bytes);
  EP_CHECK(crc32_of(data + head, h.payload_bytes) == h.payload_crc32, "frame ", h.seq,
           " failed its checksum (corrupted in transit)");
  size_t offset = head;
  for (uint32_t i = 0; i < h.num_tensors; ++i) {
    const TensorDesc& d = descs[i];
    const TensorMeta& m = metas[i];
    EP_CHECK(d.encoded_bytes <= size - offset, "frame truncated in the payload of tensor ", i);
    const char* src = data + offset;
    const auto method = static_cast<TensorMethod>(d.method);
    if (method == TensorMethod::raw) {
      // from_blob does not copy: the tensor views the caller's buffer.
      f.tensors.push_back(
          at::from_blob(const_cast<char*>(src), m.shape, at::TensorOptions().dtype(m.dtype)));
    } else if (method == TensorMethod::lz4) {
      at::Tensor t = impl_->buffer(i, m);
      int r = LZ4_decompress_safe(src, static_cast<char*>(t.data_ptr()),
                                  static_cast<int>(d.encoded_bytes), static_cast<int>(d.raw_bytes));
      EP_CHECK(r >= 0 && static_cast<uint64_t>(r) == d.raw_bytes, "frame tensor ", i,
               ": its lz4 data is corrupt");
      f.tensors.push_back(t);
    } else if (method == TensorMethod::q8 || method == TensorMethod::q8_lz4) {
      at::Tensor t = impl_->buffer(i, m);
      const char* stream =
          method == TensorMethod::q8_lz4 ? lz4_stream(src, d, impl_->joined, i, "q8") : src;
      // Every block's minimum and scale, then the blocks in parallel. Any code is valid.
      const bool is_float = m.dtype == c10::ScalarType::Float;
      const uint64_t values = static_cast<uint64_t>(t.numel()), blocks = q8_blocks_of(values);
      for (uint64_t b = 0; b < blocks; ++b) {
        const char* params = stream + b * 2 * sizeof(float);
        EP_CHECK(is_float ? q8_params_ok<float>(params) : q8_params_ok<double>(params),
                 "frame tensor ", i, ": its q8 block ", b, " of ", blocks,
                 " has a bad minimum or scale (not finite, negative, or overflowing)");
      }
      const auto* codes = reinterpret_cast<const uint8_t*>(stream + blocks * 2 * sizeof(float));
      void* out = t.data_ptr();
      parallel_chunks(static_cast<uint32_t>(blocks), [&](uint32_t b) {
        const uint64_t first = b * kQ8Block;
        const size_t n = static_cast<size_t>(std::min(kQ8Block, values - first));
        const char* params = stream + b * 2 * sizeof(float);
        if (is_float)
          q8_decode_block(params, codes + first, n, static_cast<float*>(out) + first);
        else
          q8_decode_block(params, codes + first, n, static_cast<double*>(out) + first);
      });
      f.tensors.push_back(t);
    } else {
      at::Tensor t = impl_->buffer(i, m);
      ZfpField field;
      field.dims = d.zfp_dims;
      for (int k = 0; k < 3; ++k) field.n[k] = d.zfp_n[k] ? d.zfp_n[k] : 1;
      ZfpChunks cs;
      chunk_count_ok(layers_of(field), d.zfp_chunks, &cs);  // checked above
      auto& chunks = impl_->chunks;
      if (chunks.size() < cs.count) chunks.resize(cs.count);
      const char* streams =
          method == TensorMethod::zfp_lz4 ? lz4_stream(src, d, impl_->joined, i, "zfp") : src;
      // Every chunk's stream against the most its slab and mode allow, then room for it.
      const zfp_type type = zfp_type_of(m.dtype);
      const size_t vbytes = c10::elementSize(m.dtype);
      size_t offset_in = 0;
      for (uint32_t k = 0; k < cs.count; ++k) {
        ZfpChunk& c = chunks[k];
        uint64_t first = 0;
        const ZfpField cf = chunk_field(field, cs, k, &first);
        std::memcpy(&c.bytes, tables[i] + k * sizeof(uint64_t), sizeof(uint64_t));
        c.bound = c.zfp.configure(type, cf, static_cast<ZfpMode>(d.zfp_mode), d.zfp_param, nullptr);
        EP_CHECK(c.bytes <= c.bound, "frame tensor ", i, ": its zfp chunk ", k, " has ", c.bytes,
                 " bytes, more than its field and mode allow (", c.bound, ")");
        c.zfp.reserve(c.bound);
        c.offset = offset_in;
        offset_in += c.bytes;
      }
      // Copy each stream into its chunk's scratch (padded to its bound) and decode it into its
      // slab of the tensor, chunks in parallel. The bit stream may read on past the stream's end
      // into the scratch buffer (never past it: see Zfp::configure); a stream that did is corrupt.
      char* out = static_cast<char*>(t.data_ptr());
      parallel_chunks(cs.count, [&](uint32_t k) {
        ZfpChunk& c = chunks[k];
        uint64_t first = 0;
        chunk_field(field, cs, k, &first);
        std::memcpy(c.zfp.scratch(), streams + c.offset, c.bytes);
        c.used = c.zfp.decompress(out + first * vbytes);
      });
      for (uint32_t k = 0; k < cs.count; ++k)
        EP_CHECK(chunks[k].used > 0 && chunks[k].used <= (chunks[k].bytes + 7) / 8 * 8,
                 "frame tensor ", i, ": its zfp stream is corrupt (chunk ", k, " of ", cs.count,
                 ")");
      f.tensors.push_back(t);
    }
    f.methods.push_back(method);
    f.bytes_raw += d.raw_bytes;
    f.bytes_encoded += d.encoded_bytes;
    offset += align_up(d.encoded_bytes);
  }
  return f;
}

Frame decode_frame(const char* data, size_t size) { return FrameDecoder().decode(data, size); }

// ---- report -------------------------------------------------------------------------------

std::string describe_links(const std::vector<LinkCounters>& links) {
  std::ostringstream s;
  s << "  link  ranks   codec                 frames    MB raw   MB sent   ratio  encode ms  "
       "decode ms  max rel err  rel L2 err\n";
  for (size_t i = 0; i < links.size(); ++i) {
    const auto& c = links[i];
    const double fr = std::max(c.frames, 1.0);
    char err[64] = "           -           -";
    if (c.lossy_tensors > 0)
      std::snprintf(err, sizeof err, "  %11.3g  %10.3g", c.error_max_rel,
                    c.ref_sq > 0 ? std::sqrt(c.error_sq / c.ref_sq) : 0.0);
    char line[256];
    std::snprintf(line, sizeof line,
                  "  %4zu  %2zu -> %-2zu %-20s %7.0f  %8.2f  %8.2f  %5.2fx  %9.3f  %9.3f%s\n",
                  i + 1, i, (i + 1) % links.size(), c.codec, c.frames, c.bytes_raw / 1e6,
                  c.bytes_encoded / 1e6, c.bytes_raw / std::max(c.bytes_encoded, 1.0),
                  1e3 * c.time_encode / fr, 1e3 * c.time_decode / fr, err);
    s << line;
  }
  return s.str();
}

}  // namespace edgepipe
