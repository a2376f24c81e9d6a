// codec_choice: each link's codec for a plan within an error budget (`edgepipe run
// --error-budget E`, docs/codecs.md "Error budget"). Pure: no MPI, no Torch; codecs are named, and
// what each costs and the error it adds are measured elsewhere (model/codec_error.h).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "edgepipe/plan/cost_model.h"

namespace edgepipe {

// One candidate codec on one link, as measured at the cut the link carries.
struct CodecOption {
  std::string codec;     // its name ("q4+lz4")
  double bytes = 0;      // the frame per batch under it
  double encode_ms = 0;  // per batch, as ModelCosts::cut_encode_ms (rank 0's speed)
  double decode_ms = 0;
  // Relative L2 error of the model's outputs (the worst row) when this link alone carries its
  // tensors through the codec and the rest of the model runs on what it decoded; 0 if lossless.
  double error = 0;
};

// The plan's links in pipeline order: link l carries cut link_cuts(stages)[l]; link 0 rank 0's
// inputs into the first stage, link k (k stages) the last stage's outputs back to rank 0. They
// are `--codec`'s links 1..k+1.
std::vector<size_t> link_cuts(const std::vector<Stage>& stages);

// The model as it runs with option[l] of links[l] on each link: those cuts' bytes and codec times
// replaced (codec times of the other cuts kept, or 0).
ModelCosts with_link_codecs(const ModelCosts& model, const std::vector<Stage>& stages,
                            const std::vector<std::vector<CodecOption>>& links,
                            const std::vector<size_t>& option);

struct CodecChoice {
  std::vector<size_t> option;  // per link, the index of its codec in its options
  double period_s = 0;         // the plan's period under the cost model with them
  double error_sum = 0;        // the links' errors added up (at most the budget)
};

// The codecs with the least period under evaluate_plan such that the links' errors add up to at
// most `budget` (first order, errors at the outputs add at most linearly); among those, the least
// error sum. Exact: the period is the largest of each stage's term, which depends on its two
// links only, and of rank 0's, which depends on the first and last; a dynamic program along the
// chain, for each candidate period (a binary search over the terms' values), finds the least error
// sum within it. links[l] must hold at least one option of error 0 (raw), so a choice always
// exists. Throws edgepipe::Error on a link without options or a negative budget.
CodecChoice choose_codecs(const ModelCosts& model, const Cluster& cluster,
                          const std::vector<Stage>& stages,
                          const std::vector<std::vector<CodecOption>>& links, double budget);

}  // namespace edgepipe

namespace edgepipe {

// What `--error-budget` chose and measured, for rank 0's log and the run log's /plan/error_budget.
struct BudgetedLink {
  std::string codec;     // the chosen codec's name
  size_t cut = 0;        // the cut it carries (0: the inputs, blocks: the outputs)
  double raw_bytes = 0;  // its raw frame per batch
  double bytes = 0, encode_ms = 0, decode_ms = 0;  // under the codec, as measured on rank 0
  double error = 0;                                // the outputs' error with this link alone coded
};
struct ErrorBudgetReport {
  double budget = 0;                   // 0: no budget (the codecs came from --codec)
  int64_t calibration_rows = 0;        // the input rows the errors were measured on
  size_t candidates = 0;               // codecs measured on each link (raw included)
  std::vector<BudgetedLink> links;     // in pipeline order (--codec's links 1..k+1)
  double error_sum = 0;                // the links' errors added up: the planner's bound
  double measured_error = 0;           // the outputs' error with every link's codec at once
  double period_raw_s = 0;             // the plan's predicted period with every link raw
  double period_s = 0;                 // and with the chosen codecs
  std::vector<std::string> tightened;  // each time the measured error passed the budget
  bool on() const { return budget > 0; }
  // The table rank 0 prints: link, cut, codec, ratio, codec ms, error alone; then the totals.
  std::string text() const;
};

}  // namespace edgepipe
