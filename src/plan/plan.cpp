#include "edgepipe/plan/plan.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>
#include <utility>

#include "edgepipe/base/error.h"

namespace edgepipe {

std::vector<size_t> partition_chain(const std::vector<double>& costs, size_t k,
                                    const std::vector<double>& cut_costs) {
  const size_t n = costs.size();
  EP_CHECK(cut_costs.empty() || cut_costs.size() == n + 1, "partition_chain: ", cut_costs.size(),
           " cut costs for ", n, " blocks");
  auto cut = [&](size_t c) { return cut_costs.empty() ? 0.0 : cut_costs[c]; };
  EP_CHECK(k >= 1, "cannot split a model into 0 stages");
  EP_CHECK(k <= n, "the model has ", n, " blocks, too few for ", k,
           " stages: use fewer ranks (at most ", n + 1, ")");
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + costs[i];
  const double inf = std::numeric_limits<double>::infinity();
  // best[s][i]: smallest largest-piece for the first i blocks in s pieces; from[s][i]: last cut.
  std::vector<std::vector<double>> best(k + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<size_t>> from(k + 1, std::vector<size_t>(n + 1, 0));
  best[0][0] = 0.0;
  for (size_t s = 1; s <= k; ++s) {
    for (size_t i = s; i <= n; ++i) {
      for (size_t j = s - 1; j < i; ++j) {
        double v = std::max(best[s - 1][j], prefix[i] - prefix[j] + cut(j) + cut(i));
        if (v < best[s][i]) {
          best[s][i] = v;
          from[s][i] = j;
        }
      }
    }
  }
  std::vector<size_t> bounds(k + 1);
  bounds[k] = n;
  for (size_t s = k; s >= 1; --s) bounds[s - 1] = from[s][bounds[s]];
  return bounds;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Every time and size below is computed by these helpers and accumulated in block order, in the
// same way by evaluate_plan, the exact planner and the brute force: for identical ranks their
// periods are then equal to the last bit, not only within rounding.
double block_s(const ModelCosts& m, const RankInfo& r, size_t b) {
  return r.block_ms.empty() ? m.blocks[b].ref_ms / r.speed / 1000.0 : r.block_ms[b] / 1000.0;
}
double encode_s(const ModelCosts& m, size_t cut) {
  return m.cut_encode_ms.empty() ? 0.0 : m.cut_encode_ms[cut] / 1000.0;
}
double decode_s(const ModelCosts& m, size_t cut) {
  return m.cut_decode_ms.empty() ? 0.0 : m.cut_decode_ms[cut] / 1000.0;
}
double dispatcher_s(const ModelCosts& m) { return encode_s(m, 0) + decode_s(m, m.num_blocks()); }

// A stage's compute term: the one rule for evaluate_plan, the exact planner, the brute force and
// (through evaluate_plan) the baselines (docs/planner.md, "Cost model"). A consumer starts a
// running sum `work` at start(first), adds block_s() of the stage's blocks in block order, and
// takes term(work, first, end):
//   one thread (default): work = decode(first) + blocks, term = work + encode(end);
//   codec_thread:         work = blocks, term = max(work, decode(first) + encode(end)).
// In both modes `work` never decreases as the stage grows and is at most the term of the stage
// and of every longer one from the same first block: the only quantity a prune may use to end
// a stage's loop. (With the codec thread, decode + encode does not grow with the stage: a later
// end may have a cheaper encode.)
class StageRule {
 public:
  explicit StageRule(const ModelCosts& m)
      : codec_thread_(m.codec_thread), enc_(m.num_blocks() + 1), dec_(m.num_blocks() + 1) {
    for (size_t cut = 0; cut <= m.num_blocks(); ++cut) {
      enc_[cut] = encode_s(m, cut);
      dec_[cut] = decode_s(m, cut);
    }
  }
  double start(size_t first) const { return codec_thread_ ? 0.0 : dec_[first]; }
  // The stage's codec work per batch: decode of its input, encode of its output.
  double codec(size_t first, size_t end) const { return dec_[first] + enc_[end]; }
  double term(double work, size_t first, size_t end) const {
    return codec_thread_ ? std::max(work, codec(first, end)) : work + enc_[end];
  }

 private:
  bool codec_thread_;
  std::vector<double> enc_, dec_;
};

bool finite_nonneg(double v) { return std::isfinite(v) && v >= 0; }

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

// ---------------------------------------------------------------------------------------------
// Ranks grouped into types, with each type's worst values: what the exact DP plans over.

struct TypedInstance {
  size_t n = 0, T = 0;
  std::vector<std::vector<size_t>> members;          // [type] -> ranks
  std::vector<std::vector<double>> time_s;           // [type][block]
  std::vector<double> memory;                        // [type]
  std::vector<Link> from_dispatcher, to_dispatcher;  // [type]
  std::vector<Link> between;                         // [from type * T + to type]
};

Link worse(const Link& a, const Link& b) {
  return {std::max(a.latency_s, b.latency_s), std::min(a.bandwidth_Bps, b.bandwidth_Bps)};
}

TypedInstance make_typed(const ModelCosts& m, const Cluster& c, const RankTypes& types) {
  TypedInstance t;
  t.n = m.num_blocks();
  t.T = types.members.size();
  t.members = types.members;
  t.time_s.assign(t.T, std::vector<double>(t.n, 0.0));
  t.memory.assign(t.T, kInf);
  const Link best_link{0.0, kInf};
  t.from_dispatcher.assign(t.T, best_link);
  t.to_dispatcher.assign(t.T, best_link);
  t.between.assign(t.T * t.T, best_link);
  for (size_t ty = 0; ty < t.T; ++ty) {
    for (size_t r : t.members[ty]) {
      for (size_t b = 0; b < t.n; ++b)
        t.time_s[ty][b] = std::max(t.time_s[ty][b], block_s(m, c.ranks[r], b));
      t.memory[ty] = std::min(t.memory[ty], c.ranks[r].memory_bytes);
      t.from_dispatcher[ty] = worse(t.from_dispatcher[ty], c.link(0, r));
      t.to_dispatcher[ty] = worse(t.to_dispatcher[ty], c.link(r, 0));
    }
  }
  for (size_t a = 1; a < c.num_ranks(); ++a)
    for (size_t b = 1; b < c.num_ranks(); ++b)
      if (a != b) {
        Link& l = t.between[types.type_of_rank[a] * t.T + types.type_of_rank[b]];
        l = worse(l, c.link(a, b));
      }
  return t;
}

// Count vectors over the types: counts[ty] <= cap[ty], encoded in mixed radix. Layer k lists the
// vectors whose counts sum to k (plans with k stages); local[] is a vector's place in its layer.
struct ComboSpace {
  size_t T = 0;
  std::vector<size_t> cap, stride;
  size_t count = 1;
  std::vector<std::vector<uint32_t>> layer;
  std::vector<uint32_t> local;

  void digits(size_t idx, std::vector<size_t>& out) const {
    for (size_t ty = 0; ty < T; ++ty) out[ty] = (idx / stride[ty]) % (cap[ty] + 1);
  }
};

ComboSpace make_combos(const std::vector<size_t>& cap, size_t max_stages) {
  ComboSpace s;
  s.T = cap.size();
  s.cap = cap;
  s.stride.resize(s.T);
  for (size_t ty = 0; ty < s.T; ++ty) {
    s.stride[ty] = s.count;
    s.count *= cap[ty] + 1;
  }
  s.layer.assign(max_stages + 1, {});
  s.local.assign(s.count, 0);
  std::vector<size_t> d(s.T);
  for (size_t idx = 0; idx < s.count; ++idx) {
    s.digits(idx, d);
    size_t sum = std::accumulate(d.begin(), d.end(), size_t{0});
    if (sum > max_stages) continue;
    s.local[idx] = static_cast<uint32_t>(s.layer[sum].size());
    s.layer[sum].push_back(static_cast<uint32_t>(idx));
  }
  return s;
}

// reach[ty][i]: the largest j such that blocks [i, j) fit on a rank of type ty with `extra` more
// bytes; i if block i alone does not fit. Non-decreasing in i (a shorter stage needs no more).
std::vector<std::vector<size_t>> memory_reach(const ModelCosts& m, const TypedInstance& t,
                                              double extra) {
  std::vector<std::vector<size_t>> reach(t.T, std::vector<size_t>(t.n + 1, t.n));
  for (size_t ty = 0; ty < t.T; ++ty) {
    for (size_t i = 0; i < t.n; ++i) {
      double params = 0, act = 0;
      size_t j = i;
      while (j < t.n) {
        params += m.blocks[j].param_bytes;
        act = std::max(act, m.blocks[j].act_bytes);
        if (params + act > t.memory[ty] + extra) break;
        ++j;
      }
      reach[ty][i] = j;
    }
  }
  return reach;
}

// Whether some split into at most `max_stages` stages (the combos' layers), and at least
// `min_stages`, fits in memory (with `extra` bytes more on every rank). Time and links do not
// matter here, so the order of the stages' types is free.
bool memory_feasible(const ModelCosts& m, const TypedInstance& t, const ComboSpace& s, double extra,
                     size_t min_stages = 1) {
  const auto reach = memory_reach(m, t, extra);
  if (min_stages > 1) {
    // Every stage must then hold at least one block, and a rank that fits no block cannot pad the
    // count: the positions reachable with exactly the stages of a count vector, all non-empty,
    // need not be an interval. So keep them all, one layer of count vectors at a time: q is
    // reachable if some type ty of the vector has, for the vector without it, a reachable p < q
    // with reach[ty][p] >= q; reach is non-decreasing, so the largest such p decides.
    const size_t N = t.n + 1;
    std::vector<char> prev(N, 0), cur;
    prev[0] = 1;  // layer 0: the empty vector, at block 0
    std::vector<size_t> d(s.T);
    for (size_t k = 1; k < s.layer.size(); ++k) {
      const auto& layer = s.layer[k];
      cur.assign(layer.size() * N, 0);
      bool any = false, done = false;
      for (size_t loc = 0; loc < layer.size(); ++loc) {
        s.digits(layer[loc], d);
        char* out = &cur[loc * N];
        for (size_t ty = 0; ty < s.T; ++ty) {
          if (d[ty] == 0) continue;
          const char* in = &prev[s.local[layer[loc] - s.stride[ty]] * N];
          size_t last = SIZE_MAX;
          for (size_t q = 1; q <= t.n; ++q) {
            if (in[q - 1]) last = q - 1;
            if (last != SIZE_MAX && reach[ty][last] >= q) {
              out[q] = 1;
              any = true;
            }
          }
        }
        done = done || (k >= min_stages && out[t.n]);
      }
      if (done) return true;
      if (!any) return false;
      prev.swap(cur);
    }
    return false;
  }
  // Without a minimum, a count vector need not use all its ranks, and the farthest block
  // reachable with it dominates every nearer one.
  std::vector<size_t> farthest(s.count, 0), d(s.T);
  for (size_t idx = 1; idx < s.count; ++idx) {
    s.digits(idx, d);
    size_t f = 0;
    for (size_t ty = 0; ty < s.T; ++ty) {
      if (d[ty] == 0) continue;
      size_t p = farthest[idx - s.stride[ty]];
      f = std::max({f, p, p == t.n ? t.n : reach[ty][p]});
    }
    farthest[idx] = f;
  }
  for (const auto& layer : s.layer)
    for (uint32_t idx : layer)
      if (farthest[idx] == t.n) return true;
  return false;
}

[[noreturn]] void fail_memory(const ModelCosts& m, const Cluster& c, const TypedInstance& t,
                              const ComboSpace& s, size_t min_stages, size_t max_stages) {
  double weights = 0, largest_act = 0, block_need = 0, largest_rank = 0, all_ranks = 0;
  size_t worst_block = 0;
  for (size_t b = 0; b < t.n; ++b) {
    weights += m.blocks[b].param_bytes;
    largest_act = std::max(largest_act, m.blocks[b].act_bytes);
    double need = m.blocks[b].param_bytes + m.blocks[b].act_bytes;
    if (need > block_need) {
      block_need = need;
      worst_block = b;
    }
  }
  for (size_t r = 1; r < c.num_ranks(); ++r) {
    largest_rank = std::max(largest_rank, c.ranks[r].memory_bytes);
    all_ranks += c.ranks[r].memory_bytes;
  }
  // The least memory that, added to every rank, makes the model fit (bisection; to 0.1%).
  double lo = 0, hi = weights + largest_act;
  while (hi - lo > std::max(1.0, hi * 1e-3)) {
    double mid = (lo + hi) / 2;
    (memory_feasible(m, t, s, mid, min_stages) ? hi : lo) = mid;
  }
  std::string why;
  if (block_need > largest_rank) {
    why = detail::concat(
        "the model needs at least ", format_bytes(block_need), " on some rank (block ", worst_block,
        ": weights + peak activations) but the largest rank has ", format_bytes(largest_rank), ": ",
        format_bytes(block_need - largest_rank), " missing");
  } else {
    const std::string count = min_stages <= 1 ? detail::concat("at most ", max_stages)
                              : min_stages == max_stages
                                  ? detail::concat("exactly ", max_stages)
                                  : detail::concat(min_stages, " to ", max_stages);
    const std::string fewer = min_stages > 1 && memory_feasible(m, t, s, 0.0)
                                  ? detail::concat(" (fewer than ", min_stages, " would fit)")
                                  : "";
    why = detail::concat("no split of the model into ", count, " stages", fewer,
                         " fits the memory of its ", c.num_stage_ranks(),
                         " stage ranks (the weights total ", format_bytes(weights),
                         ", the ranks have ", format_bytes(all_ranks), " together, the largest ",
                         format_bytes(largest_rank), ")");
  }
  EP_FAIL("the model does not fit in memory: ", why, "; it would fit with ", format_bytes(hi),
          " more on every rank");
}

// The exact dynamic program. A state is (stages so far k, count vector c of types used, blocks
// done i, type of the last stage); its value is the smallest possible max over the terms so far.
// Phase 1 finds the optimal period V among plans of min_stages..max_stages stages and the fewest
// stages K (>= min_stages) that reach it; phase 2 keeps to period <= V and K stages and minimises
// the bytes on links between stages; it also records the predecessors needed to rebuild the plan.
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

  // The best period of plans that use ranks of one type only, with at least Kmin_ stages: an
  // upper bound that prunes phase 1 from its first layer (plans of fewer stages do not count:
  // their period may be below every allowed plan's). Same arithmetic as phase 1, so the DP meets
  // it exactly. Infinity if no type has Kmin_ ranks.
  double single_type_bound() const {
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
        std::fill(g.begin(), g.end(), kInf);
        for (size_t i = k; i < n_; ++i) {
          if (!(f[i] < bound)) continue;
          const double b = std::max(f[i], link_[(ty * T_ + ty) * (n_ + 1) + i]);
          double w = rule_.start(i);
          for (size_t j = i + 1; j <= reach_[ty][i]; ++j) {
            w += t_.time_s[ty][j - 1];
            if (!(w < bound)) break;  // w bounds this stage's term and every longer one's
            g[j] = std::min(g[j], std::max(b, rule_.term(w, i, j)));
          }
        }
        f.swap(g);
      }
    }
    return bound;
  }

