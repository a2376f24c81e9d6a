#include "edgepipe/plan/exact_planner.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "edgepipe/base/error.h"
#include "memory_check.h"
#include "planner_common.h"
#include "replica_planner.h"
#include "stage_rule.h"
#include "typed_problem.h"

namespace edgepipe {

namespace {

// One stage of a typed plan: {type, first block, end block}.
using TypedStage = std::array<size_t, 3>;

// The exact dynamic program (docs/planner.md, "The exact planner").
//
// State: (k stages so far, count vector c of the types used, blocks [0, i) done, type `last` of
// the last stage). Layer k holds every state of k stages, at [loc][i][last] (layer_slot), where
// loc is c's place among the count vectors of sum k. Phase 1's value of a state is the smallest
// possible max over the terms decided so far; phase 2's the fewest bytes between stages so far.
//
// Transition: from state (k, c, i, last), a next stage on type `to` (c[to] < cap[to]) covering
// blocks [i, j) leads to (k + 1, c + e_to, j, to), with
//   value' = max(value, link_time(last -> to, cut i), compute_to(i, j))
// if [i, j) fits a rank of type `to`. Completion: a state with i = n ends the plan with
//   max(value, link_time(last -> dispatcher, cut n)).
// Layer 1 is fed by the dispatcher (first_layer). Because max is monotone, the smallest value
// per state is exact (a bottleneck shortest path).
//
// Phase 1 finds the optimal period V among plans of min_stages..max_stages stages and the fewest
// stages K (>= min_stages) that reach it; phase 2 keeps to period <= V and K stages, minimises the
// bytes on links between stages, and records each state's predecessor; reconstruction walks them
// back from the cheapest complete state.
class ExactPlanner {
 public:
  ExactPlanner(const ModelCosts& m, const TypedInstance& t, const ComboSpace& s, size_t min_stages,
               size_t max_stages)
      : m_(m),
        t_(t),
        s_(s),
        Kmin_(std::max<size_t>(min_stages, 1)),
        K_(max_stages),
        n_(t.n),
        T_(t.T),
        rule_(m) {
    reach_ = memory_reach(m, t, 0.0);
    disp_ = dispatcher_s(m);
    in_.resize(T_);
    out_.resize(T_);
    for (size_t ty = 0; ty < T_; ++ty) {
      in_[ty] = t.from_dispatcher[ty].time_s(m.cut_bytes[0]);
      out_[ty] = t.to_dispatcher[ty].time_s(m.cut_bytes[n_]);
    }
    link_.assign(T_ * T_ * (n_ + 1), kInf);
    for (size_t a = 0; a < T_; ++a)
      for (size_t b = 0; b < T_; ++b)
        for (size_t cut = 1; cut < n_; ++cut)
          link_[(a * T_ + b) * (n_ + 1) + cut] = t.between[a * T_ + b].time_s(m.cut_bytes[cut]);
  }

  double phase1();
  size_t best_stages() const { return best_k_; }
  std::vector<TypedStage> phase2();

 private:
  // Phase 1.
  double single_type_bound() const;
  void single_type_layer(size_t ty, size_t k, double bound, const std::vector<double>& f,
                         std::vector<double>& g) const;
  double lower_bound() const;
  bool relax_layer(size_t k, const std::vector<double>& cur, std::vector<double>* next);
  void complete(double value, size_t last, size_t k);
  bool extend(double value, size_t last, size_t i, size_t full, const std::vector<size_t>& d,
              size_t leave, std::vector<double>& next) const;
  bool relax_stage(double base, size_t to, size_t i, size_t j_last, double* out) const;
  // Phase 2 and reconstruction.
  std::vector<size_t> stages_needed(double V) const;
  void relax_bytes_layer(size_t k, size_t K, double V, const std::vector<size_t>& need,
                         const std::vector<double>& cur, std::vector<double>& next,
                         std::vector<uint32_t>& parent) const;
  void extend_bytes(double bytes, size_t last, size_t i, size_t full, const std::vector<size_t>& d,
                    double V, std::vector<double>& next, std::vector<uint32_t>& parent) const;
  std::pair<size_t, size_t> cheapest_end(const std::vector<double>& cur, size_t K, double V) const;
  std::vector<TypedStage> rebuild(
      size_t K, std::pair<size_t, size_t> end,
      const std::vector<std::vector<std::pair<uint32_t, uint32_t>>>& parents) const;
  // Both phases.
  std::vector<double> first_layer(double threshold) const;
  size_t layer_size(size_t k) const { return s_.layer[k].size() * (n_ + 1) * T_; }
  size_t layer_slot(size_t loc, size_t i, size_t ty) const {
    return (loc * (n_ + 1) + i) * T_ + ty;
  }
  double link_time(size_t from, size_t to, size_t cut) const {
    return link_[(from * T_ + to) * (n_ + 1) + cut];
  }

