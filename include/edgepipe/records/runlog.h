// runlog: the HDF5 log of one run (docs/runlog.md documents its layout, units and every figure).
// Rank 0 gathers every rank's counters, per-batch records and facts into a RunLog (run_record.h),
// derives the summary, and writes it with write_run_log; edgepipe report reads it back with
// read_run_log; `--profile LOG` reads its /profile back with read_stored_profile (profile_log.h).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "edgepipe/plan/codec_choice.h"
#include "edgepipe/plan/policy.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"

namespace edgepipe {

// One rank of the run. Times of facts and records are seconds since the run's time origin
// (rank 0's stream start) on rank 0's clock.
struct RankLog {
  int rank = 0;
  int stage = -1;  // -1: rank 0, the dispatcher
  RankFacts facts;
  double clock_offset_s = 0;             // this rank's steady clock minus rank 0's
  double clock_rtt_s = 0;                // round trip of the exchange that measured it
  StageCounters counters;                // stage ranks: totals from the worker loop
  std::vector<BatchRecord> batches;      // stage ranks
  std::vector<DispatchRecord> dispatch;  // rank 0
  DispatchRecord dispatch_totals;        // rank 0: sums over its batches (kept without trace)
  double energy_j = 0;
  std::string energy_source;
  int64_t setup_bytes = -1;  // stage ranks: set-up bytes from rank 0 (-1: not known)
  int stage_cache_hit = -1;  // stage ranks: 1 stage from the node's cache, 0 sent (-1: not known)
};

struct RunSummary {
  int64_t images = 0;   // rows computed by this run
  int64_t batches = 0;  // batches that came back
  int64_t batch_size = 0;
  double wall_s = 0;               // first input sent to last output received (rank 0)
  double images_per_s = 0;         // images / wall_s
  double steady_images_per_s = 0;  // after the pipeline filled
  double period_s = 0;             // measured seconds per batch in steady state
  double predicted_period_s = 0;   // the planner's period (RunLog::plan_period_s)
  int bottleneck_stage = -1;       // -1: none of the stages (rank 0 or the links set the pace)
  int bottleneck_rank = 0;         // the job's rank that ran bottleneck_stage (0: rank 0)
  std::string bottleneck_cause;    // compute | codec | link | dispatcher
  std::string bottleneck_reason;   // one sentence with the figures behind the verdict
  double energy_j = 0;             // all ranks
  double energy_per_image_j = 0;
  std::string energy_source;  // "RAPL", "model ..." or "mixed"
};

struct RunLog {
  // /run
  std::string command_line, config, model, model_sha256, output, start_time_utc;
  std::string versions;       // "edgepipe 0.2.0; LibTorch 1.13.0; Open MPI ...; HDF5 ..."
  int stopped_by_signal = 0;  // the run stopped early (the log covers the part that ran)
  std::string failure;        // the error that ended the run early ("": none)
  bool trace = true;          // per-batch records kept (off: --no-trace)
  bool complete() const { return stopped_by_signal == 0 && failure.empty(); }
  // /plan: the planner's choice and its prediction (docs/planner.md, cost model)
  std::vector<int64_t> cuts, stage_rank, stage_first_block, stage_end_block;
  std::vector<double> stage_compute_s, stage_recv_s, stage_send_s, stage_memory_bytes;
  // Replicas (routing.h): ranks per stage, then every replica's job rank and routing weight,
  // stage after stage (one per stage without replicas).
  std::vector<int64_t> stage_replicas, replica_ranks, replica_weights;
  double plan_period_s = 0;  // predicted seconds per batch (largest stage period, dispatcher)
  std::string plan_method;   // "optimal"
  bool overlap = false;      // stages computed on a thread beside their codec work (--overlap)
  ErrorBudgetReport budget;  // /plan/error_budget: --error-budget's choice (written when on)
  // /profile: what the plan was made from (reusable: --profile LOG)
  StoredProfile profile;
  // /ranks, /links
  std::vector<RankLog> ranks;       // rank 0, then the stages in pipeline order
  std::vector<LinkCounters> links;  // link i+1 carries into rank i+1, the last one into rank 0
  RunSummary summary;
};

// Fills log.summary's derived figures (throughput, period, bottleneck, energy totals) from
// the rest: images, batches, batch_size, wall_s and steady_images_per_s must be set.
void summarise(RunLog& log);

void write_run_log(const std::string& path, const RunLog& log);

// What edgepipe report needs, read back from a log file: attributes by group, tables by name.
struct RunLogFile {
  std::map<std::string, std::string> run_text;      // /run string attributes
  std::map<std::string, double> run;                // /run numeric attributes
  std::map<std::string, double> summary;            // /summary numeric attributes
  std::map<std::string, std::string> summary_text;  // /summary string attributes
  // /ranks/<r>/totals, by rank, each with the group's "rank" and "stage" added
  std::vector<std::map<std::string, double>> totals;
  std::vector<std::map<std::string, std::string>> totals_text;
  std::vector<LinkCounters> links;
};
RunLogFile read_run_log(const std::string& path);

// The default log path: OUTPUT minus ".h5", plus ".log.h5".
std::string default_log_path(const std::string& output);

}  // namespace edgepipe
