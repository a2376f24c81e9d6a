// Damaged and forged frames: every kind of damage reported as an error naming it, never a crash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "codec_test_util.h"

using namespace edgepipe;
using namespace codec_test;

// ---- damage -------------------------------------------------------------------------------

TEST(Codec, DamageIsReported) {
  std::vector<char> good;
  encode_frame(1, 0, {at::randn({8, 8})}, good);

  auto bad = good;
  bad[0] ^= 1;
  EXPECT_NE(error_of(bad).find("bad magic"), std::string::npos);

  bad = good;
  poke<uint16_t>(bad, kVersionAt, 1);  // version 1: the format before codecs
  EXPECT_NE(error_of(bad).find("version 1 is not supported"), std::string::npos);
  poke<uint16_t>(bad, kVersionAt, 2);  // version 2: the format before zfp chunks
  EXPECT_NE(error_of(bad).find("version 2 is not supported (this edgepipe reads version 3)"),
            std::string::npos);

  bad = good;
  bad[kCodecAt] = 42;
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
  bad[kDtypeAt] = 99;
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
  EXPECT_NE(forged(zfp, [](auto& f) { poke<uint8_t>(f, kMethodAt, 10); }).find("unknown encoding"),
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
  EXPECT_EQ(e, "") << "decodes inside its buffer today";
  // Garbage payloads with a valid checksum.
  std::srand(5);
  for (auto* frame : {&zfp, &lz4}) {
    for (int i = 0; i < 300; ++i) {
      std::string err = forged(*frame, [&](auto& f) {
        const size_t head = payload_at(f);
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
  // Same size, random bytes in the checksummed payload: only the checksum can tell, so every one
  // must be rejected (a decoder that skipped the check would decode some of them).
  const size_t head = payload_at(good);
  rejected = 0;
  for (int i = 0; i < 500; ++i) {
    auto bad = good;
    for (int k = 0; k < 1 + i % 4; ++k)
      bad[head + std::rand() % (bad.size() - head)] ^= static_cast<char>(1 + std::rand() % 255);
    rejected += !error_of(bad).empty();
  }
  EXPECT_EQ(rejected, 500);
}
