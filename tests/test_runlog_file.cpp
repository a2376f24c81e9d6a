// The run log as a file without MPI: the summary's verdict, the log's writer and reader, the
// stored profile that `--profile LOG` plans from, a failed run's log, and the report.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/io/h5_attributes.h"
#include "edgepipe/plan/measured.h"
#include "edgepipe/plan/policy.h"
#include "edgepipe/records/profile_log.h"
#include "edgepipe/records/report.h"
#include "edgepipe/records/runlog.h"
#include "edgepipe/records/runlog_tables.h"
#include "runlog_fixtures.h"

using namespace edgepipe;
namespace fs = std::filesystem;

namespace {

// A run of 2 stages over 10 batches: stage `slow` computes `compute_ms` per batch.
RunLog synthetic_log(double compute0_ms, double compute1_ms, double codec1_ms,
                     double send_wait0_ms) {
  RunLog L;
  L.command_line = "edgepipe run --model m.pt";
  L.model = "m.pt";
  L.stage_rank = {1, 2};
  L.stage_compute_s = {0.0045, 0.0052};
  L.plan_period_s = 0.0052;
  L.plan_method = "optimal";
  RankLog root;
  root.facts = facts("h", 1.0, 0.2);
  root.dispatch_totals.seq = 10;
  root.dispatch_totals.bytes_out = 1000;
  root.dispatch.resize(10);
  L.ranks.push_back(root);
  const double compute[2] = {compute0_ms, compute1_ms}, codec[2] = {0, codec1_ms},
               send_wait[2] = {send_wait0_ms, 0};
  for (int s = 0; s < 2; ++s) {
    RankLog r;
    r.rank = s + 1;
    r.stage = s;
    r.facts = facts("h", 0.1, 0.08);
    r.counters.batches = 10;
    r.counters.time_compute = compute[s] * 10 / 1e3;
    r.counters.time_encode = codec[s] * 10 / 1e3;
    r.counters.time_send_wait = send_wait[s] * 10 / 1e3;
    r.counters.bytes_out = 500;
    r.counters.link_out.bytes_raw = 800;
    r.counters.link_out.bytes_encoded = 200;
    r.batches.resize(10);
    for (int b = 0; b < 10; ++b) r.batches[b].seq = b;
    r.energy_j = 1.5;
    r.energy_source = "model edge";
    L.ranks.push_back(r);
  }
  L.ranks[0].energy_j = 1;
  L.ranks[0].energy_source = "model edge";
  L.links.resize(3);
  std::strcpy(L.links[1].codec, "zfp-rate:8");
  L.links[1].bytes_raw = 800;
  L.links[1].bytes_encoded = 200;
  L.summary.images = 20;
  L.summary.batches = 10;
  L.summary.batch_size = 2;
  L.summary.wall_s = 0.1;
  L.summary.steady_images_per_s = 200;  // period 10 ms
  summarise(L);
  return L;
}

}  // namespace

TEST(Summary, Verdicts) {
  auto compute = synthetic_log(9, 5, 0, 0).summary;
  EXPECT_EQ(compute.bottleneck_cause, "compute");
  EXPECT_EQ(compute.bottleneck_stage, 0);
  EXPECT_NEAR(compute.period_s, 0.01, 1e-12);
  EXPECT_NEAR(compute.predicted_period_s, 0.0052, 1e-12);
  EXPECT_NEAR(compute.images_per_s, 200, 1e-9);
  EXPECT_NEAR(compute.energy_j, 4, 1e-12);
  EXPECT_NEAR(compute.energy_per_image_j, 0.2, 1e-12);
  auto codec = synthetic_log(3, 3, 6, 0).summary;
  EXPECT_EQ(codec.bottleneck_cause, "codec");
  EXPECT_EQ(codec.bottleneck_stage, 1);
  auto link = synthetic_log(3, 3, 0, 5).summary;
  EXPECT_EQ(link.bottleneck_cause, "link");
  EXPECT_NE(link.bottleneck_reason.find("link 2"), std::string::npos) << link.bottleneck_reason;
  auto idle = synthetic_log(2, 2, 0, 0).summary;
  EXPECT_EQ(idle.bottleneck_cause, "dispatcher");
  EXPECT_EQ(idle.bottleneck_stage, -1);
}

