// stage_rule: the arithmetic every part of the planner shares (private to src/plan/): block and
// codec times per batch, and a stage's compute term. evaluate_plan, the exact planner and the
// brute force all go through these, accumulating in block order, so that for identical ranks
// their periods agree to the last bit, not only within rounding.
#pragma once
#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"

namespace edgepipe {

constexpr double kInf = std::numeric_limits<double>::infinity();

inline double block_s(const ModelCosts& m, const RankInfo& r, size_t b) {
  return r.block_ms.empty() ? m.blocks[b].ref_ms / r.speed / 1000.0 : r.block_ms[b] / 1000.0;
}
inline double encode_s(const ModelCosts& m, size_t cut) {
  return m.cut_encode_ms.empty() ? 0.0 : m.cut_encode_ms[cut] / 1000.0;
}
inline double decode_s(const ModelCosts& m, size_t cut) {
  return m.cut_decode_ms.empty() ? 0.0 : m.cut_decode_ms[cut] / 1000.0;
}
// Rank 0's codec work per batch: encode the inputs, decode the outputs.
inline double dispatcher_s(const ModelCosts& m) {
  return encode_s(m, 0) + decode_s(m, m.num_blocks());
}

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
// The period of a stage whose replicas take batches whichever is ready: 1 / sum(1 / p_i) for
// replica periods p_i. The replicas come as (period, count) groups in ascending order of period,
// equal periods in one group (period_groups), so that the same replicas give the same bits in
// evaluate_plan and in the exact planner however they are listed; one group is p / count (one
// replica: its own period, exactly).
inline double stage_period(const std::vector<std::pair<double, size_t>>& groups) {
  if (groups.size() == 1) return groups[0].first / static_cast<double>(groups[0].second);
  double rate = 0;
  for (const auto& g : groups) rate += static_cast<double>(g.second) / g.first;
  return 1 / rate;
}

// Replica periods as stage_period's groups.
inline std::vector<std::pair<double, size_t>> period_groups(std::vector<double> periods) {
  std::sort(periods.begin(), periods.end());
  std::vector<std::pair<double, size_t>> groups;
  for (double p : periods) {
    if (groups.empty() || groups.back().first != p) groups.push_back({p, 0});
    ++groups.back().second;
  }
  return groups;
}

// A rank's interface as the cost model takes it: as fast as its fastest outgoing link (a link is
// no faster than either end's interface). Bytes per second.
inline double interface_Bps(const Cluster& c, size_t r) {
  double bw = 0;
  for (size_t x = 0; x < c.num_ranks(); ++x)
    if (x != r) bw = std::max(bw, c.link(r, x).bandwidth_Bps);
  return bw;
}

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

}  // namespace edgepipe
