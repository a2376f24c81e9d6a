// q4 and q2: the error bound block by block (never worse than the block's unclipped range),
// clipping of outliers, exact zeros and constants, the packed layout, float64, ratio, the
// link's error figures, threads, damaged frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>

#include "codec_test_util.h"
#include "edgepipe/wire/quant.h"

using namespace edgepipe;
using namespace codec_test;

namespace {

// The bits of a codec name's quantiser.
unsigned bits_of(const std::string& codec) { return parse_codec(codec).quant_bits(); }

bool is_method(TensorMethod m, unsigned bits) {
  const auto plain = bits == 4 ? TensorMethod::q4 : TensorMethod::q2;
  return m == plain || uint8_t(m) == uint8_t(plain) + 1;
}

// What is wrong with y as the decoding of x at `bits` bits, "" if nothing: per block, every value
// inside the block's [min, max], and the block's squared error no more than an unclipped
// quantiser's worst case, n (step / 2)^2 with step = (max - min) / (2^bits - 1) (plus float
// rounding: the scale's and, for double tensors, the base rounded to float32).
std::string block_bound_defect(const at::Tensor& x, const at::Tensor& y, unsigned bits) {
  if (x.sizes() != y.sizes()) return "shapes differ";
  const at::Tensor a = x.to(at::kDouble).contiguous().flatten();
  const at::Tensor b = y.to(at::kDouble).contiguous().flatten();
  const double* xs = a.data_ptr<double>();
  const double* ys = b.data_ptr<double>();
  const int64_t n = a.numel(), block = int64_t(kQuantBlock);
  const double top = double((1u << bits) - 1);
  for (int64_t first = 0; first < n; first += block) {
    const int64_t last = std::min(n, first + block);
    double lo = xs[first], hi = xs[first], sse = 0;
    for (int64_t i = first; i < last; ++i) lo = std::min(lo, xs[i]), hi = std::max(hi, xs[i]);
    const double slack = std::ldexp(std::max(std::fabs(lo), std::fabs(hi)), -21);
    for (int64_t i = first; i < last; ++i) {
      if (ys[i] < lo - slack || ys[i] > hi + slack)
        return "value " + std::to_string(i) + " decodes to " + std::to_string(ys[i]) +
               ", outside its block's [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
      sse += (ys[i] - xs[i]) * (ys[i] - xs[i]);
    }
    const double half = (hi - lo) / top / 2 * (1 + 1e-4) + slack;
    const double bound = double(last - first) * half * half;
    if (sse > bound)
      return "block at " + std::to_string(first) + ": squared error " + std::to_string(sse) +
             " over the unclipped bound " + std::to_string(bound);
  }
  return "";
}

// The squared error of an unclipped quantiser of one block at `bits` bits, in double.
double unclipped_sse(const at::Tensor& x, unsigned bits) {
  const at::Tensor a = x.to(at::kDouble).contiguous().flatten();
  const double lo = a.min().item<double>(), hi = a.max().item<double>();
  const double step = (hi - lo) / double((1u << bits) - 1);
  const at::Tensor back = at::round((a - lo) / step) * step + lo;
  return (back - a).pow(2).sum().item<double>();
}

Frame round_trip(const std::string& codec, const std::vector<at::Tensor>& in,
                 std::vector<char>* frame = nullptr, FrameEncoder* encoder = nullptr) {
  std::vector<char> buf;
  FrameEncoder own(parse_codec(codec));
  (encoder ? *encoder : own).encode(1, 0, in, buf);
  EXPECT_LE(buf.size(), frame_bound(metas_of(in)));
  Frame f = decode_frame(buf.data(), buf.size());
  if (frame) *frame = buf;
  return f;
}

const char* const kLowBit[] = {"q4", "q4+lz4", "q2", "q2+lz4"};

}  // namespace

