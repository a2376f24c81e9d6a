// plan_test_support: what the planner's tests share (tests/test_plan_*.cpp): error checks, random
// instances, the comparison with the brute force, and an exhaustive lexicographic search.
#pragma once
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/plan/resnet50_shaped.h"

#ifndef EDGEPIPE_SOURCE_DIR
#define EDGEPIPE_SOURCE_DIR "."
#endif

namespace edgepipe {

constexpr double kMiB = 1024.0 * 1024.0;

// Expects `f` to throw edgepipe::Error whose message contains every string in `parts`.
template <typename F>
void expect_error(F f, std::vector<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << parts[0] << "'";
  } catch (const Error& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message: " << e.what() << "\nmissing: " << p;
  }
}

// A path under the source tree (configs/..., for the shipped cluster descriptions).
inline std::string source_path(const std::string& relative) {
  return std::string(EDGEPIPE_SOURCE_DIR) + "/" + relative;
}

struct Instance {
  ModelCosts model;
  Cluster cluster;
};

// `classes` classes of ranks: ranks of a class are identical (speed or block times, memory, links),
// so the planner groups them. With `ties`, values come from tiny sets so that many plans tie. With
// `perturb`, a few single links are redrawn.
Instance random_instance(std::mt19937_64& rng, size_t R, size_t n, size_t classes, bool ties,
                         bool perturb = false);

// Equal to 1e-12, relative.
bool same_period(double a, double b);

// Puts the instance in the codec-thread mode, with codec times on every cut drawn to be
// comparable with the stages' block times (so that either side of the max can bound a stage).
void use_codec_thread(std::mt19937_64& rng, ModelCosts& m, bool ties);

struct BruteForceTally {
  size_t compared = 0, infeasible = 0, grouped = 0, largest_n_at_8 = 0, largest_n = 0;
  // With the codec thread: optimal plans with a stage bound by its codec work (decode + encode
  // above its blocks), and instances where the codec thread's optimum beats the one-thread one
  // or cuts elsewhere.
  size_t codec_bound = 0, faster_than_serial = 0, other_cuts = 0;
  // With `min_stages`: instances whose minimum exceeds their blocks (an error), that fit in memory
  // only with fewer stages than the minimum, whose unconstrained optimum has fewer stages than the
  // minimum, and of those, the ones where the minimum costs period.
  size_t too_few_blocks = 0, fit_only_below_min = 0, min_binding = 0, min_slower = 0;
};

// Random instances (see ExactPlanner.EqualsBruteForceOnRandomInstances) planned by the exact
// planner and by the brute force; with `codec_thread`, every instance in that mode with codec
// times on every cut; with `min_stages`, each with PlanOptions::min_stages drawn in 1..ranks (and
// the brute force restricted to as many stages). `max_plans` bounds the brute force's
// enumeration, and so the sizes.
void compare_with_brute_force(uint64_t seed, int instances, bool codec_thread, BruteForceTally& t,
                              bool min_stages = false, double max_plans = 2e6);

// Every plan, by evaluate_plan: the best by (period, stages, bytes between stages).
struct Lexicographic {
  const Instance& in;
  std::vector<Stage> cur;
  std::vector<char> used;
  double period = std::numeric_limits<double>::infinity(), bytes = 0;
  size_t stages = 0;
  size_t min_stages = 0;  // only plans of at least this many stages
  size_t max_stages = 0;  // ... and at most this many (0: any)
  void go(size_t i);
};

// The exact planner's period, stage count and bytes against Lexicographic on 600 small instances
// with many ties; with `codec_thread`, every instance in that mode with codec times on every cut;
// with `min_stages`, PlanOptions::min_stages drawn in 1..min(ranks, blocks) for each.
void check_tie_break(uint64_t seed, bool codec_thread, bool min_stages = false);

}  // namespace edgepipe