  // Returns the optimal period of plans of Kmin_..K_ stages (infinity if none fits).
  double phase1() {
    // Start just above the bound so that phase 1 still finds (and records) a plan that meets it.
    best_ = std::nextafter(single_type_bound(), kInf);
    best_k_ = 0;
    // No plan can beat: the dispatcher's codec work, the cheapest first and last links, and each
    // block on its fastest type (a bound for any number of stages, so for Kmin_.. too: the search
    // stops when a plan of allowed length meets it; best_ only ever holds such plans).
    double bound = disp_;
    bound = std::max(bound, *std::min_element(in_.begin(), in_.end()));
    bound = std::max(bound, *std::min_element(out_.begin(), out_.end()));
    for (size_t b = 0; b < n_; ++b) {
      double fastest = kInf;
      for (size_t ty = 0; ty < T_; ++ty) fastest = std::min(fastest, t_.time_s[ty][b]);
      bound = std::max(bound, fastest);
    }
    std::vector<double> cur = first_layer(kInf), next;
    std::vector<size_t> d(T_);
    for (size_t k = 1; k <= K_ && best_ > bound; ++k) {
      const bool last = k == K_;
      if (!last) next.assign(layer_size(k + 1), kInf);
      // Blocks a stage k + 1 must leave for the stages still required after it (one each).
      const size_t leave = k + 1 < Kmin_ ? Kmin_ - (k + 1) : 0;
      bool any = false;
      const auto& layer = s_.layer[k];
      for (size_t loc = 0; loc < layer.size(); ++loc) {
        const size_t full = layer[loc];
        s_.digits(full, d);
        for (size_t i = k; i <= n_; ++i) {
          const double* v_row = &cur[(loc * (n_ + 1) + i) * T_];
          for (size_t ty = 0; ty < T_; ++ty) {
            const double v = v_row[ty];
            if (!(v < best_)) continue;
            if (i == n_) {
              if (k < Kmin_) continue;  // too few stages (none can follow: no blocks left)
              double total = std::max(v, out_[ty]);
              if (total < best_) {
                best_ = total;
                best_k_ = k;
              }
              continue;
            }
            if (last) continue;
            for (size_t to = 0; to < T_; ++to) {
              if (d[to] >= s_.cap[to]) continue;
              const double base = std::max(v, link_[(ty * T_ + to) * (n_ + 1) + i]);
              if (!(base < best_)) continue;
              const size_t tgt = s_.local[full + s_.stride[to]];
              double* out = &next[tgt * (n_ + 1) * T_ + to];
              const std::vector<double>& time = t_.time_s[to];
              double work = rule_.start(i);
              const size_t j_last = std::min(reach_[to][i], n_ - leave);
              for (size_t j = i + 1; j <= j_last; ++j) {
                work += time[j - 1];
                if (!(work < best_)) break;  // bounds this stage's term and every longer one's
                const double cand = std::max(base, rule_.term(work, i, j));
                if (cand < out[j * T_]) {
                  out[j * T_] = cand;
                  any = true;
                }
              }
            }
          }
        }
      }
      if (!any) break;
      cur.swap(next);
    }
    return best_;
  }

