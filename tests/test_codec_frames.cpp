// Frames of every codec: round trips on many shapes and dtypes, lossless codecs bit for bit,
// lossy ones within their bounds, special values, ratios, the measured error, reused buffers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "codec_test_util.h"

using namespace edgepipe;
using namespace codec_test;

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
    else if (codec.is_quant())  // a clipped range: values decode inside [min, max]
      EXPECT_LE(err, 2 * maxabs * 1.001) << "tensor " << i << " with " << codec.name();
    else if (codec.kind == CodecKind::zfp_relacc)
      EXPECT_LE(err, codec.param * maxabs) << i;
    else if (codec.kind == CodecKind::zfp_precision || codec.param >= 8)
      EXPECT_LE(err, 0.25 * maxabs + 1e-6) << "tensor " << i << " with " << codec.name();
    else  // 4 bits per value: coarse on noise, but finite and of the right scale
      EXPECT_LE(err, 4 * maxabs + 1e-6) << "tensor " << i << " with " << codec.name();
    EXPECT_TRUE(at::isfinite(y).all().item<bool>());
    // The bounds above on the largest error pass a decoder that returns zeros (its error is
    // maxabs); on the activations (smooth, half zeros) every lossy codec must also keep the
    // relative L2 error well under that decoder's 1.
    if (i == 0 || i == 1 || i == 7) {
      const double rel = (y.to(at::kDouble) - x.to(at::kDouble)).norm().item<double>() /
                         x.to(at::kDouble).norm().item<double>();
      const double bound = codec.kind == CodecKind::q2 ? 0.5 : codec.param == 4 ? 0.35 : 0.1;
      EXPECT_LT(rel, bound) << "tensor " << i << " with " << codec.name();
      RecordProperty(std::string("rel_l2_") + std::to_string(i), std::to_string(rel));
    }
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
  const auto is_quant = [](TensorMethod m) {
    return m >= TensorMethod::q8 && m <= TensorMethod::q2_lz4;
  };
  if (codec.is_quant()) {
    const TensorMethod plain = codec.kind == CodecKind::q8   ? TensorMethod::q8
                               : codec.kind == CodecKind::q4 ? TensorMethod::q4
                                                             : TensorMethod::q2;
    for (size_t i : {0, 1, 2, 3, 6, 7})
      EXPECT_TRUE(f.methods[i] == plain || uint8_t(f.methods[i]) == uint8_t(plain) + 1) << i;
    EXPECT_EQ(f.methods[4], TensorMethod::raw);  // one value: a quantiser would not shrink it
    EXPECT_GT(enc.counters().lossy_tensors, 0);
  } else {
    for (auto m : f.methods) EXPECT_FALSE(is_quant(m));
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
