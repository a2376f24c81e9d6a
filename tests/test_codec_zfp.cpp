// zfp: the field a shape makes, its chunks, chunked frames on any thread count, damaged chunk
// tables.
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <string>

#include "codec_test_util.h"

using namespace edgepipe;
using namespace codec_test;

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
  const auto entry = [&](size_t k) { return table + sizeof(uint64_t) * k; };  // chunk k's size
  auto size_of = [&](const std::vector<char>& f, size_t k) { return peek<uint64_t>(f, entry(k)); };
  EXPECT_EQ(error_of(good), "");
  // A chunk longer than the stream, or empty.
  EXPECT_NE(forged(good, [&](auto& f) { poke<uint64_t>(f, entry(0), 1ull << 40); })
                .find("zfp chunk 0 claims"),
            std::string::npos);
  EXPECT_NE(forged(good, [&](auto& f) { poke<uint64_t>(f, entry(1), 0); })
                .find("zfp chunk 1 claims 0 bytes"),
            std::string::npos);
  // Sizes that do not add up to the stream.
  EXPECT_NE(forged(good, [&](auto& f) { poke<uint64_t>(f, entry(0), size_of(f, 0) - 8); })
                .find("zfp chunks add up to"),
            std::string::npos);
  // Sizes that add up, but one chunk longer than its slab can need.
  const std::string e = forged(good, [&](auto& f) {
    uint64_t rest = 0;
    for (size_t k = 1; k < count; ++k) rest += size_of(f, k) - 8;
    poke<uint64_t>(f, entry(0), size_of(f, 0) + rest);
    for (size_t k = 1; k < count; ++k) poke<uint64_t>(f, entry(k), uint64_t(8));
  });
  EXPECT_NE(e.find("its zfp chunk 0 has"), std::string::npos) << e;
  EXPECT_NE(e.find("more than its field and mode allow"), std::string::npos) << e;
  // Chunk sizes swapped between chunks: decoded (rate mode: all chunks alike) or reported as a
  // corrupt stream, never read out of bounds.
  const std::string swapped = forged(good, [&](auto& f) {
    const uint64_t a = size_of(f, 0), b = size_of(f, count - 1);
    poke<uint64_t>(f, entry(0), b);
    poke<uint64_t>(f, entry(count - 1), a);
  });
  EXPECT_EQ(swapped, "") << "rate mode: all chunks alike, so it decodes";
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
      const size_t head = payload_at(f);
      for (int k = 0; k < 8; ++k)
        f[head + std::rand() % (f.size() - head)] = static_cast<char>(std::rand());
      if (i % 3 == 0)  // and sizes moved between neighbours
        poke<uint64_t>(f, entry(i % count), size_of(f, i % count) + 8 * (i % 5));
    });
  }
}
