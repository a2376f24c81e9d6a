// Codecs and frames: round trips of every codec on many shapes and dtypes, lossless codecs bit
// for bit, lossy ones within their bounds, buffers reused, and every kind of damage reported as
// an error (never a crash).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame.h"

using namespace edgepipe;

namespace {

std::string error_of(const std::vector<char>& f, uint64_t max_bytes = uint64_t(1) << 34) {
  try {
    FrameDecoder(max_bytes).decode(f.data(), f.size());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// Something like a post-ReLU activation: smooth, half zeros.
at::Tensor activation(std::vector<int64_t> shape, double scale = 1.0) {
  at::Tensor x = at::randn(shape);
  if (x.dim() >= 2) x = x + at::roll(x, 1, -1) + at::roll(x, 1, -2);
  return at::relu(x) * scale;
}

// Frame layout (format version 3), for the tests that damage a frame on purpose. Tensor 0's zfp
// chunk sizes follow its dims (kDims0At + 8 * ndim).
constexpr size_t kHeader = 48, kPayloadBytesAt = 24, kCrcAt = 32;
constexpr size_t kDesc0 = kHeader, kMethodAt = kDesc0 + 2, kZfpModeAt = kDesc0 + 3,
                 kChunksAt = kDesc0 + 6, kZfpParamAt = kDesc0 + 8, kZfpNAt = kDesc0 + 16,
                 kRawAt = kDesc0 + 40, kEncodedAt = kDesc0 + 48, kStreamBytesAt = kDesc0 + 56,
                 kDims0At = kDesc0 + 64;

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

// Recomputes the checksum, as a forger would: the decoder must then survive on its other checks.
void refresh_crc(std::vector<char>& f) {
  const uint64_t payload = peek<uint64_t>(f, kPayloadBytesAt);
  if (payload > f.size()) return;
  const size_t head = f.size() - payload;
  uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0),
                                             reinterpret_cast<const Bytef*>(f.data() + head),
                                             static_cast<uInt>(payload)));
  poke(f, kCrcAt, crc);
}

const char* kAllCodecs[] = {
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
};

// Sets LibTorch's thread count for a scope (the codec codes zfp chunks on those threads).
class Threads {
 public:
  explicit Threads(int n) : before_(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(before_); }

 private:
  int before_;
};

}  // namespace

// ---- codec names --------------------------------------------------------------------------

TEST(CodecSpec, ParsesEveryNameAndReadsBackItsName) {
  for (const char* name : kAllCodecs) {
    CodecSpec c = parse_codec(name);
    EXPECT_EQ(parse_codec(c.name()), c) << name;
  }
  EXPECT_EQ(parse_codec("zfp-rate:8").name(), "zfp-rate:8");
  EXPECT_EQ(parse_codec(" ZFP-Accuracy:0.001+LZ4 ").name(), "zfp-accuracy:0.001+lz4");
  EXPECT_EQ(parse_codec("zfp-relacc:1e-3").name(), "zfp-relacc:0.001");
  EXPECT_TRUE(parse_codec("zfp-rate:8").lossy());
  EXPECT_FALSE(parse_codec("zfp-reversible+lz4").lossy());
  EXPECT_FALSE(parse_codec("lz4").is_zfp());
  EXPECT_EQ(parse_codec("Q8+LZ4").name(), "q8+lz4");
  EXPECT_EQ(parse_codec("q8").kind, CodecKind::q8);
  EXPECT_TRUE(parse_codec("q8").lossy());
  EXPECT_TRUE(parse_codec("q8+lz4").lossy());
  EXPECT_FALSE(parse_codec("q8").is_zfp());
  EXPECT_FALSE(parse_codec("q8+lz4").is_zfp());
  EXPECT_TRUE(parse_codec("zfp-relacc:1e-2").is_zfp());
}