TEST(LowBit, EveryBlockWithinTheUnclippedBound) {
  at::manual_seed(31);
  const std::vector<std::vector<int64_t>> shapes{
      {3}, {4}, {5}, {4095}, {4096}, {4097}, {3, 4097}, {2, 7, 33, 41}, {1, 16, 56, 56}};
  for (const char* codec : kLowBit) {
    const unsigned bits = bits_of(codec);
    for (const auto& shape : shapes) {
      for (double scale : {1e-30, 1e-3, 1.0, 1e4, 1e30}) {
        const std::vector<at::Tensor> in{at::randn(shape) * scale + 3 * scale,
                                         activation(shape, scale)};
        const std::string what = std::string(codec) + " shape " +
                                 c10::str(c10::IntArrayRef(shape)) + " scale " +
                                 std::to_string(scale);
        Frame f = round_trip(codec, in);
        ASSERT_EQ(f.tensors.size(), in.size());
        for (size_t i = 0; i < in.size(); ++i) {
          EXPECT_EQ(block_bound_defect(in[i], f.tensors[i], bits), "") << what << " tensor " << i;
          EXPECT_TRUE(is_method(f.methods[i], bits)) << what << " " << int(f.methods[i]);
        }
        // A quantisation: a block takes no more than 2^bits distinct values.
        if (in[0].numel() >= 4096) {
          at::Tensor block = f.tensors[0].flatten().narrow(0, 0, 4096);
          EXPECT_LE(std::get<0>(at::_unique(block)).numel(), 1 << bits) << what;
        }
      }
    }
  }
  // The check can fail: a decoder that gave zeros (or the values of another tensor) fails it.
  const at::Tensor x = at::randn({2, 4096}) + 3;
  EXPECT_NE(block_bound_defect(x, at::zeros_like(x), 4), "");
  EXPECT_NE(block_bound_defect(x, at::zeros_like(x), 2), "");
  EXPECT_NE(block_bound_defect(x, at::randn({2, 4096}) + 3, 2), "");
}

// A block of noise with one far outlier: its range clipped, the outlier decodes far below its
// value, and the block's error is well below what the unclipped range would give.
TEST(LowBit, ClippingLowersTheErrorOfOutliers) {
  at::manual_seed(32);
  for (const char* codec : kLowBit) {
    const unsigned bits = bits_of(codec);
    at::Tensor x = at::randn({4096});
    x[100] = 20.0f;
    Frame f = round_trip(codec, {x});
    const at::Tensor y = f.tensors[0];
    const double sse = (y.to(at::kDouble) - x.to(at::kDouble)).pow(2).sum().item<double>();
    EXPECT_LT(sse, 0.6 * unclipped_sse(x, bits)) << codec << ": " << sse;
    EXPECT_LT(y[100].item<float>(), 10.0f) << codec;
    EXPECT_EQ(block_bound_defect(x, y, bits), "") << codec;
  }
}

// Post-ReLU blocks keep their zeros exact (the range never clips below the minimum), and blocks
// of one value decode exactly.
TEST(LowBit, ZerosAndConstantsDecodeExactly) {
  at::manual_seed(33);
  for (const char* codec : kLowBit) {
    const at::Tensor act = activation({1, 8, 40, 40});
    const at::Tensor constant = at::full({3, 5000}, 1.2345f);
    const at::Tensor negative = at::full({4096}, -3.75f);
    const at::Tensor dbl = at::full({9000}, 0.1f).to(at::kDouble);
    Frame f = round_trip(codec, {act, constant, negative, dbl});
    const at::Tensor zeros = act == 0;
    EXPECT_GT(zeros.sum().item<int64_t>(), 1000) << codec;
    EXPECT_TRUE((f.tensors[0].masked_select(zeros) == 0).all().item<bool>()) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[1], constant)) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[2], negative)) << codec;
    EXPECT_TRUE(same_bytes(f.tensors[3], dbl)) << codec;
  }
}

// The codes as quant.h lays them out: low bits first, value i of the tensor in byte i * B / 8.
TEST(LowBit, PackedLayout) {
  for (unsigned bits : {4u, 2u}) {
    const int64_t levels = 1 << bits, n = 4096 + 24;  // a full block and a short one
    const at::Tensor x = at::remainder(at::arange(n, at::kFloat), float(levels));
    std::vector<char> frame;
    Frame f = round_trip(bits == 4 ? "q4" : "q2", {x}, &frame);
    EXPECT_TRUE(same_bytes(f.tensors[0], x)) << bits;  // the codes are the values themselves
    ASSERT_EQ(peek<uint64_t>(frame, kStreamBytesAt), quant_stream_bytes(uint64_t(n), bits));
    const size_t codes = payload_at(frame) + 2 * 2 * sizeof(float);
    EXPECT_EQ(peek<float>(frame, payload_at(frame)), 0.0f);                  // block 0's base
    EXPECT_EQ(peek<float>(frame, payload_at(frame) + sizeof(float)), 1.0f);  // and scale
    // q4: byte k holds codes 2k and 2k + 1 (mod 16); q2: codes 0, 1, 2, 3; low bits first.
    for (size_t k = 0; k < size_t(n) * bits / 8; k += 97) {
      const uint8_t want = bits == 4 ? uint8_t(0x10 + 0x22 * (k % 8)) : uint8_t(0xe4);
      EXPECT_EQ(peek<uint8_t>(frame, codes + k), want) << bits << " byte " << k;
    }
  }
}

