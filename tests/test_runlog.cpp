// The run log's parts without MPI: energy (RAPL wrap, attribution, model), per-batch traces and
// their message, clock alignment over in-process channels, the progress line. The log as a file:
// test_runlog_file.cpp.
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
#include "edgepipe/pipeline/clock_sync.h"
#include "edgepipe/records/energy.h"
#include "edgepipe/records/progress.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/protocol.h"
#include "runlog_fixtures.h"

using namespace edgepipe;
namespace fs = std::filesystem;

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
