#include "zfp_stream.h"

#include <algorithm>
#include <cmath>

#include "edgepipe/base/error.h"

namespace edgepipe {

zfp_type zfp_type_of(c10::ScalarType t) {
  return t == c10::ScalarType::Float    ? zfp_type_float
         : t == c10::ScalarType::Double ? zfp_type_double
                                        : zfp_type_none;
}

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

ZfpStream::ZfpStream() : zfp_(zfp_stream_open(nullptr)), field_(zfp_field_alloc()) {
  EP_CHECK(zfp_ && field_, "out of memory opening a zfp stream");
}

size_t ZfpStream::configure(zfp_type type, const ZfpField& f, ZfpMode mode, double param,
                            void* data) {
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
    // (Reached by the decoder with a frame's mode and parameter, checked: a FrameError if not.)
    EP_CHECK_AS(FrameError, zfp_stream_set_params(zfp_.get(), minbits, maxbits, maxprec, minexp),
                "zfp rejected its parameters");
  }
  uint64_t blocks = 1;
  for (int d = 0; d < f.dims; ++d) blocks *= (f.n[d] + 3) / 4;
  const uint64_t words = (blocks * maxbits + 63) / 64;
  return static_cast<size_t>(words * 8);
}

void ZfpStream::reserve(size_t bytes) {
  const size_t words = bytes / 8 + 2;
  if (words <= scratch_.size() && bits_) return;
  scratch_.assign(std::max(words, scratch_.size()), 0);
  bits_.reset(stream_open(scratch_.data(), scratch_.size() * 8));
  EP_CHECK(bits_, "out of memory opening a zfp bit stream");
  zfp_stream_set_bit_stream(zfp_.get(), bits_.get());
}

size_t ZfpStream::compress() {
  zfp_stream_rewind(zfp_.get());
  size_t n = zfp_compress(zfp_.get(), field_.get());
  EP_CHECK(n > 0, "zfp failed to compress a tensor");
  return n;
}

size_t ZfpStream::decompress(void* out) {
  zfp_field_set_pointer(field_.get(), out);
  zfp_stream_rewind(zfp_.get());
  return zfp_decompress(zfp_.get(), field_.get());
}

}  // namespace edgepipe