TEST(LowBit, Float64AndOtherDtypes) {
  at::manual_seed(34);
  const at::Tensor x = at::randn({2, 5000}, at::kDouble) * 1e3;
  const at::Tensor far = at::randn({4100}, at::kDouble) * 1e-3 + 1e6;  // min not a float32
  const std::vector<at::Tensor> others{at::arange(5000, at::kLong), at::randn({70, 70}) > 0,
                                       at::randn({3, 900}).to(at::kHalf)};
  for (const char* codec : kLowBit) {
    const unsigned bits = bits_of(codec);
    Frame f = round_trip(codec, {x, far});
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(f.tensors[i].scalar_type(), at::kDouble) << i;
      EXPECT_TRUE(is_method(f.methods[i], bits)) << codec << " " << i;
    }
    EXPECT_EQ(block_bound_defect(x, f.tensors[0], bits), "") << codec;
    EXPECT_EQ(block_bound_defect(far, f.tensors[1], bits), "") << codec;
    f = round_trip(codec, others);
    for (size_t i = 0; i < others.size(); ++i) EXPECT_TRUE(same_bytes(others[i], f.tensors[i]));
    // NaN or values beyond float32's range: through lz4, exact.
    at::Tensor nan = at::randn({300});
    nan[7] = std::numeric_limits<float>::quiet_NaN();
    const at::Tensor huge = at::randn({64}, at::kDouble) * 1e300;
    f = round_trip(codec, {nan, huge});
    EXPECT_TRUE(same_bytes(f.tensors[0], nan) && same_bytes(f.tensors[1], huge)) << codec;
    EXPECT_FALSE(is_method(f.methods[0], bits) || is_method(f.methods[1], bits)) << codec;
  }
}

// The sizes: 4 or 2 bits per value plus 8 bytes per block; lz4 over them only when it shrinks
// them. The error the link reports is the error of the decoded tensor.
TEST(LowBit, RatioAndErrorOnAnActivation) {
  at::manual_seed(35);
  const at::Tensor x = activation({1, 64, 56, 56});
  for (unsigned bits : {4u, 2u}) {
    const std::string plain = bits == 4 ? "q4" : "q2";
    FrameEncoder enc(parse_codec(plain)), enc_lz4(parse_codec(plain + "+lz4"));
    Frame f = round_trip(plain, {x}, nullptr, &enc);
    round_trip(plain + "+lz4", {x}, nullptr, &enc_lz4);
    const auto& c = enc.counters();
    EXPECT_EQ(c.bytes_encoded, double(quant_stream_bytes(uint64_t(x.numel()), bits)));
    const double ratio = c.bytes_raw / c.bytes_encoded;
    EXPECT_GE(ratio, bits == 4 ? 7.9 : 15.6) << plain;
    EXPECT_GE(enc_lz4.counters().bytes_raw / enc_lz4.counters().bytes_encoded, ratio) << plain;
    const at::Tensor d = f.tensors[0].to(at::kDouble) - x.to(at::kDouble);
    EXPECT_EQ(c.lossy_tensors, 1);
    EXPECT_NEAR(c.error_max_rel, d.abs().max().item<double>() / x.abs().max().item<double>(),
                1e-12);
    EXPECT_NEAR(c.error_sq, d.pow(2).sum().item<double>(), 1e-9 * c.error_sq);
    EXPECT_NEAR(c.ref_sq, x.to(at::kDouble).pow(2).sum().item<double>(), 1e-9 * c.ref_sq);
    // Coarser than q8, and q2 coarser than q4, but of the right scale.
    EXPECT_GT(c.error_sq, 0);
    EXPECT_LT(c.error_sq, 0.25 * c.ref_sq) << plain;
  }
}

TEST(LowBit, SameFrameOnAnyThreadCount) {
  at::manual_seed(36);
  const std::vector<at::Tensor> in{activation({2, 32, 28, 28}), at::randn({40000}, at::kDouble)};
  for (const char* codec : kLowBit) {
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
    Frame b = dec.decode(one.data(), one.size());
    for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(same_bytes(a.tensors[i], b.tensors[i]));
  }
}

namespace {

// A plain and an lz4 frame of one tensor of 3 blocks (9600 values) per bit width.
class LowBitDamage : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    at::manual_seed(37);
    at::Tensor x = at::relu(at::randn({1, 3, 64, 50}));
    x.narrow(2, 0, 32).zero_();
    name = GetParam() == 4 ? "q4" : "q2";
    FrameEncoder(parse_codec(name)).encode(1, 0, {x}, plain);
    FrameEncoder(parse_codec(name + "+lz4")).encode(1, 0, {x}, lz4);
    const auto m = GetParam() == 4 ? TensorMethod::q4 : TensorMethod::q2;
    ASSERT_EQ(peek<uint8_t>(plain, kMethodAt), uint8_t(m));
    ASSERT_EQ(peek<uint8_t>(lz4, kMethodAt), uint8_t(m) + 1);
    ASSERT_EQ(error_of(plain), "");
    ASSERT_EQ(error_of(lz4), "");
  }
  std::string name;
  std::vector<char> plain, lz4;
};

}  // namespace