  size_t best_stages() const { return best_k_; }

  // need[i]: a lower bound on the stages that finish blocks [i, n) within period V, from the
  // farthest any type can reach (memory, and the stage rule's running sum, which never exceeds
  // the stage's term) with none of the counts.
  std::vector<size_t> stages_needed(double V) const {
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
  std::vector<std::array<size_t, 3>> phase2() {
    const double V = best_;
    const size_t K = best_k_;
    const std::vector<size_t> need = stages_needed(V);
    std::vector<double> cur = first_layer(V), next;
    // parents[k]: (state index in layer k, packed predecessor) for every reachable state.
    std::vector<std::vector<std::pair<uint32_t, uint32_t>>> parents(K + 1);
    std::vector<uint32_t> parent_dense;
    std::vector<size_t> d(T_);
    for (size_t k = 1; k < K; ++k) {
      next.assign(layer_size(k + 1), kInf);
      parent_dense.assign(next.size(), 0);
      const auto& layer = s_.layer[k];
      for (size_t loc = 0; loc < layer.size(); ++loc) {
        const size_t full = layer[loc];
        s_.digits(full, d);
        for (size_t i = k; i < n_; ++i) {
          // Cannot finish in exactly K stages: too far to go, or too few blocks left.
          if (need[i] == SIZE_MAX || k + need[i] > K || n_ - i < K - k) continue;
          for (size_t ty = 0; ty < T_; ++ty) {
            const double bytes_so_far = cur[(loc * (n_ + 1) + i) * T_ + ty];
            if (bytes_so_far == kInf) continue;
            const double cand = bytes_so_far + m_.cut_bytes[i];
            for (size_t to = 0; to < T_; ++to) {
              if (d[to] >= s_.cap[to]) continue;
              if (link_[(ty * T_ + to) * (n_ + 1) + i] > V) continue;
              const size_t base = s_.local[full + s_.stride[to]] * (n_ + 1) * T_ + to;
              const std::vector<double>& time = t_.time_s[to];
              double work = rule_.start(i);
              for (size_t j = i + 1; j <= reach_[to][i]; ++j) {
                work += time[j - 1];
                if (work > V) break;  // so is every longer stage's term
                if (rule_.term(work, i, j) > V) continue;
                const size_t at = base + j * T_;
                if (cand < next[at]) {
                  next[at] = cand;
                  parent_dense[at] = static_cast<uint32_t>(i << 16 | ty);
                }
              }
            }
          }
        }
      }
      for (size_t at = 0; at < next.size(); ++at)
        if (next[at] != kInf)
          parents[k + 1].push_back({static_cast<uint32_t>(at), parent_dense[at]});
      cur.swap(next);
    }
    // The cheapest complete state in layer K.
    double best_bytes = kInf;
    size_t end_full = 0, end_type = 0;
    const auto& layer = s_.layer[K];
    for (size_t loc = 0; loc < layer.size(); ++loc)
      for (size_t ty = 0; ty < T_; ++ty) {
        double b = cur[(loc * (n_ + 1) + n_) * T_ + ty];
        if (b < best_bytes && out_[ty] <= V) {
          best_bytes = b;
          end_full = layer[loc];
          end_type = ty;
        }
      }
    EP_CHECK(best_bytes != kInf, "internal error: the planner lost its optimal plan");
    std::vector<std::array<size_t, 3>> stages(K);
    size_t full = end_full, ty = end_type, end = n_;
    for (size_t k = K; k >= 1; --k) {
      size_t first = 0, prev_type = 0;
      if (k > 1) {
        const size_t at = (s_.local[full] * (n_ + 1) + end) * T_ + ty;
        const auto& p = parents[k];
        auto it =
            std::lower_bound(p.begin(), p.end(), std::make_pair(static_cast<uint32_t>(at), 0u));
        EP_CHECK(it != p.end() && it->first == at, "internal error: the planner lost a stage");
        first = it->second >> 16;
        prev_type = it->second & 0xffff;
      }
      stages[k - 1] = {ty, first, end};
      full -= s_.stride[ty];
      ty = prev_type;
      end = first;
    }
    return stages;
  }

 private:
  size_t layer_size(size_t k) const { return s_.layer[k].size() * (n_ + 1) * T_; }

  // Layer 1: one stage [0, j) on each type, fed by the dispatcher. In phase 1 the values are the
  // max of the terms so far; with a threshold (phase 2) they are the bytes so far (0) if every
  // term is within it.
  std::vector<double> first_layer(double threshold) {
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
        layer[(loc * (n_ + 1) + j) * T_ + ty] = phase2 ? 0.0 : v;
      }
    }
    return layer;
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

size_t stage_limit(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  size_t k = std::min(m.num_blocks(), c.num_stage_ranks());
  if (o.max_stages > 0) k = std::min(k, o.max_stages);
  return k;
}

// The fewest and the most stages a plan may have: PlanOptions::min_stages (at least 1) and
// stage_limit(). Throws edgepipe::Error if no number of stages is allowed.
std::pair<size_t, size_t> stage_range(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  const size_t most = stage_limit(m, c, o), least = std::max<size_t>(o.min_stages, 1);
  EP_CHECK(o.max_stages == 0 || least <= o.max_stages, "at least ", least,
           " stages asked for (PlanOptions::min_stages) but at most ", o.max_stages,
           " (max_stages): no plan can have both");
  EP_CHECK(least <= c.num_stage_ranks(), "at least ", least,
           " stages asked for (PlanOptions::min_stages) but the cluster has only ",
           c.num_stage_ranks(), " stage ranks (one stage per rank)");
  EP_CHECK(least <= m.num_blocks(), "at least ", least,
           " stages asked for (PlanOptions::min_stages) but the model has only ", m.num_blocks(),
           " blocks (a stage needs one)");
  return {least, most};
}

Plan finish(const std::string& method, const ModelCosts& m, const Cluster& c,
            std::vector<Stage> stages, std::string note = "") {
  Plan p;
  p.method = method;
  p.note = std::move(note);
  if (!stages.empty()) {
    p.cost = evaluate_plan(m, c, stages);
    p.stages = std::move(stages);
  }
  return p;
}

// A small, portable generator for the random baseline (std distributions differ across libraries).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }  // bias < n / 2^64
};

}  // namespace

