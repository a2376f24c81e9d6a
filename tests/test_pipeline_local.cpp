// The whole pipeline (dispatcher + workers) with ranks as threads over the in-process channel;
// the wire protocol's messages; the watchdog's texts and a stage loop's answers to it.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "edgepipe/base/hash.h"
#include "edgepipe/io/h5.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/compute_lane.h"
#include "edgepipe/pipeline/dispatcher.h"
#include "edgepipe/pipeline/routing.h"
#include "edgepipe/pipeline/stage_cache.h"
#include "edgepipe/pipeline/stage_loop.h"
#include "edgepipe/pipeline/watchdog.h"
#include "edgepipe/pipeline/worker.h"
#include "edgepipe/records/runlog.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/frame.h"
#include "edgepipe/wire/protocol.h"

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

// Runs rank 0 and ranks 1..ranks-1 of `edgepipe run` as threads; every one must exit 0.
void run_threads(const RunConfig& cfg, int ranks) {
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
  cfg.stage_cache = (tmp.path / "stages").string();  // not the default folder in /tmp

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

// Replicated stages (routing.h): 5 ranks as 2 stages x 2 replicas, 11 inputs in batches of 2 (the
// last short). Every output row equals the whole model's, in input order, and every batch was
// computed exactly once per stage: the replicas' counts in the run log add up to the batches,
// and each replica took some.
TEST(LocalPipeline, ReplicasComputeEveryBatchOnce) {
  TempDir tmp;
  torch::jit::Module m("m");
  m.register_parameter("w", torch::randn({6, 6}) * 0.5, false);
  m.define(kModel);
  const std::string model = (tmp.path / "model.pt").string();
  m.save(model);
  RunConfig cfg;
  cfg.model = model;
  cfg.synthetic = 11;
  cfg.input_shape = {1, 6};
  cfg.batch = 2;
  cfg.output = (tmp.path / "out.h5").string();
  cfg.timeout_s = 60;
  cfg.quiet = true;
  cfg.stage_cache = (tmp.path / "stages").string();  // not the default folder in /tmp
  cfg.stages = cfg.max_stages = 2;
  cfg.replicas = cfg.max_replicas = 2;
  cfg.group_tolerance = 0.9;  // the threads' ranks are alike: one type, whatever the noise
  run_threads(cfg, 5);

  torch::jit::Module whole = torch::jit::load(model);
  whole.eval();
  auto e = read_all(cfg.output, "outputs", 11, 6);
  for (int64_t row = 0; row < 11; ++row) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed * 1000003u + row);
    const at::Tensor re =
        whole.forward({at::randn({1, 6}, gen)}).toTuple()->elements()[0].toTensor();
    for (int64_t c = 0; c < 6; ++c)
      EXPECT_NEAR(e[row * 6 + c], re[0][c].item<float>(), 1e-5) << "row " << row;
  }
  const RunLogFile log = read_run_log(default_log_path(cfg.output));
  std::map<int, double> per_stage;
  std::map<int, int> replicas;
  for (const auto& t : log.totals) {
    const int stage = static_cast<int>(t.at("stage"));
    if (stage < 0) continue;
    EXPECT_GT(t.at("batches"), 0) << "rank " << t.at("rank");
    per_stage[stage] += t.at("batches");
    ++replicas[stage];
  }
  ASSERT_EQ(per_stage.size(), 2u);
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(per_stage[s], 6) << "stage " << s;
    EXPECT_EQ(replicas[s], 2) << "stage " << s;
  }
}

