#include "edgepipe/pipeline/readiness.h"

#include <chrono>
#include <functional>
#include <thread>

#include "edgepipe/base/error.h"
#include "edgepipe/base/host.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/base/test_hooks.h"
#include "edgepipe/pipeline/watchdog.h"
#include "edgepipe/plan/cluster.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

namespace {

// Loads the stage, optimises it for inference (checked against the unoptimised stage) and runs
// it twice so that the JIT's profiling runs and one-time allocations happen before the first
// real batch.
StageRunner prepare_stage(const StageSetup& setup, bool optimize, const Log& log) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<c10::ScalarType> dtypes;
  for (const auto& m : setup.inputs) {
    shapes.push_back(m.shape);
    dtypes.push_back(m.dtype);
  }
  std::vector<at::Tensor> sample = random_inputs(shapes, dtypes);
  auto load = [&] { return load_module_bytes(setup.module_bytes); };
  std::string why;
  const std::string phase = "while warming up stage " + std::to_string(setup.stage);
  EP_THROW_IF_STOPPED(phase);
  torch::jit::Module module = optimize ? optimize_checked(load, sample, 1e-5, &why) : load();
  if (!why.empty()) log.warn("stage " + std::to_string(setup.stage) + ": " + why);
  StageRunner stage(module);
  // EDGEPIPE_TEST_CRASH=slow_warmup: a warm-up that lasts (tests of a stop in this phase).
  const int passes = test_hook_armed("slow_warmup") ? 1000000 : 2;
  for (int i = 0; i < passes; ++i) {
    EP_THROW_IF_STOPPED(phase);
    stage.run(sample);
  }
  return stage;
}

}  // namespace

std::optional<StageRunner> load_stage_and_report(Channel& ch, StageSetup& setup, bool optimize,
                                                 const std::string& max_memory, double timeout_s,
                                                 const Log& log, RankMemory* memory) {
  std::optional<StageRunner> stage;
  std::string problem;
  try {
    // The stage's weights plus its frame buffers (two in, two out) must fit this rank's memory.
    std::string source;
    const int64_t limit = rank_memory_limit(max_memory, &source);
    const double need = static_cast<double>(setup.module_bytes.size()) + 4.0 * setup.max_in_bytes;
    EP_CHECK(limit <= 0 || need <= static_cast<double>(limit), "the stage needs about ",
             format_bytes(need), " (weights ", format_bytes(setup.module_bytes.size()),
             " + frame buffers) but this rank may use ", format_bytes(limit), " (", source, ")");
    stage.emplace(prepare_stage(setup, optimize, log));
    // The stage holds its weights: its archive is not needed any more, nor what glibc kept of
    // the unoptimised copy (optimize_checked's) and of the warm-up.
    if (memory) {
      memory->stage_archive = static_cast<double>(setup.module_bytes.size());
      memory->max_frame_in = static_cast<double>(setup.max_in_bytes);
    }
    std::string().swap(setup.module_bytes);
    if (memory)
      memory_end_phase(memory, &memory->peak_rss_load, &memory->rss_after_load,
                       &memory->rss_after_load_trim);
  } catch (const StopRequested& e) {
    // rank 0 hears of the stop first (kTagSignal), then of the stage it did not get
    const std::string notice = signal_notice_to_bytes(e.signal());
    send_bytes(ch, 0, kTagSignal, notice, timeout_s);
    problem = e.what();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  send_bytes(ch, 0, kTagReady, problem, timeout_s);
  if (!problem.empty()) {
    log.error("stage " + std::to_string(setup.stage) + ": " + problem);
    stage.reset();
  }
  return stage;
}

void await_stages_ready(Channel& ch, const std::vector<int>& members, double timeout_s) {
  for (size_t rank = 1; rank < members.size(); ++rank) {
    const std::string problem =
        recv_bytes(ch, static_cast<int>(rank), kTagReady, timeout_s,
                   "rank " + std::to_string(members[rank]) + " to load its stage");
    if (problem.empty()) continue;
    // A stop signal at that rank: its notice came first (allow it a moment to be seen).
    const double deadline = now_seconds() + 1;
    for (int sig = 0; now_seconds() < deadline;) {
      if ((sig = poll_stop_notices(ch, static_cast<int>(members.size()) - 1)) != 0)
        throw StopRequested(sig,
                            detail::concat(signal_name(sig), " arrived at rank ", members[rank],
                                           " while it warmed up stage ", rank - 1, ": stopped"),
                            __FILE__, __LINE__);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EP_FAIL("rank ", members[rank], " could not set up stage ", rank - 1, ": ", problem);
  }
}

}  // namespace edgepipe