TEST(CodecSpec, TyposGetTheNearestName) {
  auto message = [](const std::string& text) {
    try {
      parse_codec(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("zfp-rat:8").find("did you mean 'zfp-rate:R'"), std::string::npos)
      << message("zfp-rat:8");
  EXPECT_NE(message("lz5").find("did you mean 'lz4'"), std::string::npos);
  EXPECT_NE(message("zfp-reversable").find("did you mean 'zfp-reversible'"), std::string::npos);
  EXPECT_NE(message("zfp-relac:1e-3").find("did you mean 'zfp-relacc:E'"), std::string::npos);
  EXPECT_NE(message("zfp-acuracy:1e-3").find("did you mean 'zfp-accuracy:E'"), std::string::npos);
  EXPECT_NE(message("gzip").find("codecs are raw, lz4"), std::string::npos);
  EXPECT_NE(message("zfp-rate").find("needs a number"), std::string::npos);
  EXPECT_NE(message("zfp-rate:abc").find("needs a number"), std::string::npos);
  EXPECT_NE(message("zfp-rate:0").find("(0, 64]"), std::string::npos);
  EXPECT_NE(message("zfp-precision:7.5").find("whole number"), std::string::npos);
  EXPECT_NE(message("zfp-accuracy:-1").find("positive"), std::string::npos);
  EXPECT_NE(message("zfp-relacc:2").find("(0, 1]"), std::string::npos);
  EXPECT_NE(message("lz4+lz4").find("can only follow a zfp mode or q8"), std::string::npos);
  EXPECT_NE(message("q9").find("did you mean 'q8'"), std::string::npos) << message("q9");
  EXPECT_NE(message("q8:4").find("q8 takes no parameter"), std::string::npos);
  EXPECT_NE(message("q8+lz4+lz4").find("unknown codec"), std::string::npos);
  EXPECT_NE(message("gzip").find("zfp-relacc:E, q8, and any zfp mode or q8 followed by +lz4"),
            std::string::npos)
      << message("gzip");
  EXPECT_NE(message("raw+lz4").find("use 'lz4'"), std::string::npos);
  EXPECT_NE(message("lz4:3").find("takes no parameter"), std::string::npos);
  EXPECT_NE(message("zfp-rate:8+zstd").find("unknown codec"), std::string::npos);
}

TEST(CodecSpec, PerLinkCodecs) {
  LinkCodecs lc = parse_link_codecs("1=zfp-rate:8, 2=lz4");
  EXPECT_EQ(lc.for_link(1), parse_codec("zfp-rate:8"));
  EXPECT_EQ(lc.for_link(2), parse_codec("lz4"));
  EXPECT_EQ(lc.for_link(3), CodecSpec{});
  EXPECT_EQ(lc.text(), "1=zfp-rate:8,2=lz4");
  lc.check_links(4);
  EXPECT_THROW(lc.check_links(1), Error);

  lc = parse_link_codecs("zfp-rate:8+lz4,4=raw");
  EXPECT_EQ(lc.for_link(2), parse_codec("zfp-rate:8+lz4"));
  EXPECT_EQ(lc.for_link(4), CodecSpec{});
  EXPECT_EQ(parse_link_codecs(lc.text()).text(), lc.text());

  EXPECT_EQ(parse_link_codecs("lz4").text(), "lz4");
  EXPECT_THROW(parse_link_codecs(""), Error);
  EXPECT_THROW(parse_link_codecs("lz4,raw"), Error);      // two defaults
  EXPECT_THROW(parse_link_codecs("1=lz4,1=raw"), Error);  // link named twice
  EXPECT_THROW(parse_link_codecs("0=lz4"), Error);
  EXPECT_THROW(parse_link_codecs("x=lz4"), Error);
  EXPECT_THROW(parse_link_codecs("2=lzz4"), Error);
  try {
    parse_link_codecs("1=zfp-rate:8,7=lz4").check_links(4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("links 1..4"), std::string::npos) << e.what();
  }
}

// ---- zfp fields ---------------------------------------------------------------------------

TEST(Codec, ZfpFieldFollowsTheShape) {
  auto f = zfp_field_of({1, 256, 56, 56});
  EXPECT_EQ(f.dims, 3);
  EXPECT_EQ(f.n[0], 56u);
  EXPECT_EQ(f.n[1], 56u);
  EXPECT_EQ(f.n[2], 256u);
  f = zfp_field_of({8, 64, 12, 12});  // batch merged with channels
  EXPECT_EQ(f.dims, 3);
  EXPECT_EQ(f.n[2], 8u * 64u);
  f = zfp_field_of({1, 1024, 14, 14});  // 14x14 would pad to 16x16: the map as one axis
  EXPECT_EQ(f.dims, 2);
  EXPECT_EQ(f.n[0], 196u);
  EXPECT_EQ(f.n[1], 1024u);
  f = zfp_field_of({1, 256, 56, 56}, 2);  // accuracy modes: 2-D
  EXPECT_EQ(f.dims, 2);
  EXPECT_EQ(f.n[0], 56u);
  EXPECT_EQ(f.n[1], 256u * 56u);
  f = zfp_field_of({1, 1000});  // logits: 1-D
  EXPECT_EQ(f.dims, 1);
  EXPECT_EQ(f.n[0], 1000u);
  f = zfp_field_of({1, 1280, 1, 1});  // pooled features: 1-D
  EXPECT_EQ(f.dims, 1);
  EXPECT_EQ(f.n[0], 1280u);
  f = zfp_field_of({4, 512, 2, 2});  // 2x2 blocks would be 3/4 padding: the map is one axis
  EXPECT_EQ(f.dims, 3);
  EXPECT_EQ(f.n[0], 4u);
  EXPECT_EQ(f.n[1], 512u);
  EXPECT_EQ(f.n[2], 4u);
  f = zfp_field_of({2, 3, 16, 16});  // 3 channels: merged with the batch
  EXPECT_EQ(f.dims, 3);
  EXPECT_EQ(f.n[2], 6u);
  f = zfp_field_of({2, 3, 4, 5, 6});  // 5-D: (2*3*4) x 5 x 6, padded a lot: (2*3*4) x 30
  EXPECT_EQ(f.dims, 2);
  EXPECT_EQ(f.n[0], 30u);
  EXPECT_EQ(f.n[1], 24u);
  f = zfp_field_of({2, 16, 15, 16});  // 15x16 pads only 7% more than 240: stays 3-D
  EXPECT_EQ(f.dims, 3);
  f = zfp_field_of({});
  EXPECT_EQ(f.dims, 1);
  EXPECT_EQ(f.n[0], 1u);
}

// ---- round trips --------------------------------------------------------------------------

class EveryCodec : public ::testing::TestWithParam<const char*> {};

TEST_P(EveryCodec, RoundTripsManyShapesAndDtypes) {
  const CodecSpec codec = parse_codec(GetParam());
  at::manual_seed(7);
  std::vector<at::Tensor> in{
      activation({1, 16, 12, 12}),
      activation({3, 8, 5, 7}),  // odd sizes: partial zfp blocks
      at::randn({2, 1000}),      // logits
      at::randn({5}),            // fewer values than a block
      at::randn({1}),
      at::randn({0, 4}),           // empty
      at::randn({2, 3, 4, 5, 3}),  // 5-D
      activation({1, 8, 6, 6}).to(at::kDouble),
      at::arange(100, at::kLong),  // indices
      at::randn({4, 4}) > 0,       // mask
      at::randn({3, 9}).to(at::kHalf),
      at::randint(0, 255, {64}, at::kByte),
      at::randn({6, 6}).t(),  // non-contiguous
  };
  FrameEncoder enc(codec);
  std::vector<char> buf;
  enc.encode(12345, 0, in, buf);
  EXPECT_LE(buf.size(), frame_bound(metas_of(in)));
  FrameDecoder dec;
  Frame f = dec.decode(buf.data(), buf.size());
  EXPECT_EQ(f.seq, 12345u);
  EXPECT_EQ(f.codec, codec);
  ASSERT_EQ(f.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const at::Tensor& x = in[i];
    const at::Tensor& y = f.tensors[i];
    ASSERT_EQ(y.scalar_type(), x.scalar_type()) << i;
    ASSERT_EQ(y.sizes(), x.sizes()) << i;
    const bool floating = x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble;
    if (!codec.lossy() || !floating) {
      EXPECT_TRUE(same_bytes(x, y)) << "tensor " << i << " with " << codec.name();
      continue;
    }
    const double maxabs = x.numel() ? x.abs().max().item<double>() : 0;
    const double err =
        x.numel() ? (y.to(at::kDouble) - x.to(at::kDouble)).abs().max().item<double>() : 0;
    if (codec.kind == CodecKind::zfp_accuracy)
      EXPECT_LE(err, codec.param) << i;
    else if (codec.kind == CodecKind::q8)  // half a step of 255 over at most [-max, max]
      EXPECT_LE(err, maxabs / 255 * 1.001) << "tensor " << i << " with " << codec.name();
    else if (codec.kind == CodecKind::zfp_relacc)
      EXPECT_LE(err, codec.param * maxabs) << i;
    else if (codec.kind == CodecKind::zfp_precision || codec.param >= 8)
      EXPECT_LE(err, 0.25 * maxabs + 1e-6) << "tensor " << i << " with " << codec.name();
    else  // 4 bits per value: coarse on noise, but finite and of the right scale
      EXPECT_LE(err, 4 * maxabs + 1e-6) << "tensor " << i << " with " << codec.name();
    EXPECT_TRUE(at::isfinite(y).all().item<bool>());
  }
  // What went through which method: non-float tensors never through zfp.
  for (size_t i = 8; i < in.size() - 1; ++i)
    EXPECT_TRUE(f.methods[i] == TensorMethod::raw || f.methods[i] == TensorMethod::lz4) << i;
  if (codec.kind == CodecKind::raw) {
    for (auto m : f.methods) EXPECT_EQ(m, TensorMethod::raw);
  }
  if (codec.is_zfp()) {
    EXPECT_TRUE(f.methods[0] == TensorMethod::zfp || f.methods[0] == TensorMethod::zfp_lz4);
    EXPECT_EQ(enc.counters().lossy_tensors > 0, codec.lossy());
  }
  if (codec.kind == CodecKind::q8) {
    for (size_t i : {0, 1, 2, 3, 6, 7})
      EXPECT_TRUE(f.methods[i] == TensorMethod::q8 || f.methods[i] == TensorMethod::q8_lz4) << i;
    EXPECT_EQ(f.methods[4], TensorMethod::raw);  // one value: q8 would not shrink it
    EXPECT_GT(enc.counters().lossy_tensors, 0);
  } else {
    for (auto m : f.methods) EXPECT_TRUE(m != TensorMethod::q8 && m != TensorMethod::q8_lz4);
  }
  EXPECT_EQ(enc.counters().frames, 1);
  EXPECT_EQ(enc.counters().bytes_raw, f.bytes_raw);
  EXPECT_EQ(enc.counters().bytes_encoded, f.bytes_encoded);
  EXPECT_EQ(std::string(enc.counters().codec), codec.name());
  // The one-off decoder gives the same.
  Frame g = decode_frame(buf.data(), buf.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(same_bytes(g.tensors[i], f.tensors[i]));
}

TEST_P(EveryCodec, SpecialValuesSurvive) {
  const CodecSpec codec = parse_codec(GetParam());
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float tiny = std::numeric_limits<float>::denorm_min();
  // With NaN or infinity zfp cannot be used: the tensor goes through lz4 and comes back exact.
  at::Tensor odd = at::randn({4, 4, 4});
  odd[0][0][0] = nan;
  odd[1][2][3] = inf;
  odd[2][2][2] = -inf;
  odd[3][3][3] = -0.0f;
  // Finite but awkward: signed zeros, subnormals, the extremes.
  at::Tensor awkward = at::zeros({4, 4, 4});
  awkward[0][0][1] = -0.0f;
  awkward[0][1][0] = tiny;
  awkward[1][0][0] = -tiny * 3;
  awkward[2][0][0] = std::numeric_limits<float>::max();
  awkward[3][0][0] = std::numeric_limits<float>::lowest();
  awkward[3][3][3] = std::numeric_limits<float>::min();
  at::Tensor zeros = at::zeros({2, 8, 8, 8});
  std::vector<char> buf;
  FrameEncoder enc(codec);
  enc.encode(1, 0, {odd, awkward, zeros}, buf);
  Frame f = FrameDecoder().decode(buf.data(), buf.size());
  EXPECT_TRUE(same_bytes(f.tensors[0], odd)) << codec.name();
  EXPECT_NE(f.methods[0], TensorMethod::zfp);
  EXPECT_NE(f.methods[0], TensorMethod::zfp_lz4);
  EXPECT_NE(f.methods[0], TensorMethod::q8);
  EXPECT_NE(f.methods[0], TensorMethod::q8_lz4);
  if (!codec.lossy()) {
    EXPECT_TRUE(same_bytes(f.tensors[1], awkward)) << codec.name();
  }
  EXPECT_TRUE(at::isfinite(f.tensors[1]).all().item<bool>()) << codec.name();
  EXPECT_TRUE(same_bytes(f.tensors[2], zeros)) << codec.name();
}

INSTANTIATE_TEST_SUITE_P(Codecs, EveryCodec, ::testing::ValuesIn(kAllCodecs),
                         [](const testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(Codec, RatiosAreWhatTheModesPromise) {
  at::manual_seed(3);
  at::Tensor x = activation({1, 64, 32, 32});
  auto ratio = [&](const char* name) {
    FrameEncoder enc(parse_codec(name));
    std::vector<char> buf;
    enc.encode(0, 0, {x}, buf);
    return enc.counters().bytes_raw / enc.counters().bytes_encoded;
  };
  EXPECT_NEAR(ratio("zfp-rate:8"), 4.0, 0.01);
  EXPECT_NEAR(ratio("zfp-rate:4"), 8.0, 0.02);
  EXPECT_GT(ratio("lz4"), 1.1);  // half the values are zeros
  EXPECT_GT(ratio("zfp-reversible"), 1.0);
  EXPECT_GT(ratio("zfp-relacc:1e-2"), ratio("zfp-relacc:1e-4"));
  EXPECT_GT(ratio("zfp-precision:8"), ratio("zfp-precision:16"));
  // Random bytes do not compress: sent raw rather than grown.
  at::Tensor noise = at::randint(0, 255, {4096}, at::kByte);
  FrameEncoder enc(parse_codec("lz4"));
  std::vector<char> buf;
  enc.encode(0, 0, {noise}, buf);
  EXPECT_EQ(FrameDecoder().decode(buf.data(), buf.size()).methods[0], TensorMethod::raw);
}

TEST(Codec, LossyErrorIsMeasured) {
  at::Tensor x = activation({2, 16, 16, 16}, 1e-9);  // tiny activations, as in some models
  FrameEncoder rel(parse_codec("zfp-relacc:1e-3"));
  FrameEncoder abs(parse_codec("zfp-accuracy:1e-3"));
  std::vector<char> buf;
  rel.encode(0, 0, {x}, buf);
  abs.encode(0, 0, {x}, buf);
  // A relative bound keeps tiny tensors accurate; an absolute one of 1e-3 wipes them out.
  EXPECT_GT(rel.counters().error_max_rel, 0);
  EXPECT_LE(rel.counters().error_max_rel, 1e-3);
  EXPECT_LT(rel.counters().error_max_rel_l2, 1e-3);
  EXPECT_GT(abs.counters().error_max_rel_l2, 0.5);
  EXPECT_EQ(rel.counters().lossy_tensors, 1);
  EXPECT_GT(rel.counters().ref_sq, 0);
  EXPECT_GT(rel.counters().time_error, 0);
  // The pipeline samples: the first frame, then one in 8 (error_every).
  FrameEncoder sampled(parse_codec("zfp-rate:8"));
  for (int i = 0; i < 17; ++i) sampled.encode(i, 0, {x, x}, buf);
  EXPECT_EQ(sampled.counters().lossy_tensors, 3 * 2);  // frames 0, 8 and 16
  FrameEncoder never(parse_codec("zfp-rate:8"), 0);
  never.encode(0, 0, {x}, buf);
  EXPECT_EQ(never.counters().lossy_tensors, 0);
  EXPECT_EQ(never.counters().time_error, 0);
}

TEST(Codec, BuffersAreReusedOnceWarm) {
  at::manual_seed(1);
  for (const char* name : {"lz4", "zfp-rate:8+lz4", "zfp-relacc:1e-3", "q8", "q8+lz4"}) {
    FrameEncoder enc(parse_codec(name));
    FrameDecoder dec;
    std::vector<char> buf;
    const char* out_ptr = nullptr;
    void* tensor_ptr = nullptr;
    for (int i = 0; i < 4; ++i) {
      at::Tensor x = activation({2, 8, 16, 16});
      enc.encode(i, 0, {x}, buf);
      Frame f = dec.decode(buf.data(), buf.size());
      EXPECT_LT(at::sub(f.tensors[0], x).abs().max().item<float>(), 0.3) << name;
      if (i == 0) {
        buf.reserve(buf.capacity());
        out_ptr = buf.data();
        tensor_ptr = f.tensors[0].data_ptr();
      } else {
        EXPECT_EQ(buf.data(), out_ptr) << name;
        EXPECT_EQ(f.tensors[0].data_ptr(), tensor_ptr) << name << ": decoded into new memory";
      }
    }
  }
}

TEST(Codec, EndFrame) {
  std::vector<char> buf;
  FrameEncoder(parse_codec("zfp-rate:8")).encode(9, kFrameEnd, {}, buf);
  Frame f = decode_frame(buf.data(), buf.size());
  EXPECT_TRUE(f.flags & kFrameEnd);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_EQ(f.codec, parse_codec("zfp-rate:8"));
}

// ---- damage -------------------------------------------------------------------------------

TEST(Codec, DamageIsReported) {
  std::vector<char> good;
  encode_frame(1, 0, {at::randn({8, 8})}, good);

  auto bad = good;
  bad[0] ^= 1;
  EXPECT_NE(error_of(bad).find("bad magic"), std::string::npos);

  bad = good;
  bad[4] = 1;  // version 1: the format before codecs
  EXPECT_NE(error_of(bad).find("version 1 is not supported"), std::string::npos);
  bad[4] = 2;  // version 2: the format before zfp chunks
  EXPECT_NE(error_of(bad).find("version 2 is not supported (this edgepipe reads version 3)"),
            std::string::npos);

  bad = good;
  bad[6] = 42;  // codec
  EXPECT_NE(error_of(bad).find("unknown codec"), std::string::npos);

  bad = good;
  bad.back() ^= 0x55;
  EXPECT_NE(error_of(bad).find("checksum"), std::string::npos);

  for (size_t cut : {size_t(0), size_t(10), size_t(50), size_t(100), good.size() - 1}) {
    bad.assign(good.begin(), good.begin() + cut);
    EXPECT_NE(error_of(bad).find("truncated"), std::string::npos) << "cut at " << cut;
  }

  bad = good;
  poke<int64_t>(bad, kDims0At, int64_t(1) << 62);  // first dim of tensor 0
  EXPECT_NE(error_of(bad).find("bad dimension"), std::string::npos) << error_of(bad);

  bad = good;
  poke<int64_t>(bad, kDims0At, 9);  // shape no longer matches the byte count
  EXPECT_NE(error_of(bad).find("its shape makes 288 bytes but it claims 256"), std::string::npos)
      << error_of(bad);

  bad = good;
  bad[kDesc0] = 99;  // dtype
  EXPECT_NE(error_of(bad).find("unknown dtype"), std::string::npos);

  EXPECT_NE(error_of(good, 100).find("more than the 100 bytes this rank accepts"),
            std::string::npos);
}

TEST(Codec, ForgedCompressedFramesAreRejected) {
  at::manual_seed(2);
  at::Tensor x = activation({1, 8, 16, 16});
  std::vector<char> zfp, lz4;
  FrameEncoder(parse_codec("zfp-precision:16")).encode(1, 0, {x}, zfp);
  FrameEncoder(parse_codec("lz4")).encode(1, 0, {x}, lz4);
  ASSERT_EQ(peek<uint8_t>(zfp, kMethodAt), uint8_t(TensorMethod::zfp));
  ASSERT_EQ(peek<uint8_t>(lz4, kMethodAt), uint8_t(TensorMethod::lz4));
  auto forged = [](std::vector<char> f, auto change) {
    change(f);
    refresh_crc(f);
    return error_of(f);
  };
  EXPECT_NE(forged(zfp, [](auto& f) { poke<uint8_t>(f, kMethodAt, 7); }).find("unknown encoding"),
            std::string::npos);
  EXPECT_NE(forged(zfp, [](auto& f) { poke<uint8_t>(f, kZfpModeAt, 9); }).find("bad zfp mode"),
            std::string::npos);
  EXPECT_NE(forged(zfp, [](auto& f) { poke<double>(f, kZfpParamAt, 99.5); }).find("bad zfp mode"),
            std::string::npos);
  EXPECT_NE(forged(zfp, [](auto& f) { poke<uint64_t>(f, kZfpNAt, 15); }).find("does not match"),
            std::string::npos);
  EXPECT_NE(forged(zfp, [](auto& f) { poke<uint64_t>(f, kStreamBytesAt, 8); }).find("inconsistent"),
            std::string::npos);
  EXPECT_NE(forged(zfp, [](auto& f) { poke<uint64_t>(f, kEncodedAt, 8); }).find("inconsistent"),
            std::string::npos);
  EXPECT_NE(forged(lz4, [](auto& f) { poke<uint64_t>(f, kEncodedAt, 64); }).find("payload has"),
            std::string::npos);
  EXPECT_NE(forged(lz4, [](auto& f) { poke<uint64_t>(f, kRawAt, 1 << 20); }).find("shape makes"),
            std::string::npos);
  // A zfp stream forged to need more bits than its field can hold (precision 16 -> rate-like
  // full precision): still decodes inside its buffer, or is reported, never read out of bounds.
  std::string e = forged(zfp, [](auto& f) { poke<double>(f, kZfpParamAt, 64.0); });
  SUCCEED() << e;
  // Garbage payloads with a valid checksum.
  std::srand(5);
  for (auto* frame : {&zfp, &lz4}) {
    for (int i = 0; i < 300; ++i) {
      std::string err = forged(*frame, [&](auto& f) {
        const size_t head = f.size() - peek<uint64_t>(f, kPayloadBytesAt);
        for (int k = 0; k < 8; ++k)
          f[head + std::rand() % (f.size() - head)] = static_cast<char>(std::rand());
      });
      (void)err;  // either an error or some tensor: the point is no crash (see the fuzz target)
    }
  }
}

TEST(Codec, RandomBytesNeverCrash) {
  std::vector<char> good;
  FrameEncoder(parse_codec("zfp-rate:8+lz4"))
      .encode(1, 0, {activation({1, 4, 8, 8}), at::ones({2}, at::kLong)}, good);
  std::srand(3);
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    auto bad = good;
    for (int k = 0; k < 4; ++k) bad[std::rand() % bad.size()] = static_cast<char>(std::rand());
    bad.resize(std::rand() % bad.size());
    // Any exception other than edgepipe::Error, or a crash, fails the test.
    rejected += !error_of(bad).empty();
  }
  EXPECT_EQ(rejected, 2000);  // every frame was shortened, so every one must be rejected
}

// ---- zfp chunks ---------------------------------------------------------------------------

TEST(Codec, ZfpChunksCoverTheFieldInWholeLayers) {
  // 1x256x56x56: W x H x C = 56 x 56 x 256, 64 layers of 4 channels (50 KB each).
  ZfpField f = zfp_field_of({1, 256, 56, 56});
  ZfpChunks c = zfp_chunks_of(f, 4);
  EXPECT_EQ(c.layers, 3u);                       // about 128 KiB
  EXPECT_EQ(c.count, 22u);                       // 21 x 3 layers + 1
  EXPECT_EQ(zfp_chunks_of(f, 4, 1).count, 64u);  // at least one layer each
  EXPECT_EQ(zfp_chunks_of(zfp_field_of({8, 8}), 4).count, 1u);
  EXPECT_EQ(zfp_chunks_of(zfp_field_of({1, 1 << 22}), 4, 1).count, kMaxZfpChunks);
  // Whatever the target, the count determines the layout (as the decoder derives it): every
  // chunk gets whole layers, the last the rest, none is empty.
  for (const auto& shape : std::vector<std::vector<int64_t>>{
           {1, 37, 11, 9}, {3, 5, 30, 17}, {1001}, {2, 1000}, {1, 64, 14, 14}, {7, 7}}) {
    for (int dims = 1; dims <= 3; ++dims) {
      f = zfp_field_of(shape, dims);
      const uint64_t layers = (f.n[f.dims - 1] + 3) / 4;
      for (size_t bytes : {1, 100, 1000, 5000, 1 << 20}) {
        c = zfp_chunks_of(f, 4, bytes);
        ASSERT_GE(c.count, 1u);
        ASSERT_LE(c.count, layers);
        EXPECT_EQ(c.layers, (layers + c.count - 1) / c.count);
        EXPECT_GT(layers, (c.count - 1) * c.layers) << "empty last chunk";
      }
    }
  }
}

// Every zfp mode through many chunks, on odd sizes, 1 and several threads: the frame is the same
// byte for byte on any number of threads, and decodes to exactly what the one-chunk frame
// decodes to (zfp blocks are coded independently; chunks only cut between them).
TEST(Codec, ChunkedZfpRoundTripsOnAnyThreadCount) {
  at::manual_seed(11);
  const std::vector<at::Tensor> in{
      activation({1, 37, 11, 9}),                    // odd sizes: partial blocks in every axis
      activation({3, 5, 30, 17}),                    // 2-D field (30*17) x 15
      at::sin(at::arange(1001, at::kFloat) * 0.01),  // 1-D, smooth (zfp-reversible shrinks it)
      activation({2, 13, 9, 7}).to(at::kDouble),     // double
      at::arange(50, at::kLong),                     // not zfp: no chunks
      activation({1, 64, 14, 14}),
  };
  for (const char* name : {"zfp-rate:8", "zfp-rate:5+lz4", "zfp-precision:12", "zfp-accuracy:1e-3",
                           "zfp-relacc:1e-2+lz4", "zfp-reversible"}) {
    const CodecSpec codec = parse_codec(name);
    std::vector<char> one, many, many3;
    FrameEncoder(codec, 1, 0, size_t(1) << 30).encode(1, 0, in, one);  // one chunk each
    FrameEncoder(codec, 1, 0, 200).encode(1, 0, in, many);
    {
      Threads threads(3);
      FrameEncoder(codec, 1, 0, 200).encode(1, 0, in, many3);
    }
    EXPECT_EQ(peek<uint16_t>(one, kChunksAt), 1u) << name;
    EXPECT_GT(peek<uint16_t>(many, kChunksAt), 4u) << name;
    EXPECT_EQ(many, many3) << name << ": the frame depends on the thread count";
    EXPECT_LE(many.size(), frame_bound(metas_of(in))) << name;
    Frame a = decode_frame(one.data(), one.size());
    for (int threads : {1, 2, 3}) {
      Threads t(threads);
      FrameDecoder dec;
      for (int rep = 0; rep < 2; ++rep) {  // twice: reused buffers
        Frame b = dec.decode(many.data(), many.size());
        ASSERT_EQ(b.tensors.size(), in.size());
        for (size_t i = 0; i < in.size(); ++i) {
          // (lz4 over the zfp stream may pay off with one chunk and not with many, or back)
          auto zfp_or_not = [](TensorMethod m) {
            return m == TensorMethod::zfp_lz4 ? TensorMethod::zfp : m;
          };
          EXPECT_EQ(zfp_or_not(b.methods[i]), zfp_or_not(a.methods[i])) << name << " " << i;
          EXPECT_TRUE(same_bytes(a.tensors[i], b.tensors[i]))
              << name << " tensor " << i << " on " << threads << " threads";
          if (!codec.lossy()) {
            EXPECT_TRUE(same_bytes(in[i], b.tensors[i])) << name << " " << i;
          }
        }
      }
    }
  }
}

// The error measured with chunks coded in parallel is the same as on one thread.
TEST(Codec, ChunkedErrorIsMeasuredTheSameOnAnyThreadCount) {
  at::manual_seed(12);
  at::Tensor x = activation({1, 32, 28, 28});
  FrameEncoder one(parse_codec("zfp-relacc:1e-2"), 1, 0, 4096);
  FrameEncoder three(parse_codec("zfp-relacc:1e-2"), 1, 0, 4096);
  std::vector<char> buf;
  one.encode(0, 0, {x}, buf);
  {
    Threads threads(3);
    three.encode(0, 0, {x}, buf);
  }
  EXPECT_GT(one.counters().error_max_rel, 0);
  EXPECT_LE(one.counters().error_max_rel, 1e-2);
  EXPECT_EQ(one.counters().error_max_rel, three.counters().error_max_rel);
  EXPECT_EQ(one.counters().error_sq, three.counters().error_sq);
  EXPECT_EQ(one.counters().ref_sq, three.counters().ref_sq);
}

// A tensor that does not go through zfp after all (NaN: lz4; noise zfp cannot shrink: raw)
// leaves no chunk table: the payloads behind it move down and the frame stays consistent.
TEST(Codec, TensorsThatLeaveZfpLeaveNoChunkTable) {
  at::manual_seed(13);
  at::Tensor nan = activation({1, 16, 16, 16});
  nan[0][3][4][5] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<at::Tensor> in{activation({1, 16, 16, 16}), nan, at::randn({1, 16, 16, 16}),
                                   activation({1, 8, 8, 8})};
  std::vector<char> buf;
  FrameEncoder(parse_codec("zfp-reversible"), 8, 0, 2048).encode(3, 0, in, buf);
  Frame f = decode_frame(buf.data(), buf.size());
  ASSERT_EQ(f.tensors.size(), in.size());
  EXPECT_EQ(f.methods[1], TensorMethod::lz4);
  EXPECT_EQ(f.methods[2], TensorMethod::raw);  // zfp's lossless mode cannot shrink noise
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(same_bytes(in[i], f.tensors[i])) << i;
  EXPECT_LE(buf.size(), frame_bound(metas_of(in)));
}

TEST(Codec, CorruptChunkSizesAreRejected) {
  at::manual_seed(14);
  at::Tensor x = activation({1, 32, 16, 16});  // 4 dims: chunk sizes at kDims0At + 32
  std::vector<char> good;
  FrameEncoder(parse_codec("zfp-rate:8"), 8, 0, 2048).encode(1, 0, {x}, good);
  const uint16_t count = peek<uint16_t>(good, kChunksAt);
  ASSERT_GE(count, 3u);
  const size_t table = kDims0At + 4 * sizeof(int64_t);
  auto size_of = [&](const std::vector<char>& f, size_t k) {
    return peek<uint64_t>(f, table + 8 * k);
  };
  auto forged = [](std::vector<char> f, auto change) {
    change(f);
    refresh_crc(f);
    return error_of(f);
  };
  EXPECT_EQ(error_of(good), "");
  // A chunk longer than the stream, or empty.
  EXPECT_NE(forged(good, [&](auto& f) { poke<uint64_t>(f, table, 1ull << 40); })
                .find("zfp chunk 0 claims"),
            std::string::npos);
  EXPECT_NE(forged(good, [&](auto& f) { poke<uint64_t>(f, table + 8, 0); })
                .find("zfp chunk 1 claims 0 bytes"),
            std::string::npos);
  // Sizes that do not add up to the stream.
  EXPECT_NE(forged(good, [&](auto& f) { poke<uint64_t>(f, table, size_of(f, 0) - 8); })
                .find("zfp chunks add up to"),
            std::string::npos);
  // Sizes that add up, but one chunk longer than its slab can need.
  const std::string e = forged(good, [&](auto& f) {
    uint64_t rest = 0;
    for (size_t k = 1; k < count; ++k) rest += size_of(f, k) - 8;
    poke<uint64_t>(f, table, size_of(f, 0) + rest);
    for (size_t k = 1; k < count; ++k) poke<uint64_t>(f, table + 8 * k, uint64_t(8));
  });
  EXPECT_NE(e.find("its zfp chunk 0 has"), std::string::npos) << e;
  EXPECT_NE(e.find("more than its field and mode allow"), std::string::npos) << e;
  // Chunk sizes swapped between chunks: decoded (rate mode: all chunks alike) or reported as a
  // corrupt stream, never read out of bounds.
  SUCCEED() << forged(good, [&](auto& f) {
    const uint64_t a = size_of(f, 0), b = size_of(f, count - 1);
    poke<uint64_t>(f, table, b);
    poke<uint64_t>(f, table + 8 * (count - 1), a);
  });
  // Chunk counts the field cannot have (no chunk, more than its layers, more than the maximum),
  // or a table for a tensor that is not zfp.
  for (uint16_t bad : {uint16_t(0), uint16_t(9), uint16_t(kMaxZfpChunks + 1)}) {
    const std::string err = forged(good, [&](auto& f) { poke<uint16_t>(f, kChunksAt, bad); });
    EXPECT_TRUE(err.find("bad zfp chunk count") != std::string::npos ||
                err.find("truncated") != std::string::npos ||
                err.find("padded") != std::string::npos)
        << bad << ": " << err;
  }
  std::vector<char> raw;
  encode_frame(1, 0, {x}, raw);
  EXPECT_NE(forged(raw, [&](auto& f) { poke<uint16_t>(f, kChunksAt, 1); })
                .find("is not zfp-encoded but claims 1 zfp chunks"),
            std::string::npos);
  // Truncated inside the chunk table.
  std::vector<char> cut(good.begin(), good.begin() + table + 12);
  EXPECT_NE(error_of(cut).find("truncated in the zfp chunk sizes"), std::string::npos)
      << error_of(cut);
  // Garbage in the chunk streams with a valid checksum: an error or some tensor, never a crash.
  std::srand(15);
  for (int i = 0; i < 300; ++i) {
    (void)forged(good, [&](auto& f) {
      const size_t head = f.size() - peek<uint64_t>(f, kPayloadBytesAt);
      for (int k = 0; k < 8; ++k)
        f[head + std::rand() % (f.size() - head)] = static_cast<char>(std::rand());
      if (i % 3 == 0)  // and sizes moved between neighbours
        poke<uint64_t>(f, table + 8 * (i % count), size_of(f, i % count) + 8 * (i % 5));
    });
  }
}

// ---- q8 -----------------------------------------------------------------------------------

namespace {

// Checks every decoded value of a q8 frame against the bound of its block: half the block's
// step, (max - min) / 255 / 2, plus float rounding (the step's and the values' own, and for
// double tensors the block's minimum rounded to float32).
void expect_q8_bound(const at::Tensor& x, const at::Tensor& y, const std::string& what) {
  ASSERT_EQ(x.sizes(), y.sizes()) << what;
  const at::Tensor a = x.to(at::kDouble).contiguous().flatten();
  const at::Tensor b = y.to(at::kDouble).contiguous().flatten();
  const double* xs = a.data_ptr<double>();
  const double* ys = b.data_ptr<double>();
  const int64_t n = a.numel();
  int64_t worst_at = -1;
  double worst = 0;  // error over bound
  for (int64_t first = 0; first < n; first += int64_t(kQ8Block)) {
    const int64_t last = std::min(n, first + int64_t(kQ8Block));
    double lo = xs[first], hi = xs[first];
    for (int64_t i = first; i < last; ++i) lo = std::min(lo, xs[i]), hi = std::max(hi, xs[i]);
    const double step = (hi - lo) / 255;
    const double bound =
        step / 2 * (1 + 1e-4) + std::ldexp(std::max(std::fabs(lo), std::fabs(hi)), -22);
    for (int64_t i = first; i < last; ++i) {
      const double e = std::fabs(ys[i] - xs[i]);
      if (e > bound && (worst_at < 0 || e / bound > worst)) worst_at = i, worst = e / bound;
    }
  }
  if (worst_at >= 0)
    ADD_FAILURE() << what << ": value " << worst_at << " is " << worst
                  << " times its block's bound (" << xs[worst_at] << " decoded as " << ys[worst_at]
                  << ")";
}

// Encodes and decodes with one codec; returns the decoded frame (its tensors own their memory).
Frame q8_round_trip(const char* codec, const std::vector<at::Tensor>& in,
                    std::vector<char>* frame = nullptr, FrameEncoder* encoder = nullptr) {
  std::vector<char> buf;
  FrameEncoder own(parse_codec(codec));
  (encoder ? *encoder : own).encode(1, 0, in, buf);
  EXPECT_LE(buf.size(), frame_bound(metas_of(in)));
  Frame f = decode_frame(buf.data(), buf.size());
  if (frame) *frame = buf;
  return f;
}

bool is_q8(TensorMethod m) { return m == TensorMethod::q8 || m == TensorMethod::q8_lz4; }

}  // namespace

TEST(Q8, EveryValueIsWithinHalfAStepOfItsBlock) {
  at::manual_seed(21);
  const std::vector<std::vector<int64_t>> shapes{{0},
                                                 {1},
                                                 {2},
                                                 {3},
                                                 {4095},
                                                 {4096},
                                                 {4097},
                                                 {2, 4096},
                                                 {3, 4097},
                                                 {2, 7, 33, 41},
                                                 {1, 16, 56, 56}};
  for (const char* codec : {"q8", "q8+lz4"}) {
    for (const auto& shape : shapes) {
      for (double scale : {1e-30, 1e-3, 1.0, 1e4, 1e30}) {
        // Noise with an offset (blocks whose minimum is far from 0), and post-ReLU activations.
        const std::vector<at::Tensor> in{at::randn(shape) * scale + 3 * scale,
                                         activation(shape, scale)};
        const std::string what = std::string(codec) + " shape " +
                                 c10::str(c10::IntArrayRef(shape)) + " scale " +
                                 std::to_string(scale);
        Frame f = q8_round_trip(codec, in);
        ASSERT_EQ(f.tensors.size(), in.size());
        for (size_t i = 0; i < in.size(); ++i) {
          expect_q8_bound(in[i], f.tensors[i], what);
          const int64_t n = in[i].numel();
          if (n >= 3)  // fewer values than 2 floats of block parameters: sent raw
            EXPECT_TRUE(is_q8(f.methods[i])) << what;
          else
            EXPECT_TRUE(same_bytes(in[i], f.tensors[i])) << what;
        }
        // It is a quantisation: a block of noise takes no more than 256 distinct values.
        if (in[0].numel() >= 4096) {
          at::Tensor block = f.tensors[0].flatten().narrow(0, 0, 4096);
          EXPECT_LE(std::get<0>(at::_unique(block)).numel(), 256) << what;
          EXPECT_GT(std::get<0>(at::_unique(block)).numel(), 100) << what;
        }
      }
    }
  }
}

TEST(Q8, ConstantBlocksDecodeExactly) {
  at::manual_seed(22);
  for (const char* codec : {"q8", "q8+lz4"}) {
    const at::Tensor constant = at::full({3, 5000}, 1.2345f);
    const at::Tensor negative = at::full({4096}, -3.75f);
    const at::Tensor zeros = at::zeros({2, 4097});
    const at::Tensor dbl = at::full({9000}, 0.1f).to(at::kDouble);  // a float32 value
    // A constant first block, then noise: the first block is still exact.
    at::Tensor mixed = at::randn({3 * 4096});
    mixed.narrow(0, 0, 4096).fill_(-7.5f);
    Frame f = q8_round_trip(codec, {constant, negative, zeros, dbl, mixed});
    EXPECT_TRUE(same_bytes(f.tensors[0], constant)) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[1], negative)) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[2], zeros)) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[3], dbl)) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[4].narrow(0, 0, 4096), mixed.narrow(0, 0, 4096))) << codec;
    EXPECT_FALSE(same_bytes(f.tensors[4], mixed)) << codec;
    for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(is_q8(f.methods[i])) << codec << " " << i;
  }
}

