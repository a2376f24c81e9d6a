// partition_chain (include/edgepipe/plan/chain_split.h, used by tools/bench_codecs): hand-made
// splits and a brute force on small random chains.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

double largest_piece(const std::vector<double>& c, const std::vector<size_t>& b) {
  double worst = 0;
  for (size_t s = 0; s + 1 < b.size(); ++s) {
    double sum = 0;
    for (size_t i = b[s]; i < b[s + 1]; ++i) sum += c[i];
    worst = std::max(worst, sum);
  }
  return worst;
}

// Tries every way to choose k-1 cuts among n-1 positions.
double brute_force(const std::vector<double>& c, size_t k) {
  const size_t n = c.size();
  std::vector<bool> pick(n - 1, false);
  std::fill(pick.begin(), pick.begin() + (k - 1), true);
  double best = 1e300;
  std::sort(pick.begin(), pick.end());
  do {
    std::vector<size_t> b{0};
    for (size_t i = 0; i + 1 < n; ++i)
      if (pick[i]) b.push_back(i + 1);
    b.push_back(n);
    best = std::min(best, largest_piece(c, b));
  } while (std::next_permutation(pick.begin(), pick.end()));
  return best;
}

TEST(PartitionChain, SplitsEvenly) {
  EXPECT_EQ(partition_chain({1, 1, 1, 1}, 2), (std::vector<size_t>{0, 2, 4}));
  EXPECT_EQ(partition_chain({5, 1, 1, 1, 1, 1}, 2), (std::vector<size_t>{0, 1, 6}));
  EXPECT_EQ(partition_chain({1, 2, 3}, 1), (std::vector<size_t>{0, 3}));
  EXPECT_EQ(partition_chain({1, 2, 3}, 3), (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(PartitionChain, RejectsBadK) {
  EXPECT_THROW(partition_chain({1, 2}, 0), Error);
  expect_error([] { partition_chain({1, 2}, 3); }, {"2 blocks", "3 stages"});
}

TEST(PartitionChain, MatchesBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    size_t n = 1 + rng() % 12;
    size_t k = 1 + rng() % n;
    std::vector<double> c(n);
    for (auto& v : c) v = std::uniform_real_distribution<double>(0.1, 10)(rng);
    auto b = partition_chain(c, k);
    ASSERT_EQ(b.size(), k + 1);
    EXPECT_EQ(b.front(), 0u);
    EXPECT_EQ(b.back(), n);
    for (size_t s = 0; s < k; ++s) EXPECT_LT(b[s], b[s + 1]) << "empty piece";
    EXPECT_DOUBLE_EQ(largest_piece(c, b), brute_force(c, k)) << "n=" << n << " k=" << k;
  }
}

TEST(PartitionChain, TooManyPiecesIsAnError) {
  EXPECT_THROW(partition_chain({1, 2}, 3), Error);
  EXPECT_THROW(partition_chain({1, 2}, 0), Error);
}

}  // namespace
}  // namespace edgepipe
