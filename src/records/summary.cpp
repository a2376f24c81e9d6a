// The run log's /summary: throughput, the measured period, the verdict on what set the pace,
// and the energy totals (docs/runlog.md, "/summary").
#include <algorithm>
#include <cstdio>
#include <map>

#include "edgepipe/records/runlog.h"

namespace edgepipe {

namespace {

// The busy and send-wait time per batch of one stage rank.
double busy_per_batch(const StageCounters& c, bool overlap) {
  // With overlap the blocks compute on a thread of their own, beside the decode and encode.
  return overlap ? std::max(c.time_compute, c.time_decode + c.time_encode) / c.batches
                 : (c.time_decode + c.time_compute + c.time_encode) / c.batches;
}

// The job's rank that ran stage s, or rank 0 (the dispatcher) when no rank ran it.
int rank_of_stage(const RunLog& log, int s) {
  for (const RankLog& r : log.ranks)
    if (r.stage == s) return r.rank;
  return 0;
}

// The verdict: the stage busy for most of the period sets the pace (by compute or by its codec);
// else a stage that waits for its sends points at the link after it; else rank 0.
void judge_bottleneck(const RunLog& log, RunSummary& s) {
  double busiest = -1, most_send_wait = -1;
  const RankLog *busy = nullptr, *waits = nullptr;
  // A stage's replicas share its batches: each one's time per batch of the stage's is its time
  // per batch of its own times its share.
  std::map<int, double> stage_batches;
  for (const RankLog& r : log.ranks)
    if (r.stage >= 0) stage_batches[r.stage] += r.counters.batches;
  for (const RankLog& r : log.ranks) {
    if (r.stage < 0 || r.counters.batches <= 0) continue;
    const double share = r.counters.batches / stage_batches[r.stage];
    const double b = busy_per_batch(r.counters, log.overlap) * share;
    if (b > busiest) busiest = b, busy = &r;
    const double sw = r.counters.time_send_wait / r.counters.batches * share;
    if (sw > most_send_wait) most_send_wait = sw, waits = &r;
  }
  const double P = s.period_s;
  char why[400];
  if (busy && P > 0 && busiest >= 0.7 * P) {
    const StageCounters& c = busy->counters;
    const double share = c.batches / stage_batches[busy->stage];
    const double codec = (c.time_encode + c.time_decode) / c.batches * share;
    const double compute = c.time_compute / c.batches * share;
    s.bottleneck_stage = busy->stage;
    s.bottleneck_rank = busy->rank;
    s.bottleneck_cause = codec > compute ? "codec" : "compute";
    std::snprintf(why, sizeof why,
                  "stage %d (rank %d) is busy %.0f%% of the %.2f ms period: compute %.2f ms %s "
                  "codec %.2f ms per batch",
                  busy->stage, busy->rank, 100 * busiest / P, 1e3 * P, 1e3 * compute,
                  log.overlap ? "beside" : "+", 1e3 * codec);
  } else if (waits && P > 0 && most_send_wait >= 0.3 * P) {
    s.bottleneck_stage = waits->stage;
    s.bottleneck_rank = waits->rank;
    s.bottleneck_cause = "link";
    const int link = waits->stage + 2;  // links count in pipeline order: stage s sends on s + 2
    const int to = rank_of_stage(log, waits->stage + 1);
    std::snprintf(why, sizeof why,
                  "stage %d (rank %d) waits %.2f ms of the %.2f ms period for its sends to "
                  "rank %d to complete (link %d)",
                  waits->stage, waits->rank, 1e3 * most_send_wait, 1e3 * P, to, link);
  } else {
    s.bottleneck_stage = -1;
    s.bottleneck_rank = 0;
    s.bottleneck_cause = "dispatcher";
    std::snprintf(why, sizeof why,
                  "no stage is busy for most of the %.2f ms period (the busiest %.0f%%): rank 0 "
                  "(reading inputs, writing outputs) or --inflight sets the pace",
                  1e3 * P, P > 0 ? 100 * std::max(busiest, 0.0) / P : 0.0);
  }
  s.bottleneck_reason = why;
}

}  // namespace

void summarise(RunLog& log) {
  RunSummary& s = log.summary;
  s.images_per_s = s.wall_s > 0 ? s.images / s.wall_s : 0;
  s.period_s = s.steady_images_per_s > 0 ? s.batch_size / s.steady_images_per_s : 0;
  s.predicted_period_s = log.plan_period_s;
  judge_bottleneck(log, s);
  s.energy_j = 0;
  bool rapl = false, model = false;
  for (const RankLog& r : log.ranks) {
    s.energy_j += r.energy_j;
    (r.energy_source.rfind("RAPL", 0) == 0 ? rapl : model) = true;
  }
  s.energy_per_image_j = s.images > 0 ? s.energy_j / s.images : 0;
  if (rapl && model)
    s.energy_source = "mixed: RAPL on some hosts, the model on others (see /ranks/<r>/totals)";
  else if (!log.ranks.empty())
    s.energy_source = log.ranks[0].energy_source;
}

}  // namespace edgepipe
