#include "edgepipe/model/graph.h"

#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "edgepipe/base/error.h"
#include "edgepipe/cli/config.h"

namespace edgepipe {

namespace {

using torch::jit::Node;
using torch::jit::Value;

// Index of the top-level node that owns `node` (itself, or the node whose nested block holds it).
Node* top_level_owner(Node* node, const torch::jit::Block* top) {
  while (node->owningBlock() != top) node = node->owningBlock()->owningNode();
  return node;
}

bool is_constant(const Value* v) { return v->node()->kind() == c10::prim::Constant; }

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::vector<int64_t> read_meta_shape(const std::string& meta) {
  std::istringstream in(meta);
  std::string line;
  while (std::getline(in, line)) {
    const std::string key = "input_shape=";
    if (line.rfind(key, 0) == 0) return parse_shape(line.substr(key.size()));
  }
  return {};
}

}  // namespace

std::vector<std::vector<Value*>> compute_live_sets(torch::jit::Graph& graph,
                                                   const std::vector<Node*>& nodes) {
  const size_t n = nodes.size();
  const torch::jit::Block* top = graph.block();
  std::unordered_map<const Node*, size_t> position;
  for (size_t i = 0; i < n; ++i) position[nodes[i]] = i;

  // Position at or after which a value is last needed: the graph's return counts as position n.
  auto last_use = [&](const Value* v) {
    size_t last = 0;
    bool used = false;
    for (const auto& use : v->uses()) {
      Node* owner = top_level_owner(use.user, top);
      size_t p = owner == graph.return_node() ? n : position.at(owner);
      last = std::max(last, p);
      used = true;
    }
    return std::make_pair(used, last);
  };

  std::vector<std::vector<Value*>> live(n + 1);
  // Model inputs (input 0 is the module itself) are live from position 0 to their last use.
  for (size_t k = 1; k < graph.inputs().size(); ++k) {
    Value* v = graph.inputs()[k];
    live[0].push_back(v);
    auto [used, last] = last_use(v);
    for (size_t i = 1; used && i <= last && i < n; ++i) live[i].push_back(v);
  }
  // Outputs of node d are live at every cut i with d < i <= last use.
  for (size_t d = 0; d < n; ++d) {
    for (Value* v : nodes[d]->outputs()) {
      auto [used, last] = last_use(v);
      if (!used) continue;
      for (size_t i = d + 1; i <= last && i < n; ++i) live[i].push_back(v);
    }
  }
  for (Value* v : graph.outputs()) live[n].push_back(v);
  return live;
}

ModelGraph make_model_graph(torch::jit::Module module) {
  ModelGraph mg;
  module.eval();
  try {
    mg.module = torch::jit::freeze(module);
  } catch (const c10::Error& e) {
    EP_FAIL("cannot freeze the model: ", first_line(e.what_without_backtrace()));
  }
  EP_CHECK(mg.module.find_method("forward"), "the model has no forward method");
  mg.graph = mg.module.get_method("forward").graph();
  auto& g = *mg.graph;
  EP_CHECK(!g.inputs().empty() && !g.inputs()[0]->hasUses(),
           "the frozen model still reads module attributes in forward; edgepipe needs a model "
           "whose attributes freeze into constants");
  for (Node* node : g.nodes()) {
    if (node->kind() != c10::prim::Constant) mg.nodes.push_back(node);
  }
  mg.live = compute_live_sets(g, mg.nodes);
  const size_t n = mg.nodes.size();
  for (size_t i = 0; i <= n; ++i) {
    bool all_tensors = !mg.live[i].empty();
    for (Value* v : mg.live[i]) {
      if (!v->type()->cast<c10::TensorType>() || is_constant(v)) all_tensors = false;
    }
    // The ends are always kept: the first stage takes the model's inputs, the last its outputs.
    if (all_tensors || i == 0 || i == n) mg.cuts.push_back(i);
  }
  EP_CHECK(n > 0, "the model's forward graph has no nodes");
  return mg;
}

ModelGraph load_model_graph(const std::string& path) {
  EP_CHECK(std::ifstream(path).good(), "model file '", path, "' does not exist or cannot be read");
  torch::jit::ExtraFilesMap extra{{kModelMetaFile, ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, c10::nullopt, extra);
  } catch (const std::exception& e) {
    EP_FAIL("model file '", path, "' is not a TorchScript archive (", first_line(e.what()), ")");
  }
  ModelGraph mg = make_model_graph(module);
  mg.input_shape = read_meta_shape(extra[kModelMetaFile]);
  return mg;
}

std::string describe_node(const Node* node) {
  std::ostringstream s;
  for (size_t i = 0; i < node->outputs().size(); ++i)
    s << (i ? ", " : "") << "%" << node->outputs()[i]->debugName();
  if (!node->outputs().empty()) s << " = ";
  s << node->kind().toQualString() << "(";
  bool first = true;
  for (const Value* v : node->inputs()) {
    if (!first) s << ", ";
    first = false;
    s << (is_constant(v) ? std::string("const") : "%" + v->debugName());
  }
  s << ")";
  if (!node->blocks().empty()) s << " {" << node->blocks().size() << " blocks}";
  return s.str();
}

}  // namespace edgepipe
