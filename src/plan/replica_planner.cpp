#include "replica_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/plan/rank_types.h"
#include "last_stage.h"
#include "planner_common.h"
#include "stage_rule.h"
#include "typed_problem.h"

namespace edgepipe {

namespace {

constexpr size_t kDispatcher = 255;  // the "type" before the first stage (types are 0..254)

// What a plan may be: how many stages, and how many replicas per stage.
struct Limits {
  size_t min_stages = 1, max_stages = 1;
  size_t min_replicas = 1, max_replicas = 1;
  bool count_stages = false;  // states keep their number of stages (min_stages or max_stages binds)
};

// A stage of a typed plan: counts[type] replicas of each type on blocks [first, end).
struct TypedStage {
  std::vector<size_t> counts;
  size_t first = 0, end = 0;
};

// Phase 2's value of a state: fewest stages, then fewest bytes between stages so far; and its
// predecessor: the previous stage's end block and type, and this state's stage's replicas.
struct Tie {
  double bytes = 0;
  uint32_t pred = 0;
  uint16_t stages = UINT16_MAX;  // UINT16_MAX: not reached
};

uint32_t pack_pred(size_t first, size_t from, size_t replicas) {
  return static_cast<uint32_t>(first << 16 | from << 8 | replicas);
}

// The exact dynamic program with replicas (docs/planner.md, "Replicas"). Every stage but the
// last runs on m >= 1 ranks of one type; the last stage on any ranks left.
//
// State: (k stages so far if Limits::count_stages, count vector c of the ranks used per type,
// blocks [0, i) done, type `last` of the last stage), at state(k, c, i, last); the start state
// (nothing done, rank 0 before it) is expanded on its own. Phase 1's value of a state is the
// smallest possible max of the terms so far: rank 0's codec work and sends, then every stage's
// period (a stage of m replicas of period p each: p / m).
//
// Transition: from state (k, c, i, last) a next stage on m ranks of type `to` covering [i, j),
// j < n, leads to (k + 1, c + m e_to, j, to) with
//   value' = max(value, max(recv(last -> to, cut i), compute_to(i, j), send_to(j)) / m)
// where recv is the link time and send the interface time (the next replicas' receives count the
// links). Completion: from any state, the last stage [i, n) on the ranks left
// (best_last_stage).
// Counts only grow, so states are final in ascending order of c.
class ReplicaPlanner {
 public:
  ReplicaPlanner(const ModelCosts& m, const TypedInstance& t, const Limits& lim);
  double table_bytes() const { return static_cast<double>(states_) * sizeof(Tie); }
  double phase1(double bound);
  std::vector<TypedStage> phase2(double V);

 private:
  size_t state(size_t k, size_t c, size_t i, size_t last) const {
    return ((k * C_ + c) * (n_ + 1) + i) * T_ + last;
  }
  size_t count(size_t c, size_t ty) const { return c / stride_[ty] % (cap_[ty] + 1); }
  size_t next_k(size_t k) const { return lim_.count_stages ? k + 1 : 0; }
  bool may_end(size_t k) const {
    return !lim_.count_stages || (k + 1 >= lim_.min_stages && k + 1 <= lim_.max_stages);
  }
  bool may_go_on(size_t k) const { return !lim_.count_stages || k + 2 <= lim_.max_stages; }
  double recv_time(size_t from, size_t to, size_t cut) const;
  double rest_bound(size_t c, size_t i) const;
  double last_bound(size_t c, size_t i, size_t from);
  void last_candidates(size_t c, size_t i, size_t from, std::vector<LastCandidate>& out) const;
  size_t ranks_in(size_t c) const;
  size_t blocks_to_leave(size_t k) const;
  template <typename Visit>
  void for_each_state(Visit visit) const;
  // Phase 1.
  void expand(size_t k, size_t c, size_t i, size_t from, double v);
  void extend(size_t k, size_t c, size_t i, size_t from, double v, size_t to);
  void relax_replicas(size_t state_of_none, size_t stride, size_t avail, double v, double p);
  // Phase 2 and reconstruction.
  void expand_tie(size_t k, size_t c, size_t i, size_t from, const Tie& here);
  void extend_tie(size_t k, size_t c, size_t i, size_t from, const Tie& here, size_t to);
  std::vector<TypedStage> rebuild() const;

