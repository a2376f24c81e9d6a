#include "edgepipe/io/data.h"

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/test_hooks.h"
#include "edgepipe/io/output_paths.h"

namespace edgepipe {

namespace {
std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}
}  // namespace

InputSource::InputSource(const RunConfig& cfg, const std::vector<int64_t>& model_shape)
    : seed_(cfg.seed) {
  if (!cfg.input_file.empty()) {
    dataset_.emplace(cfg.input_file, cfg.input_dataset);
    const auto& dims = dataset_->dims();
    description_ = cfg.input_file + ":" + cfg.input_dataset;
    count_ = dims[0];
    sample_shape_.assign(dims.begin() + 1, dims.end());
    EP_CHECK(count_ > 0, "input dataset ", description_, " has no rows");
    identity_ =
        cfg.input_dataset + " " + shape_text(dims) + " sha256:" + sha256_file(cfg.input_file);
    if (!cfg.input_shape.empty()) {
      std::vector<int64_t> want(cfg.input_shape.begin() + 1, cfg.input_shape.end());
      EP_CHECK(want == sample_shape_, "input dataset ", description_, " has samples of shape ",
               shape_text(sample_shape_), " but --input-shape says ", shape_text(want));
    }
  } else {
    const auto& shape = cfg.input_shape.empty() ? model_shape : cfg.input_shape;
    EP_CHECK(!shape.empty(),
             "--synthetic needs the input shape: the model file does not record "
             "one, so pass --input-shape, e.g. 1,3,224,224");
    sample_shape_.assign(shape.begin() + 1, shape.end());
    count_ = cfg.synthetic;
    description_ = "synthetic (" + std::to_string(count_) + " random inputs, seed " +
                   std::to_string(cfg.seed) + ")";
    identity_ = "synthetic " + std::to_string(count_) + "x" + shape_text(sample_shape_) + " seed " +
                std::to_string(cfg.seed);
  }
}

std::string InputSource::description() const { return description_; }
std::string InputSource::identity() const { return identity_; }

at::Tensor InputSource::batch(int64_t index, int64_t batch) const {
  return rows(index * batch, std::min(batch, count_ - index * batch));
}

at::Tensor InputSource::rows(int64_t first, int64_t rows) const {
  EP_CHECK(rows > 0 && first >= 0 && first + rows <= count_, "rows [", first, ", ", first + rows,
           ") are outside the ", count_, " inputs");
  std::vector<int64_t> shape{rows};
  shape.insert(shape.end(), sample_shape_.begin(), sample_shape_.end());
  if (dataset_) {
    at::Tensor t = at::empty(shape, at::kFloat);
    dataset_->read_rows(first, rows, t.data_ptr<float>());
    return t;
  }
  // Each sample from its own generator: the inputs do not depend on the batch size.
  at::Tensor t = at::empty(shape, at::kFloat);
  for (int64_t r = 0; r < rows; ++r) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003u + first + r);
    t[r] = at::randn(std::vector<int64_t>(sample_shape_), gen);
  }
  return t;
}

std::string output_dataset_name(size_t index) {
  return index == 0 ? "outputs" : "outputs_" + std::to_string(index);
}

OutputSink::OutputSink(const std::string& path, OutputMode mode, const OutputIdentity& id,
                       OutputLock lock)
    : file_(path, mode, std::move(lock)), rows_(id.rows) {
  if (mode != OutputMode::resume) {
    try {
      record_identity(file_, id);
      file_.set_attribute("rows_done", std::vector<int64_t>{0});
      file_.set_attribute("complete", std::vector<int64_t>{0});
      file_.flush();
    } catch (...) {
      file_.discard_on_close();  // a new file that could not even hold its record
      throw;
    }
    return;
  }
  const std::string& f = file_.partial_path();
  check_identity(file_.attributes(), id, f);
  rows_done_ = rows_written_ = file_.int_attribute("rows_done").at(0);
  EP_CHECK(rows_done_ >= 0 && rows_done_ <= rows_, "'", f, "' has a bad progress record");
  while (file_.has_dataset(output_dataset_name(num_outputs_))) ++num_outputs_;
}

void OutputSink::checkpoint() {
  if (file_.failed()) return;  // the mark stays over what is known to be on the disk
  file_.check_still_named();
  if (rows_written_ == rows_done_) return;
  ++checkpoints_;
  file_.flush();  // the rows first, to the disk ...
  test_crash_point("after-rows-flush", checkpoints_);
  file_.set_attribute("rows_done", std::vector<int64_t>{rows_written_});
  test_crash_point("after-mark-write", checkpoints_);
  file_.flush();  // ... then the mark that covers them
  rows_done_ = rows_written_;
  test_crash_point("after-mark-flush", checkpoints_);
  if (test_hook_armed("io-error-after-mark", checkpoints_)) file_.fail_writes_for_test();
}

