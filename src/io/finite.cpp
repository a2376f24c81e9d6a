#include "edgepipe/io/finite.h"

#include "edgepipe/base/error.h"

namespace edgepipe {

void NonFiniteRows::check(const std::vector<at::Tensor>& batch, int64_t first, const Log& log) {
  at::Tensor bad;  // per row: does any tensor hold NaN or Inf in it
  for (const at::Tensor& t : batch) {
    if (t.dim() == 0 || !t.is_floating_point() || t.numel() == 0) continue;
    at::Tensor rows = at::logical_not(at::isfinite(t).reshape({t.size(0), -1}).all(1));
    bad = bad.defined() ? at::logical_or(bad, rows) : rows;
  }
  if (!bad.defined() || !bad.any().item<bool>()) return;
  const int64_t row = first + bad.nonzero()[0][0].item<int64_t>();
  const bool input = what_ == "input";
  const std::string why = input ? "" : ": the model computed it";
  EP_CHECK(!strict_, what_, " row ", row, " contains NaN or Inf", why, " (--strict refuses them)");
  if (count_ == 0) {
    first_row_ = row;
    log.warn(what_ + " row " + std::to_string(row) + " contains NaN or Inf" + why +
             (input ? "; its outputs will too" : "") + " (--strict refuses such " + what_ + "s)");
  }
  count_ += bad.sum().item<int64_t>();
}

std::string NonFiniteRows::summary() const {
  if (count_ == 0) return "";
  return std::to_string(count_) + " " + what_ + " row" + (count_ == 1 ? "" : "s") +
         " contained NaN or Inf (the first: row " + std::to_string(first_row_) + ")";
}

}  // namespace edgepipe
