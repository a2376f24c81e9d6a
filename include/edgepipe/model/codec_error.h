// codec_error: the error codecs on a model's cuts add to its outputs, measured by running the rest
// of the model on what the codecs decoded, on calibration inputs (`edgepipe run --error-budget`,
// docs/codecs.md "Error budget").
#pragma once
#include <ATen/ATen.h>
#include <torch/script.h>

#include <cstddef>
#include <vector>

#include "edgepipe/model/graph.h"
#include "edgepipe/wire/codec_spec.h"

namespace edgepipe {

// One cut (0: the model's input, blocks: its output) and the codec its tensors go through.
struct CodedCut {
  size_t cut = 0;
  CodecSpec codec;
};

// The model's outputs on calibration batches, and the tensors at the cuts that may be coded.
class CutErrorProbe {
 public:
  // Runs the model block by block on each batch (rows along dimension 0), keeping the tensors at
  // `cuts` and the outputs. Throws if a cut is past the model's output.
  CutErrorProbe(const ModelGraph& model, std::vector<at::Tensor> batches, std::vector<size_t> cuts);
  // The worst row's relative L2 error of the outputs (all output tensors of a row together,
  // ||y' - y|| / ||y||; ||y' - y|| for a row whose outputs are all zero) when each of `coded`'s
  // cuts (some of the probe's cuts) carries its tensors through its codec at once. 0 when every
  // codec is lossless, exactly.
  double error(const std::vector<CodedCut>& coded) const;
  int64_t rows() const { return rows_; }

 private:
  std::vector<torch::jit::Module> blocks_;
  std::vector<size_t> cuts_;
  std::vector<std::vector<std::vector<at::Tensor>>> at_cut_;  // [batch][i]: tensors at cuts_[i]
  std::vector<std::vector<at::Tensor>> outputs_;              // [batch]
  int64_t rows_ = 0;
};

}  // namespace edgepipe