std::string OutputSink::keep_after_failure(bool resumed) {
  std::string trouble;
  try {
    checkpoint();
  } catch (const std::exception& e) {
    trouble = std::string(" (no more progress could be recorded: ") + e.what() + ")";
  }
  try {
    file_.check_still_named();
  } catch (const std::exception& e) {
    return e.what();
  }
  if (rows_done_ == 0 && !resumed) {
    file_.discard_on_close();  // nothing worth keeping
    return "";
  }
  return std::to_string(rows_done_) + " of " + std::to_string(rows_) + " rows are kept in " +
         file_.partial_path() + "; run the same command with --resume to continue" + trouble;
}

void OutputSink::commit() {
  EP_CHECK(!file_.failed(), "cannot complete '", file_.partial_path(), "': a write to it failed");
  EP_CHECK(rows_written_ == rows_, "outputs file is incomplete: ", rows_written_, " of ", rows_,
           " rows written");
  checkpoint();
  file_.set_attribute("complete", std::vector<int64_t>{1});
  file_.commit();
}

void OutputSink::create_datasets(const std::vector<std::vector<int64_t>>& row_shapes) {
  EP_CHECK(num_outputs_ == 0, "the datasets of '", file_.partial_path(), "' exist already");
  EP_CHECK(!row_shapes.empty(), "the model returned no tensors");
  int64_t bytes = 0;
  for (const auto& row : row_shapes) {
    int64_t n = 1;
    for (int64_t d : row) n *= d;
    bytes += rows_ * n * static_cast<int64_t>(sizeof(float));
  }
  check_free_space(file_.partial_path(), bytes + (2 << 20),
                   "the outputs (" + std::to_string(rows_) + " rows of " +
                       std::to_string(bytes / std::max<int64_t>(rows_, 1)) +
                       " bytes, and 2 MiB for HDF5)");
  for (size_t i = 0; i < row_shapes.size(); ++i)
    file_.create_dataset(output_dataset_name(i), rows_, row_shapes[i]);
  file_.reserve_space();  // the datasets' metadata, once: later writes touch raw data only
  num_outputs_ = row_shapes.size();
}

void OutputSink::write(int64_t first, const std::vector<at::Tensor>& outputs) {
  EP_CHECK(!outputs.empty(), "the model returned no tensors");
  EP_CHECK(first == rows_written_, "outputs must be written in order: rows from ", first,
           " came after row ", rows_written_);
  if (num_outputs_ == 0) {
    std::vector<std::vector<int64_t>> rows;
    for (size_t i = 0; i < outputs.size(); ++i) {
      EP_CHECK(outputs[i].dim() >= 1, "model output ", i,
               " is a scalar; edgepipe needs one row per input");
      rows.push_back(outputs[i].sizes().vec());
      rows.back().erase(rows.back().begin());
    }
    create_datasets(rows);
  } else if (!checked_shapes_) {
    // Resumed: the datasets an earlier run made must fit these outputs.
    for (size_t i = 0; i < outputs.size() && i < num_outputs_; ++i) {
      const int64_t cols = outputs[i].dim() ? outputs[i].numel() / outputs[i].size(0) : 0;
      EP_CHECK(file_.dataset_dims(output_dataset_name(i)) == (std::vector<int64_t>{rows_, cols}),
               "cannot resume: output ", i, " has ", cols, " values per row, but dataset ",
               output_dataset_name(i), " in the file has another shape");
    }
  }
  checked_shapes_ = true;
  EP_CHECK(outputs.size() == num_outputs_, "the model returned ", outputs.size(),
           " tensors for rows from ", first, " but ", num_outputs_, " before");
  const int64_t rows = outputs[0].size(0);
  for (size_t i = 0; i < outputs.size(); ++i) {
    EP_CHECK(outputs[i].dim() >= 1 && outputs[i].size(0) == rows, "model output ", i,
             " has leading dimension ", outputs[i].dim() ? outputs[i].size(0) : 0,
             ", expected the batch's ", rows, " rows");
    at::Tensor t = outputs[i];
    if (t.scalar_type() != at::kFloat || !t.is_contiguous()) {
      staging_ = t.to(at::kFloat).contiguous();
      t = staging_;
    }
    file_.write_rows(output_dataset_name(i), first, rows, t.data_ptr<float>());
  }
  rows_written_ = first + rows;
}

}  // namespace edgepipe