double StageCost::period_s() const { return std::max({compute_s, recv_s, send_s}); }

double Plan::period_s() const { return found() && cost.fits ? cost.period_s : kInf; }

void validate_problem(const ModelCosts& m, const Cluster& c) {
  const size_t n = m.num_blocks();
  EP_CHECK(n >= 1, "the model has no blocks");
  EP_CHECK(n < 65535, "the model has ", n, " blocks; the planner takes at most 65534");
  EP_CHECK(m.cut_bytes.size() == n + 1, "the model has ", n, " blocks but ", m.cut_bytes.size(),
           " cut sizes (need ", n + 1, ": the input, every cut between blocks, the output)");
  for (size_t b = 0; b < n; ++b) {
    const BlockCost& bc = m.blocks[b];
    EP_CHECK(
        finite_nonneg(bc.ref_ms) && finite_nonneg(bc.param_bytes) && finite_nonneg(bc.act_bytes),
        "block ", b, " has a negative or non-finite cost (", bc.ref_ms, " ms, ", bc.param_bytes,
        " weight bytes, ", bc.act_bytes, " activation bytes)");
  }
  for (size_t i = 0; i <= n; ++i)
    EP_CHECK(finite_nonneg(m.cut_bytes[i]), "cut ", i, " has a bad size: ", m.cut_bytes[i]);
  for (const auto* v : {&m.cut_encode_ms, &m.cut_decode_ms}) {
    EP_CHECK(v->empty() || v->size() == n + 1, "codec times need one entry per cut (", n + 1,
             "), got ", v->size());
    for (double x : *v) EP_CHECK(finite_nonneg(x), "a codec time is negative or not finite: ", x);
  }
  const size_t R = c.num_stage_ranks();
  EP_CHECK(R >= 1, "the cluster has no stage ranks (rank 0 is the dispatcher)");
  for (size_t r = 1; r <= R; ++r) {
    const RankInfo& ri = c.ranks[r];
    if (ri.block_ms.empty()) {
      EP_CHECK(std::isfinite(ri.speed) && ri.speed > 0, "rank ", r, " has a bad speed: ", ri.speed);
    } else {
      EP_CHECK(ri.block_ms.size() == n, "rank ", r, " has ", ri.block_ms.size(),
               " block times but the model has ", n, " blocks");
      for (double x : ri.block_ms)
        EP_CHECK(finite_nonneg(x), "rank ", r, " has a negative or non-finite block time: ", x);
    }
    EP_CHECK(!std::isnan(ri.memory_bytes) && ri.memory_bytes >= 0, "rank ", r,
             " has a bad memory size: ", ri.memory_bytes);
  }
  EP_CHECK(c.links.size() == R + 1, "the link table has ", c.links.size(), " rows for ", R + 1,
           " ranks");
  for (size_t a = 0; a <= R; ++a) {
    EP_CHECK(c.links[a].size() == R + 1, "the link table's row ", a, " has ", c.links[a].size(),
             " entries for ", R + 1, " ranks");
    for (size_t b = 0; b <= R; ++b) {
      if (a == b) continue;
      const Link& l = c.links[a][b];
      EP_CHECK(finite_nonneg(l.latency_s) && l.bandwidth_Bps > 0 && !std::isnan(l.bandwidth_Bps),
               "the link from rank ", a, " to rank ", b, " is bad (latency ", l.latency_s,
               " s, bandwidth ", l.bandwidth_Bps, " B/s)");
    }
  }
}

