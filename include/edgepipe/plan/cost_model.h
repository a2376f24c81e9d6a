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

// One stage: blocks [first, end) run on stage rank `rank` (1..R), or on several ranks, its
// replicas, each of which takes whichever batch is ready (docs/planner.md, "Replicas").
struct Stage {
  size_t rank = 0;  // the stage's first (or only) rank
  size_t first = 0;
  size_t end = 0;
  // Every replica, ascending, when the stage runs on more than one rank (ranks.front() == rank);
  // empty when it runs on `rank` alone.
  std::vector<size_t> ranks = {};
  std::vector<size_t> replicas() const { return ranks.empty() ? std::vector<size_t>{rank} : ranks; }
};

// What bounds one replica of a stage: it takes one batch per period_s().
struct ReplicaCost {
  size_t rank = 0;
  // The stage's compute term of the period on this rank: decode its input + run its blocks +
  // encode its output (one thread), or with ModelCosts::codec_thread max(run its blocks,
  // decode + encode).
  double compute_s = 0;
  // Decode of its input + encode of its output per batch, in both modes: the codec's part of
  // compute_s (added to the blocks, or with the codec thread the other side of the max).
  double codec_s = 0;
  // Its input over the slowest link from the previous stage's replicas (rank 0 for the first
  // stage): it receives one batch at a time, from whichever replica sends it.
  double recv_s = 0;
  // Its output over the link to the next stage when that is one rank (rank 0 after the last
  // stage); with several replicas next, its sends to them may be in flight at once and its own
  // share is its interface's time, the cut's bytes / its fastest link (the links' times are
  // counted by their receivers).
  double send_s = 0;
  double memory_bytes = 0;        // weights of its blocks + the largest peak activation
  double memory_limit_bytes = 0;  // what its rank may use
  double period_s() const;        // the largest of compute_s, recv_s, send_s
  bool fits() const { return memory_bytes <= memory_limit_bytes; }
};

// One stage's share of the period (docs/planner.md, "Cost model"). The figures are its first
// replica's (its only one's, without replicas); `replicas` holds every replica's.
struct StageCost {
  double compute_s = 0;     // ReplicaCost::compute_s
  double codec_s = 0;       // ReplicaCost::codec_s
  double recv_s = 0;        // ReplicaCost::recv_s: its input cut over the link from its predecessor
  double send_s = 0;        // ReplicaCost::send_s: its output cut over the link to its successor
  double memory_bytes = 0;  // weights of its blocks + the largest peak activation
  double memory_limit_bytes = 0;      // what its rank may use
  std::vector<ReplicaCost> replicas;  // every replica, in Stage::replicas() order (at least one)
  // One replica: the largest of compute_s, recv_s, send_s. Several: 1 / sum(1 / their periods)
  // (each takes whichever batch is ready).
  double period_s() const;
  bool fits() const;  // every replica fits its rank's memory
};

// What a whole plan costs: its stages, rank 0's own work, the period.
struct PlanCost {
  std::vector<StageCost> stages;
  double dispatcher_s = 0;  // rank 0's codec work per batch: encode inputs + decode outputs
  // Rank 0 sends every input and receives every output: its send side per batch is the link to
  // the first stage when that is one rank, else its interface's time (input bytes / its fastest
  // link); its receive side the slowest link from the last stage's replicas.
  double dispatcher_send_s = 0, dispatcher_recv_s = 0;
  double period_s = 0;    // the largest stage period, or of rank 0's terms
  bool fits = true;       // every stage fits its ranks' memory
  double link_bytes = 0;  // bytes per batch on links between stages (not to/from rank 0)
};

// What a stage sequence costs under the model. Throws edgepipe::Error if the stages do not cover
// the blocks in order, or use a rank twice or a rank that is not a stage rank, or list replicas
// that do not start with Stage::rank.
PlanCost evaluate_plan(const ModelCosts& model, const Cluster& cluster,
                       const std::vector<Stage>& stages);

// Throws edgepipe::Error naming the first thing wrong (sizes, negative or non-finite values, ...).
void validate_problem(const ModelCosts& model, const Cluster& cluster);

}  // namespace edgepipe
