// chain_split: the even split of a chain of costs into k pieces (no cluster, no links): what
// tools/bench_codecs uses to pick the cuts of a K-stage split. The planner proper is
// exact_planner.h. Pure: no MPI, no Torch.
#pragma once
#include <cstddef>
#include <vector>

namespace edgepipe {

// Splits a chain of block costs into k contiguous, non-empty pieces so that the largest piece's
// sum is as small as possible (exact dynamic program, O(k n^2)). Returns the k+1 boundaries:
// piece s holds blocks [bounds[s], bounds[s+1]); bounds[0] = 0 and bounds[k] = costs.size().
// Among equally good splits it prefers the one whose cuts come first.
// With cut_costs (n + 1 entries), a piece [j, i) also pays cut_costs[j] + cut_costs[i]: the
// decode of the frame it receives and the encode of the frame it sends.
std::vector<size_t> partition_chain(const std::vector<double>& costs, size_t k,
                                    const std::vector<double>& cut_costs = {});

}  // namespace edgepipe
