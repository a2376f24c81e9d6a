// profile: per-block compute time on this rank (at the run's batch size and thread count), the
// tensors live at each cut candidate, parameter and peak activation bytes per block, what each
// cut costs under a codec, and the planner's view of all that (ModelCosts, plan.h).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "edgepipe/model/graph.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

// What crossing each cut costs under one codec, measured on the profiled batch's activations.
struct CutCodecCosts {
  CodecSpec codec;
  std::vector<int64_t> frame_bytes;  // the encoded frame (headers included), per cut
  std::vector<double> encode_ms;     // median per frame, on the profiling rank
  std::vector<double> decode_ms;
};

struct ModelProfile {
  std::vector<double> block_ms;                    // median compute time of each block
  std::vector<int64_t> block_param_bytes;          // frozen weights of each block
  std::vector<int64_t> block_act_bytes;            // peak activation memory while it runs
  std::vector<std::vector<TensorMeta>> cut_metas;  // tensors at each cut candidate (blocks + 1)
  std::vector<CutCodecCosts> codecs;               // one per codec asked for (ProfileOptions)
  int64_t cut_bytes(size_t cut) const;
};

// While it lives, the tensors allocated beyond those held at its start may total at most `limit`
// bytes (0: no limit): an allocation past it is refused before it happens (AllocationMeter in
// base/host.h); and the process's resident memory may grow by at most the limit (plus
// kResidentSlack for what LibTorch allocates outside tensors: its JIT, its thread pools).
// check() names the limit (`source`: where it came from) once either is passed. `extra`: the
// weights that optimize_for_inference copies (3 copies are allowed beyond the limit, BlockChain's
// loaded, optimised and checked ones); 0 without optimize_for_inference. One at a time.
class MemoryBudget {
 public:
  MemoryBudget(int64_t limit, std::string source, int64_t extra = 0);
  ~MemoryBudget();
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;
  // Throws an error naming the limit if it was passed; `what` says what was running ("profiling
  // block 3 on a batch of shape [8, 3, 224, 224]").
  void check(const std::string& what) const;

 private:
  int64_t limit_ = 0, extra_ = 0, previous_ = 0, tensors_at_start_ = 0, resident_at_start_ = 0;
  std::string source_;
};

constexpr int64_t kResidentSlack = 64 << 20;

struct ProfileOptions {
  int warmup = 2;
  int reps = 5;                   // 0: one pass, shapes only (no times, no codec costs)
  double min_seconds = 0;         // and more timed passes until they add up to this (see below)
  bool optimize = false;          // time each block after optimize_for_inference (checked)
  std::vector<CodecSpec> codecs;  // measure every cut's frame under each of these
  int64_t memory_limit = 0;       // a MemoryBudget for the whole profile (0: none)
  std::string memory_source;      // where the limit came from ("--max-memory")
};

// Runs the model block by block on `input`: `warmup` untimed passes, then `reps` timed ones.
// Throws an error naming the input's shape if the model rejects it. Peak activation bytes are
// measured with a counting CPU allocator (memory.h) on the first pass.
ModelProfile profile_model(const ModelGraph& model, const at::Tensor& input,
                           const ProfileOptions& options);
ModelProfile profile_model(const ModelGraph& model, const at::Tensor& input, int warmup = 2,
                           int reps = 5);

// The model's blocks, each as its own stage module (stage.h), in order.
std::vector<torch::jit::Module> block_modules(const ModelGraph& model);

// A chain of blocks ready to time, as a rank measures its own speed at start-up: built (and with
// `optimize`, each block optimize_checked) once, timed when asked.
class BlockChain {
 public:
  BlockChain(std::vector<torch::jit::Module> blocks, std::vector<at::Tensor> input, bool optimize);
  // Median time of each block fed the previous block's outputs: `warmup` untimed passes, then
  // `reps` timed ones, and more until the timed passes add up to `min_seconds` (at most
  // kMaxTimedPasses): a fast model's few passes take milliseconds, and a burst of load on a
  // shared machine then shifts the median.
  std::vector<double> time(int warmup, int reps, double min_seconds = 0);

 private:
  std::vector<StageRunner> runners_;
  std::vector<at::Tensor> input_;
};

std::vector<double> time_blocks(std::vector<torch::jit::Module> blocks,
                                const std::vector<at::Tensor>& input, bool optimize, int warmup,
                                int reps, double min_seconds = 0);

constexpr int kMaxTimedPasses = 100;  // the most timed passes a time budget may add up to

// The planner's view of a profile: ref_ms = block_ms, weights, peak activations; cut_bytes and
// codec times from prof.codecs (the largest over the codecs measured, since the plan does not
// know in advance which link a cut will travel on), or raw frame sizes and no codec time if none
// was measured.
ModelCosts model_costs(const ModelProfile& prof);

// Median time of each stage [node_bounds[s], node_bounds[s+1]) run as it will run on its rank
// (built as its own module and, with `optimize`, optimize_for_inference), fed the previous
// stage's outputs: `warmup` untimed runs, then `reps` timed, and more until they add up to
// `min_seconds` per stage (at most kMaxTimedPasses).
std::vector<double> time_stages(const ModelGraph& model, const std::vector<size_t>& node_bounds,
                                const at::Tensor& input, bool optimize, int warmup = 2,
                                int reps = 3, double min_seconds = 0);

}  // namespace edgepipe