namespace {

// The same run with stage s on the job's rank ranks[s] (the planner's placement).
RunLog placed(RunLog L, const std::vector<int>& ranks) {
  L.stage_rank.assign(ranks.begin(), ranks.end());
  for (size_t s = 0; s < ranks.size(); ++s) L.ranks[s + 1].rank = ranks[s];
  summarise(L);
  return L;
}

}  // namespace

// One meaning of "rank" across the log: the job's rank; pipeline positions are stages.
TEST(Summary, BottleneckNamesTheJobsRank) {
  const RunSummary compute = placed(synthetic_log(9, 5, 0, 0), {3, 2}).summary;
  EXPECT_EQ(compute.bottleneck_stage, 0);
  EXPECT_EQ(compute.bottleneck_rank, 3);
  EXPECT_NE(compute.bottleneck_reason.find("stage 0 (rank 3) is busy"), std::string::npos)
      << compute.bottleneck_reason;
  const RunSummary codec = placed(synthetic_log(3, 3, 6, 0), {3, 2}).summary;
  EXPECT_EQ(codec.bottleneck_stage, 1);
  EXPECT_EQ(codec.bottleneck_rank, 2);
  // Stage 0 on rank 3 sends to stage 1 on rank 2, over link 2.
  const RunSummary link = placed(synthetic_log(3, 3, 0, 5), {3, 2}).summary;
  EXPECT_EQ(link.bottleneck_rank, 3);
  EXPECT_NE(link.bottleneck_reason.find("stage 0 (rank 3) waits"), std::string::npos);
  EXPECT_NE(link.bottleneck_reason.find("to rank 2 to complete (link 2)"), std::string::npos)
      << link.bottleneck_reason;
  EXPECT_EQ(placed(synthetic_log(2, 2, 0, 0), {3, 2}).summary.bottleneck_rank, 0);
}

// With rank 1 idle, the groups are 0, 2 and 3: the report names each stage's rank, in pipeline
// order, and /links names the job's ranks at each end.
TEST(RunLogFile, ReportAndLinksNameTheJobsRanks) {
  TempDir tmp;
  const std::string path = (tmp.path / "placed.log.h5").string();
  write_run_log(path, placed(synthetic_log(9, 5, 0, 0), {3, 2}));
  RunLogFile f = read_run_log(path);
  ASSERT_EQ(f.totals.size(), 3u);
  EXPECT_EQ(f.totals[1]["rank"], 2);
  EXPECT_EQ(f.totals[1]["stage"], 1);
  const std::string report = report_text(f, path);
  const size_t stage0 = report.find("\n      0     3  "), stage1 = report.find("\n      1     2  ");
  EXPECT_NE(stage0, std::string::npos) << report;
  EXPECT_NE(stage1, std::string::npos) << report;
  EXPECT_LT(stage0, stage1) << report;
  EXPECT_NE(report.find("stage 0 (rank 3) is busy"), std::string::npos) << report;
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, "opening the log");
  const std::vector<LinkRow> links = h5_read_table<LinkRow>(file.get(), "links", link_row_type());
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0].from_rank, 0);
  EXPECT_EQ(links[0].to_rank, 3);
  EXPECT_EQ(links[1].from_rank, 3);
  EXPECT_EQ(links[1].to_rank, 2);
  EXPECT_EQ(links[2].from_rank, 2);
  EXPECT_EQ(links[2].to_rank, 0);
  EXPECT_EQ(h5_read_ints(file.get(), "summary/rank", path), (std::vector<int64_t>{0, 3, 2}));
}

