#include "edgepipe/io/data.h"

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"

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

OutputSink::OutputSink(const std::string& path, OutputMode mode, const OutputIdentity& id)
    : file_(path, mode), rows_(id.rows) {
  if (mode != OutputMode::resume) {
    file_.set_attribute("model_sha256", id.model_sha256);
    file_.set_attribute("input_identity", id.input);
    file_.set_attribute("rows_total", std::vector<int64_t>{id.rows});
    file_.set_attribute("rows_done", std::vector<int64_t>{0});
    file_.set_attribute("complete", std::vector<int64_t>{0});
    file_.flush();
    return;
  }
  const std::string& f = file_.partial_path();
  EP_CHECK(file_.has_attribute("rows_done") && file_.has_attribute("model_sha256") &&
               file_.has_attribute("input_identity") && file_.has_attribute("rows_total"),
           "'", f, "' is not an edgepipe outputs file (no progress record): cannot resume it");
  EP_CHECK(file_.string_attribute("model_sha256") == id.model_sha256, "cannot resume '", f,
           "': it holds the outputs of another model (SHA-256 ",
           file_.string_attribute("model_sha256").substr(0, 12), "..., this model's is ",
           id.model_sha256.substr(0, 12), "...)");
  EP_CHECK(file_.string_attribute("input_identity") == id.input, "cannot resume '", f,
           "': it was made from other inputs (", file_.string_attribute("input_identity"), "; now ",
           id.input, ")");
  EP_CHECK(file_.int_attribute("rows_total") == std::vector<int64_t>{id.rows}, "cannot resume '", f,
           "': it expects ", file_.int_attribute("rows_total").at(0), " rows, the inputs have ",
           id.rows);
  rows_done_ = rows_written_ = file_.int_attribute("rows_done").at(0);
  EP_CHECK(rows_done_ >= 0 && rows_done_ <= rows_, "'", f, "' has a bad progress record");
  while (file_.has_dataset(output_dataset_name(num_outputs_))) ++num_outputs_;
}

void OutputSink::checkpoint() {
  if (rows_written_ == rows_done_) return;
  file_.flush();  // the rows first ...
  file_.set_attribute("rows_done", std::vector<int64_t>{rows_written_});
  file_.flush();  // ... then the mark that covers them
  rows_done_ = rows_written_;
}

void OutputSink::commit() {
  EP_CHECK(rows_written_ == rows_, "outputs file is incomplete: ", rows_written_, " of ", rows_,
           " rows written");
  checkpoint();
  file_.set_attribute("complete", std::vector<int64_t>{1});
  file_.commit();
}

void OutputSink::write(int64_t first, const std::vector<at::Tensor>& outputs) {
  EP_CHECK(!outputs.empty(), "the model returned no tensors");
  EP_CHECK(first == rows_written_, "outputs must be written in order: rows from ", first,
           " came after row ", rows_written_);
  if (num_outputs_ == 0) {
    num_outputs_ = outputs.size();
    for (size_t i = 0; i < outputs.size(); ++i) {
      EP_CHECK(outputs[i].dim() >= 1, "model output ", i,
               " is a scalar; edgepipe needs one row "
               "per input");
      auto row = outputs[i].sizes().vec();
      row.erase(row.begin());
      file_.create_dataset(output_dataset_name(i), rows_, row);
    }
    file_.flush();  // the datasets' metadata, once: later writes touch raw data only
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
