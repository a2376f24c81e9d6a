#include "edgepipe/plan/chain_split.h"

#include <algorithm>
#include <limits>

#include "edgepipe/base/error.h"

namespace edgepipe {

std::vector<size_t> partition_chain(const std::vector<double>& costs, size_t k,
                                    const std::vector<double>& cut_costs) {
  const size_t n = costs.size();
  EP_CHECK(cut_costs.empty() || cut_costs.size() == n + 1, "partition_chain: ", cut_costs.size(),
           " cut costs for ", n, " blocks");
  auto cut = [&](size_t c) { return cut_costs.empty() ? 0.0 : cut_costs[c]; };
  EP_CHECK(k >= 1, "cannot split a model into 0 stages");
  EP_CHECK(k <= n, "the model has ", n, " blocks, too few for ", k,
           " stages: use fewer ranks (at most ", n + 1, ")");
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + costs[i];
  const double inf = std::numeric_limits<double>::infinity();
  // best[s][i]: smallest largest-piece for the first i blocks in s pieces; from[s][i]: last cut.
  std::vector<std::vector<double>> best(k + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<size_t>> from(k + 1, std::vector<size_t>(n + 1, 0));
  best[0][0] = 0.0;
  for (size_t s = 1; s <= k; ++s) {
    for (size_t i = s; i <= n; ++i) {
      for (size_t j = s - 1; j < i; ++j) {
        double v = std::max(best[s - 1][j], prefix[i] - prefix[j] + cut(j) + cut(i));
        if (v < best[s][i]) {
          best[s][i] = v;
          from[s][i] = j;
        }
      }
    }
  }
  std::vector<size_t> bounds(k + 1);
  bounds[k] = n;
  for (size_t s = k; s >= 1; --s) bounds[s - 1] = from[s][bounds[s]];
  return bounds;
}

}  // namespace edgepipe
