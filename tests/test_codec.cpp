// Frames: round trips, and every kind of damage gives an error (never a crash).
#include <gtest/gtest.h>

#include <cstring>

#include "edgepipe/codec.h"
#include "edgepipe/error.h"

using namespace edgepipe;

namespace {
std::string error_of(const std::vector<char>& f) {
  try {
    decode_frame(f.data(), f.size());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Codec, RoundTripSeveralTensors) {
  std::vector<at::Tensor> in{at::randn({2, 3, 5}), at::arange(7, at::kLong),
                             at::randn({4, 4}).t()};  // non-contiguous
  std::vector<char> buf;
  encode_frame(42, 0, in, buf);
  EXPECT_LE(buf.size(), frame_bound(metas_of(in)));
  Frame f = decode_frame(buf.data(), buf.size());
  EXPECT_EQ(f.seq, 42u);
  ASSERT_EQ(f.tensors.size(), 3u);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(at::equal(f.tensors[i], in[i]));
}

TEST(Codec, EndFrame) {
  std::vector<char> buf;
  encode_frame(9, kFrameEnd, {}, buf);
  Frame f = decode_frame(buf.data(), buf.size());
  EXPECT_TRUE(f.flags & kFrameEnd);
  EXPECT_TRUE(f.tensors.empty());
}

TEST(Codec, DamageIsReported) {
  std::vector<char> good;
  encode_frame(1, 0, {at::randn({8, 8})}, good);

  auto bad = good;
  bad[0] ^= 1;
  EXPECT_NE(error_of(bad).find("bad magic"), std::string::npos);

  bad = good;
  bad[4] = 9;  // version
  EXPECT_NE(error_of(bad).find("version"), std::string::npos);

  bad = good;
  bad.back() ^= 0x55;
  EXPECT_NE(error_of(bad).find("checksum"), std::string::npos);

  for (size_t cut : {size_t(0), size_t(10), size_t(50), good.size() - 1}) {
    bad.assign(good.begin(), good.begin() + cut);
    EXPECT_NE(error_of(bad).find("truncated"), std::string::npos) << "cut at " << cut;
  }

  bad = good;
  int64_t huge = int64_t(1) << 40;
  std::memcpy(bad.data() + 40 + 24, &huge, sizeof huge);  // first dim of tensor 0
  EXPECT_FALSE(error_of(bad).empty());
}

TEST(Codec, RandomBytesNeverCrash) {
  std::vector<char> good;
  encode_frame(1, 0, {at::randn({3, 3}), at::ones({2}, at::kLong)}, good);
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