// A run that fails part-way still leaves its log, marked incomplete with the reason.
TEST(RunLogFile, FailedRunIsRecordedAsIncomplete) {
  TempDir tmp;
  const std::string path = (tmp.path / "failed.log.h5").string();
  RunLog L = synthetic_log(9, 5, 0, 0);
  L.failure = "watchdog: no batch completed for 4 s (--timeout)\n  stage 1 (rank 2) did not answer";
  L.ranks.resize(1);  // the stages never sent their counters
  summarise(L);
  EXPECT_FALSE(L.complete());
  write_run_log(path, L);
  RunLogFile f = read_run_log(path);
  EXPECT_EQ(f.run["complete"], 0);
  EXPECT_EQ(f.run["stopped_by_signal"], 0);
  EXPECT_EQ(f.run_text["failure"], L.failure);
  EXPECT_EQ(f.totals.size(), 1u);
  const std::string report = report_text(f, path);
  EXPECT_NE(report.find("failed before the end (the figures cover what rank 0 knew): watchdog: no "
                        "batch completed for 4 s (--timeout)\n"),
            std::string::npos)
      << report;
  write_run_log(path, synthetic_log(9, 5, 0, 0));
  f = read_run_log(path);
  EXPECT_EQ(f.run["complete"], 1);
  EXPECT_EQ(f.run_text["failure"], "");
  EXPECT_EQ(report_text(f, path).find("failed before the end"), std::string::npos);
}

// Everything `run --profile LOG` and `plan --profile LOG` plan from survives the log: rank 0's
// model costs and own work, the calibration timings, the options, what it is valid for.
TEST(RunLogFile, StoredProfileRoundTrip) {
  TempDir tmp;
  const std::string path = (tmp.path / "stored.log.h5").string();
  RunLog L = synthetic_log(9, 5, 0, 0);
  StoredProfile& p = L.profile;
  p.source = "measured at start-up";
  StartupProfile& sp = p.measurements.startup;
  sp.ranks.resize(3);
  for (int r = 0; r < 3; ++r) {
    sp.ranks[r].host = "node";
    sp.ranks[r].cores = 2;
    sp.ranks[r].memory_limit = int64_t(1) << 32;
    sp.ranks[r].memory_source = "the node";
    sp.ranks[r].ranks_on_host = 3;
    if (r > 0) sp.ranks[r].block_ms = {2.0, 4.0, 3.0};
  }
  sp.links.assign(3, std::vector<Link>(3, Link{1e-5, 1e9}));
  PlanMeasurements& m = p.measurements;
  m.model.blocks = {{2.5, 1e6, 2e5}, {4.5, 3e6, 1e5}, {3.5, 2e6, 5e4}};
  m.model.cut_bytes = {6e5, 2e5, 1e5, 4e3};
  m.model.cut_encode_ms = {0.5, 0.25, 0.125, 0.0625};
  m.model.cut_decode_ms = {0.4, 0.2, 0.1, 0.05};
  m.read_s = 1.25e-3;
  m.block_nodes = {0, 7, 19, 30};
  m.calibrations = {{{0, 19, 30}, {5.5, 2.75}}, {{0, 7, 30}, {1.5, 6.5}}};
  p.identity = MeasuredIdentity{"abc123", 2, 1, {3, 32, 32}, "1=lz4,raw"};
  p.policy.stages = 2;
  p.policy.max_stages = 2;
  p.policy.group_tolerance = 0.05;
  p.policy.overlap = "off";
  p.policy.calibrate = 3;
  p.policy.coded_links = {1};
  write_run_log(path, L);
  const StoredProfile q = read_stored_profile(path);
  EXPECT_EQ(q.source, p.source);
  ASSERT_EQ(q.measurements.model.blocks.size(), 3u);
  for (size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(q.measurements.model.blocks[b].ref_ms, m.model.blocks[b].ref_ms);
    EXPECT_EQ(q.measurements.model.blocks[b].param_bytes, m.model.blocks[b].param_bytes);
    EXPECT_EQ(q.measurements.model.blocks[b].act_bytes, m.model.blocks[b].act_bytes);
  }
  EXPECT_EQ(q.measurements.model.cut_bytes, m.model.cut_bytes);
  EXPECT_EQ(q.measurements.model.cut_encode_ms, m.model.cut_encode_ms);
  EXPECT_EQ(q.measurements.model.cut_decode_ms, m.model.cut_decode_ms);
  EXPECT_EQ(q.measurements.read_s, m.read_s);
  EXPECT_EQ(q.measurements.block_nodes, m.block_nodes);
  ASSERT_EQ(q.measurements.calibrations.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(q.measurements.calibrations[i].node_bounds, m.calibrations[i].node_bounds);
    EXPECT_EQ(q.measurements.calibrations[i].stage_ms, m.calibrations[i].stage_ms);
  }
  EXPECT_EQ(identity_differences(q.identity, p.identity), "");
  EXPECT_EQ(q.policy.stages, 2u);
  EXPECT_EQ(q.policy.max_stages, 2u);
  EXPECT_EQ(q.policy.group_tolerance, 0.05);
  EXPECT_EQ(q.policy.overlap, "off");
  EXPECT_EQ(q.policy.calibrate, 3);
  EXPECT_EQ(q.policy.coded_links, (std::vector<int64_t>{1}));
  // The same measurements give the same plan and period, with the stored timings replayed.
  const PlanDecision a = decide_plan(m, p.policy, replay_calibrations(m.calibrations));
  const PlanDecision b =
      decide_plan(q.measurements, q.policy, replay_calibrations(q.measurements.calibrations));
  EXPECT_EQ(a.plan.period_s(), b.plan.period_s());
  EXPECT_EQ(a.plan.stages.size(), 2u);
}

