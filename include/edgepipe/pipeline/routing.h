// routing: which replica of each stage computes which batch (docs/design.md, "Replicas"). A stage
// whose replicas are ranks of different speeds gets batches in proportion to each replica's
// planned throughput, by a smooth weighted round-robin over small integer weights: rank 0 makes
// the weights from the plan and ships them in every stage's set-up, so every rank computes the
// same schedule from the same integers. Batch b goes to replica replica_of(s, b) of stage s;
// each stage rank takes its batches in order, from the rank that holds batch b one stage before
// (rank 0 for the first stage) and sends it to the one that holds it one stage after (rank 0
// after the last). Pure: no MPI, no Torch.
#pragma once
#include <cstdint>
#include <vector>

#include "edgepipe/plan/planner.h"

namespace edgepipe {

class Routing {
 public:
  Routing() = default;
  // `ranks[s]`: the pipeline ranks of stage s's replicas; `weights[s]`: their integer weights
  // (positive, as many). Throws edgepipe::Error if the sizes disagree or a weight is not positive.
  Routing(std::vector<std::vector<int>> ranks, std::vector<std::vector<int>> weights);

  // Weights in proportion to each replica's planned throughput (1 / its period), the fastest
  // replica of a stage weighted kMaxWeight, every replica at least 1.
  static constexpr int kMaxWeight = 16;
  static std::vector<std::vector<int>> weights_of(const Plan& plan);

  size_t num_stages() const { return ranks_.size(); }
  const std::vector<int>& ranks(size_t stage) const { return ranks_.at(stage); }
  const std::vector<int>& weights(size_t stage) const { return weights_.at(stage); }
  // As three flat lists (StageSetup's route_*): replicas per stage, then every replica's rank
  // and weight, stage after stage; and back (throws edgepipe::Error if they do not add up).
  void flatten(std::vector<int32_t>* replicas, std::vector<int32_t>* ranks,
               std::vector<int32_t>* weights) const;
  static Routing from_flat(const std::vector<int32_t>& replicas, const std::vector<int32_t>& ranks,
                           const std::vector<int32_t>& weights);
  // The replica (index into ranks(stage)) that computes batch `batch` of stage `stage`.
  int replica_of(size_t stage, int64_t batch) const;
  // The pipeline rank that holds batch `batch` at stage `stage`; rank 0 for stage -1 (where the
  // inputs come from) and for stage num_stages() (where the outputs go).
  int rank_of(int64_t stage, int64_t batch) const;
  // The stage that pipeline rank `rank` runs (-1: none).
  int stage_of_rank(int rank) const;
  // The first batch at or after `from` that replica `replica` of `stage` computes.
  int64_t next_batch(size_t stage, int replica, int64_t from) const;
  // Of the batches [0, batches), how many replica `replica` of `stage` computes.
  int64_t count(size_t stage, int replica, int64_t batches) const;

 private:
  std::vector<std::vector<int>> ranks_, weights_;
  std::vector<std::vector<int>> cycle_;  // one period of each stage's schedule: replica indices
};

}  // namespace edgepipe
