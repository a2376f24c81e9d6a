#include "edgepipe/model/stage.h"

#include <torch/csrc/jit/passes/freeze_module.h>

#include <limits>
#include <sstream>
#include <unordered_map>

#include "edgepipe/base/error.h"

namespace edgepipe {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

std::shared_ptr<Graph> build_stage_graph(const ModelGraph& model, size_t begin, size_t end) {
  const size_t n = model.nodes.size();
  EP_CHECK(begin < end && end <= n, "bad stage range [", begin, ", ", end, ") of ", n, " nodes");
  auto g = std::make_shared<Graph>();
  std::unordered_map<Value*, Value*> env;
  for (Value* v : model.live[begin]) {
    Value* in = g->addInput();
    in->copyMetadata(v);
    env[v] = in;
  }
  // Constants (frozen weights among them) are cloned into the stage when first used, at the top
  // of the graph so that they dominate every use, nested blocks included.
  std::function<Value*(Value*)> value_map = [&](Value* v) -> Value* {
    auto it = env.find(v);
    if (it != env.end()) return it->second;
    Node* def = v->node();
    if (def->kind() == c10::prim::Constant) {
      Node* c = g->createClone(def, value_map);
      g->prependNode(c);
      env[v] = c->output();
      return c->output();
    }
    EP_FAIL("internal error: value %", v->debugName(), " is used by stage [", begin, ", ", end,
            ") but is neither its input nor computed in it");
  };
  for (size_t i = begin; i < end; ++i) {
    Node* src = model.nodes[i];
    Node* dst = g->createClone(src, value_map);
    g->appendNode(dst);
    for (size_t k = 0; k < src->outputs().size(); ++k) env[src->outputs()[k]] = dst->outputs()[k];
  }
  std::vector<Value*> outs;
  for (Value* v : model.live[end]) outs.push_back(value_map(v));
  if (end == n || outs.size() == 1) {
    for (Value* v : outs) g->registerOutput(v);
  } else {
    Node* tuple = g->createTuple(outs);
    g->appendNode(tuple);
    g->registerOutput(tuple->output());
  }
  g->lint();
  return g;
}

torch::jit::Module build_stage_module(const ModelGraph& model, size_t begin, size_t end) {
  auto g = build_stage_graph(model, begin, end);
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  auto cls = c10::ClassType::create(c10::QualifiedName("__torch__.edgepipe.Stage"), cu,
                                    /*is_module=*/true);
  torch::jit::Module module(cu, cls);
  Value* self = g->insertInput(0, "self");
  self->setType(cls);
  auto* fn = cu->create_function(c10::QualifiedName(*cls->name(), "forward"), g);
  cls->addMethod(fn);
  return module;
}

std::string save_module_bytes(const torch::jit::Module& module) {
  std::ostringstream out;
  module.save(out);
  return out.str();
}

namespace {

// A read-only stream over bytes held elsewhere: std::istringstream would copy them, and a
// stage's archive can be hundreds of MiB on a node that has little more.
class BytesView : public std::streambuf {
 public:
  explicit BytesView(const std::string& bytes) {
    char* p = const_cast<char*>(bytes.data());  // only ever read
    setg(p, p, p + bytes.size());
  }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    const off_type base = dir == std::ios_base::beg   ? 0
                          : dir == std::ios_base::cur ? gptr() - eback()
                                                      : egptr() - eback();
    return seekpos(pos_type(base + off), std::ios_base::in);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode) override {
    const off_type at = off_type(pos);
    if (at < 0 || at > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + at, egptr());
    return pos;
  }
};

}  // namespace

torch::jit::Module load_module_bytes(const std::string& bytes) {
  BytesView view(bytes);
  std::istream in(&view);
  try {
    return torch::jit::load(in);
  } catch (const std::exception& e) {
    EP_FAIL("cannot load a stage from its bytes: ", torch_error_summary(e));
  }
}

