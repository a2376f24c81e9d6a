// run_record: the run log of one run (runlog.h), assembled on rank 0 from what it measured
// itself and what the stage ranks sent at the end of the stream (their counters, facts and
// per-batch records), with the plan, the software versions and the effective options. A run
// that failed part-way is recorded too, with what rank 0 knew when it failed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/cli/config.h"
#include "edgepipe/plan/codec_choice.h"
#include "edgepipe/plan/policy.h"
#include "edgepipe/records/meter.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/runlog.h"
#include "edgepipe/records/trace.h"

namespace edgepipe {

// What rank 0's stream measured and gathered (pipeline/feed.h fills it; a failed run's is
// partial: the stages that had not answered are missing from counters and stage_facts).
struct StreamResults {
  int64_t images = 0;       // rows computed by this run (a resumed run starts part-way)
  double seconds = 0;       // first input sent to last output written
  double steady_per_s = 0;  // images/s after the pipeline has filled
  int stopped_by = 0;       // the signal that stopped the run early, or 0
  int64_t nonfinite_rows = 0;
  std::vector<StageCounters> counters;   // by stage rank (replicas too), as each sent them
  std::vector<int> counter_stage;        // the stage of each entry of counters (empty: its index)
  LinkCounters link_first;               // link 1 (rank 0 -> stage 0), as rank 0 encoded it
  double time_decode_last = 0;           // rank 0 decoding the last link
  double t0 = 0, t_end = 0;              // stream start, end of the stream back (rank 0's clock)
  std::vector<DispatchRecord> dispatch;  // rank 0's records (empty with --no-trace)
  DispatchRecord dispatch_totals;        // seq = batches that came back
  std::vector<RankFacts> stage_facts;    // by stage rank
  std::vector<std::vector<BatchRecord>> stage_batches;
};

// Per-link codec totals of a pipeline of `stages` stages (links in pipeline order: link i + 1
// carries into stage i, the last one back to rank 0): bytes, encode time and error from the
// sending rank, decode time from the receiving one; a stage's replicas' totals added up.
std::vector<LinkCounters> links_of(const StreamResults& r, size_t stages);

// What the run was, besides its results: set once the plan is made.
struct RunDescription {
  std::string input;  // InputSource::description()
  std::string model_sha256;
  std::string start_time_utc;  // ISO 8601, when the stream started
  Plan plan;                   // stages and predicted costs
  bool overlap = false;
  std::vector<int64_t> node_cuts;  // node positions where the model was cut
  std::vector<int> members;        // rank 0, then the job's rank of each stage rank (replicas too)
  std::vector<int> member_stage;   // the stage each of them runs (-1 for rank 0)
  std::vector<std::vector<int>> weights;  // each stage's replicas' routing weights (routing.h)
  StoredProfile profile;                  // what the plan was made from
  ErrorBudgetReport budget;               // --error-budget's choice of codecs (off: budget 0)
  // By stage rank (pipeline order), once the stages are shipped: the set-up bytes rank 0 sent
  // it, and whether its node's stage cache held its stage (1) or rank 0 sent it (0).
  std::vector<int64_t> setup_bytes;
  std::vector<int> stage_cache_hit;
};

// The run log of a run; `failure` is the error that ended it early ("" if none). `root` is rank
// 0's meter over the stream.
RunLog assemble_run_log(const RunConfig& cfg, const RunDescription& run, const StreamResults& r,
                        const ClockSync& clocks, const Meter::Deltas& root,
                        const std::string& failure = "");

// "edgepipe 0.2.0; LibTorch 1.13.0; Open MPI v4.1.4; HDF5 1.10.8"
std::string software_versions();
// Every effective option of a run as `key = value` lines.
std::string config_text(const RunConfig& cfg, const std::string& input_description);
// Now, in UTC, as ISO 8601 ("2026-11-24T10:15:00Z").
std::string utc_now();

}  // namespace edgepipe
