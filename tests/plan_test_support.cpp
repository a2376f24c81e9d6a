#include "plan_test_support.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace edgepipe {

namespace {

// An instance of compare_with_brute_force, as drawn.
struct DrawnInstance {
  Instance in;
  PlanOptions options;
  size_t R = 0, n = 0, classes = 0;
  bool ties = false;
};

// 1..8 ranks; half the instances at the largest number of blocks the bound on the brute force's
// plans allows (at most 30), the rest anywhere below.
DrawnInstance draw_instance(std::mt19937_64& rng, int it, bool codec_thread, bool min_stages,
                            double max_plans) {
  DrawnInstance d;
  d.R = 1 + rng() % 8;
  size_t n_max = 1;
  while (n_max < 30 && brute_force_plan_count(n_max + 1, d.R) <= max_plans) ++n_max;
  d.n = it % 2 ? n_max : 1 + rng() % n_max;
  d.classes = it % 3 == 0 ? 1 + rng() % d.R : d.R;
  d.ties = it % 5 == 0;
  d.in = random_instance(rng, d.R, d.n, d.classes, d.ties, it % 6 == 3);
  if (codec_thread) use_codec_thread(rng, d.in.model, d.ties);
  if (!min_stages) return d;
  d.options.min_stages = 1 + rng() % d.R;
  // In a third, a few ranks get too little memory for some blocks (or any): a minimum must then
  // use them, and nothing may fit with it although fewer stages would.
  if (it % 3 != 1) return d;
  double least = std::numeric_limits<double>::infinity(), most = 0;
  for (const BlockCost& b : d.in.model.blocks) {
    least = std::min(least, b.param_bytes + b.act_bytes);
    most = std::max(most, b.param_bytes + b.act_bytes);
  }
  std::uniform_real_distribution<double> between(std::log(least / 2), std::log(most));
  for (size_t k = 1 + rng() % (d.R / 2 + 1); k > 0; --k)
    d.in.cluster.ranks[1 + rng() % d.R].memory_bytes = std::round(std::exp(between(rng)));
  return d;
}

// No baseline beats the optimum; those that keep to the minimum keep to it; the optimum without a
// minimum is no slower.
void check_baselines(const Instance& in, const PlanOptions& o, const Plan& opt,
                     BruteForceTally& t) {
  for (const Plan& base :
       {plan_random(in.model, in.cluster, o), plan_greedy(in.model, in.cluster, o),
        plan_equal_blocks(in.model, in.cluster, o), plan_pipeedge(in.model, in.cluster, o)})
    if (base.found()) {
      // Greedy ignores the minimum; the others keep to it, and then cannot beat the optimum.
      if (base.method != "greedy") {
        EXPECT_GE(base.stages.size(), o.min_stages) << base.method;
      }
      if (base.stages.size() >= o.min_stages) {
        EXPECT_GE(base.period_s(), opt.period_s() * (1 - 1e-12)) << base.method;
      }
    }
  if (o.min_stages > 1) {
    const Plan free = plan_optimal(in.model, in.cluster);
    EXPECT_LE(free.period_s(), opt.period_s());
    if (free.stages.size() < o.min_stages) {
      ++t.min_binding;
      t.min_slower += free.period_s() < opt.period_s();
    }
  }
}

// With the codec thread: every optimal stage's compute is max(blocks, decode + encode)
// recomputed from the tables, and the optimum is never worse than the one-thread optimum.
void check_codec_thread(const Instance& in, const PlanOptions& o, const Plan& opt,
                        BruteForceTally& t) {
  bool bound_by_codec = false;
  for (size_t k = 0; k < opt.stages.size(); ++k) {
    const Stage& s = opt.stages[k];
    const RankInfo& r = in.cluster.ranks[s.rank];
    double blocks = 0;
    for (size_t b = s.first; b < s.end; ++b)
      blocks += r.block_ms.empty() ? in.model.blocks[b].ref_ms / r.speed : r.block_ms[b];
    blocks /= 1000;
    const double codec = (in.model.cut_decode_ms[s.first] + in.model.cut_encode_ms[s.end]) / 1000;
    ASSERT_TRUE(same_period(opt.cost.stages[k].codec_s, codec)) << "stage " << k;
    ASSERT_TRUE(same_period(opt.cost.stages[k].compute_s, std::max(blocks, codec)))
        << "stage " << k << ": compute " << opt.cost.stages[k].compute_s << " s, blocks " << blocks
        << " s, codec " << codec << " s";
    bound_by_codec = bound_by_codec || codec > blocks;
  }
  t.codec_bound += bound_by_codec;
  // Decode and encode beside the blocks can only help: max(a, b) <= a + b.
  ModelCosts one_thread = in.model;
  one_thread.codec_thread = false;
  const Plan serial = plan_optimal(one_thread, in.cluster, o);
  ASSERT_TRUE(same_period(serial.period_s(),
                          plan_brute_force(one_thread, in.cluster, 1e8, o.min_stages).period_s()));
  EXPECT_LE(opt.period_s(), serial.period_s() * (1 + 1e-12));
  t.faster_than_serial += opt.period_s() < serial.period_s() * (1 - 1e-9);
  bool same_cuts = opt.stages.size() == serial.stages.size();
  for (size_t k = 0; same_cuts && k < opt.stages.size(); ++k)
    same_cuts = opt.stages[k].end == serial.stages[k].end;
  t.other_cuts += !same_cuts;
}

// One drawn instance: the errors when nothing fits (or the minimum exceeds the blocks), else the
// optimum equal to the brute force's.
void compare_one(const DrawnInstance& d, bool codec_thread, BruteForceTally& t) {
  const Instance& in = d.in;
  const PlanOptions& o = d.options;
  if (o.min_stages > d.n) {
    ++t.too_few_blocks;
    expect_error([&] { plan_optimal(in.model, in.cluster, o); },
                 {"at least " + std::to_string(o.min_stages) + " stages",
                  "only " + std::to_string(d.n) + " blocks"});
    return;
  }
  const Plan bf = plan_brute_force(in.model, in.cluster, 1e8, o.min_stages);
  if (!bf.found()) {
    ++t.infeasible;
    expect_error([&] { plan_optimal(in.model, in.cluster, o); },
                 {"does not fit in memory", "more on every rank"});
    if (o.min_stages > 1 && plan_brute_force(in.model, in.cluster).found()) {
      ++t.fit_only_below_min;
      expect_error([&] { plan_optimal(in.model, in.cluster, o); },
                   {"fewer than " + std::to_string(o.min_stages) + " would fit"});
    }
    return;
  }
  const Plan opt = plan_optimal(in.model, in.cluster, o);
  ASSERT_TRUE(opt.found());
  ASSERT_TRUE(opt.cost.fits);
  ASSERT_GE(opt.stages.size(), o.min_stages);
  ++t.compared;
  if (opt.rank_types < d.R) ++t.grouped;
  ASSERT_TRUE(same_period(opt.period_s(), bf.period_s()))
      << "optimal " << opt.period_s() << " s, brute force " << bf.period_s() << " s\n"
      << format_plan(opt, in.model, in.cluster) << format_plan(bf, in.model, in.cluster);
  EXPECT_LE(opt.stages.size(), bf.stages.size());  // ties go to fewer stages
  check_baselines(in, o, opt, t);
  if (codec_thread) check_codec_thread(in, o, opt, t);
}

}  // namespace

