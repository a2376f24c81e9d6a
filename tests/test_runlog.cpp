// The run log's parts without MPI: energy (RAPL wrap, attribution, model), per-batch traces,
// clock alignment over in-process channels, the progress line, the log's writer and reader, the
// summary's verdict and the report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "edgepipe/base/error.h"
#include "edgepipe/records/energy.h"
#include "edgepipe/records/progress.h"
#include "edgepipe/records/report.h"
#include "edgepipe/records/runlog.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/channel.h"

using namespace edgepipe;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("edgepipe-runlog-" + std::to_string(getpid()) + "-" +
                                               std::to_string(std::rand()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

RankFacts facts(const char* host, double wall, double cpu, double rapl = -1) {
  RankFacts f;
  std::strcpy(f.host, host);
  f.t_begin = 1;
  f.t_end = 1 + wall;
  f.cpu_user = cpu;
  f.rapl_joules = rapl;
  std::strcpy(f.rapl_source, "intel-rapl:0");
  return f;
}

}  // namespace

TEST(Energy, RaplDeltaHandlesOneWrap) {
  EXPECT_DOUBLE_EQ(rapl_delta_joules(1000000, 3500000, 10000000), 2.5);
  // The counter passed max_energy_range_uj once: 9.5 J -> wrap -> 0.5 J is 1 J.
  EXPECT_DOUBLE_EQ(rapl_delta_joules(9500000, 500000, 10000000), 1.0);
}

TEST(Energy, RaplCountersReadPackageZonesOnly) {
  TempDir tmp;
  const fs::path root = tmp.path / "powercap";
  write(root / "intel-rapl:0" / "energy_uj", "9000000\n");
  write(root / "intel-rapl:0" / "max_energy_range_uj", "10000000\n");
  write(root / "intel-rapl:0:0" / "energy_uj", "5\n");  // a sub-zone (core): part of package 0
  write(root / "intel-rapl:0:0" / "max_energy_range_uj", "10000000\n");
  write(root / "intel-rapl:1" / "energy_uj", "100\n");
  write(root / "intel-rapl:1" / "max_energy_range_uj", "10000000\n");
  RaplCounters rapl(root.string());
  ASSERT_TRUE(rapl.available());
  EXPECT_EQ(rapl.names(), "intel-rapl:0,intel-rapl:1");
  const auto before = rapl.read();
  ASSERT_EQ(before.size(), 2u);
  write(root / "intel-rapl:0" / "energy_uj", "1000000\n");  // wrapped: +2 J
  write(root / "intel-rapl:1" / "energy_uj", "3000100\n");  // +3 J
  EXPECT_NEAR(rapl.joules_between(before, rapl.read()), 5.0, 1e-9);
}

TEST(Energy, NoPowercapMeansNoCounters) {
  RaplCounters rapl("/nonexistent/powercap");
  EXPECT_FALSE(rapl.available());
  EXPECT_TRUE(rapl.read().empty());
}

TEST(Energy, ModelChargesIdleShareAndCpuTime) {
  const EnergyModel m = energy_model_named("edge");
  // Two ranks on one host, 10 s each: each pays half the idle power plus its own CPU time.
  auto e = attribute_energy({facts("a", 10, 4), facts("a", 10, 1)}, m);
  EXPECT_NEAR(e[0].joules, m.idle_w_per_node / 2 * 10 + m.active_w_per_core * 4, 1e-9);
  EXPECT_NEAR(e[1].joules, m.idle_w_per_node / 2 * 10 + m.active_w_per_core * 1, 1e-9);
  EXPECT_NE(e[0].source.find("model edge"), std::string::npos);
  EXPECT_THROW(energy_model_named("laptop"), Error);
}

TEST(Energy, RaplSplitByCpuTimePerHost) {
  const EnergyModel m = energy_model_named("server");
  auto e = attribute_energy({facts("a", 10, 3, 100), facts("a", 10, 1, 98), facts("b", 10, 2)}, m);
  EXPECT_NEAR(e[0].joules, 75, 1e-9);  // host a: 100 J (the larger reading), 3:1 by CPU time
  EXPECT_NEAR(e[1].joules, 25, 1e-9);
  EXPECT_EQ(e[0].source.rfind("RAPL intel-rapl:0", 0), 0u);
  EXPECT_NEAR(e[2].joules, 60 * 10 + 7.5 * 2, 1e-9);  // host b: no counter, the model
  EXPECT_NE(e[2].source.find("model server"), std::string::npos);
}

TEST(Trace, ReservedTraceNeverReallocates) {
  BatchTrace t(true, 4);
  const BatchRecord* data = t.records().data();
  for (int i = 0; i < 10; ++i) t.add(BatchRecord{});
  EXPECT_EQ(t.records().size(), 4u);
  EXPECT_EQ(t.records().data(), data);
  EXPECT_EQ(t.dropped(), 6);
  BatchTrace off(false, 100);
  EXPECT_EQ(off.records().capacity(), 0u);
}

TEST(Trace, MessageRoundTrip) {
  RankFacts f;
  sample_rank_facts(&f);
  EXPECT_GT(f.threads, 0);
  EXPECT_GT(f.peak_rss_bytes, 0);
  EXPECT_GT(std::strlen(f.cpus), 0u);
  f.time_drain = 0.25;
  std::vector<BatchRecord> rs(3);
  rs[2].seq = 2;
  rs[2].time_compute = 1.5;
  RankFacts g;
  std::vector<BatchRecord> back;
  trace_from_bytes(trace_to_bytes(f, rs), &g, &back);
  EXPECT_EQ(std::string(g.host), std::string(f.host));
  EXPECT_EQ(g.time_drain, 0.25);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[2].time_compute, 1.5);
  EXPECT_THROW(trace_from_bytes(trace_to_bytes(f, rs) + "x", &g, &back), Error);
}

