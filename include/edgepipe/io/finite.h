// finite: rows of inputs or outputs that hold NaN or Inf. Inputs with NaN give outputs with NaN,
// and a model can compute NaN from finite inputs (an overflow, a log of a negative number): by
// default the first such row is named in a warning and the rest are counted for the summary;
// with --strict the first one is an error. Both commands check their inputs and outputs with it.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/base/log.h"

namespace edgepipe {

class NonFiniteRows {
 public:
  // what: "input" or "output" (named in the messages).
  NonFiniteRows(std::string what, bool strict) : what_(std::move(what)), strict_(strict) {}
  // Checks rows [first, first + rows) of a batch (each tensor's leading dimension is its rows; a
  // row counts once however many of the tensors hold NaN or Inf in it).
  void check(const std::vector<at::Tensor>& batch, int64_t first, const Log& log);
  int64_t count() const { return count_; }
  // "3 output rows contained NaN or Inf (the first: row 17)", or "" if none did.
  std::string summary() const;

 private:
  std::string what_;
  bool strict_;
  int64_t count_ = 0;
  int64_t first_row_ = -1;
};

}  // namespace edgepipe
