// stage: a contiguous range of a model's top-level nodes as its own TorchScript module, and its
// serialised bytes. A stage takes the values live at its first cut and returns those live at its
// last (a tuple when several); the last stage returns the model's own output.
#pragma once
#include <torch/script.h>

#include <functional>
#include <string>
#include <vector>

#include "edgepipe/model/graph.h"

namespace edgepipe {

// The graph of nodes [begin, end) of `model` (positions as in ModelGraph::live).
std::shared_ptr<torch::jit::Graph> build_stage_graph(const ModelGraph& model, size_t begin,
                                                     size_t end);

// A module whose forward is build_stage_graph(model, begin, end).
torch::jit::Module build_stage_module(const ModelGraph& model, size_t begin, size_t end);

// A module's TorchScript archive as bytes, and back.
std::string save_module_bytes(const torch::jit::Module& module);
torch::jit::Module load_module_bytes(const std::string& bytes);

// Bytes of the tensor constants (frozen weights) in a module's forward graph.
int64_t parameter_bytes(const torch::jit::Module& module);

// Tensors of an output value in order: a tensor, or the tensors of a tuple or list (recursively);
// None is skipped. Anything else cannot cross a cut and raises an error.
void flatten_tensors(const c10::IValue& value, std::vector<at::Tensor>& out);

// The line of a LibTorch exception that says what went wrong: for errors raised inside the
// TorchScript interpreter, the last "..Error: .." or "..Exception: .." line, else the first line.
std::string torch_error_summary(const std::exception& e);

// A loaded stage, ready to run: forward(inputs) -> flattened output tensors.
class StageRunner {
 public:
  explicit StageRunner(torch::jit::Module module);
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs);
  torch::jit::Module& module() { return module_; }

 private:
  torch::jit::Module module_;
  std::vector<c10::IValue> stack_;  // reused argument vector
};

// Largest relative L2 error (||a - b|| / ||b||) over pairs of tensors; infinity if the lists
// differ in length or shape.
double relative_error(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b);

// Random inputs of the given dtypes and shapes (normal for floats, zeros otherwise).
std::vector<at::Tensor> random_inputs(const std::vector<std::vector<int64_t>>& shapes,
                                      const std::vector<c10::ScalarType>& dtypes);

// torch::jit::optimize_for_inference, checked: `make` must return a fresh copy of the
// (unoptimised) module each call. The optimised copy is kept only if its outputs on `inputs`
// match the unoptimised one's within `tolerance` (relative L2): some LibTorch 1.13 MKLDNN
// rewrites give wrong results (MobileNetV3's hardswish). Otherwise the unoptimised module is
// returned and *why says by how much the optimised one was off.
torch::jit::Module optimize_checked(const std::function<torch::jit::Module()>& make,
                                    const std::vector<at::Tensor>& inputs, double tolerance,
                                    std::string* why);

}  // namespace edgepipe
