// io: batches of model inputs (from an HDF5 dataset, or seeded random ones), and model outputs
// into the outputs file: one float32 row per input, in input order. Shared by the pipeline's
// dispatcher and by `edgepipe single`.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgepipe/cli/config.h"
#include "edgepipe/io/h5.h"

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
  // Samples [first, first + count), float32.
  at::Tensor rows(int64_t first, int64_t count) const;
  // What identifies these inputs for --resume: the dataset's name, shape and the file's SHA-256,
  // or the synthetic inputs' count, shape and seed.
  std::string identity() const;

 private:
  std::optional<H5InputDataset> dataset_;
  std::string description_, identity_;
  int64_t count_ = 0;
  std::vector<int64_t> sample_shape_;
  uint64_t seed_ = 0;
};

// Dataset names of the model's flattened outputs: "outputs", then "outputs_1", "outputs_2", ...
std::string output_dataset_name(size_t index);

// What an outputs file must match to be resumed.
struct OutputIdentity {
  std::string model_sha256;
  std::string input;  // InputSource::identity()
  int64_t rows = 0;
};

// The outputs file of a run. Progress is durable: checkpoint() flushes the rows written, then
// records how many rows from the start are complete (attribute rows_done), then flushes again,
// so a file cut off at any point claims no row it does not hold.
class OutputSink {
 public:
  // create/overwrite: a new <path>.partial; resume: the earlier run's, checked against `id`.
  OutputSink(const std::string& path, OutputMode mode, const OutputIdentity& id);
  int64_t rows_done() const { return rows_done_; }
  // Writes the rows [first, first + batch rows) of every output tensor; creates the datasets at
  // the first call. Each tensor's leading dimension must be the batch's row count.
  void write(int64_t first, const std::vector<at::Tensor>& outputs);
  // Makes the rows written so far (in order, from the first) durable and marks them done.
  void checkpoint();
  H5OutputFile& file() { return file_; }
  // Marks the file complete and gives it its final name.
  void commit();

 private:
  H5OutputFile file_;
  int64_t rows_;
  int64_t rows_done_ = 0;     // durable: covered by the progress mark
  int64_t rows_written_ = 0;  // written in order from row 0
  size_t num_outputs_ = 0;
  bool checked_shapes_ = false;
  at::Tensor staging_;  // float32 copy of one output, reused
};

}  // namespace edgepipe
