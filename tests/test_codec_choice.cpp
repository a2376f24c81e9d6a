// The per-link codec choice within an error budget (plan/codec_choice.h): against an exhaustive
// search on random plans, and on cases whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "edgepipe/plan/codec_choice.h"
#include "plan_test_support.h"

namespace edgepipe {
namespace {

// Random options for a cut of `raw` bytes: raw first, then codecs that shrink it at a cost.
std::vector<CodecOption> random_options(std::mt19937_64& rng, double raw, size_t count) {
  std::uniform_real_distribution<double> ratio(1.2, 30), ms(0.01, 20), err(0, 0.02);
  std::vector<CodecOption> o{{"raw", raw, 0, 0, 0}};
  for (size_t i = 1; i < count; ++i) {
    const bool lossless = i == 1;
    o.push_back({"c" + std::to_string(i), raw / ratio(rng), ms(rng), ms(rng) / 3,
                 lossless ? 0.0 : err(rng)});
  }
  return o;
}

// Every choice, by evaluate_plan: the least period within the budget.
double exhaustive(const ModelCosts& m, const Cluster& c, const std::vector<Stage>& stages,
                  const std::vector<std::vector<CodecOption>>& links, double budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> pick(links.size(), 0);
  std::function<void(size_t, double)> go = [&](size_t l, double err) {
    if (err > budget) return;
    if (l == links.size()) {
      best = std::min(best,
                      evaluate_plan(with_link_codecs(m, stages, links, pick), c, stages).period_s);
      return;
    }
    for (size_t o = 0; o < links[l].size(); ++o) {
      pick[l] = o;
      go(l + 1, err + links[l][o].error);
    }
  };
  go(0, 0);
  return best;
}

TEST(CodecChoice, EqualsExhaustiveSearchOnRandomPlans) {
  std::mt19937_64 rng(17);
  size_t compared = 0, lossy_chosen = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t R = 2 + rng() % 4, n = 3 + rng() % 6;
    Instance in = random_instance(rng, R, n, 1 + rng() % 3, trial % 4 == 0);
    // A plan: k stages on ranks 1..k, cut evenly.
    const size_t k = 1 + rng() % std::min(R, n);
    std::vector<Stage> stages;
    for (size_t s = 0; s < k; ++s) stages.push_back({s + 1, s * n / k, (s + 1) * n / k});
    in.model.codec_thread = trial % 2 == 1;
    std::vector<std::vector<CodecOption>> links;
    for (size_t cut : link_cuts(stages))
      links.push_back(random_options(rng, in.model.cut_bytes[cut], 2 + rng() % 3));
    const double budget = std::uniform_real_distribution<double>(0, 0.04)(rng);
    const CodecChoice got = choose_codecs(in.model, in.cluster, stages, links, budget);
    const double want = exhaustive(in.model, in.cluster, stages, links, budget);
    ASSERT_TRUE(same_period(got.period_s, want))
        << "trial " << trial << ": chose " << got.period_s << " s, the best is " << want;
    EXPECT_LE(got.error_sum, budget * (1 + 1e-12));
    double sum = 0;
    for (size_t l = 0; l < links.size(); ++l) {
      sum += links[l][got.option[l]].error;
      lossy_chosen += links[l][got.option[l]].error > 0;
    }
    EXPECT_DOUBLE_EQ(sum, got.error_sum);
    ++compared;
  }
  EXPECT_EQ(compared, 300u);
  EXPECT_GT(lossy_chosen, 50u) << "the instances should make lossy codecs worth choosing";
}

// One stage between rank 0 and a rank behind a slow link: the input is 10 MB, the output tiny.
struct SlowLink {
  ModelCosts model;
  Cluster cluster = uniform_cluster(1, 1.0, 1e12, {0.001, 12.5e6});  // 100 Mbit/s
  std::vector<Stage> stages{{1, 0, 1}};
  SlowLink() {
    model.blocks = {{50, 1e6, 1e6}};
    model.cut_bytes = {10e6, 4e3};
  }
  std::vector<std::vector<CodecOption>> links(double q4_error) const {
    return {{{"raw", 10e6, 0, 0, 0}, {"lz4", 8e6, 5, 2, 0}, {"q4+lz4", 1e6, 10, 4, q4_error}},
            {{"raw", 4e3, 0, 0, 0}, {"q8", 1e3, 0.01, 0.01, 1e-3}}};
  }
};

TEST(CodecChoice, SlowLinkTakesTheLossyCodecWhenTheBudgetAllows) {
  SlowLink t;
  // Raw: 10 MB at 12.5 MB/s = 0.8 s; q4+lz4: 0.08 s on the wire, 50 + 4 ms of compute.
  const CodecChoice c = choose_codecs(t.model, t.cluster, t.stages, t.links(5e-3), 1e-2);
  EXPECT_EQ(t.links(5e-3)[0][c.option[0]].codec, "q4+lz4");
  EXPECT_EQ(c.option[1], 0u) << "the output link gains nothing from q8: raw keeps its error";
  EXPECT_NEAR(c.period_s, 0.001 + 1e6 / 12.5e6, 1e-9);
  EXPECT_DOUBLE_EQ(c.error_sum, 5e-3);
}

TEST(CodecChoice, BudgetTooSmallKeepsLosslessCodecs) {
  SlowLink t;
  const CodecChoice c = choose_codecs(t.model, t.cluster, t.stages, t.links(5e-2), 1e-2);
  EXPECT_EQ(t.links(5e-2)[0][c.option[0]].codec, "lz4");
  EXPECT_EQ(c.error_sum, 0);
  const CodecChoice none = choose_codecs(t.model, t.cluster, t.stages, t.links(5e-3), 0);
  EXPECT_EQ(none.error_sum, 0);
  EXPECT_EQ(none.option[0], 1u);
}

TEST(CodecChoice, FastLinkKeepsRaw) {
  SlowLink t;
  t.cluster = uniform_cluster(1, 1.0, 1e12, {1e-5, 10e9});  // 80 Gbit/s: 1 ms for 10 MB
  const CodecChoice c = choose_codecs(t.model, t.cluster, t.stages, t.links(5e-3), 1e-2);
  EXPECT_EQ(c.option[0], 0u) << "a codec slower than the bytes it saves must not be chosen";
  EXPECT_NEAR(c.period_s, 0.050, 1e-9);
}

TEST(CodecChoice, BadInputsAreNamed) {
  SlowLink t;
  auto links = t.links(5e-3);
  expect_error([&] { choose_codecs(t.model, t.cluster, t.stages, links, -1); },
               {"error budget", ">= 0"});
  links[1] = {{"q8", 1e3, 0.01, 0.01, 1e-3}};
  expect_error([&] { choose_codecs(t.model, t.cluster, t.stages, links, 1e-2); },
               {"link 2", "lossless"});
  links.pop_back();
  expect_error([&] { choose_codecs(t.model, t.cluster, t.stages, links, 1e-2); },
               {"2 links", "options for 1"});
}

}  // namespace
}  // namespace edgepipe