PlanCost evaluate_plan(const ModelCosts& m, const Cluster& c, const std::vector<Stage>& stages) {
  const size_t n = m.num_blocks();
  EP_CHECK(!stages.empty(), "a plan needs at least one stage");
  std::vector<char> used(c.num_ranks(), 0);
  size_t expect = 0;
  for (const Stage& s : stages) {
    EP_CHECK(s.first == expect && s.end > s.first && s.end <= n, "the stages must cover blocks 0..",
             n, " in order, each non-empty; got a stage [", s.first, ", ", s.end, ")");
    EP_CHECK(s.rank >= 1 && s.rank < c.num_ranks(), "a stage is on rank ", s.rank,
             ", not a stage rank (1..", c.num_stage_ranks(), ")");
    EP_CHECK(!used[s.rank], "rank ", s.rank, " runs two stages");
    used[s.rank] = 1;
    expect = s.end;
  }
  EP_CHECK(expect == n, "the stages end at block ", expect, " of ", n);

  const StageRule rule(m);
  PlanCost pc;
  pc.dispatcher_s = dispatcher_s(m);
  pc.period_s = pc.dispatcher_s;
  for (size_t k = 0; k < stages.size(); ++k) {
    const Stage& s = stages[k];
    const RankInfo& r = c.ranks[s.rank];
    const size_t prev = k == 0 ? 0 : stages[k - 1].rank;
    const size_t next = k + 1 == stages.size() ? 0 : stages[k + 1].rank;
    StageCost sc;
    double work = rule.start(s.first), params = 0, act = 0;
    for (size_t b = s.first; b < s.end; ++b) {
      work += block_s(m, r, b);
      params += m.blocks[b].param_bytes;
      act = std::max(act, m.blocks[b].act_bytes);
    }
    sc.compute_s = rule.term(work, s.first, s.end);
    sc.codec_s = rule.codec(s.first, s.end);
    sc.recv_s = c.link(prev, s.rank).time_s(m.cut_bytes[s.first]);
    sc.send_s = c.link(s.rank, next).time_s(m.cut_bytes[s.end]);
    sc.memory_bytes = params + act;
    sc.memory_limit_bytes = r.memory_bytes;
    pc.fits = pc.fits && sc.fits();
    pc.period_s = std::max(pc.period_s, sc.period_s());
    if (k > 0) pc.link_bytes += m.cut_bytes[s.first];
    pc.stages.push_back(sc);
  }
  return pc;
}