  const ModelCosts& m_;
  const TypedInstance& t_;
  const ComboSpace& s_;
  size_t Kmin_, K_, n_, T_;
  StageRule rule_;
  std::vector<std::vector<size_t>> reach_;
  std::vector<double> in_, out_, link_;
  double disp_ = 0;
  double best_ = kInf;
  size_t best_k_ = 0;
};

// ---- Phase 1: the optimal period -----------------------------------------------------------

// The best period of plans that use ranks of one type only, with at least Kmin_ stages: an upper
// bound that prunes phase 1 from its first layer (plans of fewer stages do not count: their
// period may be below every allowed plan's). Same arithmetic as phase 1, so the DP meets it
// exactly. Infinity if no type has Kmin_ ranks.
double ExactPlanner::single_type_bound() const {
  double bound = kInf;
  for (size_t ty = 0; ty < T_; ++ty) {
    if (s_.cap[ty] < Kmin_) continue;
    // f[i]: best max-so-far with blocks [0, i) done by k stages of this type.
    std::vector<double> f(n_ + 1, kInf), g(n_ + 1);
    double work = rule_.start(0);
    const double base = std::max(disp_, in_[ty]);
    for (size_t j = 1; j <= reach_[ty][0]; ++j) {
      work += t_.time_s[ty][j - 1];
      f[j] = std::max(base, rule_.term(work, 0, j));
    }
    for (size_t k = 1; k <= s_.cap[ty]; ++k) {
      if (k >= Kmin_) bound = std::min(bound, std::max(f[n_], out_[ty]));
      if (k == s_.cap[ty]) break;
      single_type_layer(ty, k, bound, f, g);
      f.swap(g);
    }
  }
  return bound;
}

// g = f after one more stage of type ty (the 1-D version of relax_layer).
void ExactPlanner::single_type_layer(size_t ty, size_t k, double bound,
                                     const std::vector<double>& f, std::vector<double>& g) const {
  std::fill(g.begin(), g.end(), kInf);
  for (size_t i = k; i < n_; ++i) {
    if (!(f[i] < bound)) continue;
    const double b = std::max(f[i], link_time(ty, ty, i));
    double w = rule_.start(i);
    for (size_t j = i + 1; j <= reach_[ty][i]; ++j) {
      w += t_.time_s[ty][j - 1];
      if (!(w < bound)) break;  // w bounds this stage's term and every longer one's
      g[j] = std::min(g[j], std::max(b, rule_.term(w, i, j)));
    }
  }
}

// No plan can beat: the dispatcher's codec work, the cheapest first and last links, and each
// block on its fastest type (a bound for any number of stages, so for Kmin_.. too: the search
// stops when a plan of allowed length meets it; best_ only ever holds such plans).
double ExactPlanner::lower_bound() const {
  double bound = disp_;
  bound = std::max(bound, *std::min_element(in_.begin(), in_.end()));
  bound = std::max(bound, *std::min_element(out_.begin(), out_.end()));
  for (size_t b = 0; b < n_; ++b) {
    double fastest = kInf;
    for (size_t ty = 0; ty < T_; ++ty) fastest = std::min(fastest, t_.time_s[ty][b]);
    bound = std::max(bound, fastest);
  }
  return bound;
}

// Returns the optimal period of plans of Kmin_..K_ stages (infinity if none fits).
double ExactPlanner::phase1() {
  // Start just above the bound so that phase 1 still finds (and records) a plan that meets it.
  best_ = std::nextafter(single_type_bound(), kInf);
  best_k_ = 0;
  const double floor = lower_bound();
  std::vector<double> cur = first_layer(kInf), next;
  for (size_t k = 1; k <= K_ && best_ > floor; ++k) {
    const bool last = k == K_;
    if (!last) next.assign(layer_size(k + 1), kInf);
    if (!relax_layer(k, cur, last ? nullptr : &next)) break;
    cur.swap(next);
  }
  return best_;
}

// Completes layer k's finished states and relaxes every transition out of its other states into
// `next` (none in the last layer). Returns whether any state of `next` was reached.
bool ExactPlanner::relax_layer(size_t k, const std::vector<double>& cur,
                               std::vector<double>* next) {
  // Blocks a stage k + 1 must leave for the stages still required after it (one each).
  const size_t leave = k + 1 < Kmin_ ? Kmin_ - (k + 1) : 0;
  bool any = false;
  std::vector<size_t> d(T_);
  const auto& layer = s_.layer[k];
  for (size_t loc = 0; loc < layer.size(); ++loc) {
    s_.digits(layer[loc], d);
    for (size_t i = k; i <= n_; ++i) {
      for (size_t ty = 0; ty < T_; ++ty) {
        const double v = cur[layer_slot(loc, i, ty)];
        if (!(v < best_)) continue;
        if (i == n_)
          complete(v, ty, k);
        else if (next)
          any = extend(v, ty, i, layer[loc], d, leave, *next) || any;
      }
    }
  }
  return any;
}

// The completion of a state with every block done: the last link, to the dispatcher.
void ExactPlanner::complete(double value, size_t last, size_t k) {
  if (k < Kmin_) return;  // too few stages (none can follow: no blocks left)
  const double total = std::max(value, out_[last]);
  if (total < best_) {
    best_ = total;
    best_k_ = k;
  }
}

// The transitions out of state (k, c = full with digits d, i, last) of value `value`.
bool ExactPlanner::extend(double value, size_t last, size_t i, size_t full,
                          const std::vector<size_t>& d, size_t leave,
                          std::vector<double>& next) const {
  bool any = false;
  for (size_t to = 0; to < T_; ++to) {
    if (d[to] >= s_.cap[to]) continue;
    const double base = std::max(value, link_time(last, to, i));
    if (!(base < best_)) continue;
    const size_t tgt = s_.local[full + s_.stride[to]];
    const size_t j_last = std::min(reach_[to][i], n_ - leave);
    any = relax_stage(base, to, i, j_last, &next[layer_slot(tgt, 0, to)]) || any;
  }
  return any;
}

// A next stage on type `to` from block i to every j <= j_last; out[j * T_] is the target state's
// value. A stage's growing compute ends the loop: only the part that grows with the stage and
// bounds the term of every longer stage from below may (StageRule).
bool ExactPlanner::relax_stage(double base, size_t to, size_t i, size_t j_last, double* out) const {
  bool any = false;
  const std::vector<double>& time = t_.time_s[to];
  double work = rule_.start(i);
  for (size_t j = i + 1; j <= j_last; ++j) {
    work += time[j - 1];
    if (!(work < best_)) break;  // bounds this stage's term and every longer one's
    const double cand = std::max(base, rule_.term(work, i, j));
    if (cand < out[j * T_]) {
      out[j * T_] = cand;
      any = true;
    }
  }
  return any;
}

// ---- Phase 2: the tie-break, and the plan -------------------------------------------------

// need[i]: a lower bound on the stages that finish blocks [i, n) within period V, from the
// farthest any type can reach (memory, and the stage rule's running sum, which never exceeds
// the stage's term) with none of the counts.
std::vector<size_t> ExactPlanner::stages_needed(double V) const {
  std::vector<size_t> far(n_ + 1, 0), need(n_ + 1, SIZE_MAX);
  for (size_t i = 0; i < n_; ++i) {
    far[i] = i;
    for (size_t ty = 0; ty < T_; ++ty) {
      double work = rule_.start(i);
      size_t j = i;
      while (j < reach_[ty][i] && work + t_.time_s[ty][j] <= V) work += t_.time_s[ty][j++];
      far[i] = std::max(far[i], j);
    }
  }
  // Fewest jumps from i to n, each from x to at most far[x]: a shortest path on a DAG.
  need[n_] = 0;
  for (size_t i = n_; i-- > 0;)
    for (size_t j = i + 1; j <= far[i]; ++j)
      if (need[j] != SIZE_MAX) need[i] = std::min(need[i], need[j] + 1);
  return need;
}

// Rebuilds a plan of best_k_ stages with period <= best_ and the fewest bytes between stages;
// returns (type, first block, end block) per stage.
std::vector<TypedStage> ExactPlanner::phase2() {
  const double V = best_;
  const size_t K = best_k_;
  const std::vector<size_t> need = stages_needed(V);
  std::vector<double> cur = first_layer(V), next;
  // parents[k]: (state index in layer k, packed predecessor) for every reachable state.
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> parents(K + 1);
  std::vector<uint32_t> parent_dense;
  for (size_t k = 1; k < K; ++k) {
    next.assign(layer_size(k + 1), kInf);
    parent_dense.assign(next.size(), 0);
    relax_bytes_layer(k, K, V, need, cur, next, parent_dense);
    for (size_t at = 0; at < next.size(); ++at)
      if (next[at] != kInf) parents[k + 1].push_back({static_cast<uint32_t>(at), parent_dense[at]});
    cur.swap(next);
  }
  return rebuild(K, cheapest_end(cur, K, V), parents);
}

// Phase 2's transitions out of layer k: the bytes so far, through stages whose every term is
// within V, into states that can still finish in exactly K stages.
void ExactPlanner::relax_bytes_layer(size_t k, size_t K, double V, const std::vector<size_t>& need,
                                     const std::vector<double>& cur, std::vector<double>& next,
                                     std::vector<uint32_t>& parent) const {
  std::vector<size_t> d(T_);
  const auto& layer = s_.layer[k];
  for (size_t loc = 0; loc < layer.size(); ++loc) {
    s_.digits(layer[loc], d);
    for (size_t i = k; i < n_; ++i) {
      // Cannot finish in exactly K stages: too far to go, or too few blocks left.
      if (need[i] == SIZE_MAX || k + need[i] > K || n_ - i < K - k) continue;
      for (size_t ty = 0; ty < T_; ++ty) {
        const double bytes = cur[layer_slot(loc, i, ty)];
        if (bytes != kInf) extend_bytes(bytes, ty, i, layer[loc], d, V, next, parent);
      }
    }
  }
}

void ExactPlanner::extend_bytes(double bytes, size_t last, size_t i, size_t full,
                                const std::vector<size_t>& d, double V, std::vector<double>& next,
                                std::vector<uint32_t>& parent) const {
  const double cand = bytes + m_.cut_bytes[i];
  for (size_t to = 0; to < T_; ++to) {
    if (d[to] >= s_.cap[to]) continue;
    if (link_time(last, to, i) > V) continue;
    const size_t base = layer_slot(s_.local[full + s_.stride[to]], 0, to);
    const std::vector<double>& time = t_.time_s[to];
    double work = rule_.start(i);
    for (size_t j = i + 1; j <= reach_[to][i]; ++j) {
      work += time[j - 1];
      if (work > V) break;  // so is every longer stage's term
      if (rule_.term(work, i, j) > V) continue;
      const size_t at = base + j * T_;
      if (cand < next[at]) {
        next[at] = cand;
        parent[at] = static_cast<uint32_t>(i << 16 | last);
      }
    }
  }
}

// The cheapest complete state of layer K whose last link is within V: (count vector, type).
std::pair<size_t, size_t> ExactPlanner::cheapest_end(const std::vector<double>& cur, size_t K,
                                                     double V) const {
  double best_bytes = kInf;
  std::pair<size_t, size_t> end{0, 0};
  const auto& layer = s_.layer[K];
  for (size_t loc = 0; loc < layer.size(); ++loc)
    for (size_t ty = 0; ty < T_; ++ty) {
      const double b = cur[layer_slot(loc, n_, ty)];
      if (b < best_bytes && out_[ty] <= V) {
        best_bytes = b;
        end = {layer[loc], ty};
      }
    }
  EP_CHECK(best_bytes != kInf, "internal error: the planner lost its optimal plan");
  return end;
}

// Walks the predecessors back from the complete state `end` = (count vector, type).
std::vector<TypedStage> ExactPlanner::rebuild(
    size_t K, std::pair<size_t, size_t> end,
    const std::vector<std::vector<std::pair<uint32_t, uint32_t>>>& parents) const {
  std::vector<TypedStage> stages(K);
  size_t full = end.first, ty = end.second, stop = n_;
  for (size_t k = K; k >= 1; --k) {
    size_t first = 0, prev_type = 0;
    if (k > 1) {
      const size_t at = layer_slot(s_.local[full], stop, ty);
      const auto& p = parents[k];
      auto it = std::lower_bound(p.begin(), p.end(), std::make_pair(static_cast<uint32_t>(at), 0u));
      EP_CHECK(it != p.end() && it->first == at, "internal error: the planner lost a stage");
      first = it->second >> 16;
      prev_type = it->second & 0xffff;
    }
    stages[k - 1] = {ty, first, stop};
    full -= s_.stride[ty];
    ty = prev_type;
    stop = first;
  }
  return stages;
}

// ---- Both phases ---------------------------------------------------------------------------

// Layer 1: one stage [0, j) on each type, fed by the dispatcher. In phase 1 the values are the
// max of the terms so far; with a threshold (phase 2) they are the bytes so far (0) if every
// term is within it.
std::vector<double> ExactPlanner::first_layer(double threshold) const {
  std::vector<double> layer(layer_size(1), kInf);
  const bool phase2 = threshold != kInf;
  for (size_t ty = 0; ty < T_; ++ty) {
    if (s_.cap[ty] == 0) continue;
    const size_t loc = s_.local[s_.stride[ty]];
    const double base = std::max(disp_, in_[ty]);
    if (phase2 && base > threshold) continue;
    double work = rule_.start(0);
    for (size_t j = 1; j <= reach_[ty][0]; ++j) {
      work += t_.time_s[ty][j - 1];
      const double v = std::max(base, rule_.term(work, 0, j));
      if (phase2 && v > threshold) continue;
      layer[layer_slot(loc, j, ty)] = phase2 ? 0.0 : v;
    }
  }
  return layer;
}

// The count vectors' caps, checked against the table size limits.
ComboSpace typed_combos(const TypedInstance& t, size_t K, const PlanOptions& o) {
  std::vector<size_t> cap(t.T);
  double combos = 1;
  for (size_t ty = 0; ty < t.T; ++ty) {
    cap[ty] = std::min(t.members[ty].size(), K);
    combos *= static_cast<double>(cap[ty] + 1);
  }
  // The largest layer: its count vectors x positions x types, for phase 1's two value layers and
  // phase 2's values and predecessors. Estimated from the count vectors before listing them.
  EP_CHECK(combos <= 1 << 26, "the exact planner cannot handle ", t.T, " types of ranks (", combos,
           " count vectors): plan with "
           "PlanOptions::group_tolerance > 0 so that alike ranks form types, or with fewer ranks");
  ComboSpace s = make_combos(cap, K);
  size_t widest = 0;
  for (const auto& layer : s.layer) widest = std::max(widest, layer.size());
  const double table_bytes = static_cast<double>(widest) * (t.n + 1) * t.T * (2 * 8 + 4);
  EP_CHECK(
      table_bytes <= o.max_table_bytes, "the exact planner would need ", format_bytes(table_bytes),
      " of tables for ", t.T, " types of ranks and ", t.n, " blocks (limit ",
      format_bytes(o.max_table_bytes),
      "): plan with "
      "PlanOptions::group_tolerance > 0 so that alike ranks form types, or with fewer ranks or "
      "coarser blocks");
  return s;
}

// The optimal plan without replicas; *typed_period: its period as the DP computed it over types
// (with group_tolerance > 0 an upper bound on its true one).
Plan plan_single(const ModelCosts& m, const Cluster& c, const PlanOptions& o,
                 double* typed_period) {
  validate_problem(m, c);
  const auto [Kmin, K] = stage_range(m, c, o);
  const RankTypes types = group_ranks(m, c, o.group_tolerance);
  const TypedInstance t = make_typed(m, c, types);
  const ComboSpace s = typed_combos(t, K, o);
  if (!memory_feasible(m, t, s, 0.0, Kmin)) fail_memory(m, c, t, s, Kmin, K);

  ExactPlanner dp(m, t, s, Kmin, K);
  const double period = dp.phase1();
  EP_CHECK(period != kInf, "internal error: no plan found although the model fits in memory");
  *typed_period = period;
  const auto typed_stages = dp.phase2();
  // Types -> ranks: each stage takes the lowest-numbered unused rank of its type.
  std::vector<size_t> next_member(t.T, 0);
  std::vector<Stage> stages;
  for (const auto& ts : typed_stages)
    stages.push_back({t.members[ts[0]][next_member[ts[0]]++], ts[1], ts[2]});
  Plan p = finish("optimal", m, c, std::move(stages));
  p.rank_types = t.T;
  return p;
}

}  // namespace

Plan plan_optimal(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  double typed_period = kInf;
  if (o.max_replicas == 1 && o.min_replicas <= 1) return plan_single(m, c, o, &typed_period);
  // With replicas: the best plan without them (which also says when nothing fits in memory at
  // all) bounds the search from above, unless a minimum of replicas leaves it out of the space.
  PlanOptions single = o;
  single.max_replicas = 1;
  single.min_replicas = 0;
  plan_single(m, c, single, &typed_period);
  return plan_with_replicas(m, c, o, o.min_replicas <= 1 ? typed_period : kInf);
}

}  // namespace edgepipe
