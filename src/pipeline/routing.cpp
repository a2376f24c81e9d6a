#include "edgepipe/pipeline/routing.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {

// One period of a smooth weighted round-robin (as nginx balances upstreams): every turn each
// replica gains its weight, the one with the most credit takes the batch and pays the total.
// Replicas take their turns spread out, in proportion to their weights; ties go to the lowest.
std::vector<int> smooth_cycle(const std::vector<int>& weights) {
  int total = 0;
  for (int w : weights) total += w;
  std::vector<int> credit(weights.size(), 0), cycle;
  for (int turn = 0; turn < total; ++turn) {
    size_t best = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      credit[i] += weights[i];
      if (credit[i] > credit[best]) best = i;
    }
    credit[best] -= total;
    cycle.push_back(static_cast<int>(best));
  }
  return cycle;
}

}  // namespace

Routing::Routing(std::vector<std::vector<int>> ranks, std::vector<std::vector<int>> weights)
    : ranks_(std::move(ranks)), weights_(std::move(weights)) {
  EP_CHECK(ranks_.size() == weights_.size(), "routing: ", ranks_.size(), " stages of ranks but ",
           weights_.size(), " of weights");
  for (size_t s = 0; s < ranks_.size(); ++s) {
    EP_CHECK(!ranks_[s].empty() && ranks_[s].size() == weights_[s].size(), "routing: stage ", s,
             " has ", ranks_[s].size(), " replicas and ", weights_[s].size(), " weights");
    for (int w : weights_[s])
      EP_CHECK(w > 0 && w <= 1 << 16, "routing: stage ", s, " has a weight of ", w);
    cycle_.push_back(smooth_cycle(weights_[s]));
  }
}

std::vector<std::vector<int>> Routing::weights_of(const Plan& plan) {
  std::vector<std::vector<int>> out;
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    const size_t m = plan.stages[s].replicas().size();
    std::vector<double> rate(m, 1.0);
    if (s < plan.cost.stages.size() && plan.cost.stages[s].replicas.size() == m)
      for (size_t i = 0; i < m; ++i) {
        const double p = plan.cost.stages[s].replicas[i].period_s();
        rate[i] = std::isfinite(p) && p > 0 ? 1 / p : 1.0;
      }
    const double fastest = *std::max_element(rate.begin(), rate.end());
    std::vector<int> w;
    for (double r : rate)
      w.push_back(std::max(1, static_cast<int>(std::lround(kMaxWeight * r / fastest))));
    out.push_back(std::move(w));
  }
  return out;
}

void Routing::flatten(std::vector<int32_t>* replicas, std::vector<int32_t>* ranks,
                      std::vector<int32_t>* weights) const {
  replicas->clear();
  ranks->clear();
  weights->clear();
  for (size_t s = 0; s < ranks_.size(); ++s) {
    replicas->push_back(static_cast<int32_t>(ranks_[s].size()));
    ranks->insert(ranks->end(), ranks_[s].begin(), ranks_[s].end());
    weights->insert(weights->end(), weights_[s].begin(), weights_[s].end());
  }
}

Routing Routing::from_flat(const std::vector<int32_t>& replicas, const std::vector<int32_t>& ranks,
                           const std::vector<int32_t>& weights) {
  std::vector<std::vector<int>> r, w;
  size_t at = 0;
  for (int32_t m : replicas) {
    EP_CHECK(m > 0 && at + static_cast<size_t>(m) <= ranks.size() && ranks.size() == weights.size(),
             "routing: the stage set-up's routes are corrupt");
    r.emplace_back(ranks.begin() + static_cast<std::ptrdiff_t>(at),
                   ranks.begin() + static_cast<std::ptrdiff_t>(at + static_cast<size_t>(m)));
    w.emplace_back(weights.begin() + static_cast<std::ptrdiff_t>(at),
                   weights.begin() + static_cast<std::ptrdiff_t>(at + static_cast<size_t>(m)));
    at += static_cast<size_t>(m);
  }
  EP_CHECK(at == ranks.size(), "routing: the stage set-up's routes are corrupt");
  return Routing(std::move(r), std::move(w));
}

int Routing::replica_of(size_t stage, int64_t batch) const {
  const std::vector<int>& c = cycle_.at(stage);
  return c[static_cast<size_t>(batch % static_cast<int64_t>(c.size()))];
}

int Routing::rank_of(int64_t stage, int64_t batch) const {
  if (stage < 0 || stage >= static_cast<int64_t>(ranks_.size())) return 0;
  const size_t s = static_cast<size_t>(stage);
  return ranks_[s][static_cast<size_t>(replica_of(s, batch))];
}

int Routing::stage_of_rank(int rank) const {
  for (size_t s = 0; s < ranks_.size(); ++s)
    for (int r : ranks_[s])
      if (r == rank) return static_cast<int>(s);
  return -1;
}

int64_t Routing::next_batch(size_t stage, int replica, int64_t from) const {
  const std::vector<int>& c = cycle_.at(stage);
  const int64_t n = static_cast<int64_t>(c.size());
  for (int64_t b = from; b < from + n; ++b)
    if (c[static_cast<size_t>(b % n)] == replica) return b;
  EP_FAIL("routing: replica ", replica, " of stage ", stage, " has no turn");
}

int64_t Routing::count(size_t stage, int replica, int64_t batches) const {
  const std::vector<int>& c = cycle_.at(stage);
  const int64_t n = static_cast<int64_t>(c.size());
  int64_t per_cycle = 0, rest = 0;
  for (int64_t i = 0; i < n; ++i)
    if (c[static_cast<size_t>(i)] == replica) {
      ++per_cycle;
      if (i < batches % n) ++rest;
    }
  return batches / n * per_cycle + rest;
}

}  // namespace edgepipe
