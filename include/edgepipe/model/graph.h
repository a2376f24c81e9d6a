// graph: a TorchScript file -> its frozen forward graph -> top-level nodes in order -> the values
// live across each cut between nodes -> the cut candidates and the blocks between them.
#pragma once
#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

namespace edgepipe {

struct ModelGraph {
  torch::jit::Module module;                 // frozen, eval mode
  std::shared_ptr<torch::jit::Graph> graph;  // its forward graph (input 0 is self, unused)
  // Top-level nodes in order, prim::Constant excluded (constants are cloned into stages on demand).
  std::vector<torch::jit::Node*> nodes;
  // live[i]: the values a stage starting at nodes[i] needs from before it, in a fixed order.
  // live[0] is the model's inputs; live[nodes.size()] is the model's outputs.
  std::vector<std::vector<torch::jit::Value*>> live;
  // Cut candidates: positions i in [0, nodes.size()] whose live values are all tensors. The first
  // is 0 and the last is nodes.size(); block b is the nodes in [cuts[b], cuts[b+1]).
  std::vector<size_t> cuts;
  // Shape of one batch as recorded by tools/export_models.py (empty if the file has none).
  std::vector<int64_t> input_shape;

  size_t num_blocks() const { return cuts.size() - 1; }
};

// Loads, freezes and analyses a TorchScript file; throws edgepipe::Error naming what is wrong.
ModelGraph load_model_graph(const std::string& path);

// Freezes (eval mode) and analyses a module, e.g. one built with Module::define in a test.
ModelGraph make_model_graph(torch::jit::Module module);

// The live sets of a graph's top-level nodes (see ModelGraph::live).
std::vector<std::vector<torch::jit::Value*>> compute_live_sets(
    torch::jit::Graph& graph, const std::vector<torch::jit::Node*>& nodes);

// Short text of a node for listings: "%out = aten::conv2d(%x, ...)" without constants' values.
std::string describe_node(const torch::jit::Node* node);

// Name of the extra file inside a TorchScript archive that holds "input_shape=1,3,224,224".
constexpr const char* kModelMetaFile = "edgepipe_meta.txt";

}  // namespace edgepipe