// The schedule: in proportion to the weights, spread out, the same from the flat lists.
TEST(Routing, WeightedTurns) {
  const Routing r({{1, 2}, {3}}, {{3, 1}, {1}});
  EXPECT_EQ(r.count(0, 0, 8), 6);
  EXPECT_EQ(r.count(0, 1, 8), 2);
  EXPECT_EQ(r.count(0, 1, 3), 1);
  EXPECT_EQ(r.rank_of(1, 5), 3);
  EXPECT_EQ(r.rank_of(-1, 5), 0);
  EXPECT_EQ(r.rank_of(2, 5), 0);
  int64_t b = r.next_batch(0, 1, 0), seen = 0;
  for (; b < 40; b = r.next_batch(0, 1, b + 1)) {
    EXPECT_EQ(r.rank_of(0, b), 2);
    ++seen;
  }
  EXPECT_EQ(seen, 10);
  std::vector<int32_t> n, ranks, weights;
  r.flatten(&n, &ranks, &weights);
  const Routing back = Routing::from_flat(n, ranks, weights);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(back.rank_of(0, i), r.rank_of(0, i));
  EXPECT_THROW(Routing::from_flat({4}, ranks, weights), Error);  // more replicas than ranks
  EXPECT_THROW(Routing::from_flat({1}, ranks, weights), Error);  // ranks left over
  EXPECT_THROW(Routing({{1}}, {{0}}), Error);
}

// ---- the wire protocol's messages (wire/protocol.h) ----

TEST(Protocol, StageSetupRoundTrip) {
  StageSetup s;
  s.stage = 1;
  s.num_stages = 3;
  s.prev = 1;
  s.next = 3;
  s.inputs = {TensorMeta{c10::ScalarType::Float, {2, 64, 8, 8}},
              TensorMeta{c10::ScalarType::Long, {2}}};
  s.max_in_bytes = 123456;
  s.out_codec = parse_codec("zfp-rate:8+lz4");
  s.overlap = true;
  s.members = {0, 3, 1, 2};
  s.replica = 1;
  s.route_replicas = {1, 2};
  s.route_ranks = {1, 2, 3};
  s.route_weights = {1, 16, 5};
  s.module_bytes = std::string("PK\0archive", 10);
  s.module_sha256 = std::string(64, 'a');
  s.module_size = 10;
  const StageSetup t = StageSetup::from_bytes(s.to_bytes());
  EXPECT_TRUE(t.ok);
  EXPECT_EQ(t.stage, 1);
  EXPECT_EQ(t.num_stages, 3);
  EXPECT_EQ(t.prev, 1);
  EXPECT_EQ(t.next, 3);
  ASSERT_EQ(t.inputs.size(), 2u);
  EXPECT_EQ(t.inputs[0].shape, (std::vector<int64_t>{2, 64, 8, 8}));
  EXPECT_EQ(t.inputs[1].dtype, c10::ScalarType::Long);
  EXPECT_EQ(t.max_in_bytes, 123456u);
  EXPECT_EQ(t.out_codec, s.out_codec);
  EXPECT_TRUE(t.overlap);
  EXPECT_EQ(t.members, s.members);
  EXPECT_EQ(t.replica, 1);
  EXPECT_EQ(t.route_replicas, s.route_replicas);
  EXPECT_EQ(t.route_ranks, s.route_ranks);
  EXPECT_EQ(t.route_weights, s.route_weights);
  EXPECT_EQ(t.module_bytes, s.module_bytes);
  EXPECT_EQ(t.module_sha256, s.module_sha256);
  EXPECT_EQ(t.module_size, 10u);
  StageSetup none;
  none.ok = false;
  none.nothing_to_do = true;
  const StageSetup u = StageSetup::from_bytes(none.to_bytes());
  EXPECT_FALSE(u.ok);
  EXPECT_TRUE(u.nothing_to_do);
  EXPECT_THROW(StageSetup::from_bytes(s.to_bytes().substr(0, 20)), Error);
  EXPECT_THROW(StageSetup::from_bytes(s.to_bytes() + "x"), Error);  // bytes left over
  StageSetup bad_key = s;
  bad_key.module_sha256 = "../../etc/passwd";  // the key names a file: hex only
  EXPECT_THROW(StageSetup::from_bytes(bad_key.to_bytes()), Error);
  EXPECT_TRUE(stage_cache_answer_from_bytes(stage_cache_answer_to_bytes(true)));
  EXPECT_FALSE(stage_cache_answer_from_bytes(stage_cache_answer_to_bytes(false)));
  EXPECT_THROW(stage_cache_answer_from_bytes(""), Error);
}

