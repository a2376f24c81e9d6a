#include "edgepipe/io.h"

#include "edgepipe/error.h"

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
    if (!cfg.input_shape.empty()) {
      std::vector<int64_t> want(cfg.input_shape.begin() + 1, cfg.input_shape.end());
      EP_CHECK(want == sample_shape_, "input dataset ", description_, " has samples of shape ",
               shape_text(sample_shape_), " but --input-shape says ", shape_text(want));
    }
  } else {
    const auto& shape = cfg.input_shape.empty() ? model_shape : cfg.input_shape;
    EP_CHECK(!shape.empty(), "--synthetic needs the input shape: the model file does not record "
             "one, so pass --input-shape, e.g. 1,3,224,224");
    sample_shape_.assign(shape.begin() + 1, shape.end());
    count_ = cfg.synthetic;
    description_ = "synthetic (" + std::to_string(count_) + " random inputs, seed " +
                   std::to_string(cfg.seed) + ")";
  }
}

std::string InputSource::description() const { return description_; }

at::Tensor InputSource::batch(int64_t index, int64_t batch) const {
  const int64_t first = index * batch;
  const int64_t rows = std::min(batch, count_ - first);
  EP_CHECK(rows > 0, "batch ", index, " is past the end of the inputs");
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

OutputSink::OutputSink(const std::string& path, bool overwrite, int64_t rows)
    : file_(path, overwrite), rows_(rows) {}

void OutputSink::write(int64_t first, const std::vector<at::Tensor>& outputs) {
  EP_CHECK(!outputs.empty(), "the model returned no tensors");
  if (num_outputs_ == 0) {
    num_outputs_ = outputs.size();
    for (size_t i = 0; i < outputs.size(); ++i) {
      EP_CHECK(outputs[i].dim() >= 1, "model output ", i, " is a scalar; edgepipe needs one row "
               "per input");
      auto row = outputs[i].sizes().vec();
      row.erase(row.begin());
      file_.create_dataset(output_dataset_name(i), rows_, row);
    }
  }
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
}

}  // namespace edgepipe
