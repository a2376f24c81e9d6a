// plan: block costs + cluster description -> stages and their placement. Pure: no MPI, no Torch.
// The cost model and the algorithms are described in docs/planner.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/plan/cluster.h"

namespace edgepipe {

// Splits a chain of block costs into k contiguous, non-empty pieces so that the largest piece's
// sum is as small as possible (exact dynamic program, O(k n^2)). Returns the k+1 boundaries:
// piece s holds blocks [bounds[s], bounds[s+1]); bounds[0] = 0 and bounds[k] = costs.size().
// Among equally good splits it prefers the one whose cuts come first.
// With cut_costs (n + 1 entries), a piece [j, i) also pays cut_costs[j] + cut_costs[i]: the
// decode of the frame it receives and the encode of the frame it sends.
std::vector<size_t> partition_chain(const std::vector<double>& costs, size_t k,
                                    const std::vector<double>& cut_costs = {});

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

// A plan and what it costs. Methods that find nothing return no stages and say why in `note`.
struct Plan {
  std::string method;  // "optimal", "brute-force", "random", "greedy", "equal-blocks", "pipeedge"
  std::vector<Stage> stages;
  PlanCost cost;
  std::string note;
  size_t rank_types = 0;  // "optimal" / "pipeedge": types of interchangeable ranks it planned over
  bool found() const { return !stages.empty(); }
  // Predicted period in seconds; infinity if nothing was found or a stage does not fit.
  double period_s() const;
  // Samples per second at `batch` samples per batch.
  double throughput(double batch) const { return batch / period_s(); }
};

struct PlanOptions {
  size_t max_stages = 0;  // 0: up to one stage per stage rank
  // At least this many stages (0 or 1: no minimum); `edgepipe run --stages N` sets both bounds
  // to N. Honoured exactly by plan_optimal and plan_pipeedge (the optimum over plans of
  // min_stages..max_stages stages, even when fewer would be faster), by plan_random (draws its
  // number of stages in that range) and by plan_equal_blocks (always the most stages allowed).
  // plan_greedy ignores it: it may return fewer. Those that honour it throw edgepipe::Error if
  // it exceeds max_stages (when nonzero), the stage ranks or the model's blocks.
  size_t min_stages = 0;
  // Ranks whose block times, memory and links agree within this relative tolerance are planned
  // as one type, with the type's worst values (slowest block, least memory, slowest link), so that
  // a plan stays feasible and its true period is at most the one planned. 0 = only identical ranks:
  // the plan is then exact. Measured profiles of alike nodes differ by noise: use e.g. 0.05.
  // Negative: no grouping at all (every rank its own type; for tests).
  double group_tolerance = 0;
  // The exact planner refuses (edgepipe::Error) instances whose tables would exceed this.
  double max_table_bytes = 1024.0 * 1024 * 1024;
  uint64_t seed = 1;          // "random"
  size_t random_tries = 100;  // "random": draws until one fits in memory
};

// Throws edgepipe::Error naming the first thing wrong (sizes, negative or non-finite values, ...).
void validate_problem(const ModelCosts& model, const Cluster& cluster);

// The exact planner: the number of stages, the cuts and each stage's rank (each rank at most once)
// that minimise the period subject to memory, among plans of PlanOptions::min_stages to
// max_stages stages. Ties: fewer stages, then fewer bytes on links between stages, then a fixed
// order. Throws edgepipe::Error if no such plan fits in memory, saying how much is missing.
Plan plan_optimal(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options = {});

// Enumerates every cut set and placement; for tests on small instances (throws if there are
// more than max_plans). Keeps only plans of at least min_stages stages (0: any). Returns no stages
// if nothing fits.
Plan plan_brute_force(const ModelCosts& model, const Cluster& cluster, double max_plans = 1e8,
                      size_t min_stages = 0);

// Baselines (docs/planner.md): they return no stages (with a note) when they find no plan that
// fits.
Plan plan_random(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options = {});
Plan plan_greedy(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options = {});
Plan plan_equal_blocks(const ModelCosts& model, const Cluster& cluster,
                       const PlanOptions& options = {});
// Plans exactly under PipeEdge's model (one bandwidth and latency per sending device: the mean of
// its links) and evaluates the result under the real per-link model.
Plan plan_pipeedge(const ModelCosts& model, const Cluster& cluster,
                   const PlanOptions& options = {});

// The cluster as PipeEdge sees it: every link from rank a replaced by a's mean link.
Cluster pipeedge_view(const Cluster& cluster);

// Groups the stage ranks into types of interchangeable ranks (see PlanOptions::group_tolerance):
// within a type, block times, memory and links to and from every other rank agree.
struct RankTypes {
  std::vector<size_t> type_of_rank;          // by rank; entry 0 (the dispatcher) is unused
  std::vector<std::vector<size_t>> members;  // by type: its ranks, ascending
};
RankTypes group_ranks(const ModelCosts& model, const Cluster& cluster, double tolerance = 0);

// A table of a plan: stage, rank, blocks, compute / recv / send ms, memory, bytes out, period
// (compute as in StageCost::compute_s; the summary line says when codec work runs beside it).
std::string format_plan(const Plan& plan, const ModelCosts& model, const Cluster& cluster);

}  // namespace edgepipe
