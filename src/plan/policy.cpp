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

// A plan space the choice is made in: the cluster for its number of busy stages (before
// calibration), the planner's options, the model as planned there (codec_thread = the overlap),
// rank 0's share of a core; and, once calibrated, its best plan and the cluster it was predicted
// on.
struct Space {
  Cluster measured;
  PlanOptions options;
  ModelCosts model;
  size_t busy_stages = 0;
  double dispatcher_share = 0;
  Plan plan;
  Cluster cluster;
};

// One decision in the making: the options, the calibration factors and timings, and the plan
// spaces the choice is made between: the best single pipeline (the stage-count search), and with
// replicas allowed the best plan with replicas, each calibrated, the faster taken.
class Planning {
 public:
  Planning(const ModelCosts& model, const std::vector<size_t>& block_nodes, double read_s,
           const RankModel& ranks, const PlanPolicy& policy)
      : model_(model),
        block_nodes_(block_nodes),
        ranks_(ranks),
        policy_(policy),
        factor_(model.num_blocks(), 1.0) {
    out_.dispatcher_s = dispatcher_seconds(model, read_s);
  }

  PlanDecision decide(const CalibrateFn& calibrate) {
    Space single = search_stage_count();
    calibrate_plan(single, calibrate);
    settle_dispatcher_share(single);
    out_.pipeline = single.plan;
    const Space* chosen = &single;
    Space replicated;
    if (replica_space(single, &replicated)) {
      calibrate_plan(replicated, calibrate);
      settle_dispatcher_share(replicated);
      // Planned with replicas allowed, the calibrated plan may have none (a single pipeline
      // planned with every stage rank busy): then there is no plan with replicas to take.
      if (replicated.plan.ranks_used() > replicated.plan.stages.size()) {
        out_.replicated = replicated.plan;
        if (replicated.plan.period_s() < single.plan.period_s() * 0.999) chosen = &replicated;
      }
    }
    out_.plan = chosen->plan;
    out_.cluster = chosen->cluster;
    out_.model = chosen->model;
    out_.overlap = chosen->model.codec_thread;
    out_.busy_stages = chosen->busy_stages;
    out_.dispatcher_share = chosen->dispatcher_share;
    return out_;
  }

 private:
  // Every rank's block times, scaled by what calibration measured.
  Cluster scaled(const Cluster& measured) const {
    Cluster c = measured;
    for (size_t r = 1; r < c.ranks.size(); ++r)
      for (size_t b = 0; b < factor_.size() && b < c.ranks[r].block_ms.size(); ++b)
        c.ranks[r].block_ms[b] *= factor_[b];
    return c;
  }

  // The period of the best plan under `o` with `busy` busy ranks per host. Rank 0 keeps
  // dispatcher_s / period of a core busy on its host, and the stage ranks there share the cores
  // with it: the period depends on that share, so iterate a few times from `d`. Sets *c, *plan
  // and *share.
  double period_with(const ModelCosts& costs, size_t busy, PlanOptions o, double d, Cluster* c,
                     Plan* plan, double* share) const {
    double period = 0;
    for (int round = 0; round < 8; ++round) {
      *c = ranks_.cluster(busy, d);
      *plan = plan_optimal(costs, *c, o);
      period = plan->period_s();
      const double next = out_.dispatcher_s / period;
      if (std::abs(next - d) < 0.01) break;
      d = next;
    }
    *share = d;
    return period;
  }

  // The plan space of the options without replicas (or with --replicas N, every stage on N).
  PlanOptions base_options() const {
    PlanOptions o;
    o.group_tolerance = policy_.group_tolerance;
    o.max_stages = policy_.max_stages;
    o.min_stages = policy_.stages;  // --stages N: exactly N, even when fewer are faster
    if (policy_.replicas > 0) o.min_replicas = o.max_replicas = policy_.replicas;
    return o;
  }

  // The model with the overlap decided: whether the stages compute beside their codec while
  // `busy` stage ranks per host compute.
  ModelCosts model_for(size_t busy, bool dispatcher_codec) const {
    ModelCosts costs = model_;
    costs.codec_thread = policy_.overlap == "on" ||
                         (policy_.overlap == "auto" && ranks_.overlap_fits(busy, dispatcher_codec));
    return costs;
  }

  // Ranks that share a host's cores are slower the more of them compute, so a plan with fewer
  // stages than ranks runs its stages faster: plan for each number of busy ranks per host with
  // that slowdown, and keep the best (fewer stages unless more are really faster).
  Space search_stage_count() const {
    const PlanOptions base = base_options();
    const size_t stage_ranks = ranks_.cluster(0, 0).num_stage_ranks();
    size_t most = base.max_stages ? base.max_stages : stage_ranks;
    // Every stage on `replicas` ranks: no more stages than the ranks hold.
    if (policy_.replicas > 0)
      most = std::max<size_t>(1, std::min(most, stage_ranks / policy_.replicas));
    Space best;
    best.measured = ranks_.cluster(0, 0);
    best.options = base;
    best.model = model_;
    best.model.codec_thread = policy_.overlap == "on";
    double best_period = std::numeric_limits<double>::infinity();
    const size_t fewest = !ranks_.shared ? most : policy_.stages ? policy_.stages : 1;
    for (size_t k = fewest; k <= most; ++k) {
      // With --replicas N every stage computes on N ranks at once.
      const size_t busy = k * std::max<size_t>(policy_.replicas, 1);
      const bool dispatcher_codec = policy_.codec_on(1) || policy_.codec_on(k + 1);
      const ModelCosts costs = model_for(busy, dispatcher_codec);
      PlanOptions o = base;
      o.max_stages = k;
      try {
        Cluster c;
        Plan p;
        double share = 0;
        const double period = period_with(costs, busy, o, 0, &c, &p, &share);
        if (period < best_period * 0.999) {
          best_period = period;
          best.measured = c;
          best.options = o;
          best.model = costs;
          best.busy_stages = busy;
          best.dispatcher_share = share;
        }
      } catch (const std::exception&) {
        if (k == most) throw;  // too few stages may not fit in memory; the most must
      }
    }
    return best;
  }