// The start-up profile survives the log, so `run --profile LOG` plans as the measured run did;
// a log whose ranks sit on other hosts keeps them apart (and idle ranks have no /ranks group).
TEST(RunLogFile, StartupProfileRoundTrip) {
  TempDir tmp;
  const std::string path = (tmp.path / "p.log.h5").string();
  RunLog L = synthetic_log(9, 5, 0, 0);
  StartupProfile& p = L.profile.measurements.startup;
  p.seconds = 2.5;
  p.ranks.resize(3);
  for (int r = 0; r < 3; ++r) {
    p.ranks[r].host = r == 2 ? "node-b" : "node-a";
    p.ranks[r].threads = r + 1;
    p.ranks[r].cores = 1.5 * (r + 1);
    p.ranks[r].memory_limit = (int64_t(1) << 30) * (r + 1);
    p.ranks[r].memory_source = r == 1 ? "--max-memory" : "the node";
    p.ranks[r].ranks_on_host = r == 2 ? 1 : 2;
    if (r > 0) p.ranks[r].block_ms = {1.0 * r, 2.0 * r, 3.5 * r};
    if (r > 0) p.ranks[r].block_ms_busy = {1.5 * r, 3.0 * r, 5.25 * r};
  }
  p.links.assign(3, std::vector<Link>(3, Link{0, 1e18}));
  p.links[0][1] = p.links[1][0] = Link{1e-5, 1e9};
  p.links[1][2] = p.links[2][1] = Link{2e-3, 1.25e7};
  p.links[0][2] = p.links[2][0] = Link{3e-3, 2.5e6};
  L.profile.measurements.model.blocks.assign(3, BlockCost{});
  L.profile.measurements.model.cut_bytes.assign(4, 0.0);
  L.profile.measurements.block_nodes = {0, 1, 2, 3};
  write_run_log(path, L);
  const StartupProfile q = read_stored_profile(path).measurements.startup;
  ASSERT_EQ(q.ranks.size(), 3u);
  EXPECT_EQ(q.seconds, 2.5);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(q.ranks[r].host, p.ranks[r].host);
    EXPECT_EQ(q.ranks[r].threads, p.ranks[r].threads);
    EXPECT_EQ(q.ranks[r].cores, p.ranks[r].cores);
    EXPECT_EQ(q.ranks[r].memory_limit, p.ranks[r].memory_limit);
    EXPECT_EQ(q.ranks[r].memory_source, p.ranks[r].memory_source);
    EXPECT_EQ(q.ranks[r].block_ms, p.ranks[r].block_ms);
    EXPECT_EQ(q.ranks[r].block_ms_busy, p.ranks[r].block_ms_busy);
    for (int s = 0; s < 3; ++s) {
      EXPECT_EQ(q.links[r][s].latency_s, p.links[r][s].latency_s);
      EXPECT_EQ(q.links[r][s].bandwidth_Bps, p.links[r][s].bandwidth_Bps);
    }
  }
  // Rank 1 says what it may use; rank 2's node limit is its own (alone on node-b); rank 1 and
  // 2 on different hosts with 2 and 3 threads on 3 and 4.5 cores: no slowdown.
  const Cluster c = cluster_of(q);
  EXPECT_EQ(c.ranks[1].memory_bytes, 2.0 * (1 << 30));
  EXPECT_EQ(c.ranks[2].memory_bytes, 3.0 * (1 << 30));
  EXPECT_EQ(c.ranks[2].block_ms, p.ranks[2].block_ms);
  EXPECT_EQ(host_slowdown(q, 1), 1.0);

  // Two stage ranks of 1 thread on one host of 1 core: each computes at half speed while both
  // do, at full speed alone; timed together they took 1.5x alone, less than their share of the
  // core explains, so no interference on top.
  StartupProfile one = q;
  for (auto& r : one.ranks) r.host = "n", r.threads = 1, r.cores = 1;
  EXPECT_EQ(host_slowdown(one, 1), 2.0);
  EXPECT_EQ(host_slowdown(one, 1, 1), 1.0);
  EXPECT_EQ(cluster_of(one).ranks[2].block_ms[2], 2 * 7.0);
  // On 2 cores both get a core each, yet timed together they took 1.5x alone: interference 1.5.
  for (auto& r : one.ranks) r.cores = 2;
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1), 1.5);
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1, 1), 1.0);
  // Rank 0 (on the same host) busy a quarter of a core per period: with one stage rank busy it
  // takes the spare core; with both, it takes a quarter of one stage's core, and that stage holds
  // up the pipeline: 1 / (1 - 0.25) on top.
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1, 1, 0.25), 1.0);
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1, 2, 0.25), 1.5 / 0.75);
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1, 1, 1.5), 1 / 0.5);  // half a core beyond the spare one
  // On 1 core the two time-slice (2x; timed together 1.5x, no interference) and rank 0's quarter
  // of the core leaves them 0.75 of it: 2 / 0.75.
  for (auto& r : one.ranks) r.cores = 1;
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1, 2, 0.25), 2 / 0.75);
  // Rank 0 on another host costs the stage ranks nothing.
  one.ranks[0].host = "other";
  EXPECT_DOUBLE_EQ(host_slowdown(one, 1, 2, 0.25), 2.0);

  EXPECT_THROW(read_stored_profile((tmp.path / "none.h5").string()), Error);
}