TEST(Q8, Float64) {
  at::manual_seed(23);
  const at::Tensor x = at::randn({2, 5000}, at::kDouble) * 1e3;
  const at::Tensor y = activation({1, 8, 40, 40}).to(at::kDouble);
  const at::Tensor far = at::randn({4100}, at::kDouble) * 1e-3 + 1e6;  // min not a float32
  const at::Tensor tiny = at::randn({100}, at::kDouble) * 1e-300;      // below float32's range
  FrameEncoder enc(parse_codec("q8"));
  Frame f = q8_round_trip("q8", {x, y, far, tiny}, nullptr, &enc);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(f.tensors[i].scalar_type(), at::kDouble) << i;
    EXPECT_TRUE(is_q8(f.methods[i])) << i;
  }
  expect_q8_bound(x, f.tensors[0], "double noise");
  expect_q8_bound(y, f.tensors[1], "double activation");
  expect_q8_bound(far, f.tensors[2], "double far from 0");
  EXPECT_LT((f.tensors[3] - tiny).abs().max().item<double>(), 1e-44);
  // An eighth of the bytes, and the error measured on doubles.
  EXPECT_GT(double(x.nbytes()) / q8_stream_bytes(x.numel()), 7.9);
  EXPECT_EQ(enc.counters().lossy_tensors, 4);
  EXPECT_GT(enc.counters().error_max_rel, 0);
  // Doubles beyond what float32 parameters can hold go through lz4, exact.
  const at::Tensor huge = at::randn({64}, at::kDouble) * 1e300;
  f = q8_round_trip("q8", {huge});
  EXPECT_TRUE(same_bytes(f.tensors[0], huge));
  EXPECT_FALSE(is_q8(f.methods[0]));
}

