#include "typed_problem.h"

#include <algorithm>
#include <numeric>

#include "stage_rule.h"

namespace edgepipe {

namespace {

Link worse(const Link& a, const Link& b) {
  return {std::max(a.latency_s, b.latency_s), std::min(a.bandwidth_Bps, b.bandwidth_Bps)};
}

}  // namespace

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
  t.interface_Bps.assign(t.T, kInf);
  t.dispatcher_interface_Bps = interface_Bps(c, 0);
  for (size_t ty = 0; ty < t.T; ++ty) {
    for (size_t r : t.members[ty]) {
      t.interface_Bps[ty] = std::min(t.interface_Bps[ty], interface_Bps(c, r));
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

}  // namespace edgepipe
