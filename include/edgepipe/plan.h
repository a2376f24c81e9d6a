// plan: block costs (+ later: cluster description) -> stages. Pure: no MPI, no Torch.
#pragma once
#include <cstddef>
#include <vector>

namespace edgepipe {

// Splits a chain of block costs into k contiguous, non-empty pieces so that the largest piece's
// sum is as small as possible (exact dynamic program, O(k n^2)). Returns the k+1 boundaries:
// piece s holds blocks [bounds[s], bounds[s+1]); bounds[0] = 0 and bounds[k] = costs.size().
// Among equally good splits it prefers the one whose cuts come first.
std::vector<size_t> partition_chain(const std::vector<double>& costs, size_t k);

}  // namespace edgepipe
