#include "edgepipe/cli/inspect.h"

#include <cstdio>

#include "edgepipe/base/error.h"
#include "edgepipe/base/log.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/profile.h"

namespace edgepipe {

namespace {

std::string meta_text(const TensorMeta& m) {
  std::string s = std::string(c10::toString(m.dtype)) + "[";
  for (size_t i = 0; i < m.shape.size(); ++i) s += (i ? "," : "") + std::to_string(m.shape[i]);
  return s + "]";
}

}  // namespace

int run_inspect(const InspectConfig& cfg, std::ostream& out) {
  ModelGraph mg = load_model_graph(cfg.model);
  EP_THROW_IF_STOPPED("while loading the model");
  const auto& shape = cfg.input_shape.empty() ? mg.input_shape : cfg.input_shape;
  EP_CHECK(!shape.empty(),
           "the model file does not record its input shape: pass --input-shape, "
           "e.g. 1,3,224,224");
  ModelProfile p = profile_model(mg, at::zeros(shape), 2, cfg.profile ? 5 : 0);

  const size_t nb = mg.num_blocks();
  int64_t params = 0;
  double total_ms = 0;
  size_t single = 0;
  for (size_t b = 0; b < nb; ++b) {
    params += p.block_param_bytes[b];
    total_ms += p.block_ms[b];
  }
  for (size_t c = 1; c < nb; ++c) single += p.cut_metas[c].size() == 1;
  out << "model " << cfg.model << "\n";
  out << strprintf("  %zu nodes, %zu blocks, %zu inner cut candidates (%zu with one live tensor)\n",
                   mg.nodes.size(), nb, nb - 1, single);
  out << strprintf("  parameters %.2f MB; input batch %s", params / 1e6,
                   meta_text(p.cut_metas[0][0]).c_str());
  if (cfg.profile)
    out << strprintf("; compute %.2f ms per batch (%d thread%s)", total_ms, cfg.threads,
                     cfg.threads == 1 ? "" : "s");
  out << "\n\n";
  auto print_cut = [&](size_t c) {
    int64_t bytes = p.cut_bytes(c);
    std::string tensors;
    for (const auto& m : p.cut_metas[c]) tensors += (tensors.empty() ? "" : " ") + meta_text(m);
    const char* what = c == 0 ? "input" : c == nb ? "output" : "cut";
    out << strprintf("  %-6s %-4zu at node %-4zu %zu tensor%s, %.3f MB: %s\n", what, c, mg.cuts[c],
                     p.cut_metas[c].size(), p.cut_metas[c].size() == 1 ? "" : "s", bytes / 1e6,
                     tensors.c_str());
  };
  print_cut(0);
  for (size_t b = 0; b < nb; ++b) {
    out << strprintf("block %zu: nodes %zu-%zu, params %.3f MB", b, mg.cuts[b], mg.cuts[b + 1] - 1,
                     p.block_param_bytes[b] / 1e6);
    if (cfg.profile) out << strprintf(", %.3f ms", p.block_ms[b]);
    out << "\n";
    for (size_t i = mg.cuts[b]; i < mg.cuts[b + 1]; ++i)
      out << strprintf("    [%zu] ", i) << describe_node(mg.nodes[i]) << "\n";
    print_cut(b + 1);
  }
  return 0;
}

}  // namespace edgepipe