  // A plan with replicas keeps every stage rank busy: planned with all of them computing on
  // each host. False when replicas are not allowed (--max-replicas 1, --stages N, or forced by
  // --replicas N in the search already) or no plan with replicas fits.
  bool replica_space(const Space& single, Space* out) const {
    if (policy_.max_replicas == 1 || policy_.stages != 0 || policy_.replicas != 0) return false;
    Space s;
    s.options = base_options();
    s.options.max_replicas = policy_.max_replicas;
    const size_t all = single.measured.num_stage_ranks();
    s.model = model_for(all, !policy_.coded_links.empty());
    s.busy_stages = all;
    try {
      Plan p;
      period_with(s.model, all, s.options, single.dispatcher_share, &s.measured, &p,
                  &s.dispatcher_share);
    } catch (const std::exception&) {
      return false;  // no plan with replicas fits: the single pipeline stays
    }
    *out = std::move(s);
    return true;
  }

  // Scales every rank's times of each timed stage's blocks so that they add up to its timing.
  // A stage's replicas run the same blocks: one timing per set of cuts, 1-stage plans included
  // (the whole model as one module).
  void apply_timing(const Plan& candidate, const CalibrateFn& calibrate) {
    if (!calibrate || policy_.calibrate == 0 || candidate.stages.empty()) return;
    std::vector<size_t> bounds{0};
    for (const Stage& st : candidate.stages) bounds.push_back(block_nodes_.at(st.end));
    // Cuts timed before (a later round, or the other plan space, may move only the ranks) keep
    // their first timing: timing them again would give another, noisy figure, which a replay of
    // the stored timings (the first per cuts) could not reproduce.
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
  // with the best period under the times known when it was measured wins. The factors carry
  // over from one space to the next (each timing sets the sums of its own stages exactly).
  void calibrate_plan(Space& space, const CalibrateFn& calibrate) {
    double best = std::numeric_limits<double>::infinity();
    for (int round = 0; round < std::max(policy_.calibrate, 1); ++round) {
      const Plan candidate = plan_optimal(space.model, scaled(space.measured), space.options);
      if (round > 0 && same_stages(candidate, space.plan)) break;
      apply_timing(candidate, calibrate);
      const Cluster after = scaled(space.measured);
      Plan evaluated = candidate;
      evaluated.cost = evaluate_plan(space.model, after, candidate.stages);
      if (evaluated.period_s() < best) {
        best = evaluated.period_s();
        space.plan = evaluated;
        space.cluster = after;
      }
      if (policy_.calibrate == 0) break;
    }
  }

  // Calibration changes the period, and with it the share of a core rank 0's own work takes:
  // predict the space's plan again with that share until it settles.
  void settle_dispatcher_share(Space& space) const {
    for (int round = 0; round < 8 && space.busy_stages > 0; ++round) {
      const double d = out_.dispatcher_s / space.plan.period_s();
      if (std::abs(d - space.dispatcher_share) < 0.01) break;
      space.dispatcher_share = d;
      space.measured = ranks_.cluster(space.busy_stages, d);
      space.cluster = scaled(space.measured);
      space.plan.cost = evaluate_plan(space.model, space.cluster, space.plan.stages);
    }
  }

  const ModelCosts& model_;
  const std::vector<size_t>& block_nodes_;
  const RankModel& ranks_;
  const PlanPolicy& policy_;
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

std::string replicas_text(const PlanDecision& d, const PlanPolicy& policy) {
  if (policy.max_replicas == 1 || policy.stages != 0 || policy.replicas != 0) return "";
  const char* how = policy.calibrate > 0 ? " (both calibrated)" : "";
  if (!d.replicated.found())
    return strprintf("replicas: no plan with replicas%s (none fits, or the best has none)", how);
  const double speedup = d.pipeline.period_s() / d.replicated.period_s();
  const bool taken = d.plan.ranks_used() > d.plan.stages.size();
  return strprintf(
      "replicas%s: predicted period %.3f ms against %.3f ms for the single pipeline: %.2fx %s, "
      "%s",
      how, d.replicated.period_s() * 1e3, d.pipeline.period_s() * 1e3, speedup,
      speedup > 1 + 1e-9 ? "faster" : "(no faster)",
      taken ? "the plan with replicas is taken" : "the single pipeline is taken");
}

std::string predicted_text(double period_s, double batch) {
  return strprintf("predicted: %.2f ms per batch, %.2f images/s", 1e3 * period_s, batch / period_s);
}

}  // namespace edgepipe
