#include "edgepipe/model/codec_error.h"

#include <algorithm>
#include <cmath>

#include "edgepipe/base/error.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

namespace {

// Encodes and decodes `x` with `codec`; the decoded tensors own their storage.
std::vector<at::Tensor> through(const CodecSpec& codec, const std::vector<at::Tensor>& x) {
  FrameEncoder encoder(codec, 0);
  std::vector<char> frame;
  encoder.encode(0, 0, x, frame);
  Frame f = decode_frame(frame.data(), frame.size());
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : f.tensors) out.push_back(t.clone());
  return out;
}

// Each row's squared distance and squared norm, over every output tensor (rows along dim 0).
void add_rows(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want,
              std::vector<double>& dist2, std::vector<double>& norm2) {
  EP_CHECK(got.size() == want.size(), "the model gave ", got.size(), " outputs, expected ",
           want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const at::Tensor w = want[i].to(at::kDouble).reshape({want[i].size(0), -1});
    const at::Tensor g = got[i].to(at::kDouble).reshape({got[i].size(0), -1});
    const at::Tensor d = (g - w).pow(2).sum(1), n = w.pow(2).sum(1);
    if (dist2.empty()) {
      dist2.assign(static_cast<size_t>(w.size(0)), 0.0);
      norm2.assign(static_cast<size_t>(w.size(0)), 0.0);
    }
    for (int64_t r = 0; r < w.size(0); ++r) {
      dist2[r] += d[r].item<double>();
      norm2[r] += n[r].item<double>();
    }
  }
}

}  // namespace

CutErrorProbe::CutErrorProbe(const ModelGraph& model, std::vector<at::Tensor> batches,
                             std::vector<size_t> cuts)
    : blocks_(block_modules(model)), cuts_(std::move(cuts)) {
  const size_t n = blocks_.size();
  for (size_t c : cuts_)
    EP_CHECK(c <= n, "cut ", c, " is past the model's output (", n, " blocks)");
  at::NoGradGuard no_grad;
  for (const at::Tensor& batch : batches) {
    EP_THROW_IF_STOPPED("while measuring the codecs' error");
    rows_ += batch.size(0);
    std::vector<at::Tensor> x{batch};
    at_cut_.emplace_back(cuts_.size());
    for (size_t b = 0; b <= n; ++b) {
      for (size_t i = 0; i < cuts_.size(); ++i)
        if (cuts_[i] == b) at_cut_.back()[i] = x;
      if (b < n) x = StageRunner(blocks_[b]).run(x);
    }
    outputs_.push_back(x);
  }
}

double CutErrorProbe::error(const std::vector<CodedCut>& coded) const {
  if (std::none_of(coded.begin(), coded.end(), [](const CodedCut& c) { return c.codec.lossy(); }))
    return 0.0;
  size_t start = blocks_.size();
  for (const CodedCut& c : coded) {
    EP_CHECK(std::find(cuts_.begin(), cuts_.end(), c.cut) != cuts_.end(), "cut ", c.cut,
             " was not kept for the error measurement");
    start = std::min(start, c.cut);
  }
  const size_t first =
      static_cast<size_t>(std::find(cuts_.begin(), cuts_.end(), start) - cuts_.begin());
  at::NoGradGuard no_grad;
  double worst = 0;
  for (size_t k = 0; k < outputs_.size(); ++k) {
    EP_THROW_IF_STOPPED("while measuring the codecs' error");
    std::vector<at::Tensor> x = at_cut_[k][first];
    for (size_t b = start; b <= blocks_.size(); ++b) {
      for (const CodedCut& c : coded)
        if (c.cut == b) x = through(c.codec, x);
      if (b < blocks_.size()) x = StageRunner(blocks_[b]).run(x);
    }
    std::vector<double> dist2, norm2;
    add_rows(x, outputs_[k], dist2, norm2);
    for (size_t r = 0; r < dist2.size(); ++r)
      worst = std::max(worst, norm2[r] > 0 ? std::sqrt(dist2[r] / norm2[r]) : std::sqrt(dist2[r]));
  }
  return worst;
}

}  // namespace edgepipe