// ---- the stage cache (pipeline/stage_cache.h) ----

TEST(StageCache, KeepsEntriesUnderTheirHashAndRefusesWhatItCannotTrust) {
  const TempDir tmp;
  auto at = [&](const std::string& name) { return (tmp.path / name).string(); };
  const Log log(1, true);
  const std::string bytes = std::string("PK\0stage archive", 17) + std::string(5000, 'w');
  const std::string key = sha256_bytes(bytes);
  {
    const std::optional<StageCache> cache = StageCache::open(at("c"), log);  // created
    ASSERT_TRUE(cache.has_value());
    EXPECT_EQ(std::filesystem::status(at("c")).permissions(), std::filesystem::perms::owner_all);
    EXPECT_FALSE(cache->lookup(key, log).has_value());
    ASSERT_TRUE(cache->store(key, bytes, log));
    EXPECT_EQ(cache->lookup(key, log).value_or(""), bytes);
    EXPECT_FALSE(cache->store("../escape", bytes, log));  // keys are hex digests only
    // Only the entry: no temporary file left.
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(at("c"))) {
      EXPECT_EQ(e.path().filename().string(), key + ".pt");
      ++files;
    }
    EXPECT_EQ(files, 1u);
  }
  {
    // A flipped byte: the entry is not used; storing the right bytes replaces it.
    std::string bad = bytes;
    bad[100] ^= 1;
    std::ofstream(at("c/" + key + ".pt"), std::ios::binary) << bad;
    const std::optional<StageCache> cache = StageCache::open(at("c/"), log);
    ASSERT_TRUE(cache.has_value());
    EXPECT_FALSE(cache->lookup(key, log).has_value());
    ASSERT_TRUE(cache->store(key, bytes, log));
    EXPECT_EQ(cache->lookup(key, log).value_or(""), bytes);
  }
  {
    // Least recently used entries go when the folder holds more than its limit.
    const std::optional<StageCache> cache = StageCache::open(at("c"), log);
    ASSERT_TRUE(cache.has_value());
    const std::string b = bytes + "b", c = bytes + "c";
    ASSERT_TRUE(cache->store(sha256_bytes(b), b, log));
    // File times are coarse (a clock tick): let one pass between b's store and key's use.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(cache->lookup(key, log).has_value());  // used after b
    ASSERT_TRUE(cache->store(sha256_bytes(c), c, log, 2 * bytes.size() + 10));
    EXPECT_TRUE(cache->lookup(key, log).has_value());
    EXPECT_TRUE(cache->lookup(sha256_bytes(c), log).has_value());  // the one stored is kept
    EXPECT_FALSE(cache->lookup(sha256_bytes(b), log).has_value());
  }
  // A symlink (also with a trailing slash), a group- or world-writable folder: not used.
  std::filesystem::create_directory_symlink(at("c"), at("link"));
  EXPECT_FALSE(StageCache::open(at("link"), log).has_value());
  EXPECT_FALSE(StageCache::open(at("link/"), log).has_value());
  std::filesystem::create_directory(at("g"));
  std::filesystem::permissions(
      at("g"), std::filesystem::perms::owner_all | std::filesystem::perms::group_all);
  EXPECT_FALSE(StageCache::open(at("g"), log).has_value());
  std::filesystem::permissions(at("g"), std::filesystem::perms::owner_all |
                                            std::filesystem::perms::others_write |
                                            std::filesystem::perms::others_exec);
  EXPECT_FALSE(StageCache::open(at("g"), log).has_value());
  std::ofstream(at("file")) << "x";
  EXPECT_FALSE(StageCache::open(at("file"), log).has_value());
  // The folder's name: off, the default under $SLURM_TMPDIR / $TMPDIR, or as given.
  EXPECT_EQ(stage_cache_dir("off"), "");
  EXPECT_EQ(stage_cache_dir("/x/y"), "/x/y");
  const char* slurm = std::getenv("SLURM_TMPDIR");
  const std::string saved = slurm ? slurm : "";
  setenv("SLURM_TMPDIR", "/scratch/job", 1);
  EXPECT_EQ(stage_cache_dir(""), "/scratch/job/edgepipe-stages-" + std::to_string(geteuid()));
  if (slurm)
    setenv("SLURM_TMPDIR", saved.c_str(), 1);
  else
    unsetenv("SLURM_TMPDIR");
}

