// The probe window (include/edgepipe/plan/measured.h): which blocks every stage rank receives and
// times at start-up, so that none receives the whole model, and how the other blocks' times are
// extrapolated from them.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "edgepipe/plan/measured.h"
#include "edgepipe/plan/resnet50_shaped.h"

namespace edgepipe {
namespace {

double sum(const std::vector<double>& v, size_t a, size_t e) {
  return std::accumulate(v.begin() + a, v.begin() + e, 0.0);
}

int64_t sum(const std::vector<int64_t>& v, size_t a, size_t e) {
  return std::accumulate(v.begin() + a, v.begin() + e, int64_t{0});
}

// The bound the docs state: at most max(the largest block, 1/N of the model), in weights and in
// compute, and the window with the most compute among those.
TEST(ProbeWindow, HoldsABoundedPartOfTheModel) {
  const ModelCosts m = resnet50_shaped();
  std::vector<double> ms;
  std::vector<int64_t> bytes, acts;
  for (const BlockCost& b : m.blocks) {
    ms.push_back(b.ref_ms);
    bytes.push_back(static_cast<int64_t>(b.param_bytes));
    acts.push_back(static_cast<int64_t>(b.act_bytes));
  }
  const size_t n = ms.size();
  const double total_ms = sum(ms, 0, n);
  const double total_bytes = static_cast<double>(sum(bytes, 0, n));
  const double max_ms = *std::max_element(ms.begin(), ms.end());
  const double max_bytes = static_cast<double>(*std::max_element(bytes.begin(), bytes.end()));
  for (size_t ranks : {1, 2, 3, 4, 8, 16, 64}) {
    const ProbeWindow w = choose_probe_window(ms, bytes, acts, ranks);
    ASSERT_LT(w.first, w.end);
    ASSERT_LE(w.end, n);
    const double cap_ms = std::max(max_ms, total_ms / ranks) * (1 + 1e-6);
    const double cap_bytes = std::max(max_bytes, total_bytes / ranks) * (1 + 1e-6);
    EXPECT_LE(static_cast<double>(sum(bytes, w.first, w.end)), cap_bytes) << ranks << " ranks";
    if (w.size() > 1) {
      EXPECT_LE(sum(ms, w.first, w.end), cap_ms) << ranks << " ranks";
    }
    if (ranks == 1) {
      EXPECT_EQ(w.size(), n) << "one stage rank: the whole model is its window";
    }
    if (ranks >= 8) {
      EXPECT_LT(static_cast<double>(sum(bytes, w.first, w.end)), 0.5 * total_bytes)
          << ranks << " ranks: the window must be a small part of the model";
    }
    // No other window within the bounds has more compute.
    for (size_t a = 0; a < n; ++a)
      for (size_t e = a + 1; e <= n; ++e) {
        const bool fits = e == a + 1 || (sum(ms, a, e) <= cap_ms &&
                                         static_cast<double>(sum(bytes, a, e)) <= cap_bytes);
        if (fits) {
          EXPECT_LE(sum(ms, a, e), sum(ms, w.first, w.end) * (1 + 1e-9)) << a << ".." << e;
        }
      }
  }
}

// One block heavier than the bound allows alone is still a window: a rank that cannot hold it
// could not run it either.
TEST(ProbeWindow, ASingleHeavyBlockIsAWindow) {
  const std::vector<double> ms{1, 1, 50, 1};
  const std::vector<int64_t> bytes{10, 10, 1000, 10};
  const std::vector<int64_t> acts{5, 5, 5, 5};
  const ProbeWindow w = choose_probe_window(ms, bytes, acts, 8);
  EXPECT_EQ(w.first, 2u);
  EXPECT_EQ(w.end, 3u);
  // A memory cap below the block: still the block (no stage holding it could run anywhere, and
  // the run says so).
  const ProbeWindow capped = choose_probe_window(ms, bytes, acts, 8, 100);
  EXPECT_EQ(capped.size(), 1u);
}

// A rank's memory caps the window as a stage of the same blocks would need it.
TEST(ProbeWindow, FitsTheSmallestRank) {
  const std::vector<double> ms(10, 1.0);
  const std::vector<int64_t> bytes(10, 100), acts(10, 30);
  const ProbeWindow free = choose_probe_window(ms, bytes, acts, 2);
  EXPECT_EQ(free.size(), 5u);
  const ProbeWindow capped = choose_probe_window(ms, bytes, acts, 2, 330);
  EXPECT_EQ(capped.size(), 3u);
  EXPECT_LE(window_memory(bytes, acts, capped), 330);
  EXPECT_DOUBLE_EQ(window_memory(bytes, acts, ProbeWindow{2, 4}), 230);
}

TEST(ProbeWindow, ExtendsTimesByTheRanksSpeedOverTheWindow) {
  const std::vector<double> ref{2, 4, 6, 8};
  // The rank takes 3x rank 0's time on blocks 1..2 (12 + 18 = 30 ms for 10).
  const std::vector<double> out = extend_block_times({12, 18}, ref, ProbeWindow{1, 3});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_DOUBLE_EQ(out[0], 6);
  EXPECT_DOUBLE_EQ(out[1], 12);
  EXPECT_DOUBLE_EQ(out[2], 18);
  EXPECT_DOUBLE_EQ(out[3], 24);
  EXPECT_THROW(extend_block_times({1, 2, 3}, ref, ProbeWindow{1, 3}), std::exception);
  EXPECT_THROW(extend_block_times({1}, ref, ProbeWindow{3, 5}), std::exception);
}

}  // namespace
}  // namespace edgepipe
