// Runs the fuzz target on files, without libFuzzer (any compiler, no sanitizer needed), and
// writes the seed corpus: frames of every codec around small tensors of several dtypes, zfp
// frames of several chunks each, and q8, q4 and q2 frames of several blocks (format version 4).
// Every seed but the fixed crash inputs (crash-*) must decode as it is: a seed the decoder refuses
// (a corpus left at an old format version) would fuzz nothing but the header checks, so the replay
// fails naming it.
// Usage: fuzz_replay FILE_OR_DIR...        fuzz_replay --make-corpus DIR
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

int make_corpus(const fs::path& dir) {
  using namespace edgepipe;
  fs::create_directories(dir);
  torch::manual_seed(1);
  at::Tensor act = at::relu(at::randn({1, 3, 6, 5}));
  std::vector<std::vector<at::Tensor>> sets = {
      {act},
      {at::randn({2, 9}), at::arange(5, at::kLong), at::randn({3}) > 0},
      {at::randn({4, 4}).to(at::kDouble), at::randn({2, 3}).to(at::kHalf)},
  };
  const char* codecs[] = {"raw",
                          "lz4",
                          "zfp-reversible",
                          "zfp-rate:8",
                          "zfp-rate:4+lz4",
                          "zfp-precision:10",
                          "zfp-accuracy:1e-2+lz4",
                          "zfp-relacc:1e-3",
                          "q8",
                          "q8+lz4",
                          "q4",
                          "q4+lz4",
                          "q2",
                          "q2+lz4"};
  int n = 0;
  for (const char* name : codecs) {
    for (size_t s = 0; s < sets.size(); ++s) {
      std::vector<char> frame;
      FrameEncoder(parse_codec(name)).encode(s, 0, sets[s], frame);
      std::string file = std::string(name) + "-" + std::to_string(s);
      for (char& c : file)
        if (c == ':' || c == '+') c = '_';
      std::ofstream(dir / file, std::ios::binary).write(frame.data(), frame.size());
      ++n;
    }
    // A tensor of odd sizes in 6 zfp chunks (a 256-byte chunk target), beside an index tensor.
    std::vector<char> frame;
    FrameEncoder(parse_codec(name), 8, 0, 256)
        .encode(9, 0, {at::relu(at::randn({1, 24, 9, 10})), at::arange(3, at::kLong)}, frame);
    std::string file = std::string(name) + "-chunked";
    for (char& c : file)
      if (c == ':' || c == '+') c = '_';
    std::ofstream(dir / file, std::ios::binary).write(frame.data(), frame.size());
    ++n;
    if (!parse_codec(name).is_quant()) continue;
    // A tensor of 3 quantiser blocks (the last one short), zeros in runs so that lz4 shrinks its
    // codes.
    at::Tensor blocks = at::relu(at::randn({1, 3, 64, 50}));
    blocks.narrow(2, 0, 32).zero_();
    FrameEncoder(parse_codec(name)).encode(10, 0, {blocks, at::randn({7})}, frame);
    file = std::string(name) + "-blocks";
    for (char& c : file)
      if (c == '+') c = '_';
    std::ofstream(dir / file, std::ios::binary).write(frame.data(), frame.size());
    ++n;
  }
  std::vector<char> end;
  FrameEncoder().encode(7, kFrameEnd, {}, end);
  std::ofstream(dir / "end", std::ios::binary).write(end.data(), end.size());
  std::cout << "wrote " << n + 1 << " frames to " << dir << "\n";
  return 0;
}

void run_file(const fs::path& p, int* count, int* stale) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  ++*count;
  if (p.filename().string().rfind("crash-", 0) == 0) return;
  try {
    edgepipe::decode_frame(bytes.data(), bytes.size());
  } catch (const edgepipe::FrameError& e) {
    std::cerr << "seed " << p << " does not decode: " << e.what()
              << " (regenerate the corpus: fuzz_replay --make-corpus DIR)\n";
    ++*stale;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--make-corpus") return make_corpus(argv[2]);
  int count = 0, stale = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file()) run_file(e.path(), &count, &stale);
    } else {
      run_file(p, &count, &stale);
    }
  }
  std::cout << "replayed " << count << " inputs: no crash; " << stale
            << " seeds that do not decode\n";
  return count > 0 && stale == 0 ? 0 : 1;
}
