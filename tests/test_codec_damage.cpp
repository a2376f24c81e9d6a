// Damaged and forged frames: every kind of damage reported as an error naming it, never a crash.
#include <gtest/gtest.h>
#include <malloc.h>

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
  EXPECT_NE(error_of(bad).find("version 2 is not supported (this edgepipe reads version 4)"),
            std::string::npos);
  poke<uint16_t>(bad, kVersionAt, 3);  // version 3: its CRC covered only the payloads
  EXPECT_NE(error_of(bad).find("version 3 is not supported"), std::string::npos);

  bad = good;
  bad[kCodecAt] = 42;
  EXPECT_NE(error_of(bad).find("unknown codec"), std::string::npos);

  bad = good;
  bad.back() ^= 0x55;
  EXPECT_NE(error_of(bad).find("checksum"), std::string::npos);

  // The checksum covers the whole frame: a changed sequence number, dtype (float -> int32, the
  // same size) or tensor count... in the header or a descriptor is caught, not decoded as sent.
  bad = good;
  poke<uint64_t>(bad, edgepipe::kHeaderSeqAt, 2);
  EXPECT_NE(error_of(bad).find("frame 2 failed its checksum (corrupted in transit)"),
            std::string::npos)
      << error_of(bad);
  bad = good;
  bad[kDtypeAt] = static_cast<char>(at::kInt);
  EXPECT_NE(error_of(bad).find("checksum"), std::string::npos) << error_of(bad);
  bad = good;
  bad[edgepipe::kHeaderFlagsAt] = 1;  // the end of the stream, in a batch's frame
  EXPECT_NE(error_of(bad).find("end of the stream but carries 1 tensors"), std::string::npos)
      << error_of(bad);
  refresh_crc(bad);
  EXPECT_NE(error_of(bad).find("end of the stream but carries 1 tensors"), std::string::npos);
  // Flags this edgepipe does not know are refused, even with a right checksum.
  for (uint32_t flag : {2u, 0x80000000u}) {
    bad = good;
    poke<uint32_t>(bad, edgepipe::kHeaderFlagsAt, flag);
    refresh_crc(bad);
    EXPECT_NE(error_of(bad).find("unknown flags"), std::string::npos) << flag;
  }

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
  // A zfp + lz4 frame whose stream claims 1.5 GiB (its one chunk as much; lz4's limit is 2 GiB):
  // refused on the chunk's bound before lz4 is undone into a buffer of that size.
  {
    std::vector<char> big;
    FrameEncoder(parse_codec("zfp-rate:8+lz4")).encode(1, 0, {at::relu(x - 2)}, big);
    ASSERT_EQ(peek<uint8_t>(big, kMethodAt), uint8_t(TensorMethod::zfp_lz4));
    const size_t table = kDims0At + 4 * sizeof(int64_t);  // after the 4 dims of x
    const uint64_t claim = uint64_t(3) << 29;
    poke<uint64_t>(big, kStreamBytesAt, claim);
    const uint16_t chunks = peek<uint16_t>(big, kChunksAt);
    uint64_t others = 0;
    for (uint16_t k = 1; k < chunks; ++k) others += peek<uint64_t>(big, table + 8 * k);
    poke<uint64_t>(big, table, claim - others);
    refresh_crc(big);
    const size_t mapped_before = mallinfo2().hblkhd;
    FrameDecoder decoder;  // alive while measured: its buffers are what a forger could grow
    std::string err;
    try {
      decoder.decode(big.data(), big.size());
    } catch (const FrameError& e) {
      err = e.what();
    }
    EXPECT_NE(err.find("its zfp chunk 0 has 1610612"), std::string::npos) << err;
    EXPECT_NE(err.find("more than its field and mode allow"), std::string::npos) << err;
    EXPECT_LT(mallinfo2().hblkhd, mapped_before + (size_t(64) << 20)) << "the decoder allocated";
  }
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
  // Random bytes changed anywhere in the frame, header and descriptors included: the checksum
  // covers all of it, so every one must be rejected (a decoder that skipped the check, or one
  // whose checksum left the header out, would decode some of them).
  int rejected = 0, changed = 0;
  for (int i = 0; i < 2000; ++i) {
    auto bad = good;
    for (int k = 0; k < 1 + i % 4; ++k)
      bad[std::rand() % bad.size()] ^= static_cast<char>(1 + std::rand() % 255);
    changed += bad != good;
    // Any exception other than edgepipe::Error, or a crash, fails the test.
    rejected += !error_of(bad).empty();
  }
  EXPECT_EQ(changed, 2000);
  EXPECT_EQ(rejected, 2000);
  // The same with the checksum made right, as a forger would: each change must then be caught
  // by the other checks or decode to tensors of the frame's shapes; never a crash.
  int forged_rejected = 0;
  for (int i = 0; i < 2000; ++i)
    forged_rejected += !forged(good, [&](auto& f) {
                          for (int k = 0; k < 1 + i % 4; ++k)
                            f[std::rand() % f.size()] = static_cast<char>(std::rand());
                        }).empty();
  EXPECT_GT(forged_rejected, 0);
  // Shortened frames (some also changed): every one rejected.
  rejected = 0;
  for (int i = 0; i < 1000; ++i) {
    auto bad = good;
    if (i % 2) bad[std::rand() % bad.size()] = static_cast<char>(std::rand());
    bad.resize(std::rand() % bad.size());
    rejected += !error_of(bad).empty();
  }
  EXPECT_EQ(rejected, 1000);
}
