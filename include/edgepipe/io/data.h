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
#include "edgepipe/io/output_identity.h"
#include "edgepipe/io/output_lock.h"

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

// The outputs file of a run. Progress is durable: checkpoint() flushes the rows written and
// fsyncs them, then records how many rows from the start are complete (attribute rows_done),
// then flushes and fsyncs again, so a file cut off at any point (a killed process, a machine
// crash) claims no row it does not hold. A failed write, flush or close never moves the mark.
class OutputSink {
 public:
  // create/overwrite: a new <path>.partial; resume: the earlier run's, checked against `id`.
  // Holds `lock` (output_lock.h) for as long as the file is open, or takes it if it holds none.
  OutputSink(const std::string& path, OutputMode mode, const OutputIdentity& id,
             OutputLock lock = OutputLock());
  int64_t rows_done() const { return rows_done_; }
  // Allocates one float32 dataset per output (rows x elements of row_shapes[i]) after checking
  // that the disk has room for them, and reserves their blocks: later writes cannot find the disk
  // full. write() does it at its first call; a caller that knows the output shapes earlier calls
  // it before the slow work, to fail at once. Not needed (and not allowed) when resuming.
  void create_datasets(const std::vector<std::vector<int64_t>>& row_shapes);
  // Writes the rows [first, first + batch rows) of every output tensor; creates the datasets at
  // the first call. Each tensor's leading dimension must be the batch's row count.
  void write(int64_t first, const std::vector<at::Tensor>& outputs);
  // Makes the rows written so far (in order, from the first) durable and marks them done. Also
  // checks that <path>.partial is still this file. After a failed write: does nothing (the mark
  // stays over the rows known to be on the disk).
  void checkpoint();
  // After a failure: marks what can be marked and says what is kept ("40 of 600 rows are kept
  // in F; run the same command with --resume to continue"), or discards a new file that holds
  // nothing (then returns "").
  std::string keep_after_failure(bool resumed);
  H5OutputFile& file() { return file_; }
  // Marks the file complete and gives it its final name.
  void commit();

 private:
  H5OutputFile file_;
  int64_t rows_;
  int64_t rows_done_ = 0;     // durable: covered by the progress mark
  int64_t rows_written_ = 0;  // written in order from row 0
  int64_t checkpoints_ = 0;   // marks made (counts the test hooks' points)
  size_t num_outputs_ = 0;
  bool checked_shapes_ = false;
  at::Tensor staging_;  // float32 copy of one output, reused
};

}  // namespace edgepipe