TEST(Q8, OtherDtypesPassBitExact) {
  at::manual_seed(24);
  const std::vector<at::Tensor> in{
      at::arange(5000, at::kLong), at::randn({70, 70}) > 0, at::randint(0, 1000, {3000}, at::kInt),
      at::randn({3, 900}).to(at::kHalf), at::randint(0, 255, {5000}, at::kByte)};
  for (const char* codec : {"q8", "q8+lz4"}) {
    Frame f = q8_round_trip(codec, in);
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_TRUE(same_bytes(in[i], f.tensors[i])) << codec << " " << i;
      EXPECT_TRUE(f.methods[i] == TensorMethod::raw || f.methods[i] == TensorMethod::lz4)
          << codec << " " << i;
    }
  }
}

TEST(Q8, RatioAndErrorOnAnActivation) {
  at::manual_seed(25);
  const at::Tensor x = activation({1, 256, 56, 56});
  FrameEncoder q8(parse_codec("q8")), q8lz4(parse_codec("q8+lz4"));
  Frame f = q8_round_trip("q8", {x}, nullptr, &q8);
  q8_round_trip("q8+lz4", {x}, nullptr, &q8lz4);
  const double ratio = q8.counters().bytes_raw / q8.counters().bytes_encoded;
  EXPECT_GE(ratio, 3.9);
  EXPECT_GE(q8lz4.counters().bytes_raw / q8lz4.counters().bytes_encoded, ratio);
  // The error as the link reports it: post-ReLU blocks start at 0, so at most half a step of
  // max / 255; and the same as measured here on the decoded tensor.
  const auto& c = q8.counters();
  EXPECT_EQ(c.lossy_tensors, 1);
  EXPECT_GT(c.error_max_rel, 0);
  EXPECT_LE(c.error_max_rel, 1.0 / 510 * 1.001);
  const at::Tensor d = f.tensors[0].to(at::kDouble) - x.to(at::kDouble);
  EXPECT_NEAR(c.error_max_rel, d.abs().max().item<double>() / x.abs().max().item<double>(), 1e-12);
  EXPECT_NEAR(c.error_sq, d.pow(2).sum().item<double>(), 1e-9 * c.error_sq);
  EXPECT_NEAR(c.ref_sq, x.to(at::kDouble).pow(2).sum().item<double>(), 1e-9 * c.ref_sq);
  EXPECT_GT(c.time_error, 0);
}

