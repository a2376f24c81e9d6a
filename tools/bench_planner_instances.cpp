#include "bench_planner_instances.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace edgepipe {
namespace bench {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

namespace {

// The ranks and links of random_instance: every rank its own (classes == 0), or rank r of class
// (r - 1) % classes with its class's speed, memory and links (rank 0 a class of its own).
void random_cluster(std::mt19937_64& rng, size_t R, const Scenario& sc, size_t classes, double need,
                    Cluster& c) {
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto logu = [&](double a, double b) { return std::exp(uni(std::log(a), std::log(b))); };
  const size_t K = classes == 0 ? R : classes;
  std::vector<double> speed(K), memory(K);
  for (size_t k = 0; k < K; ++k) {
    speed[k] = logu(sc.speed_min, sc.speed_max);
    memory[k] = std::round(need * uni(0.15, 1.0));
  }
  // Class 0 is rank 0; class k + 1 the ranks of speed[k] (rank k + 1 alone without classes).
  auto cls = [&](size_t r) { return r == 0 ? 0 : 1 + (r - 1) % K; };
  c.ranks.resize(R + 1);
  for (size_t r = 1; r <= R; ++r) {
    c.ranks[r].speed = speed[cls(r) - 1];
    c.ranks[r].memory_bytes = memory[cls(r) - 1];
  }
  // Links by pair of classes, both ways alike (within a class of several ranks too).
  std::vector<std::vector<Link>> link(K + 1, std::vector<Link>(K + 1));
  for (size_t a = 0; a <= K; ++a)
    for (size_t b = a + (classes == 0 ? 1 : 0); b <= K; ++b)
      link[a][b] = link[b][a] = {uni(sc.lat_min, sc.lat_max), logu(sc.bw_min, sc.bw_max) / 8};
  c.links.assign(R + 1, std::vector<Link>(R + 1));
  for (size_t a = 0; a <= R; ++a)
    for (size_t b = 0; b <= R; ++b)
      if (a != b) c.links[a][b] = link[cls(a)][cls(b)];
}

}  // namespace

Instance random_instance(std::mt19937_64& rng, size_t R, size_t n, const Scenario& sc,
                         size_t classes) {
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto logu = [&](double a, double b) { return std::exp(uni(std::log(a), std::log(b))); };
  Instance in;
  ModelCosts& m = in.model;
  double weights = 0, act = 0;
  for (size_t b = 0; b < n; ++b) {
    BlockCost bc{logu(1, 50), std::round(logu(0.1e6, 20e6)), std::round(logu(0.2e6, 5e6))};
    weights += bc.param_bytes;
    act = std::max(act, bc.act_bytes);
    m.blocks.push_back(bc);
  }
  m.cut_bytes.push_back(3 * 224 * 224 * 4);
  for (size_t cut = 1; cut < n; ++cut) m.cut_bytes.push_back(std::round(logu(20e3, 4e6)));
  m.cut_bytes.push_back(4000);
  random_cluster(rng, R, sc, classes >= R ? 0 : classes, weights + act, in.cluster);
  return in;
}

Instance typed_instance(std::mt19937_64& rng, size_t n) {
  Instance in = random_instance(rng, 1, n, kScenarios[0]);
  const double speed[4] = {0.5, 1, 2, 4};
  const double memory[4] = {64 * kMiB, 128 * kMiB, 256 * kMiB, 512 * kMiB};
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  Link type_link[5][5];
  for (auto& row : type_link)
    for (Link& l : row) l = {uni(0.1e-3, 2e-3), std::exp(uni(std::log(10e6), std::log(1e9))) / 8};
  Cluster& c = in.cluster;
  c.ranks.assign(65, RankInfo{});
  auto type = [](size_t r) { return r == 0 ? size_t{4} : (r - 1) / 16; };
  for (size_t r = 1; r <= 64; ++r) {
    c.ranks[r].speed = speed[type(r)];
    c.ranks[r].memory_bytes = memory[type(r)];
  }
  c.links.assign(65, std::vector<Link>(65));
  for (size_t a = 0; a <= 64; ++a)
    for (size_t b = 0; b <= 64; ++b) c.links[a][b] = type_link[type(a)][type(b)];
  return in;
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

}  // namespace bench
}  // namespace edgepipe
