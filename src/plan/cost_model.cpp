#include "edgepipe/plan/cost_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "edgepipe/base/error.h"
#include "stage_rule.h"

namespace edgepipe {

namespace {

bool finite_nonneg(double v) { return std::isfinite(v) && v >= 0; }

void validate_model(const ModelCosts& m) {
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
}

void validate_ranks(const ModelCosts& m, const Cluster& c) {
  const size_t n = m.num_blocks(), R = c.num_stage_ranks();
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
}

void validate_links(const Cluster& c) {
  const size_t R = c.num_stage_ranks();
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

// The stages cover blocks 0..n in order, each non-empty, each replica on its own stage rank.
void check_stages(const ModelCosts& m, const Cluster& c, const std::vector<Stage>& stages) {
  const size_t n = m.num_blocks();
  EP_CHECK(!stages.empty(), "a plan needs at least one stage");
  std::vector<char> used(c.num_ranks(), 0);
  size_t expect = 0;
  for (const Stage& s : stages) {
    EP_CHECK(s.first == expect && s.end > s.first && s.end <= n, "the stages must cover blocks 0..",
             n, " in order, each non-empty; got a stage [", s.first, ", ", s.end, ")");
    EP_CHECK(s.ranks.empty() || s.ranks.front() == s.rank, "a stage on rank ", s.rank,
             " lists replicas that start with rank ", s.ranks.front(),
             " (Stage::ranks starts with ", "Stage::rank)");
    for (size_t r : s.replicas()) {
      EP_CHECK(r >= 1 && r < c.num_ranks(), "a stage is on rank ", r, ", not a stage rank (1..",
               c.num_stage_ranks(), ")");
      EP_CHECK(!used[r], "rank ", r, " runs two stages");
      used[r] = 1;
    }
    expect = s.end;
  }
  EP_CHECK(expect == n, "the stages end at block ", expect, " of ", n);
}

// One replica, on rank r, of stage s between the ranks `prev` (rank 0 before the first stage)
// and `next` (rank 0 after the last).
ReplicaCost replica_cost(const ModelCosts& m, const Cluster& c, const StageRule& rule,
                         const Stage& s, size_t r, const std::vector<size_t>& prev,
                         const std::vector<size_t>& next) {
  ReplicaCost rc;
  rc.rank = r;
  double work = rule.start(s.first), params = 0, act = 0;
  for (size_t b = s.first; b < s.end; ++b) {
    work += block_s(m, c.ranks[r], b);
    params += m.blocks[b].param_bytes;
    act = std::max(act, m.blocks[b].act_bytes);
  }
  rc.compute_s = rule.term(work, s.first, s.end);
  rc.codec_s = rule.codec(s.first, s.end);
  for (size_t from : prev)
    rc.recv_s = std::max(rc.recv_s, c.link(from, r).time_s(m.cut_bytes[s.first]));
  rc.send_s = next.size() == 1 ? c.link(r, next[0]).time_s(m.cut_bytes[s.end])
                               : m.cut_bytes[s.end] / interface_Bps(c, r);
  rc.memory_bytes = params + act;
  rc.memory_limit_bytes = c.ranks[r].memory_bytes;
  return rc;
}

StageCost stage_cost(const ModelCosts& m, const Cluster& c, const StageRule& rule, const Stage& s,
                     const std::vector<size_t>& prev, const std::vector<size_t>& next) {
  StageCost sc;
  for (size_t r : s.replicas()) sc.replicas.push_back(replica_cost(m, c, rule, s, r, prev, next));
  const ReplicaCost& first = sc.replicas.front();
  sc.compute_s = first.compute_s;
  sc.codec_s = first.codec_s;
  sc.recv_s = first.recv_s;
  sc.send_s = first.send_s;
  sc.memory_bytes = first.memory_bytes;
  sc.memory_limit_bytes = first.memory_limit_bytes;
  return sc;
}

}  // namespace

double ReplicaCost::period_s() const { return std::max({compute_s, recv_s, send_s}); }

double StageCost::period_s() const {
  if (replicas.size() <= 1) return std::max({compute_s, recv_s, send_s});
  std::vector<double> periods;
  for (const ReplicaCost& r : replicas) periods.push_back(r.period_s());
  return stage_period(period_groups(periods));
}

bool StageCost::fits() const {
  if (replicas.empty()) return memory_bytes <= memory_limit_bytes;
  for (const ReplicaCost& r : replicas)
    if (!r.fits()) return false;
  return true;
}

void validate_problem(const ModelCosts& m, const Cluster& c) {
  validate_model(m);
  validate_ranks(m, c);
  validate_links(c);
}

PlanCost evaluate_plan(const ModelCosts& m, const Cluster& c, const std::vector<Stage>& stages) {
  check_stages(m, c, stages);
  const StageRule rule(m);
  const size_t n = m.num_blocks();
  PlanCost pc;
  pc.dispatcher_s = dispatcher_s(m);
  const std::vector<size_t> first = stages.front().replicas(), last = stages.back().replicas();
  pc.dispatcher_send_s = first.size() == 1 ? c.link(0, first[0]).time_s(m.cut_bytes[0])
                                           : m.cut_bytes[0] / interface_Bps(c, 0);
  for (size_t r : last)
    pc.dispatcher_recv_s = std::max(pc.dispatcher_recv_s, c.link(r, 0).time_s(m.cut_bytes[n]));
  pc.period_s = std::max({pc.dispatcher_s, pc.dispatcher_send_s, pc.dispatcher_recv_s});
  const std::vector<size_t> dispatcher = {0};
  for (size_t k = 0; k < stages.size(); ++k) {
    const std::vector<size_t> prev = k == 0 ? dispatcher : stages[k - 1].replicas();
    const std::vector<size_t> next = k + 1 == stages.size() ? dispatcher : stages[k + 1].replicas();
    StageCost sc = stage_cost(m, c, rule, stages[k], prev, next);
    pc.fits = pc.fits && sc.fits();
    pc.period_s = std::max(pc.period_s, sc.period_s());
    if (k > 0) pc.link_bytes += m.cut_bytes[stages[k].first];
    pc.stages.push_back(std::move(sc));
  }
  return pc;
}

}  // namespace edgepipe
