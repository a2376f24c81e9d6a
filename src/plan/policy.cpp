#include "edgepipe/plan/policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"

namespace edgepipe {

bool PlanPolicy::codec_on(size_t link) const {
  return std::find(coded_links.begin(), coded_links.end(), static_cast<int64_t>(link)) !=
         coded_links.end();
}

namespace {

// How the ranks behave with k stages: the cluster while k stage ranks per host compute and rank
// 0 keeps `dispatcher_cores` busy on its host, and whether they have the cores for the overlap.
// `shared`: whether ranks share hosts at all (else the cluster is the same for every k, and the
// best plan of at most the most stages is the optimum).
struct RankModel {
  std::function<Cluster(size_t busy, double dispatcher_cores)> cluster;
  std::function<bool(size_t busy, bool dispatcher_codec)> overlap_fits;
  bool shared = true;
};

// Rank 0's CPU per batch: reading and checking an input batch, encoding it, decoding the output.
double dispatcher_seconds(const ModelCosts& model, double read_s) {
  if (model.cut_encode_ms.empty()) return read_s;
  return read_s + (model.cut_encode_ms.front() + model.cut_decode_ms.back()) / 1e3;
}

bool same_stages(const Plan& a, const Plan& b) {
  return a.stages.size() == b.stages.size() &&
         std::equal(a.stages.begin(), a.stages.end(), b.stages.begin(),
                    [](const Stage& x, const Stage& y) {
                      return x.rank == y.rank && x.first == y.first && x.end == y.end &&
                             x.ranks == y.ranks;
                    });
}

// One decision in the making: the options, the cluster for the chosen number of stages, the
// calibration factors, and the decision so far.
class Planning {
 public:
  Planning(const ModelCosts& model, const std::vector<size_t>& block_nodes, double read_s,
           const RankModel& ranks, const PlanPolicy& policy)
      : model_(model),
        block_nodes_(block_nodes),
        ranks_(ranks),
        policy_(policy),
        factor_(model.num_blocks(), 1.0) {
    options_.group_tolerance = policy.group_tolerance;
    options_.max_stages = policy.max_stages;
    options_.min_stages = policy.stages;  // --stages N: exactly N, even when fewer are faster
    if (policy.replicas > 0) options_.min_replicas = options_.max_replicas = policy.replicas;
    measured_ = ranks.cluster(0, 0);
    out_.model = model;
    out_.overlap = policy.overlap == "on";
    out_.dispatcher_s = dispatcher_seconds(model, read_s);
  }

  PlanDecision decide(const CalibrateFn& calibrate) {
    search_stage_count();
    consider_replicas();
    calibrate_plan(calibrate);
    settle_dispatcher_share();
    return out_;
  }

 private:
  // Every rank's block times, scaled by what calibration measured.
  Cluster scaled() const {
    Cluster c = measured_;
    for (size_t r = 1; r < c.ranks.size(); ++r)
      for (size_t b = 0; b < factor_.size() && b < c.ranks[r].block_ms.size(); ++b)
        c.ranks[r].block_ms[b] *= factor_[b];
    return c;
  }

  // The period of the best plan of at most k stages with k busy ranks per host. Rank 0 keeps
  // dispatcher_s / period of a core busy on its host, and the stage ranks there share the cores
  // with it: the period depends on that share, so iterate a few times. Sets *c and *share.
  double period_with(const ModelCosts& costs, size_t k, Cluster* c, double* share) const {
    PlanOptions o = options_;
    o.max_stages = k;
    double period = 0, d = 0;
    for (int round = 0; round < 8; ++round) {
      *c = ranks_.cluster(k, d);
      period = plan_optimal(costs, *c, o).period_s();
      const double next = out_.dispatcher_s / period;
      if (std::abs(next - d) < 0.01) break;
      d = next;
    }
    *share = d;
    return period;
  }