Instance random_instance(std::mt19937_64& rng, size_t R, size_t n, size_t classes, bool ties,
                         bool perturb) {
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto logu = [&](double a, double b) { return std::exp(uni(std::log(a), std::log(b))); };
  auto pick = [&](std::vector<double> v) { return v[rng() % v.size()]; };
  auto chance = [&](double p) { return uni(0, 1) < p; };
  Instance in;
  ModelCosts& m = in.model;
  for (size_t b = 0; b < n; ++b) {
    BlockCost bc;
    bc.ref_ms = ties ? pick({1, 2, 3}) : logu(0.1, 100);
    bc.param_bytes = std::round(ties ? pick({1e6, 2e6}) : logu(1e4, 5e7));
    bc.act_bytes = std::round(ties ? pick({1e5, 1e6}) : logu(1e4, 1e7));
    m.blocks.push_back(bc);
  }
  for (size_t cut = 0; cut <= n; ++cut)
    m.cut_bytes.push_back(std::round(ties ? pick({1e3, 1e5}) : logu(1e2, 1e7)));
  if (chance(0.25)) {
    for (size_t cut = 0; cut <= n; ++cut) {
      m.cut_encode_ms.push_back(ties ? pick({0, 1}) : logu(0.01, 5));
      m.cut_decode_ms.push_back(ties ? pick({0, 1}) : logu(0.01, 5));
    }
  }
  double need = 0, act = 0;
  for (const BlockCost& b : m.blocks) {
    need += b.param_bytes;
    act = std::max(act, b.act_bytes);
  }
  need += act;

  // Classes: rank r belongs to class_of[r]; every class has at least one rank.
  std::vector<size_t> class_of(R + 1, 0);
  for (size_t r = 1; r <= R; ++r) class_of[r] = r <= classes ? r - 1 : rng() % classes;
  std::vector<RankInfo> proto(classes);
  for (RankInfo& p : proto) {
    if (chance(0.3)) {
      for (const BlockCost& b : m.blocks)
        p.block_ms.push_back(ties ? pick({1, 2}) : b.ref_ms * logu(0.2, 5));
    } else {
      p.speed = ties ? pick({1, 2}) : logu(0.25, 4);
    }
    // Mostly enough for a share of the model; sometimes too little for anything.
    p.memory_bytes = std::round(need * (ties ? pick({0.3, 0.7, 1.5}) : logu(0.1, 3)));
  }
  auto random_link = [&]() -> Link {
    if (ties) return {pick({0, 1e-3}), pick({1e6, 1e7})};
    return {uni(0, 5e-3), logu(1e5, 1e9)};
  };
  // Links by class pair (and the dispatcher as class `classes`); within a class one link.
  std::vector<std::vector<Link>> class_link(classes + 1, std::vector<Link>(classes + 1));
  for (auto& row : class_link)
    for (Link& l : row) l = random_link();
  Cluster& c = in.cluster;
  c.ranks.resize(R + 1);
  for (size_t r = 1; r <= R; ++r) c.ranks[r] = proto[class_of[r]];
  c.links.assign(R + 1, std::vector<Link>(R + 1));
  for (size_t a = 0; a <= R; ++a)
    for (size_t b = 0; b <= R; ++b) {
      size_t ca = a == 0 ? classes : class_of[a], cb = b == 0 ? classes : class_of[b];
      c.links[a][b] = class_link[ca][cb];
    }
  // Sometimes a few single links differ from their class pair's, so that the planner must not
  // group all of a class.
  if (perturb && R >= 2) {
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) {
      size_t a = rng() % (R + 1), b = rng() % (R + 1);
      if (a != b) c.links[a][b] = random_link();
    }
  }
  return in;
}