TEST(RunLogFile, WriteReadAndReport) {
  TempDir tmp;
  const std::string path = (tmp.path / "run.log.h5").string();
  RunLog L = synthetic_log(9, 5, 0, 0);
  write_run_log(path, L);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  RunLogFile f = read_run_log(path);
  EXPECT_EQ(f.run_text["command_line"], L.command_line);
  EXPECT_EQ(f.summary["images"], 20);
  EXPECT_NEAR(f.summary["period_s"], 0.01, 1e-12);
  EXPECT_EQ(f.summary_text["bottleneck_cause"], "compute");
  ASSERT_EQ(f.totals.size(), 3u);
  EXPECT_EQ(f.totals[0]["stage"], -1);
  EXPECT_EQ(f.totals[2]["stage"], 1);
  EXPECT_NEAR(f.totals[1]["time_compute_s"], 0.09, 1e-12);
  EXPECT_NEAR(f.totals[1]["wall_s"], 0.1, 1e-12);
  // The named times plus other add up to the wall time, by construction of the totals.
  EXPECT_NEAR(f.totals[1]["time_other_s"], 0.1 - 0.09, 1e-12);
  EXPECT_EQ(f.totals_text[1]["energy_source"], "model edge");
  ASSERT_EQ(f.links.size(), 3u);
  EXPECT_EQ(std::string(f.links[1].codec), "zfp-rate:8");

  const std::string report = report_text(f, path);
  EXPECT_NE(report.find("compute ms"), std::string::npos);
  EXPECT_NE(report.find("4.00"), std::string::npos) << report;  // ratio of stage 0's link out
  EXPECT_NE(report.find("bottleneck: compute - stage 0 (rank 1) is busy 90%"), std::string::npos)
      << report;
  EXPECT_NE(report.find("energy 4.00 J, 0.200 J per image; source: model edge"), std::string::npos)
      << report;

  const std::string path_b = (tmp.path / "b.log.h5").string();
  write_run_log(path_b, synthetic_log(4.5, 5, 0, 0));
  const std::string cmp = compare_text(f, path, read_run_log(path_b), path_b);
  EXPECT_NE(cmp.find("stage 0 compute ms/batch"), std::string::npos) << cmp;
  EXPECT_NE(cmp.find("0.500"), std::string::npos) << cmp;  // 4.5 / 9
  EXPECT_EQ(report.find("stopped by signal"), std::string::npos);

  RunLog stopped = synthetic_log(9, 5, 0, 0);
  stopped.stopped_by_signal = 15;
  stopped.trace = false;
  const std::string path_c = (tmp.path / "c.log.h5").string();
  write_run_log(path_c, stopped);
  const std::string rc = report_text(read_run_log(path_c), path_c);
  EXPECT_NE(rc.find("stopped by signal 15 before the end"), std::string::npos) << rc;
  EXPECT_NE(rc.find("per-batch records off"), std::string::npos) << rc;
}