  // Ranks that share a host's cores are slower the more of them compute, so a plan with fewer
  // stages than ranks runs its stages faster: plan for each number of busy ranks per host with
  // that slowdown, and keep the best (fewer stages unless more are really faster).
  void search_stage_count() {
    size_t most = options_.max_stages ? options_.max_stages : measured_.num_stage_ranks();
    // Every stage on `replicas` ranks: no more stages than the ranks hold.
    if (policy_.replicas > 0)
      most = std::max<size_t>(1, std::min(most, measured_.num_stage_ranks() / policy_.replicas));
    double best = std::numeric_limits<double>::infinity();
    const size_t fewest = !ranks_.shared ? most : policy_.stages ? policy_.stages : 1;
    for (size_t k = fewest; k <= most; ++k) {
      ModelCosts costs = model_;
      const bool dispatcher_codec = policy_.codec_on(1) || policy_.codec_on(k + 1);
      costs.codec_thread = policy_.overlap == "on" ||
                           (policy_.overlap == "auto" && ranks_.overlap_fits(k, dispatcher_codec));
      try {
        Cluster c;
        double share = 0;
        const double period = period_with(costs, k, &c, &share);
        if (period < best * 0.999) {
          best = period;
          measured_ = c;
          options_.max_stages = k;
          out_.busy_stages = k;
          out_.dispatcher_share = share;
          out_.overlap = costs.codec_thread;
        }
      } catch (const std::exception&) {
        if (k == most) throw;  // too few stages may not fit in memory; the most must
      }
    }
    out_.model.codec_thread = out_.overlap;
  }

  // A plan with replicas keeps every stage rank busy: planned with all of them computing on
  // each host, and taken when it is predicted faster than the best single pipeline (which was
  // planned with only its own stages busy).
  void consider_replicas() {
    if (policy_.max_replicas == 1 || policy_.stages != 0 || policy_.replicas != 0) return;
    PlanOptions o = options_;
    o.max_stages = policy_.max_stages;
    o.max_replicas = policy_.max_replicas;
    const size_t all = measured_.num_stage_ranks();
    ModelCosts costs = model_;
    const bool dispatcher_codec = !policy_.coded_links.empty();
    costs.codec_thread = policy_.overlap == "on" ||
                         (policy_.overlap == "auto" && ranks_.overlap_fits(all, dispatcher_codec));
    Cluster c;
    double period = 0, d = out_.dispatcher_share;
    Plan p;
    try {
      for (int round = 0; round < 8; ++round) {
        c = ranks_.cluster(all, d);
        p = plan_optimal(costs, c, o);
        period = p.period_s();
        const double next = out_.dispatcher_s / period;
        if (std::abs(next - d) < 0.01) break;
        d = next;
      }
    } catch (const std::exception&) {
      return;  // no plan with replicas fits: the single pipeline stays
    }
    const double single = plan_optimal(out_.model, measured_, options_).period_s();
    if (p.ranks_used() <= p.stages.size() || !(period < single * 0.999)) return;
    measured_ = c;
    options_ = o;
    out_.busy_stages = all;
    out_.dispatcher_share = d;
    out_.overlap = costs.codec_thread;
    out_.model.codec_thread = costs.codec_thread;
  }

  // Scales every rank's times of each timed stage's blocks so that they add up to its timing.
  void apply_timing(const Plan& candidate, const CalibrateFn& calibrate) {
    if (!calibrate || policy_.calibrate == 0 || candidate.stages.size() <= 1) return;
    std::vector<size_t> bounds{0};
    for (const Stage& st : candidate.stages) bounds.push_back(block_nodes_.at(st.end));
    // Cuts timed before (a later round may move only the ranks) keep their first timing: timing
    // them again would give another, noisy figure, which a replay of the stored timings (the
    // first per cuts) could not reproduce.
    const auto timed = std::find_if(out_.calibrations.begin(), out_.calibrations.end(),
                                    [&](const Calibration& c) { return c.node_bounds == bounds; });
    const std::vector<double> ms =
        timed != out_.calibrations.end() ? timed->stage_ms : calibrate(bounds);
    if (ms.empty()) return;
    EP_CHECK(ms.size() == candidate.stages.size(), "calibration timed ", ms.size(), " stages of ",
             candidate.stages.size());
    if (timed == out_.calibrations.end()) out_.calibrations.push_back(Calibration{bounds, ms});
    for (size_t s = 0; s < candidate.stages.size(); ++s) {
      double sum = 0;
      for (size_t b = candidate.stages[s].first; b < candidate.stages[s].end; ++b)
        sum += model_.blocks[b].ref_ms * factor_[b];
      for (size_t b = candidate.stages[s].first; b < candidate.stages[s].end && sum > 0; ++b)
        factor_[b] *= ms[s] / sum;
    }
  }

