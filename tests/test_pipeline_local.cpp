// The whole pipeline (dispatcher + workers) with ranks as threads over the in-process channel.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>
#include <thread>

#include "edgepipe/io/h5.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/dispatcher.h"
#include "edgepipe/pipeline/worker.h"
#include "edgepipe/wire/channel.h"

using namespace edgepipe;
namespace fs = std::filesystem;

namespace {

const char* kModel = R"(
def forward(self, x):
    a = torch.relu(torch.matmul(x, self.w))
    b = torch.matmul(a, self.w) + x
    c = torch.tanh(b) * a
    d = torch.sigmoid(torch.matmul(c, self.w))
    e = d + b
    return (e * 2.0, a)
)";

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("edgepipe_test_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<float> read_all(const std::string& file, const std::string& name, int64_t rows,
                            int64_t cols) {
  H5InputDataset d(file, name);
  EXPECT_EQ(d.dims(), (std::vector<int64_t>{rows, cols}));
  std::vector<float> v(rows * cols);
  d.read_rows(0, rows, v.data());
  return v;
}

}  // namespace

class LocalPipeline : public ::testing::TestWithParam<int> {};

TEST_P(LocalPipeline, OutputsMatchTheWholeModel) {
  const int ranks = GetParam();
  TempDir tmp;
  torch::jit::Module m("m");
  m.register_parameter("w", torch::randn({6, 6}) * 0.5, false);
  m.define(kModel);
  const std::string model = (tmp.path / "model.pt").string();
  m.save(model);

  RunConfig cfg;
  cfg.model = model;
  cfg.synthetic = 11;  // not a multiple of the batch: the last batch is short
  cfg.input_shape = {1, 6};
  cfg.batch = 3;
  cfg.output = (tmp.path / "out.h5").string();
  cfg.timeout_s = 60;
  cfg.quiet = true;

  LocalHub hub(ranks);
  std::vector<int> codes(ranks, -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      LocalChannel ch(hub, r);
      Log log(r, true);
      try {
        codes[r] = r == 0 ? run_dispatcher(cfg, ch, log) : run_worker(cfg, ch, log);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << ": " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(codes[r], 0) << "rank " << r;

  // Reference: the unpartitioned model on the same inputs.
  torch::jit::Module whole = torch::jit::load(model);
  whole.eval();
  auto e = read_all(cfg.output, "outputs", 11, 6);
  auto a = read_all(cfg.output, "outputs_1", 11, 6);
  for (int64_t row = 0; row < 11; ++row) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed * 1000003u + row);
    at::Tensor x = at::randn({1, 6}, gen);
    auto out = whole.forward({x}).toTuple()->elements();
    at::Tensor re = out[0].toTensor(), ra = out[1].toTensor();
    for (int64_t c = 0; c < 6; ++c) {
      EXPECT_NEAR(e[row * 6 + c], re[0][c].item<float>(), 1e-5) << "row " << row;
      EXPECT_NEAR(a[row * 6 + c], ra[0][c].item<float>(), 1e-5) << "row " << row;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, LocalPipeline, ::testing::Values(2, 3, 5));
