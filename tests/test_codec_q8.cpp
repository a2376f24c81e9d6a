// q8: the error bound value by value, constant blocks, float64, other dtypes, ratio, threads,
// damaged frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>

#include "codec_test_util.h"

using namespace edgepipe;
using namespace codec_test;

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

namespace {

// A q8 and a q8 + lz4 frame of one tensor of 3 blocks (9600 values), for damaging.
class Q8Damage : public ::testing::Test {
 protected:
  void SetUp() override {
    at::manual_seed(27);
    // 3 blocks; zeros in runs so that lz4 shrinks the codes.
    at::Tensor x = at::relu(at::randn({1, 3, 64, 50}));
    x.narrow(2, 0, 32).zero_();
    FrameEncoder(parse_codec("q8")).encode(1, 0, {x}, q8);
    FrameEncoder(parse_codec("q8+lz4")).encode(1, 0, {x}, q8lz4);
    ASSERT_EQ(peek<uint8_t>(q8, kMethodAt), uint8_t(TensorMethod::q8));
    ASSERT_EQ(peek<uint8_t>(q8lz4, kMethodAt), uint8_t(TensorMethod::q8_lz4));
    ASSERT_EQ(peek<uint64_t>(q8, kStreamBytesAt), q8_stream_bytes(9600));
    ASSERT_EQ(error_of(q8), "");
    ASSERT_EQ(error_of(q8lz4), "");
  }
  std::vector<char> q8, q8lz4;
};

}  // namespace

TEST_F(Q8Damage, DamagedFramesAreRejected) {
  // Truncated anywhere: in the header, the descriptor, the stream.
  for (const auto* good : {&q8, &q8lz4})
    for (size_t cut : {size_t(0), kHeader - 1, kDesc0 + 12, kDims0At + 18, payload_at(*good),
                       payload_at(*good) + 100, good->size() - 1}) {
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
  e = forged(q8, [](auto& f) { poke<uint8_t>(f, kDtypeAt, uint8_t(at::kInt)); });
  EXPECT_TRUE(has(e, "of dtype Int claims to be q8-encoded")) << e;
  e = forged(q8, [](auto& f) { poke<uint16_t>(f, kChunksAt, 1); });
  EXPECT_TRUE(has(e, "is not zfp-encoded but claims 1 zfp chunks")) << e;
}

TEST_F(Q8Damage, DamagedBlocksAreRejected) {
  std::string e;
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
      const size_t params = payload_at(f) + 2 * sizeof(float) * k;  // block k's minimum, scale
      poke<float>(f, params, lo);
      poke<float>(f, params + sizeof(float), scale);
    });
    EXPECT_TRUE(
        has(e, ("its q8 block " + std::to_string(k) + " of 3 has a bad minimum or scale").c_str()))
        << lo << " " << scale << ": " << e;
  }
  // Corrupt lz4 over q8: an error, or (if lz4 still makes the right size) some tensor.
  e = forged(q8lz4, [&](auto& f) { f[payload_at(f)] = char(0xff); });
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
