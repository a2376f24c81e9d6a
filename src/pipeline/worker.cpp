#include "edgepipe/pipeline/worker.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/pipeline/clock_sync.h"
#include "edgepipe/pipeline/probe.h"
#include "edgepipe/pipeline/readiness.h"
#include "edgepipe/pipeline/stage_cache.h"
#include "edgepipe/pipeline/stage_loop.h"
#include "edgepipe/records/meter.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/chunked.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

namespace {

constexpr double kFailureNoticeSeconds = 10;  // how long rank 0 has to end the job after a notice

// Waits for rank 0's next message on one of `tags` (as wait_for_tag). A stop signal that arrives
// meanwhile is passed on to rank 0 (once: kTagSignal), which ends the run and says so with the
// set-up message that ends the wait.
int wait_for_rank0(Channel& world, const std::vector<int>& tags, double timeout_s,
                   const std::string& what) {
  static std::string notice;  // the buffer of the notice's send, alive till the process ends
  int found = -1;
  wait_for(
      [&] {
        if (stop_signal() != 0 && notice.empty()) {
          notice = signal_notice_to_bytes(stop_signal());
          (void)world.isend(0, kTagSignal, notice.data(), notice.size());
        }
        size_t n = 0;
        for (int tag : tags)
          if (world.probe(0, tag, &n)) return found = tag, true;
        return false;
      },
      timeout_s, what);
  return found;
}

// The stage's bytes (its set-up came without them): from this node's stage cache when it holds
// them under their SHA-256 (rank 0 is told: hit), else from rank 0 (miss), checked against that
// SHA-256 and kept in the cache for the next run.
void fetch_stage_bytes(Channel& world, StageSetup& setup, const RunConfig& cfg, const Log& log) {
  if (!setup.module_bytes.empty()) return;  // sent with the set-up
  const std::string dir = stage_cache_dir(cfg.stage_cache);
  const std::optional<StageCache> cache = dir.empty() ? std::nullopt : StageCache::open(dir, log);
  std::optional<std::string> held;
  if (cache) held = cache->lookup(setup.module_sha256, log);
  send_bytes(world, 0, kTagCache, stage_cache_answer_to_bytes(held.has_value()), cfg.timeout_s);
  if (held) {
    setup.module_bytes = std::move(*held);
    return;
  }
  const std::string what = "stage " + std::to_string(setup.stage) + "'s bytes from rank 0";
  wait_for_rank0(world, {kTagSetup}, cfg.timeout_s, what);
  setup.module_bytes = recv_chunked(world, 0, kTagSetup, cfg.timeout_s, what);
  const std::string actual = sha256_bytes(setup.module_bytes);
  EP_CHECK(setup.module_bytes.size() == setup.module_size && actual == setup.module_sha256, what,
           " do not match what the set-up announced (", setup.module_bytes.size(),
           " bytes, SHA-256 ", actual, "; announced ", setup.module_size, " bytes, ",
           setup.module_sha256, ")");
  if (cache) (void)cache->store(setup.module_sha256, setup.module_bytes, log);
}

// Rank 0 first measures the ranks and links (probe.h), unless it failed before or planned from a
// saved profile; then it sends each rank its stage, or nothing to do. A stop signal here is
// passed on to rank 0, whose set-up message then says the run stopped. The profiling is a phase
// of *memory of its own (its request's size, its peak; then what it left is given back).
StageSetup receive_setup(Channel& world, const RunConfig& cfg, const Log& log, RankMemory* memory) {
  if (wait_for_rank0(world, {kTagProbe, kTagSetup}, cfg.timeout_s, "rank 0 to start the run") ==
      kTagProbe) {
    try {
      memory->profile_request = static_cast<double>(answer_probe(
          world, recv_chunked(world, 0, kTagProbe, cfg.timeout_s, "rank 0's hello"), cfg));
    } catch (const StopRequested&) {
      // rank 0 hears of it (below) and answers with its set-up message
    } catch (const std::exception& e) {
      log.error(std::string("measuring this rank at start-up: ") + e.what());
      world.abort(1);
    }
  }
  // The request and the blocks built from it are gone, but glibc keeps what they freed.
  memory_end_phase(memory, &memory->peak_rss_profile, &memory->rss_after_profile,
                   &memory->rss_after_profile_trim);
  wait_for_rank0(world, {kTagSetup}, cfg.timeout_s, "the stage from rank 0");
  StageSetup setup = StageSetup::from_bytes(
      recv_chunked(world, 0, kTagSetup, cfg.timeout_s, "the stage from rank 0"));
  if (setup.ok) fetch_stage_bytes(world, setup, cfg, log);
  return setup;
}

// The stream: clocks aligned with rank 0 (which says how many batches to expect, to reserve the
// trace), the stage's loop metered from its first wait, then the counters and records to rank 0.
void run_stage(const StageSetup& setup, StageRunner& stage, const RunConfig& cfg, Channel& ch,
               RankMemory memory) {
  const int64_t batches = sync_clocks_worker(ch, cfg.timeout_s);
  BatchTrace trace(cfg.trace, static_cast<size_t>(std::max<int64_t>(batches, 0)) + 16);
  StageCounters counters;
  RankFacts facts;
  {
    const Meter meter;
    StageLoop loop(ch, stage_position(setup), setup.out_codec, stage, counters, trace,
                   cfg.timeout_s);
    loop.run(facts);
    meter.record(&facts);
  }
  memory_end_phase(&memory, &memory.peak_rss_stream, &memory.rss_end, nullptr);
  facts.memory = memory;
  sample_rank_facts(&facts);
  // Each phase's VmHWM reset also reset getrusage's peak: the life's peak is the phases' largest.
  for (double peak : {memory.peak_rss_profile, memory.peak_rss_load, memory.peak_rss_stream})
    facts.peak_rss_bytes = std::max(facts.peak_rss_bytes, peak);
  facts.records_dropped = trace.dropped();
  send_bytes(ch, 0, kTagStats, counters_to_bytes(counters), cfg.timeout_s);
  send_bytes(ch, 0, kTagTrace, trace_to_bytes(facts, trace.records()), cfg.timeout_s);
}

// The stream failed on this stage: rank 0 is told (kTagFailed), says why once, naming the input
// rows, and ends the job. Only if it has not ended the job in time does this rank say it and end
// the job itself; a stop signal meanwhile is the job ending (mpirun's SIGTERM after rank 0's
// abort): nothing more to say.
[[noreturn]] void report_failure(Channel& ch, const StageSetup& setup, const std::exception& e,
                                 double timeout_s, const Log& log) {
  StageFailure f;
  if (const auto* batch = dynamic_cast<const StageBatchError*>(&e))
    f = batch->failure;
  else
    f.what = e.what();
  const std::string bytes = stage_failure_to_bytes(f);
  const double deadline = now_seconds() + std::min(timeout_s, kFailureNoticeSeconds);
  try {
    const Channel::Handle sent = ch.isend(0, kTagFailed, bytes.data(), bytes.size());
    for (bool done = false; now_seconds() < deadline && stop_signal() == 0;) {
      if (!done) done = ch.test(sent);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const std::exception&) {
    // rank 0 cannot be told: say it here
  }
  if (stop_signal() == 0) log.error("stage " + std::to_string(setup.stage) + ": " + f.what);
  ch.abort(1);
  std::terminate();  // not reached: abort does not return
}

}  // namespace

int run_worker(const RunConfig& cfg, Channel& world, const Log& log) {
  RankMemory memory;  // where this rank's memory goes, phase by phase (trace.h)
  memory_start(&memory);
  StageSetup setup;
  try {
    setup = receive_setup(world, cfg, log, &memory);
  } catch (const TimeoutError& e) {
    log.error(e);
    world.abort(1);  // rank 0 does not answer: the job cannot end cleanly
  } catch (const StopRequested& e) {
    log.error(e);
    return e.exit_status();
  } catch (const std::exception& e) {
    log.error(e);
    return 1;
  }
  if (!setup.ok) {                                        // rank 0 has said why
    if (stop_signal() != 0) return 128 + stop_signal();   // a stop signal (to the job) ended it
    return setup.nothing_to_do || setup.stopped ? 0 : 1;  // stopped: rank 0 gives the status
  }
  // From here on ranks count in pipeline order: stage s is rank s + 1.
  RemappedChannel ch(world, std::vector<int>(setup.members.begin(), setup.members.end()));
  try {
    std::optional<StageRunner> stage =
        load_stage_and_report(ch, setup, cfg.optimize, cfg.max_memory, cfg.timeout_s, log, &memory);
    if (!stage) return stop_signal() ? 128 + stop_signal() : 1;  // rank 0 has been told why
    run_stage(setup, *stage, cfg, ch, memory);
  } catch (const std::exception& e) {
    report_failure(ch, setup, e, cfg.timeout_s, log);
  }
  return 0;
}

}  // namespace edgepipe
