// Command line + config file -> one validated struct per command.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/wire/codec_spec.h"

namespace edgepipe {

// Options of `edgepipe run` (the pipeline) and `edgepipe single` (the whole model in one process).
struct RunConfig {
  std::string model;                  // TorchScript file
  std::string input_file;             // HDF5 file of inputs ("" with --synthetic)
  std::string input_dataset;          // dataset inside input_file, rows = samples
  int64_t synthetic = 0;              // number of random inputs instead of an input file
  std::vector<int64_t> input_shape;   // one batch's shape, e.g. 1,3,224,224 (leading dim = batch,
                                      // replaced by `batch`); empty: from the model file
  std::string output;                 // HDF5 outputs file
  int64_t batch = 1;                  // samples per batch
  int threads = 1;                    // intra-op threads per rank
  int inflight = 0;                   // batches in flight in the pipeline; 0 = 2 x stage ranks
  int calibrate = 3;                  // rounds of timing planned stages on rank 0 and re-planning
  std::string profile;                // plan from this earlier run log's /profile ("" = measure)
  size_t max_stages = 0;              // 0: up to one stage per stage rank
  size_t stages = 0;                  // plan exactly this many stages (0: the planner chooses)
  size_t max_replicas = 0;            // ranks per stage at most (0: as many as pay, 1: none)
  size_t replicas = 0;                // every stage on exactly this many ranks (0: not forced)
  double group_tolerance = 0.05;      // PlanOptions::group_tolerance for the measured ranks
  LinkCodecs codecs;                  // codec of each link (`run` only; see codec_spec.h)
  double error_budget = 0;            // > 0: the planner chooses the codecs within this error
  int64_t calibration_rows = 8;       // input rows that measure the codecs' error (budget only)
  std::string overlap = "auto";       // compute thread beside the codec: auto, on, off (worker.h)
  std::string stage_cache;            // stage ranks' cache of stages ("" = the default folder,
                                      // "off" = none; pipeline/stage_cache.h)
  double timeout_s = 300;             // longest any wait may take before the run fails
  bool optimize = true;               // torch::jit::optimize_for_inference on each stage
  bool overwrite = false;             // replace an existing output file
  bool resume = false;                // continue the <output>.partial of an earlier run
  double checkpoint_s = 10;           // seconds between progress marks in the outputs file
  bool strict = false;                // refuse inputs with NaN or Inf (else: warn)
  std::string max_memory;             // memory a stage rank may use ("" = what the node reports)
  bool quiet = false;                 // no progress or summary lines
  std::string log;                    // run log (`run` only); "" = OUTPUT minus .h5 plus .log.h5
  bool trace = true;                  // per-batch records in the run log (--no-trace: totals only)
  double progress_s = 5;              // seconds between progress lines when not on a terminal
  bool progress_lines = false;        // progress as separate lines even on a terminal
  std::string energy_model = "edge";  // energy model where no RAPL counter is readable (energy.h)
  double energy_idle_w = -1;          // overrides the model's idle watts per node (< 0: keep)
  double energy_core_w = -1;          // overrides the model's watts per busy core (< 0: keep)
  uint64_t seed = 1;                  // seed of --synthetic inputs
  int warmup = 3;                     // `single`: untimed batches before timing
  std::string command_line;           // for the record in the outputs file
};

// Options of `edgepipe inspect`.
struct InspectConfig {
  std::string model;
  std::vector<int64_t> input_shape;
  int threads = 1;
  bool profile = true;  // time each block
};

// Options of `edgepipe plan` (docs/planner.md, "edgepipe plan"): profile the model here, plan it
// for a described cluster, compare with the baselines. No MPI.
struct PlanCommandConfig {
  std::string model;
  std::string cluster;                // cluster description file; "" with --ranks
  std::string profile;                // instead: plan from this run log's /profile (policy.h)
  int ranks = 0;                      // instead of --cluster: this many ranks like this machine
  std::string max_memory;             // --ranks: memory per rank ("" = what this node reports)
  std::string bandwidth = "1Gbit/s";  // --ranks: every link
  std::string latency = "0.1ms";
  std::vector<int64_t> input_shape;  // one batch's shape; empty: from the model file
  int64_t batch = 1;
  int threads = 1;
  CodecSpec codec;             // one codec for every link
  bool optimize = true;        // profile the blocks after optimize_for_inference
  size_t max_stages = 0;       // 0: up to one stage per stage rank
  double group_tolerance = 0;  // PlanOptions::group_tolerance
  size_t max_replicas = 0;     // PlanOptions::max_replicas: 0 = as many as pay, 1 = none
  bool baselines = true;       // also plan with random, greedy, equal-blocks, pipeedge
};

enum class Command { run, single, inspect, plan, help, version };

struct ParsedCommand {
  Command command = Command::help;
  RunConfig run;
  InspectConfig inspect;
  PlanCommandConfig plan;
  std::string help_text;
};

// Parses argv (argv[1] is the command). Throws edgepipe::Error naming the bad option or value.
ParsedCommand parse_command_line(int argc, const char* const argv[]);

// "1,3,224,224" -> {1,3,224,224}; throws on anything else.
std::vector<int64_t> parse_shape(const std::string& text);

}  // namespace edgepipe