bool same_period(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(a, b); }

void use_codec_thread(std::mt19937_64& rng, ModelCosts& m, bool ties) {
  auto logu = [&](double a, double b) {
    return std::exp(std::uniform_real_distribution<double>(std::log(a), std::log(b))(rng));
  };
  m.codec_thread = true;
  m.cut_encode_ms.clear();
  m.cut_decode_ms.clear();
  for (size_t cut = 0; cut <= m.num_blocks(); ++cut) {
    m.cut_encode_ms.push_back(ties ? static_cast<double>(rng() % 4) : logu(0.05, 50));
    m.cut_decode_ms.push_back(ties ? static_cast<double>(rng() % 4) : logu(0.05, 50));
  }
}

void compare_with_brute_force(uint64_t seed, int instances, bool codec_thread, BruteForceTally& t,
                              bool min_stages, double max_plans) {
  std::mt19937_64 rng(seed);
  for (int it = 0; it < instances; ++it) {
    const DrawnInstance d = draw_instance(rng, it, codec_thread, min_stages, max_plans);
    SCOPED_TRACE(
        "instance " + std::to_string(it) + ": " + std::to_string(d.R) + " ranks, " +
        std::to_string(d.n) + " blocks, " + std::to_string(d.classes) + " classes" +
        (d.ties ? ", ties" : "") + (codec_thread ? ", codec thread" : "") +
        (min_stages ? ", at least " + std::to_string(d.options.min_stages) + " stages" : ""));
    t.largest_n = std::max(t.largest_n, d.n);
    if (d.R == 8) t.largest_n_at_8 = std::max(t.largest_n_at_8, d.n);
    compare_one(d, codec_thread, t);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

void Lexicographic::go(size_t i) {
  const size_t n = in.model.num_blocks();
  if (i == n) {
    if (cur.size() < min_stages) return;
    const PlanCost pc = evaluate_plan(in.model, in.cluster, cur);
    if (!pc.fits) return;
    if (std::make_tuple(pc.period_s, cur.size(), pc.link_bytes) <
        std::make_tuple(period, stages, bytes)) {
      period = pc.period_s;
      stages = cur.size();
      bytes = pc.link_bytes;
    }
    return;
  }
  if (max_stages > 0 && cur.size() == max_stages) return;
  for (size_t r = 1; r < in.cluster.num_ranks(); ++r) {
    if (used[r]) continue;
    used[r] = 1;
    for (size_t j = i + 1; j <= n; ++j) {
      cur.push_back({r, i, j});
      go(j);
      cur.pop_back();
    }
    used[r] = 0;
  }
}

void check_tie_break(uint64_t seed, bool codec_thread, bool min_stages) {
  std::mt19937_64 rng(seed);
  size_t checked = 0, above_one = 0;
  for (int it = 0; it < 600; ++it) {
    const size_t R = 1 + rng() % 5, n = 1 + rng() % (R <= 3 ? 8 : 6);
    Instance in = random_instance(rng, R, n, 1 + rng() % R, true, it % 3 == 0);
    if (codec_thread) use_codec_thread(rng, in.model, true);
    PlanOptions o;
    if (min_stages) o.min_stages = 1 + rng() % std::min(R, n);
    Lexicographic lex{in, {}, std::vector<char>(R + 1, 0)};
    lex.min_stages = o.min_stages;
    lex.go(0);
    if (lex.stages == 0) continue;
    SCOPED_TRACE("instance " + std::to_string(it));
    const Plan p = plan_optimal(in.model, in.cluster, o);
    ASSERT_EQ(p.period_s(), lex.period);
    ASSERT_EQ(p.stages.size(), lex.stages);
    ASSERT_EQ(p.cost.link_bytes, lex.bytes);
    ++checked;
    above_one += o.min_stages > 1;
  }
  EXPECT_GT(checked, 300u);
  if (min_stages) {
    EXPECT_GT(above_one, 150u);
  }
}

}  // namespace edgepipe
