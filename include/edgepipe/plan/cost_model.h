// cost_model: what a model's blocks cost, what a plan is (stages on ranks), and what a plan costs
// under the planner's model (docs/planner.md, "Cost model"). Every planner reports its plans
// through evaluate_plan. Pure: no MPI, no Torch.
#pragma once
#include <cstddef>
#include <vector>

#include "edgepipe/plan/cluster.h"

namespace edgepipe {

// One block of the model's chain, as profiled.
struct BlockCost {
  double ref_ms = 0;       // compute time at the reference speed (a rank with speed 1)
  double param_bytes = 0;  // weights the stage running this block holds
  double act_bytes = 0;    // peak activation memory while this block runs
};

// The model as the planner sees it: a chain of blocks and what crosses each cut.
// Cut i is the cut before block i: cut 0 is the model's input, cut blocks.size() its output.
struct ModelCosts {
  std::vector<BlockCost> blocks;
  std::vector<double> cut_bytes;  // bytes sent across each cut per batch (encoded); blocks + 1
  // Optional (empty = free): codec time per batch to encode / decode what crosses each cut;
  // blocks + 1 entries. The sending rank encodes, the receiving rank decodes. A stage rank's
  // share (decode of its input cut + encode of its output cut) adds to its block times, or, with
  // codec_thread, runs beside them (StageCost::compute_s). Rank 0 encodes the inputs and decodes
  // the outputs in both modes (PlanCost::dispatcher_s).
  std::vector<double> cut_encode_ms, cut_decode_ms;
  // True when every stage rank decodes and encodes on a thread beside its compute (the worker's
  // overlap mode, `edgepipe run --overlap`): a stage's compute term is then
  // max(its blocks' time, decode + encode) instead of decode + blocks + encode (docs/planner.md,
  // "Cost model").
  bool codec_thread = false;
  size_t num_blocks() const { return blocks.size(); }
};

// One stage: blocks [first, end) run on stage rank `rank` (1..R).
struct Stage {
  size_t rank = 0;
  size_t first = 0;
  size_t end = 0;
};

// One stage's share of the period (docs/planner.md, "Cost model").
struct StageCost {
  // The stage's compute term of the period: decode its input + run its blocks + encode its
  // output (one thread), or with ModelCosts::codec_thread max(run its blocks, decode + encode).
  double compute_s = 0;
  // Decode of its input + encode of its output per batch, in both modes: the codec's part of
  // compute_s (added to the blocks, or with the codec thread the other side of the max).
  double codec_s = 0;
  double recv_s = 0;              // its input cut over the link from its predecessor
  double send_s = 0;              // its output cut over the link to its successor
  double memory_bytes = 0;        // weights of its blocks + the largest peak activation
  double memory_limit_bytes = 0;  // what its rank may use
  double period_s() const;        // the largest of compute_s, recv_s, send_s
  bool fits() const { return memory_bytes <= memory_limit_bytes; }
};

// What a whole plan costs: its stages, rank 0's own work, the period.
struct PlanCost {
  std::vector<StageCost> stages;
  double dispatcher_s = 0;  // rank 0's codec work per batch: encode inputs + decode outputs
  double period_s = 0;      // the largest stage period (or dispatcher_s)
  bool fits = true;         // every stage fits its rank's memory
  double link_bytes = 0;    // bytes per batch on links between stages (not to/from rank 0)
};

// What a stage sequence costs under the model. Throws edgepipe::Error if the stages do not cover
// the blocks in order, or use a rank twice or a rank that is not a stage rank.
PlanCost evaluate_plan(const ModelCosts& model, const Cluster& cluster,
                       const std::vector<Stage>& stages);

// Throws edgepipe::Error naming the first thing wrong (sizes, negative or non-finite values, ...).
void validate_problem(const ModelCosts& model, const Cluster& cluster);

}  // namespace edgepipe