TEST(Protocol, ProbeAndClockMessagesRoundTrip) {
  const ProbeOrder ping =
      ProbeOrder::from_bytes(ProbeOrder{ProbeKind::ping, 3, true, 4096}.to_bytes());
  EXPECT_EQ(ping.kind, ProbeKind::ping);
  EXPECT_EQ(ping.peer, 3);
  EXPECT_TRUE(ping.initiator);
  EXPECT_EQ(ping.bytes, 4096);
  EXPECT_EQ(ProbeOrder::from_bytes(ProbeOrder{ProbeKind::done}.to_bytes()).kind, ProbeKind::done);
  EXPECT_THROW(ProbeOrder::from_bytes(std::string(1, '\x09')), Error);
  const ProfileRequest req =
      ProfileRequest::from_bytes(ProfileRequest{{"a", "bc"}, "frame", false}.to_bytes());
  EXPECT_EQ(req.blocks, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(req.input_frame, "frame");
  EXPECT_FALSE(req.optimize);
  const ClockPing p = clock_ping_from_bytes(clock_ping_to_bytes(ClockPing{12.5, 48}));
  EXPECT_EQ(p.t_root, 12.5);
  EXPECT_EQ(p.batches, 48);
  EXPECT_EQ(clock_answer_from_bytes(clock_answer_to_bytes(3.25)), 3.25);
  EXPECT_THROW(clock_answer_from_bytes("x"), Error);
  const Link link = link_from_bytes(link_to_bytes(Link{1e-4, 1.25e8}));
  EXPECT_EQ(link.latency_s, 1e-4);
  EXPECT_EQ(link.bandwidth_Bps, 1.25e8);
}

// A stage's stop notice is read as bytes (memcpy), whatever their alignment; a notice of the
// wrong size still stops the run (as SIGTERM).
TEST(Protocol, SignalNotice) {
  EXPECT_EQ(signal_notice_from_bytes(signal_notice_to_bytes(2)), 2);
  const std::string shifted = "x" + signal_notice_to_bytes(15);
  EXPECT_EQ(signal_notice_from_bytes(shifted.substr(1)), 15);
  EXPECT_EQ(signal_notice_from_bytes("abc"), 15);
}

// ---- the watchdog names every rank by its rank in the job ----

TEST(Watchdog, HeadlineNamesTheJobsRanks) {
  // Stage 0 on rank 2, stage 1 on rank 1: rank 0 sends to rank 2 and receives from rank 1.
  EXPECT_EQ(watchdog_headline(4, 9, 5, {0, 2, 1}),
            "watchdog: no batch completed for 4 s (--timeout); rank 0 sent 9 batches to rank 2 "
            "and received 5 from rank 1");
}

TEST(Watchdog, StageWaitTexts) {
  EXPECT_EQ(stage_wait_text(StageWait::input, 0, false, 3, 1), "its first batch from rank 3");
  EXPECT_EQ(stage_wait_text(StageWait::input, 7, true, 3, 1), "batch 7 from rank 3");
  EXPECT_EQ(stage_wait_text(StageWait::compute, 7, true, 3, 1), "batch 7 to compute");
  EXPECT_EQ(stage_wait_text(StageWait::send, 7, true, 3, 1), "rank 1 to take batch 5");
  EXPECT_EQ(stage_wait_text(StageWait::drain, 0, true, 3, 1), "rank 1 to take the last batches");
}

// The stage loop itself, placed as the planner may place it: stage 1 on rank 1, fed by stage 0
// on rank 2, sending back to rank 0. Its answers to the watchdog name the job's ranks.
TEST(Watchdog, StageLoopAnswersWithTheJobsRanks) {
  torch::jit::Module m("m");
  m.define("def forward(self, x):\n    return x * 2.0\n");
  StageRunner runner(m);
  StageSetup setup;
  setup.stage = 1;
  setup.num_stages = 2;
  setup.prev = 1;  // pipeline ranks: stage 0 is pipeline rank 1 (job rank 2)
  setup.next = 0;
  setup.members = {0, 2, 1};
  setup.inputs = {TensorMeta{c10::ScalarType::Float, {1, 4}}};
  setup.max_in_bytes = frame_bound(setup.inputs);
  LocalHub hub(3);
  StageCounters counters;
  std::thread stage([&] {
    LocalChannel world(hub, 1);
    RemappedChannel ch(world, {0, 2, 1});
    BatchTrace trace(true, 4);
    RankFacts facts;
    try {
      StageLoop(ch, stage_position(setup), setup.out_codec, runner, counters, trace, 30).run(facts);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  });
  LocalChannel root(hub, 0), feeder(hub, 2);
  auto ask = [&] {
    send_bytes(root, 1, kTagStatus, kStatusRequest, 5);
    return recv_bytes(root, 1, kTagStatus, 10, "the stage's answer");
  };
  const std::string first = ask();
  EXPECT_NE(first.find("stage 1 (rank 1) has waited"), std::string::npos) << first;
  EXPECT_NE(first.find("for its first batch from rank 2; 0 batches done"), std::string::npos)
      << first;
  std::vector<char> frame;
  const at::Tensor x = torch::ones({1, 4});
  encode_frame(0, 0, {x}, frame);
  send_bytes(feeder, 1, kTagData, std::string(frame.data(), frame.size()), 5);
  const std::string out = recv_bytes(root, 1, kTagData, 10, "the stage's output");
  const Frame y = decode_frame(out.data(), out.size());
  ASSERT_EQ(y.tensors.size(), 1u);
  EXPECT_TRUE(torch::equal(y.tensors[0], x * 2));
  const std::string second = ask();
  EXPECT_NE(second.find("for batch 1 from rank 2; 1 batches done"), std::string::npos) << second;
  encode_frame(1, kFrameEnd, {}, frame);
  send_bytes(feeder, 1, kTagEnd, std::string(frame.data(), frame.size()), 5);
  const std::string end = recv_bytes(root, 1, kTagEnd, 10, "the end of the stream");
  EXPECT_TRUE(decode_frame(end.data(), end.size()).flags & kFrameEnd);
  stage.join();
  EXPECT_EQ(counters.batches, 1);
}

// A batch whose compute never ends (test hook compute_hang: the model hangs) must not keep the
// rank from exiting: the lane's destructor waits its bounded time, says so, and ends the process
// with status 1. Before, it joined the compute thread with no bound and hung (here: until the
// alarm, which ends the child with SIGALRM, not status 1).
TEST(ComputeLaneDeathTest, HungComputeEndsTheProcessAfterItsTimeout) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  torch::jit::Module m("m");
  m.define("def forward(self, x):\n    return x * 2.0\n");
  StageRunner runner(m);
  EXPECT_EXIT(
      {
        setenv("EDGEPIPE_TEST_CRASH", "compute_hang:1", 1);
        alarm(60);
        ComputeLane lane(runner, /*threaded=*/true, /*join_timeout_s=*/1);
        lane.submit(0, 0, {torch::ones({1, 4})});
        std::this_thread::sleep_for(std::chrono::seconds(1));  // the thread takes the batch
      },
      ::testing::ExitedWithCode(1), "the compute thread did not finish batch 0 within 1 s");
}