RankTypes group_ranks(const ModelCosts& m, const Cluster& c, double tol) {
  const size_t R = c.num_stage_ranks(), n = m.num_blocks();
  auto close = [tol](double a, double b) {
    return a == b || std::abs(a - b) <= tol * std::max(std::abs(a), std::abs(b));
  };
  auto close_link = [&](const Link& a, const Link& b) {
    return close(a.latency_s, b.latency_s) && close(a.bandwidth_Bps, b.bandwidth_Bps);
  };
  auto alike = [&](size_t a, size_t b) {
    if (!close(c.ranks[a].memory_bytes, c.ranks[b].memory_bytes)) return false;
    if (!close_link(c.link(0, a), c.link(0, b)) || !close_link(c.link(a, 0), c.link(b, 0)))
      return false;
    for (size_t blk = 0; blk < n; ++blk)
      if (!close(block_s(m, c.ranks[a], blk), block_s(m, c.ranks[b], blk))) return false;
    return true;
  };
  RankTypes rt;
  rt.type_of_rank.assign(R + 1, 0);
  if (tol < 0) {  // no grouping: every rank is its own type
    for (size_t r = 1; r <= R; ++r) {
      rt.type_of_rank[r] = r - 1;
      rt.members.push_back({r});
    }
    return rt;
  }
  // 1. Classes of ranks alike on their own (block times, memory, links to and from rank 0).
  std::vector<std::vector<size_t>> classes;
  for (size_t r = 1; r <= R; ++r) {
    size_t cl = 0;
    while (cl < classes.size() && !alike(r, classes[cl][0])) ++cl;
    if (cl == classes.size()) classes.emplace_back();
    classes[cl].push_back(r);
  }
  // 2. Refine until, for every rank x and class P, all ranks of P other than x have the same links
  // to and from x, and every two-rank class is linked alike both ways. Then the link between two
  // distinct ranks depends only on their classes (docs/planner.md gives the argument). Classes are
  // only ever split, so this ends after at most R splits.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t x = 1; x <= R; ++x) {
      for (size_t p = 0; p < classes.size(); ++p) {
        std::vector<std::vector<size_t>> groups;
        bool has_x = false;
        for (size_t a : classes[p]) {
          if (a == x) {
            has_x = true;
            continue;
          }
          size_t g = 0;
          while (g < groups.size() && !(close_link(c.link(a, x), c.link(groups[g][0], x)) &&
                                        close_link(c.link(x, a), c.link(x, groups[g][0]))))
            ++g;
          if (g == groups.size()) groups.emplace_back();
          groups[g].push_back(a);
        }
        if (groups.size() <= 1) continue;
        if (has_x) groups[0].push_back(x);
        classes[p] = groups[0];
        for (size_t g = 1; g < groups.size(); ++g) classes.push_back(groups[g]);
        changed = true;
      }
    }
    for (size_t p = 0; p < classes.size(); ++p) {
      if (classes[p].size() != 2) continue;
      const size_t a = classes[p][0], b = classes[p][1];
      if (close_link(c.link(a, b), c.link(b, a))) continue;
      classes[p] = {a};
      classes.push_back({b});
      changed = true;
    }
  }
  for (auto& cl : classes) std::sort(cl.begin(), cl.end());
  std::sort(classes.begin(), classes.end());
  rt.members = classes;
  for (size_t ty = 0; ty < classes.size(); ++ty)
    for (size_t r : classes[ty]) rt.type_of_rank[r] = ty;
  return rt;
}