// Each stage rank's memory by phase goes to its totals with its stage's planned memory; the
// report says whether its peak is within baseline + 1.5 x planned, and a log without the figures
// (written before they were recorded) shows them as unknown.
TEST(RunLogFile, MemoryByPhaseAndTheBound) {
  TempDir tmp;
  constexpr double M = 1024.0 * 1024.0;
  RunLog L = synthetic_log(9, 5, 0, 0);
  L.stage_memory_bytes = {20 * M, 40 * M};
  const double peaks[2][3] = {{900 * M, 200 * M, 220 * M}, {300 * M, 250 * M, 240 * M}};
  for (int s = 0; s < 2; ++s) {
    RankMemory& m = L.ranks[s + 1].facts.memory;
    m.rss_baseline = 170 * M;
    m.peak_rss_profile = peaks[s][0];
    m.rss_after_profile = 700 * M;
    m.rss_after_profile_trim = 190 * M;
    m.peak_rss_load = peaks[s][1];
    m.rss_after_load = 195 * M;
    m.rss_after_load_trim = 180 * M;
    m.peak_rss_stream = peaks[s][2];
    m.rss_end = 200 * M;
    m.peaks_per_phase = 1;
  }
  const std::string path = (tmp.path / "memory.log.h5").string();
  write_run_log(path, L);
  RunLogFile f = read_run_log(path);
  ASSERT_EQ(f.totals.size(), 3u);
  EXPECT_EQ(f.totals[0].count("rss_baseline_bytes"), 0u);  // rank 0: not measured
  EXPECT_EQ(f.totals[1]["rss_baseline_bytes"], 170 * M);
  EXPECT_EQ(f.totals[2]["stage_planned_memory_bytes"], 40 * M);
  EXPECT_EQ(f.totals[2]["peak_rss_load_bytes"], 250 * M);
  const std::string report = report_text(f, path);
  // stage 0: bound 170 + 30 = 200 MiB, peak 900 in the profiling, stream 220: both over.
  EXPECT_NE(report.find("200.0  no: +700.0 in profile; stream +20.0"), std::string::npos) << report;
  // stage 1: bound 170 + 60 = 230 MiB, profile 300 over, stream 240 over by 10.
  EXPECT_NE(report.find("230.0  no: +70.0 in profile; stream +10.0"), std::string::npos) << report;
  EXPECT_NE(report.find("700.0 (190.0)"), std::string::npos) << report;

  L.ranks[2].facts.memory.peak_rss_profile = 210 * M;
  L.ranks[2].facts.memory.peak_rss_load = 220 * M;
  L.ranks[2].facts.memory.peak_rss_stream = 229 * M;
  write_run_log(path, L);
  const std::string holds = report_text(read_run_log(path), path);
  EXPECT_NE(holds.find("230.0  holds"), std::string::npos) << holds;

  const std::string old_path = (tmp.path / "old.log.h5").string();
  write_run_log(old_path, synthetic_log(9, 5, 0, 0));  // no memory figures, no planned memory
  const std::string old = report_text(read_run_log(old_path), old_path);
  EXPECT_NE(old.find("  stage 1      unknown       unknown"), std::string::npos) << old;
}

TEST(RunLogFile, ClearErrors) {
  TempDir tmp;
  EXPECT_THROW(read_run_log((tmp.path / "none.h5").string()), Error);
  write(tmp.path / "x.h5", "not hdf5");
  try {
    read_run_log((tmp.path / "x.h5").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open run log"), std::string::npos) << e.what();
  }
  EXPECT_EQ(default_log_path("out/run.h5"), "out/run.log.h5");
  EXPECT_EQ(default_log_path("run.hdf"), "run.hdf.log.h5");
}