  const ModelCosts& m_;
  const TypedInstance& t_;
  Limits lim_;
  size_t n_, T_, C_ = 1, K_, states_;
  StageRule rule_;
  std::vector<size_t> cap_, stride_;
  std::vector<std::vector<size_t>> reach_;
  std::vector<std::vector<double>> last_term_;  // [type][i]: the compute term of [i, n)
  std::vector<std::vector<double>> iface_;      // [type][j]: cut j over the type's interface
  // rest_bound's tables: the fastest type's time of blocks [i, n) and each type's least slowdown
  // against it on those blocks ([type][i]).
  std::vector<double> rest_work_;
  std::vector<std::vector<double>> rest_slowdown_;
  std::vector<double> in_, out_, link_;
  double v0_ = 0, floor_ = 0;
  double best_ = kInf, V_ = kInf;
  std::vector<double> value_;
  std::vector<Tie> tie_;
  std::vector<LastCandidate> candidates_;  // last_candidates' buffer
  ReplicaBounds bounds_;
  // Phase 2's best complete plan: (stages, ranks, bytes), its last state and last stage.
  std::tuple<size_t, size_t, double> end_key_{SIZE_MAX, SIZE_MAX, kInf};
  size_t end_k_ = 0, end_c_ = 0, end_i_ = 0, end_from_ = kDispatcher;
  std::vector<size_t> end_counts_;
};

ReplicaPlanner::ReplicaPlanner(const ModelCosts& m, const TypedInstance& t, const Limits& lim)
    : m_(m), t_(t), lim_(lim), n_(t.n), T_(t.T), rule_(m) {
  bounds_ = {T_, lim.min_replicas, lim.max_replicas};
  EP_CHECK(T_ < kDispatcher, "the planner with replicas takes at most ", kDispatcher - 1,
           " types of ranks, not ", T_, ": plan with PlanOptions::group_tolerance > 0");
  cap_.resize(T_);
  stride_.resize(T_);
  double combos = 1;
  for (size_t ty = 0; ty < T_; ++ty) {
    cap_[ty] = t.members[ty].size();
    EP_CHECK(cap_[ty] < 256, "the planner with replicas takes at most 255 ranks of a type");
    stride_[ty] = C_;
    C_ *= cap_[ty] + 1;
    combos *= static_cast<double>(cap_[ty] + 1);
    EP_CHECK(
        combos <= 1 << 26, "the exact planner with replicas cannot handle ", T_,
        " types of ranks (more than 2^26 count vectors): plan with "
        "PlanOptions::group_tolerance > 0 so that alike ranks form types, or with fewer ranks");
  }
  K_ = lim_.count_stages ? lim_.max_stages + 1 : 1;
  states_ = K_ * C_ * (n_ + 1) * T_;
  reach_ = memory_reach(m, t, 0.0);
  in_.resize(T_);
  out_.resize(T_);
  last_term_.assign(T_, std::vector<double>(n_ + 1, kInf));
  iface_.assign(T_, std::vector<double>(n_ + 1, 0.0));
  for (size_t ty = 0; ty < T_; ++ty) {
    in_[ty] = t.from_dispatcher[ty].time_s(m.cut_bytes[0]);
    out_[ty] = t.to_dispatcher[ty].time_s(m.cut_bytes[n_]);
    for (size_t j = 1; j < n_; ++j) iface_[ty][j] = m.cut_bytes[j] / t.interface_Bps[ty];
    for (size_t i = 0; i < n_; ++i) {
      if (reach_[ty][i] < n_) continue;  // [i, n) does not fit: no last stage there
      double work = rule_.start(i);
      for (size_t b = i; b < n_; ++b) work += t.time_s[ty][b];
      last_term_[ty][i] = rule_.term(work, i, n_);
    }
  }
  link_.assign(T_ * T_ * (n_ + 1), kInf);
  for (size_t a = 0; a < T_; ++a)
    for (size_t b = 0; b < T_; ++b)
      for (size_t cut = 1; cut < n_; ++cut)
        link_[(a * T_ + b) * (n_ + 1) + cut] = t.between[a * T_ + b].time_s(m.cut_bytes[cut]);
  rest_work_.assign(n_ + 1, 0.0);
  rest_slowdown_.assign(T_, std::vector<double>(n_ + 1, kInf));
  for (size_t i = n_; i-- > 0;) {
    double fastest = kInf;
    for (size_t ty = 0; ty < T_; ++ty) fastest = std::min(fastest, t.time_s[ty][i]);
    rest_work_[i] = rest_work_[i + 1] + fastest;
    for (size_t ty = 0; ty < T_; ++ty)
      rest_slowdown_[ty][i] =
          std::min(rest_slowdown_[ty][i + 1], fastest > 0 ? t.time_s[ty][i] / fastest : kInf);
  }
  v0_ = std::max(dispatcher_s(m), m.cut_bytes[0] / t.dispatcher_interface_Bps);
  // No plan beats rank 0's own terms: its codec work and sends, and the fastest link back.
  floor_ = std::max(v0_, *std::min_element(out_.begin(), out_.end()));
}

double ReplicaPlanner::recv_time(size_t from, size_t to, size_t cut) const {
  return from == kDispatcher ? in_[to] : link_[(from * T_ + to) * (n_ + 1) + cut];
}

// A lower bound on the period of any plan through state (c, i): the blocks [i, n) left, on the
// ranks left, however they are split. Each batch needs every block once; a rank of type t runs
// a block at least rest_slowdown[t][i] times slower than the fastest type, so the ranks left
// together run at most sum(left_t / slowdown_t) fastest-type blocks' worth at once:
//   period >= rest_work[i] / sum_t (left_t / slowdown_t[i]).
// (Codec work and links only add to a stage's terms.)
double ReplicaPlanner::rest_bound(size_t c, size_t i) const {
  double capacity = 0;
  for (size_t ty = 0; ty < T_; ++ty)
    capacity += static_cast<double>(cap_[ty] - count(c, ty)) / rest_slowdown_[ty][i];
  return rest_work_[i] / capacity;
}

// Fills candidates_ for a last stage after state (c, i, from) and returns a lower bound on its
// terms: every replica left, however its link to rank 0 (the margins of the callers cover the
// rounding of the sums).
double ReplicaPlanner::last_bound(size_t c, size_t i, size_t from) {
  last_candidates(c, i, from, candidates_);
  double rate = 0, out = kInf;
  for (const LastCandidate& cand : candidates_) {
    rate += static_cast<double>(std::min(cand.avail, lim_.max_replicas)) / cand.period;
    out = std::min(out, cand.out);
  }
  return std::max(out, 1 / rate);
}

// Ascending order of period; ties by type.
void ReplicaPlanner::last_candidates(size_t c, size_t i, size_t from,
                                     std::vector<LastCandidate>& out) const {
  out.clear();
  for (size_t u = 0; u < T_; ++u) {
    const size_t avail = cap_[u] - count(c, u);
    if (avail == 0 || last_term_[u][i] == kInf) continue;
    const double p = std::max({recv_time(from, u, i), last_term_[u][i], out_[u]});
    out.push_back({u, p, out_[u], avail});
  }
  std::stable_sort(out.begin(), out.end(), [](const LastCandidate& a, const LastCandidate& b) {
    return a.period < b.period;
  });
}

size_t ReplicaPlanner::ranks_in(size_t c) const {
  size_t ranks = 0;
  for (size_t ty = 0; ty < T_; ++ty) ranks += count(c, ty);
  return ranks;
}

// Blocks a non-last stage k + 1 must leave: one for the last stage, one for each stage still
// required by min_stages.
size_t ReplicaPlanner::blocks_to_leave(size_t k) const {
  const size_t required =
      lim_.count_stages && lim_.min_stages > k + 2 ? lim_.min_stages - k - 1 : 1;
  return std::max<size_t>(required, 1);
}

// Visits every state of the table in an order where each comes after all its predecessors.
template <typename Visit>
void ReplicaPlanner::for_each_state(Visit visit) const {
  for (size_t c = 1; c < C_; ++c)
    for (size_t k = 0; k < K_; ++k)
      for (size_t i = 1; i < n_; ++i)
        for (size_t last = 0; last < T_; ++last)
          if (!visit(k, c, i, last)) return;
}

// ---- Phase 1: the optimal period -----------------------------------------------------------

// `bound`: the period of a plan in the plan space (or infinity); phase 1 starts just above it,
// so that it still finds (and records) a plan that meets it.
double ReplicaPlanner::phase1(double bound) {
  best_ = std::nextafter(bound, kInf);
  value_.assign(states_, kInf);
  expand(0, 0, 0, kDispatcher, v0_);
  for_each_state([&](size_t k, size_t c, size_t i, size_t last) {
    const double v = value_[state(k, c, i, last)];
    if (v < best_ && rest_bound(c, i) < best_ * (1 + 1e-9)) expand(k, c, i, last, v);
    return best_ > floor_;
  });
  std::vector<double>().swap(value_);
  return best_;
}

void ReplicaPlanner::expand(size_t k, size_t c, size_t i, size_t from, double v) {
  if (may_end(k) && std::max(v, last_bound(c, i, from)) < best_ * (1 + 1e-9))
    best_ = std::min(best_, best_last_stage(candidates_, v, bounds_));
  if (!may_go_on(k)) return;
  for (size_t to = 0; to < T_; ++to) extend(k, c, i, from, v, to);
}

void ReplicaPlanner::extend(size_t k, size_t c, size_t i, size_t from, double v, size_t to) {
  const size_t avail = std::min(cap_[to] - count(c, to), lim_.max_replicas);
  if (avail == 0 || avail < lim_.min_replicas) return;
  const double most = static_cast<double>(avail);
  const double recv = recv_time(from, to, i);
  if (!(recv / most < best_)) return;
  const size_t j_last = std::min(reach_[to][i], n_ - blocks_to_leave(k));
  double work = rule_.start(i);
  for (size_t j = i + 1; j <= j_last; ++j) {
    work += t_.time_s[to][j - 1];
    if (!(work / most < best_)) break;  // bounds this stage's term and every longer one's
    const double p = std::max({recv, rule_.term(work, i, j), iface_[to][j]});
    relax_replicas(state(next_k(k), c, j, to), stride_[to] * (n_ + 1) * T_, avail, v, p);
  }
}

// m = min_replicas..avail replicas of period p: the state of m replicas is state_of_none's (the
// state with the counts before this stage) plus m strides. More replicas than reach v give the
// same value on more ranks: not tried.
void ReplicaPlanner::relax_replicas(size_t state_of_none, size_t stride, size_t avail, double v,
                                    double p) {
  // Fewer than p / best_ replicas are too slow: start just below that.
  const double too_few = std::floor(p / best_);
  size_t m = std::max<size_t>(lim_.min_replicas, 1);
  if (too_few > static_cast<double>(m))
    m = too_few >= static_cast<double>(avail) ? avail : static_cast<size_t>(too_few);
  for (; m <= avail; ++m) {
    const double term = p / static_cast<double>(m), val = std::max(v, term);
    if (val < best_) {
      double& slot = value_[state_of_none + m * stride];
      slot = std::min(slot, val);
    }
    if (term <= v) break;
  }
}

// ---- Phase 2: the tie-break, and the plan -------------------------------------------------

// Among plans of period <= V: the fewest stages, then the fewest ranks, then the fewest bytes
// between stages; returns its stages by type.
std::vector<TypedStage> ReplicaPlanner::phase2(double V) {
  V_ = V;
  tie_.assign(states_, Tie{});
  Tie start;
  start.stages = 0;
  expand_tie(0, 0, 0, kDispatcher, start);
  for_each_state([&](size_t k, size_t c, size_t i, size_t last) {
    const Tie& here = tie_[state(k, c, i, last)];
    if (here.stages != UINT16_MAX) expand_tie(k, c, i, last, here);
    return true;
  });
  EP_CHECK(std::get<0>(end_key_) != SIZE_MAX, "internal error: the planner lost its optimal plan");
  return rebuild();
}

void ReplicaPlanner::expand_tie(size_t k, size_t c, size_t i, size_t from, const Tie& here) {
  const double bytes = here.bytes + (i > 0 ? m_.cut_bytes[i] : 0.0);
  const size_t ranks_so_far = ranks_in(c);
  // Every plan from here has at least one more stage and rank, and these bytes: if that is no
  // better than the best complete plan, nothing from here is (states come in no set order of
  // their keys, so this prunes only what cannot win).
  if (!(std::make_tuple(size_t{here.stages} + 1, ranks_so_far + 1, bytes) < end_key_)) return;
  if (rest_bound(c, i) > V_ * (1 + 1e-9)) return;  // the blocks left cannot make it within V
  if (may_end(k) && last_bound(c, i, from) <= V_ * (1 + 1e-9)) {
    const LastPick pick = fewest_last_stage(candidates_, V_, bounds_);
    const auto key = std::make_tuple(size_t{here.stages} + 1, ranks_so_far + pick.replicas, bytes);
    if (pick.replicas > 0 && key < end_key_) {
      end_key_ = key;
      std::tie(end_k_, end_c_, end_i_, end_from_) = std::make_tuple(k, c, i, from);
      end_counts_ = pick.counts;
    }
  }
  // A next stage and then a last one: at least two more stages.
  if (!may_go_on(k) || !(size_t{here.stages} + 2 <= std::get<0>(end_key_))) return;
  for (size_t to = 0; to < T_; ++to) extend_tie(k, c, i, from, here, to);
}

void ReplicaPlanner::extend_tie(size_t k, size_t c, size_t i, size_t from, const Tie& here,
                                size_t to) {
  const size_t avail = std::min(cap_[to] - count(c, to), lim_.max_replicas);
  if (avail == 0 || avail < lim_.min_replicas) return;
  const double most = static_cast<double>(avail);
  const double recv = recv_time(from, to, i);
  if (recv / most > V_) return;
  const double bytes = here.bytes + (i > 0 ? m_.cut_bytes[i] : 0.0);
  const size_t j_last = std::min(reach_[to][i], n_ - blocks_to_leave(k));
  double work = rule_.start(i);
  for (size_t j = i + 1; j <= j_last; ++j) {
    work += t_.time_s[to][j - 1];
    if (work / most > V_) break;  // so is every longer stage's term
    const double p = std::max({recv, rule_.term(work, i, j), iface_[to][j]});
    size_t m = std::max<size_t>(lim_.min_replicas, 1);
    while (m <= avail && p / static_cast<double>(m) > V_) ++m;
    if (m > avail) continue;
    Tie& slot = tie_[state(next_k(k), c + m * stride_[to], j, to)];
    const Tie cand{bytes, pack_pred(i, from, m), static_cast<uint16_t>(here.stages + 1)};
    if (std::make_pair(cand.stages, cand.bytes) < std::make_pair(slot.stages, slot.bytes))
      slot = cand;
  }
}

// Walks the predecessors back from phase 2's best complete plan.
std::vector<TypedStage> ReplicaPlanner::rebuild() const {
  std::vector<TypedStage> stages = {{end_counts_, end_i_, n_}};
  size_t k = end_k_, c = end_c_, i = end_i_, from = end_from_;
  while (from != kDispatcher) {
    const uint32_t pred = tie_[state(k, c, i, from)].pred;
    const size_t first = pred >> 16, before = pred >> 8 & 0xff, m = pred & 0xff;
    TypedStage s{std::vector<size_t>(T_, 0), first, i};
    s.counts[from] = m;
    stages.push_back(s);
    c -= m * stride_[from];
    k = lim_.count_stages ? k - 1 : 0;
    i = first;
    from = before;
  }
  std::reverse(stages.begin(), stages.end());
  return stages;
}

// Types -> ranks: each stage takes the lowest-numbered unused ranks of its types.
std::vector<Stage> to_ranks(const TypedInstance& t, const std::vector<TypedStage>& typed) {
  std::vector<size_t> next_member(t.T, 0);
  std::vector<Stage> stages;
  for (const TypedStage& ts : typed) {
    std::vector<size_t> ranks;
    for (size_t ty = 0; ty < t.T; ++ty)
      for (size_t x = 0; x < ts.counts[ty]; ++x) ranks.push_back(t.members[ty][next_member[ty]++]);
    std::sort(ranks.begin(), ranks.end());
    Stage s{ranks.front(), ts.first, ts.end};
    if (ranks.size() > 1) s.ranks = ranks;
    stages.push_back(s);
  }
  return stages;
}

}  // namespace

Plan plan_with_replicas(const ModelCosts& m, const Cluster& c, const PlanOptions& o, double bound) {
  validate_problem(m, c);
  const auto [Kmin, K] = stage_range(m, c, o);
  const size_t R = c.num_stage_ranks();
  Limits lim;
  lim.min_stages = Kmin;
  lim.max_stages = K;
  lim.count_stages = Kmin > 1 || o.max_stages > 0;
  lim.max_replicas = o.max_replicas == 0 ? R : std::min(o.max_replicas, R);
  lim.min_replicas = std::max<size_t>(o.min_replicas, 1);
  EP_CHECK(o.max_replicas == 0 || lim.min_replicas <= o.max_replicas, "at least ", lim.min_replicas,
           " replicas per stage asked for (PlanOptions::min_replicas) but at most ", o.max_replicas,
           " (max_replicas): no plan can have both");
  EP_CHECK(lim.min_replicas * Kmin <= R, lim.min_replicas, " replicas for each of at least ", Kmin,
           " stages need ", lim.min_replicas * Kmin, " stage ranks, but the cluster has ", R);
  const RankTypes types = group_ranks(m, c, o.group_tolerance);
  const TypedInstance t = make_typed(m, c, types);
  ReplicaPlanner dp(m, t, lim);
  EP_CHECK(dp.table_bytes() <= o.max_table_bytes, "the exact planner with replicas would need ",
           format_bytes(dp.table_bytes()), " of tables for ", t.T, " types of ranks and ", t.n,
           " blocks (limit ", format_bytes(o.max_table_bytes),
           "): plan with PlanOptions::group_tolerance > 0 so that alike ranks form types, with "
           "fewer ranks or coarser blocks, or without replicas (max_replicas = 1)");
  const double period = dp.phase1(bound);
  EP_CHECK(period != kInf, "no plan with at least ", lim.min_replicas,
           " replicas per stage fits in memory on the ", R, " stage ranks");
  Plan p = finish("optimal", m, c, to_ranks(t, dp.phase2(period)));
  p.rank_types = t.T;
  return p;
}

}  // namespace edgepipe