TEST_P(LowBitDamage, DamagedFramesAreRejected) {
  const unsigned bits = GetParam();
  const uint64_t want = quant_stream_bytes(9600, bits);
  for (const auto* good : {&plain, &lz4})
    for (size_t cut : {size_t(0), kHeader - 1, kDesc0 + 12, payload_at(*good),
                       payload_at(*good) + 20, good->size() - 1}) {
      std::vector<char> bad(good->begin(), good->begin() + cut);
      EXPECT_TRUE(has(error_of(bad), "truncated")) << cut << ": " << error_of(bad);
    }
  for (uint64_t bytes :
       {uint64_t(0), want - 1, want + 8, q8_stream_bytes(9600), uint64_t(1) << 40}) {
    const std::string e = forged(plain, [&](auto& f) { poke<uint64_t>(f, kStreamBytesAt, bytes); });
    EXPECT_TRUE(has(e, "its " + name + " stream claims")) << e;
    EXPECT_TRUE(has(e, "its 9600 values make " + std::to_string(want))) << e;
  }
  std::string e = forged(plain, [](auto& f) { poke<uint64_t>(f, kEncodedAt, 64); });
  EXPECT_TRUE(has(e, "inconsistent " + name + " byte counts")) << e;
  e = forged(lz4, [&](auto& f) { poke<uint64_t>(f, kEncodedAt, want); });
  EXPECT_TRUE(has(e, "inconsistent " + name + " byte counts")) << e;
  e = forged(plain, [](auto& f) { poke<uint8_t>(f, kZfpModeAt, 2); });
  EXPECT_TRUE(has(e, "is " + name + "-encoded but has zfp parameters")) << e;
  e = forged(plain, [](auto& f) { poke<uint8_t>(f, kDtypeAt, uint8_t(at::kInt)); });
  EXPECT_TRUE(has(e, "of dtype Int claims to be " + name + "-encoded")) << e;
  // A q4 frame relabelled q8 (or q2): its stream no longer has the size the values make.
  e = forged(plain, [](auto& f) { poke<uint8_t>(f, kMethodAt, uint8_t(TensorMethod::q8)); });
  EXPECT_TRUE(has(e, "its q8 stream claims")) << e;
  // A block's base or scale not finite, negative, or overflowing at the top code 2^B - 1.
  const float inf = std::numeric_limits<float>::infinity();
  const float big = std::numeric_limits<float>::max();
  const float top = float((1u << bits) - 1);
  for (const auto& [k, lo, scale] : std::vector<std::tuple<size_t, float, float>>{
           {0, inf, 1.0f}, {1, 0.0f, -1.0f}, {2, big, big / top}, {0, -big, big}}) {
    e = forged(plain, [&](auto& f) {
      const size_t params = payload_at(f) + 2 * sizeof(float) * k;
      poke<float>(f, params, lo);
      poke<float>(f, params + sizeof(float), scale);
    });
    EXPECT_TRUE(
        has(e, "its " + name + " block " + std::to_string(k) + " of 3 has a bad minimum or scale"))
        << lo << " " << scale << ": " << e;
  }
  // Just below the overflow: decodes, finite.
  e = forged(plain, [&](auto& f) {
    poke<float>(f, payload_at(f), 0.0f);
    poke<float>(f, payload_at(f) + sizeof(float), big / top / 2);
  });
  EXPECT_EQ(e, "");
  // Garbage anywhere after the header, checksum made right: an error or some finite tensor.
  std::srand(38);
  for (const auto* good : {&plain, &lz4}) {
    for (int i = 0; i < 300; ++i) {
      std::vector<char> bad = *good;
      for (int k = 0; k < 6; ++k)
        bad[kHeader + std::rand() % (bad.size() - kHeader)] = static_cast<char>(std::rand());
      refresh_crc(bad);
      try {
        Frame f = FrameDecoder().decode(bad.data(), bad.size());
        for (size_t t = 0; t < f.tensors.size(); ++t)
          if (f.methods[t] != TensorMethod::raw && f.methods[t] != TensorMethod::lz4) {
            EXPECT_TRUE(at::isfinite(f.tensors[t]).all().item<bool>());
          }
      } catch (const Error&) {
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Bits, LowBitDamage, ::testing::Values(4u, 2u));
