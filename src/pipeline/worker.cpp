#include "edgepipe/pipeline/worker.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/pipeline/clock_sync.h"
#include "edgepipe/pipeline/probe.h"
#include "edgepipe/pipeline/readiness.h"
#include "edgepipe/pipeline/stage_loop.h"
#include "edgepipe/records/meter.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/chunked.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

namespace {

// Rank 0 first measures the ranks and links (probe.h), unless it failed before or planned from a
// saved profile; then it sends each rank its stage, or nothing to do.
StageSetup receive_setup(Channel& world, const RunConfig& cfg, const Log& log) {
  if (wait_for_tag(world, 0, {kTagProbe, kTagSetup}, cfg.timeout_s, "rank 0 to start the run") ==
      kTagProbe) {
    try {
      answer_probe(world, recv_chunked(world, 0, kTagProbe, cfg.timeout_s, "rank 0's request"),
                   cfg);
    } catch (const StopRequested&) {
      throw;  // run_worker ends with 128 + the signal
    } catch (const std::exception& e) {
      log.error(std::string("measuring this rank at start-up: ") + e.what());
      world.abort(1);
    }
  }
  return StageSetup::from_bytes(
      recv_chunked(world, 0, kTagSetup, cfg.timeout_s, "the stage from rank 0"));
}

// The stream: clocks aligned with rank 0 (which says how many batches to expect, to reserve the
// trace), the stage's loop metered from its first wait, then the counters and records to rank 0.
void run_stage(const StageSetup& setup, StageRunner& stage, const RunConfig& cfg, Channel& ch) {
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
  sample_rank_facts(&facts);
  facts.records_dropped = trace.dropped();
  send_bytes(ch, 0, kTagStats, counters_to_bytes(counters), cfg.timeout_s);
  send_bytes(ch, 0, kTagTrace, trace_to_bytes(facts, trace.records()), cfg.timeout_s);
}

}  // namespace

int run_worker(const RunConfig& cfg, Channel& world, const Log& log) {
  StageSetup setup;
  try {
    setup = receive_setup(world, cfg, log);
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
        load_stage_and_report(ch, setup, cfg.optimize, cfg.max_memory, cfg.timeout_s, log);
    if (!stage) return 1;  // rank 0 has been told why
    run_stage(setup, *stage, cfg, ch);
  } catch (const std::exception& e) {
    log.error("stage " + std::to_string(setup.stage) + ": " + e.what());
    ch.abort(1);
  }
  return 0;
}

}  // namespace edgepipe