Plan plan_optimal(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const auto [Kmin, K] = stage_range(m, c, o);
  const RankTypes types = group_ranks(m, c, o.group_tolerance);
  const TypedInstance t = make_typed(m, c, types);
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
  const ComboSpace s = make_combos(cap, K);
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

  if (!memory_feasible(m, t, s, 0.0, Kmin)) fail_memory(m, c, t, s, Kmin, K);

  ExactPlanner dp(m, t, s, Kmin, K);
  const double period = dp.phase1();
  EP_CHECK(period != kInf, "internal error: no plan found although the model fits in memory");
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

Plan plan_brute_force(const ModelCosts& m, const Cluster& c, double max_plans, size_t min_stages) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), R = c.num_stage_ranks();
  // sum over k of C(n-1, k-1) cut sets x R!/(R-k)! placements.
  double plans = 0, cuts = 1, places = 1;
  for (size_t k = 1; k <= std::min(n, R); ++k) {
    if (k > 1) cuts = cuts * static_cast<double>(n - k + 1) / static_cast<double>(k - 1);
    places *= static_cast<double>(R - k + 1);
    plans += cuts * places;
  }
  EP_CHECK(plans <= max_plans, "brute force: ", plans, " plans are too many (limit ", max_plans,
           ")");

  const StageRule rule(m);
  struct Search {
    const ModelCosts& m;
    const Cluster& c;
    const StageRule& rule;
    size_t n, R, min_stages;
    std::vector<char> used;
    std::vector<Stage> cur, best_stages;
    double best = kInf;

    // Blocks [0, i) are placed, the last stage on rank prev; so_far = max of the terms so far.
    void go(size_t i, size_t prev, double so_far) {
      if (i == n) {
        if (cur.size() < min_stages) return;
        double total = std::max(so_far, c.link(prev, 0).time_s(m.cut_bytes[n]));
        if (total < best) {
          best = total;
          best_stages = cur;
        }
        return;
      }
      for (size_t r = 1; r <= R; ++r) {
        if (used[r]) continue;
        const double recv = c.link(prev, r).time_s(m.cut_bytes[i]);
        double work = rule.start(i), params = 0, act = 0;
        for (size_t j = i + 1; j <= n; ++j) {
          work += block_s(m, c.ranks[r], j - 1);
          params += m.blocks[j - 1].param_bytes;
          act = std::max(act, m.blocks[j - 1].act_bytes);
          if (params + act > c.ranks[r].memory_bytes) break;  // longer stages do not fit either
          used[r] = 1;
          cur.push_back({r, i, j});
          go(j, r, std::max({so_far, recv, rule.term(work, i, j)}));
          cur.pop_back();
          used[r] = 0;
        }
      }
    }
  } search{m, c, rule, n, R, min_stages, std::vector<char>(R + 1, 0), {}, {}, kInf};
  search.go(0, 0, dispatcher_s(m));
  return finish("brute-force", m, c, search.best_stages,
                search.best_stages.empty()
                    ? (min_stages > 1 ? "no plan of at least " + std::to_string(min_stages) +
                                            " stages fits in memory"
                                      : "no plan fits in memory")
                    : "");
}

Plan plan_random(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), R = c.num_stage_ranks();
  const auto [Kmin, K] = stage_range(m, c, o);
  SplitMix64 rng{o.seed};
  std::vector<size_t> cut_pool(n - 1), rank_pool(R);
  for (size_t tries = 0; tries < o.random_tries; ++tries) {
    const size_t k = Kmin + rng.below(K - Kmin + 1);
    std::iota(cut_pool.begin(), cut_pool.end(), size_t{1});
    std::iota(rank_pool.begin(), rank_pool.end(), size_t{1});
    for (size_t x = 0; x + 1 < k; ++x) std::swap(cut_pool[x], cut_pool[x + rng.below(n - 1 - x)]);
    for (size_t x = 0; x < k; ++x) std::swap(rank_pool[x], rank_pool[x + rng.below(R - x)]);
    std::vector<size_t> bounds(cut_pool.begin(), cut_pool.begin() + (k - 1));
    bounds.push_back(0);
    bounds.push_back(n);
    std::sort(bounds.begin(), bounds.end());
    std::vector<Stage> stages;
    for (size_t x = 0; x < k; ++x) stages.push_back({rank_pool[x], bounds[x], bounds[x + 1]});
    if (evaluate_plan(m, c, stages).fits) return finish("random", m, c, std::move(stages));
  }
  return finish("random", m, c, {},
                "none of " + std::to_string(o.random_tries) + " random plans fits in memory");
}