// Blocks are coded in parallel: the frame is the same on any number of threads, and decodes to
// the same values on any number.
TEST(Q8, SameFrameOnAnyThreadCount) {
  at::manual_seed(26);
  const std::vector<at::Tensor> in{activation({2, 32, 28, 28}), at::randn({40000}, at::kDouble)};
  for (const char* codec : {"q8", "q8+lz4"}) {
    std::vector<char> one, three;
    FrameEncoder(parse_codec(codec)).encode(1, 0, in, one);
    {
      Threads t(3);
      FrameEncoder(parse_codec(codec)).encode(1, 0, in, three);
    }
    EXPECT_EQ(one, three) << codec;
    Frame a = decode_frame(one.data(), one.size());
    Threads t(3);
    FrameDecoder dec;
    for (int rep = 0; rep < 2; ++rep) {
      Frame b = dec.decode(one.data(), one.size());
      for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(same_bytes(a.tensors[i], b.tensors[i]));
    }
  }
}

TEST(Q8, DamagedFramesAreRejected) {
  at::manual_seed(27);
  // 3 blocks; zeros in runs so that lz4 shrinks the codes.
  at::Tensor x = at::relu(at::randn({1, 3, 64, 50}));
  x.narrow(2, 0, 32).zero_();
  std::vector<char> q8, q8lz4;
  FrameEncoder(parse_codec("q8")).encode(1, 0, {x}, q8);
  FrameEncoder(parse_codec("q8+lz4")).encode(1, 0, {x}, q8lz4);
  ASSERT_EQ(peek<uint8_t>(q8, kMethodAt), uint8_t(TensorMethod::q8));
  ASSERT_EQ(peek<uint8_t>(q8lz4, kMethodAt), uint8_t(TensorMethod::q8_lz4));
  ASSERT_EQ(peek<uint64_t>(q8, kStreamBytesAt), q8_stream_bytes(9600));
  ASSERT_EQ(error_of(q8), "");
  ASSERT_EQ(error_of(q8lz4), "");
  auto forged = [](std::vector<char> f, auto change) {
    change(f);
    refresh_crc(f);
    return error_of(f);
  };
  auto payload = [](const std::vector<char>& f) {
    return f.size() - peek<uint64_t>(f, kPayloadBytesAt);
  };
  auto has = [](const std::string& e, const char* what) {
    return e.find(what) != std::string::npos;
  };
  // Truncated anywhere: in the header, the descriptor, the stream.
  for (const auto* good : {&q8, &q8lz4})
    for (size_t cut : {size_t(0), size_t(47), size_t(60), size_t(130), payload(*good),
                       payload(*good) + 100, good->size() - 1}) {
      std::vector<char> bad(good->begin(), good->begin() + cut);
      EXPECT_TRUE(has(error_of(bad), "truncated")) << cut << ": " << error_of(bad);
    }
  // Stream sizes that are not what 9600 values make.
  for (uint64_t bytes :
       {uint64_t(0), q8_stream_bytes(9600) - 1, q8_stream_bytes(9600) + 8, uint64_t(1) << 40}) {
    const std::string e = forged(q8, [&](auto& f) { poke<uint64_t>(f, kStreamBytesAt, bytes); });
    EXPECT_TRUE(has(e, "its q8 stream claims")) << e;
    EXPECT_TRUE(has(e, "its 9600 values make 9624")) << e;
  }
  // Encoded sizes that do not match the stream.
  std::string e = forged(q8, [](auto& f) { poke<uint64_t>(f, kEncodedAt, 64); });
  EXPECT_TRUE(has(e, "inconsistent q8 byte counts")) << e;
  e = forged(q8lz4, [](auto& f) { poke<uint64_t>(f, kEncodedAt, q8_stream_bytes(9600)); });
  EXPECT_TRUE(has(e, "inconsistent q8 byte counts")) << e;
  e = forged(q8, [](auto& f) { poke<uint8_t>(f, kMethodAt, uint8_t(TensorMethod::q8_lz4)); });
  EXPECT_TRUE(has(e, "inconsistent q8 byte counts")) << e;
  e = forged(q8lz4, [](auto& f) { poke<uint8_t>(f, kMethodAt, uint8_t(TensorMethod::q8)); });
  EXPECT_TRUE(has(e, "inconsistent q8 byte counts")) << e;
  // zfp's fields on a q8 tensor; q8 on a tensor that is not float or double.
  e = forged(q8, [](auto& f) { poke<uint8_t>(f, kZfpModeAt, 2); });
  EXPECT_TRUE(has(e, "is q8-encoded but has zfp parameters")) << e;
  e = forged(q8, [](auto& f) { poke<double>(f, kZfpParamAt, 8.0); });
  EXPECT_TRUE(has(e, "is q8-encoded but has zfp parameters")) << e;
  e = forged(q8, [](auto& f) { poke<uint64_t>(f, kZfpNAt, 9600); });
  EXPECT_TRUE(has(e, "is q8-encoded but has zfp parameters")) << e;
  e = forged(q8, [](auto& f) { poke<uint8_t>(f, kDesc0, uint8_t(at::kInt)); });
  EXPECT_TRUE(has(e, "of dtype Int claims to be q8-encoded")) << e;
  e = forged(q8, [](auto& f) { poke<uint16_t>(f, kChunksAt, 1); });
  EXPECT_TRUE(has(e, "is not zfp-encoded but claims 1 zfp chunks")) << e;
  // A block's minimum or scale that is not finite, negative, or overflows float at code 255.
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float big = std::numeric_limits<float>::max();
  for (const auto& [k, lo, scale] :
       std::vector<std::tuple<size_t, float, float>>{{0, nan, 1.0f},
                                                     {1, inf, 1.0f},
                                                     {2, 0.0f, nan},
                                                     {0, 0.0f, -1.0f},
                                                     {1, 0.0f, inf},
                                                     {2, big, big / 255},
                                                     {0, -big, big}}) {
    e = forged(q8, [&](auto& f) {
      poke<float>(f, payload(f) + 8 * k, lo);
      poke<float>(f, payload(f) + 8 * k + 4, scale);
    });
    EXPECT_TRUE(
        has(e, ("its q8 block " + std::to_string(k) + " of 3 has a bad minimum or scale").c_str()))
        << lo << " " << scale << ": " << e;
  }
  // Corrupt lz4 over q8: an error, or (if lz4 still makes the right size) some tensor.
  e = forged(q8lz4, [&](auto& f) { f[payload(f)] = char(0xff); });
  EXPECT_TRUE(e.empty() || has(e, "its lz4 data (over q8) is corrupt") ||
              has(e, "has a bad minimum or scale"))
      << e;
  e = forged(q8lz4, [&](auto& f) {
    poke<uint64_t>(f, kRawAt, 4 * 9601);  // the shape's bytes no longer match
  });
  EXPECT_TRUE(has(e, "its shape makes")) << e;
  // Garbage anywhere after the header, checksum made right: an error or some finite tensor.
  std::srand(28);
  for (const auto* good : {&q8, &q8lz4}) {
    for (int i = 0; i < 500; ++i) {
      std::vector<char> bad = *good;
      for (int k = 0; k < 6; ++k)
        bad[kHeader + std::rand() % (bad.size() - kHeader)] = static_cast<char>(std::rand());
      refresh_crc(bad);
      try {
        Frame f = FrameDecoder().decode(bad.data(), bad.size());
        for (size_t t = 0; t < f.tensors.size(); ++t)
          if (is_q8(f.methods[t])) {
            EXPECT_TRUE(at::isfinite(f.tensors[t]).all().item<bool>());
          }
      } catch (const Error&) {
      }
    }
  }
}