TEST(Trace, ClockSyncOverLocalChannels) {
  LocalHub hub(3);
  ClockSync sync;
  int64_t announced[3] = {0, 0, 0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      LocalChannel ch(hub, r);
      if (r == 0)
        sync = sync_clocks_root(ch, 42, 10);
      else
        announced[r] = sync_clocks_worker(ch, 10);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(announced[1], 42);
  EXPECT_EQ(announced[2], 42);
  for (int r = 1; r < 3; ++r) {
    // One process, one clock: the offset is bounded by half the best round trip.
    EXPECT_GT(sync.rtt_s[r], 0);
    EXPECT_LE(std::abs(sync.offset_s[r]), sync.rtt_s[r] / 2 + 1e-9);
  }
}

TEST(Progress, LineFormat) {
  EXPECT_EQ(Progress::line(12, 48, 45.25, 3725), "12/48 batches (25%), 45.2 images/s, ETA 1:02:05");
  EXPECT_EQ(Progress::line(0, 48, 0, NAN), "0/48 batches (0%), 0.0 images/s, ETA -");
}

TEST(Progress, LinesEveryIntervalWhenNotATerminal) {
  std::FILE* f = std::tmpfile();
  Progress p(10, 20, false, f, 5.0, 0);
  for (int i = 1; i <= 10; ++i) p.update(i, 2 * i, 100.0 + i);  // one batch a second
  p.finish(10, 20, 111);
  std::rewind(f);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  // The first call (t = 101) starts the clock; a line at t = 106, none until 111, then finish().
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("6/10 batches (60%), 2.0 images/s, ETA 0:00:04"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(Progress, InPlaceOnATerminalAndQuiet) {
  std::FILE* f = std::tmpfile();
  Progress p(10, 10, false, f, 5.0, 1);
  for (int i = 1; i <= 10; ++i) p.update(i, i, i * 1.0);
  p.finish(10, 10, 11);
  Progress q(10, 10, true, f, 5.0, 1);
  q.update(1, 1, 1);
  q.update(5, 5, 100);
  q.finish(10, 10, 200);
  std::rewind(f);
  std::string text(8192, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  EXPECT_GT(std::count(text.begin(), text.end(), '\r'), 5);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);  // only finish() ends the line
}

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

// The start-up profile survives the log, so `run --profile LOG` plans as the measured run did;
// a log whose ranks sit on other hosts keeps them apart (and idle ranks have no /ranks group).
TEST(RunLogFile, StartupProfileRoundTrip) {
  TempDir tmp;
  const std::string path = (tmp.path / "p.log.h5").string();
  RunLog L = synthetic_log(9, 5, 0, 0);
  StartupProfile& p = L.profile;
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
  write_run_log(path, L);
  const StartupProfile q = read_startup_profile(path);
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

  EXPECT_THROW(read_startup_profile((tmp.path / "none.h5").string()), Error);
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