Plan plan_greedy(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), R = c.num_stage_ranks(), K = stage_limit(m, c, o);
  double total = 0;
  for (const BlockCost& b : m.blocks) total += b.ref_ms;
  const double share = total / static_cast<double>(K);
  std::vector<Stage> stages;
  size_t i = 0;
  for (size_t r = 1; r <= R && i < n && stages.size() < K; ++r) {
    const bool last = r == R || stages.size() + 1 == K;  // the last rank takes the rest
    double params = 0, act = 0, work = 0;
    size_t j = i;
    while (j < n) {
      const BlockCost& b = m.blocks[j];
      if (params + b.param_bytes + std::max(act, b.act_bytes) > c.ranks[r].memory_bytes) break;
      if (!last && j > i && work + b.ref_ms > share) break;
      params += b.param_bytes;
      act = std::max(act, b.act_bytes);
      work += b.ref_ms;
      ++j;
    }
    if (j == i) continue;  // not even block i fits here: try the next rank
    stages.push_back({r, i, j});
    i = j;
  }
  if (i < n)
    return finish("greedy", m, c, {},
                  "the ranks filled in turn hold only the first " + std::to_string(i) + " of " +
                      std::to_string(n) + " blocks");
  return finish("greedy", m, c, std::move(stages));
}

Plan plan_equal_blocks(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), k = stage_range(m, c, o).second;  // >= min_stages
  std::vector<Stage> stages;
  for (size_t x = 0; x < k; ++x) stages.push_back({x + 1, x * n / k, (x + 1) * n / k});
  PlanCost pc = evaluate_plan(m, c, stages);
  for (size_t x = 0; x < k; ++x)
    if (!pc.stages[x].fits())
      return finish("equal-blocks", m, c, {},
                    "stage " + std::to_string(x) + " needs " +
                        format_bytes(pc.stages[x].memory_bytes) + " but rank " +
                        std::to_string(x + 1) + " has " +
                        format_bytes(pc.stages[x].memory_limit_bytes));
  return finish("equal-blocks", m, c, std::move(stages));
}

Cluster pipeedge_view(const Cluster& c) {
  Cluster v = c;
  const size_t N = c.num_ranks();
  for (size_t a = 0; a < N; ++a) {
    double bw = 0, lat = 0;
    for (size_t b = 0; b < N; ++b)
      if (b != a) {
        bw += c.link(a, b).bandwidth_Bps;
        lat += c.link(a, b).latency_s;
      }
    if (N < 2) continue;
    const Link mean{lat / static_cast<double>(N - 1), bw / static_cast<double>(N - 1)};
    for (size_t b = 0; b < N; ++b)
      if (b != a) v.links[a][b] = mean;
  }
  return v;
}

Plan plan_pipeedge(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  Plan seen = plan_optimal(m, pipeedge_view(c), o);
  Plan p = finish("pipeedge", m, c, seen.stages);
  p.rank_types = seen.rank_types;
  char buf[96];
  std::snprintf(buf, sizeof buf, "planned for a period of %.3f ms under one link per device",
                seen.cost.period_s * 1e3);
  p.note = buf;
  return p;
}

std::string format_plan(const Plan& p, const ModelCosts& m, const Cluster& c) {
  std::ostringstream out;
  char buf[256];
  if (!p.found()) {
    out << p.method << ": no plan (" << p.note << ")\n";
    return out.str();
  }
  std::snprintf(buf, sizeof buf, "%-5s %-14s %-9s %10s %9s %9s %11s %11s %10s\n", "stage", "rank",
                "blocks", "compute_ms", "recv_ms", "send_ms", "memory_MiB", "bytes_out",
                "period_ms");
  out << buf;
  for (size_t k = 0; k < p.stages.size(); ++k) {
    const Stage& s = p.stages[k];
    const StageCost& sc = p.cost.stages[k];
    std::string rank = std::to_string(s.rank);
    if (!c.ranks[s.rank].name.empty()) rank += " (" + c.ranks[s.rank].name + ")";
    std::string blocks = std::to_string(s.first) + "-" + std::to_string(s.end - 1);
    std::snprintf(buf, sizeof buf, "%-5zu %-14s %-9s %10.3f %9.3f %9.3f %11.1f %11.0f %10.3f%s\n",
                  k, rank.c_str(), blocks.c_str(), sc.compute_s * 1e3, sc.recv_s * 1e3,
                  sc.send_s * 1e3, mib(sc.memory_bytes), m.cut_bytes[s.end], sc.period_s() * 1e3,
                  sc.fits() ? "" : "  (does not fit)");
    out << buf;
  }
  std::snprintf(
      buf, sizeof buf, "%s: %zu stages, predicted period %.3f ms%s%s\n", p.method.c_str(),
      p.stages.size(), p.cost.period_s * 1e3, p.cost.fits ? "" : " (DOES NOT FIT)",
      m.codec_thread ? "; codec beside compute: compute_ms = max(blocks, decode + encode)" : "");
  out << buf;
  return out.str();
}

}  // namespace edgepipe
