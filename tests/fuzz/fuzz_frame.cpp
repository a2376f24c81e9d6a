// libFuzzer target: the frame decoder on arbitrary bytes. Any outcome but a decoded frame or an
// edgepipe::FrameError (a crash, a sanitizer report, another exception, a hang) is a bug.
// Build and run: tests/fuzz/run_fuzz (clang, -fsanitize=fuzzer,address,undefined); the seed
// corpus is tests/fuzz/corpus, replayed by ctest (fuzz_corpus_replay) in every build.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame.h"
#include "edgepipe/wire/frame_layout.h"

namespace {

void decode(edgepipe::FrameDecoder& decoder, const char* data, size_t size) {
  try {
    edgepipe::Frame f = decoder.decode(data, size);
    // Read every decoded byte, so that a tensor pointing outside its memory is caught.
    uint8_t x = 0;
    for (const auto& t : f.tensors) {
      const auto* p = static_cast<const uint8_t*>(t.data_ptr());
      for (size_t i = 0; i < t.nbytes(); ++i) x ^= p[i];
    }
    volatile uint8_t sink = x;
    (void)sink;
  } catch (const edgepipe::FrameError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One decoder for all inputs, as a rank keeps one: its reused buffers are under test too.
  // 16 MiB: what a small rank would accept; larger claims must be refused before allocating.
  static edgepipe::FrameDecoder decoder(uint64_t(1) << 24);
  decode(decoder, reinterpret_cast<const char*>(data), size);
  // A mutated frame almost always fails its checksum; so also decode a copy whose checksum is
  // made right (frame_checksum), as a forger would, to reach the checks and codecs behind it.
  if (size < sizeof(edgepipe::FrameHeader)) return 0;
  static std::vector<char> copy;
  copy.assign(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  const uint32_t crc = edgepipe::frame_checksum(copy.data(), copy.size());
  std::memcpy(copy.data() + edgepipe::kHeaderCrcAt, &crc, sizeof crc);
  decode(decoder, copy.data(), copy.size());
  return 0;
}
