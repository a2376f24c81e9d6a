// error_budget: `edgepipe run --error-budget E` on rank 0: every link's codec chosen for the plan,
// the fastest under the cost model whose outputs stay within E (plan/codec_choice.h), from rank
// 0's measurements of each candidate codec at the link's cut: its frame, encode and decode time
// (the profile) and the error it adds to the outputs alone (model/codec_error.h, on the
// calibration rows). Then the error of all the links' codecs at once is measured; while it passes
// the budget, the link of the largest error takes a codec of less error (docs/codecs.md, "Error
// budget").
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/pipeline/planning.h"

namespace edgepipe {

// What --error-budget chooses from on every link, besides raw: one lossless codec, the
// quantisers with lz4 after them, and zfp at three precisions.
std::vector<CodecSpec> budget_candidates();

// Sets p.codecs and p.budget for p.decision's plan, and the plan's predicted costs with those
// codecs. `prof` must hold the costs of budget_candidates() at every cut.
void choose_link_codecs(RunPlan& p, const ModelGraph& mg, const ModelProfile& prof,
                        const RunConfig& cfg, const std::vector<at::Tensor>& calibration,
                        const Log& log);

}  // namespace edgepipe