int64_t parameter_bytes(const torch::jit::Module& module) {
  int64_t bytes = 0;
  auto graph = module.get_method("forward").graph();
  std::vector<torch::jit::Block*> todo{graph->block()};
  while (!todo.empty()) {
    auto* block = todo.back();
    todo.pop_back();
    for (Node* node : block->nodes()) {
      for (auto* b : node->blocks()) todo.push_back(b);
      if (node->kind() != c10::prim::Constant) continue;
      auto value = torch::jit::toIValue(node->output());
      if (value && value->isTensor()) bytes += value->toTensor().nbytes();
    }
  }
  return bytes;
}

void flatten_tensors(const c10::IValue& value, std::vector<at::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& e : value.toTupleRef().elements()) flatten_tensors(e, out);
  } else if (value.isList()) {
    for (const auto& e : value.toListRef()) flatten_tensors(e, out);
  } else if (!value.isNone()) {
    EP_FAIL("a stage output of type ", value.tagKind(), " cannot be sent between stages");
  }
}

double relative_error(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].sizes().equals(b[i].sizes())) return std::numeric_limits<double>::infinity();
    at::Tensor x = a[i].to(at::kDouble), y = b[i].to(at::kDouble);
    double norm = y.norm().item<double>();
    double diff = (x - y).norm().item<double>();
    worst = std::max(worst, norm > 0 ? diff / norm : diff);
  }
  return worst;
}

std::vector<at::Tensor> random_inputs(const std::vector<std::vector<int64_t>>& shapes,
                                      const std::vector<c10::ScalarType>& dtypes) {
  std::vector<at::Tensor> out;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12345);
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (c10::isFloatingType(dtypes[i]))
      out.push_back(at::randn(shapes[i], gen, at::TensorOptions().dtype(dtypes[i])));
    else
      out.push_back(at::zeros(shapes[i], at::TensorOptions().dtype(dtypes[i])));
  }
  return out;
}

torch::jit::Module optimize_checked(const std::function<torch::jit::Module()>& make,
                                    const std::vector<at::Tensor>& inputs, double tolerance,
                                    std::string* why) {
  // Each run gets its own copy: an optimised graph may write into its inputs in place.
  auto copy = [&] {
    std::vector<at::Tensor> c;
    for (const auto& t : inputs) c.push_back(t.clone());
    return c;
  };
  // One copy of the weights at a time besides what optimising makes: the plain module's outputs
  // are kept, the module is not (it is made again in the rare case the check fails).
  std::vector<at::Tensor> expected = StageRunner(make()).run(copy());
  torch::jit::Module fast = make();
  fast = torch::jit::optimize_for_inference(fast);
  double err = relative_error(StageRunner(fast).run(copy()), expected);
  if (err <= tolerance) return fast;
  if (why)
    *why = detail::concat("optimize_for_inference changes the outputs (relative L2 error ", err,
                          "; a LibTorch bug), so it runs unoptimised");
  return make();
}

std::string torch_error_summary(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string what = c10_error ? c10_error->what_without_backtrace() : e.what();
  std::string best;
  std::istringstream lines(what);
  for (std::string line; std::getline(lines, line);) {
    for (const char* kind : {"Error: ", "Exception: "}) {  // "builtins.Exception: bad input"
      const auto colon = line.find(kind);
      if (colon != std::string::npos && line.find(' ') > colon) best = line;
    }
  }
  return best.empty() ? what.substr(0, what.find('\n')) : best;
}

StageRunner::StageRunner(torch::jit::Module module) : module_(std::move(module)) {}

std::vector<at::Tensor> StageRunner::run(const std::vector<at::Tensor>& inputs) {
  stack_.clear();
  stack_.emplace_back(module_._ivalue());
  for (const auto& t : inputs) stack_.emplace_back(t);
  auto& fn = module_.get_method("forward").function();
  fn.run(stack_);
  std::vector<at::Tensor> out;
  flatten_tensors(stack_.back(), out);
  return out;
}

}  // namespace edgepipe
