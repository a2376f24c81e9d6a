// io: batches of model inputs (from an HDF5 dataset, or seeded random ones), and model outputs
// into the outputs file: one float32 row per input, in input order. Shared by the pipeline's
// dispatcher and by `edgepipe single`.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgepipe/config.h"
#include "edgepipe/h5.h"

namespace edgepipe {

class InputSource {
 public:
  // model_shape: one batch's shape recorded in the model file (may be empty).
  InputSource(const RunConfig& cfg, const std::vector<int64_t>& model_shape);
  int64_t count() const { return count_; }
  const std::vector<int64_t>& sample_shape() const { return sample_shape_; }
  std::string description() const;
  int64_t num_batches(int64_t batch) const { return (count_ + batch - 1) / batch; }
  // Batch `index` of size `batch` (the last one may be smaller), float32.
  at::Tensor batch(int64_t index, int64_t batch) const;

 private:
  std::optional<H5InputDataset> dataset_;
  std::string description_;
  int64_t count_ = 0;
  std::vector<int64_t> sample_shape_;
  uint64_t seed_ = 0;
};

// Dataset names of the model's flattened outputs: "outputs", then "outputs_1", "outputs_2", ...
std::string output_dataset_name(size_t index);

class OutputSink {
 public:
  OutputSink(const std::string& path, bool overwrite, int64_t rows);
  // Writes the rows [first, first + batch rows) of every output tensor; creates the datasets at
  // the first call. Each tensor's leading dimension must be the batch's row count.
  void write(int64_t first, const std::vector<at::Tensor>& outputs);
  H5OutputFile& file() { return file_; }
  void commit() { file_.commit(); }

 private:
  H5OutputFile file_;
  int64_t rows_;
  size_t num_outputs_ = 0;
  at::Tensor staging_;  // float32 copy of one output, reused
};

}  // namespace edgepipe
