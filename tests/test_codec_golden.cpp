// The frames of fixed tensors, byte for byte: every codec's frame of the same tensors (made from
// formulas, not a random generator) has the checked-in hash. A change of the frame's bytes, meant
// (a new format version: update the table, and say so) or not, fails here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/wire/frame.h"

using namespace edgepipe;

namespace {

// FNV-1a, 64 bits: enough to tell frames apart, and written here so the hash cannot change.
uint64_t fnv1a(const std::vector<char>& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Values from a formula: smooth, with zeros as after a ReLU, one in 97 large.
at::Tensor fixed(std::vector<int64_t> shape, double phase, at::ScalarType dtype = at::kFloat) {
  at::Tensor t = at::empty(shape, at::kDouble);
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double x = std::sin(0.37 * i + phase) * std::cos(0.011 * i) * 3;
    p[i] = (x > 0 ? x : 0) + (i % 97 == 0 ? 40.0 : 0.0);
  }
  return t.to(dtype);
}

std::vector<at::Tensor> golden_tensors() {
  std::vector<at::Tensor> ts{
      fixed({1, 8, 12, 12}, 0.1),
      fixed({2, 1000}, 0.2),
      fixed({5}, 0.3),
      fixed({1, 3, 7, 9}, 0.4, at::kDouble),
      at::arange(40, at::kLong),
      fixed({3, 9}, 0.5, at::kHalf),
      fixed({1, 2, 4100}, 0.6),  // 2 q8 blocks and a bit
  };
  return ts;
}

struct Golden {
  const char* codec;
  size_t zfp_chunk_bytes;  // 0: the default
  uint64_t hash;
};

// Format version 4 (its CRC covers the whole frame).
const Golden kGolden[] = {
    {"raw", 0, 0xb590ef645a3f3327ull},
    {"lz4", 0, 0xd809f1fd8401754cull},
    {"zfp-reversible", 0, 0x3c2e03b0def83411ull},
    {"zfp-reversible+lz4", 256, 0x0c50eacadd7bf61bull},
    {"zfp-rate:8", 0, 0x0f008e0c37f7f0e0ull},
    {"zfp-rate:4+lz4", 256, 0x09a722f321db74dbull},
    {"zfp-precision:12", 0, 0x3a7b6e3e9874e248ull},
    {"zfp-accuracy:1e-2+lz4", 0, 0x70603bdc96432ab1ull},
    {"zfp-relacc:1e-3", 256, 0xcd2a1990f06f3458ull},
    {"q8", 0, 0xbfe365c7c813cfb8ull},
    {"q8+lz4", 0, 0x77d67626b63d82a7ull},
    {"q4", 0, 0xec61abc90e2722e4ull},
    {"q4+lz4", 0, 0xcd6c0b57c5a58c65ull},
    {"q2", 0, 0x6636de0e2f94a54eull},
    {"q2+lz4", 0, 0xb974a45c0e97161cull},
};

}  // namespace

TEST(CodecGolden, EveryCodecWritesTheCheckedInFrame) {
  const std::vector<at::Tensor> in = golden_tensors();
  for (const Golden& g : kGolden) {
    std::vector<char> frame;
    FrameEncoder(parse_codec(g.codec), 1, 0, g.zfp_chunk_bytes).encode(42, 0, in, frame);
    EXPECT_EQ(fnv1a(frame), g.hash)
        << g.codec << " (chunk bytes " << g.zfp_chunk_bytes << "): frame of " << frame.size()
        << " bytes, hash 0x" << std::hex << fnv1a(frame);
  }
  std::vector<char> end;
  FrameEncoder(parse_codec("q8")).encode(7, kFrameEnd, {}, end);
  EXPECT_EQ(fnv1a(end), 0x2c13279d69541842ull) << "end frame: hash 0x" << std::hex << fnv1a(end);
}