  // Blocks optimised one by one are slower than the same blocks optimised as one stage (each
  // pays its own layout conversions; fusions across blocks are lost), by a factor that depends on
  // the blocks. So each round times the planned stages as they will run, scales every rank's
  // times of those blocks so that they add up to what was measured, and plans again; the plan
  // with the best period under the times known when it was measured wins.
  void calibrate_plan(const CalibrateFn& calibrate) {
    double best = std::numeric_limits<double>::infinity();
    for (int round = 0; round < std::max(policy_.calibrate, 1); ++round) {
      const Plan candidate = plan_optimal(out_.model, scaled(), options_);
      if (round > 0 && same_stages(candidate, out_.plan)) break;
      apply_timing(candidate, calibrate);
      const Cluster after = scaled();
      Plan evaluated = candidate;
      evaluated.cost = evaluate_plan(out_.model, after, candidate.stages);
      if (evaluated.period_s() < best) {
        best = evaluated.period_s();
        out_.plan = evaluated;
        out_.cluster = after;
      }
      if (policy_.calibrate == 0) break;
    }
  }

  // Calibration changes the period, and with it the share of a core rank 0's own work takes:
  // predict the chosen plan again with that share until it settles.
  void settle_dispatcher_share() {
    for (int round = 0; round < 8 && out_.busy_stages > 0; ++round) {
      const double d = out_.dispatcher_s / out_.plan.period_s();
      if (std::abs(d - out_.dispatcher_share) < 0.01) break;
      out_.dispatcher_share = d;
      measured_ = ranks_.cluster(out_.busy_stages, d);
      out_.cluster = scaled();
      out_.plan.cost = evaluate_plan(out_.model, out_.cluster, out_.plan.stages);
    }
  }

  const ModelCosts& model_;
  const std::vector<size_t>& block_nodes_;
  const RankModel& ranks_;
  const PlanPolicy& policy_;
  PlanOptions options_;
  Cluster measured_;            // for the chosen number of stages, before calibration
  std::vector<double> factor_;  // calibration: measured / summed, per block
  PlanDecision out_;
};

}  // namespace

PlanDecision decide_plan(const PlanMeasurements& m, const PlanPolicy& policy,
                         const CalibrateFn& calibrate) {
  const RankModel ranks{
      [&](size_t busy, double d) { return cluster_of(m.startup, busy, d); },
      [&](size_t busy, bool codec) { return cores_for_overlap(m.startup, busy, codec); }};
  return Planning(m.model, m.block_nodes, m.read_s, ranks, policy).decide(calibrate);
}

PlanDecision decide_described_plan(const ModelCosts& model, const Cluster& cluster,
                                   const PlanPolicy& policy) {
  const RankModel ranks{[&](size_t, double) { return cluster; }, [](size_t, bool) { return false; },
                        false};
  const std::vector<size_t> no_nodes;
  return Planning(model, no_nodes, 0, ranks, policy).decide(CalibrateFn());
}

CalibrateFn replay_calibrations(std::vector<Calibration> stored, CalibrateFn otherwise) {
  return [stored = std::move(stored), otherwise = std::move(otherwise)](
             const std::vector<size_t>& bounds) -> std::vector<double> {
    for (const Calibration& c : stored)
      if (c.node_bounds == bounds) return c.stage_ms;
    return otherwise ? otherwise(bounds) : std::vector<double>{};
  };
}

std::string predicted_text(double period_s, double batch) {
  return strprintf("predicted: %.2f ms per batch, %.2f images/s", 1e3 * period_s, batch / period_s);
}

}  // namespace edgepipe
