#include "edgepipe/pipeline/probe.h"

#include <ATen/Parallel.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "edgepipe/base/bytes.h"
#include "edgepipe/base/error.h"
#include "edgepipe/base/host.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

namespace {

enum ProbeKind : uint8_t { kProfile = 1, kPing = 2, kDone = 3, kTime = 4 };

constexpr int kBlockWarmup = 1, kBlockReps = 5;  // block timing: untimed, then timed passes,
constexpr double kBlockSeconds = 0.25;           // and more until they take this long
constexpr int kBusyRounds = 3;                   // all stage ranks timing at once
constexpr int kSmallReps = 10, kLargeReps = 3;   // ping-pongs per size (after one warm-up)
constexpr int64_t kSmallBytes = 64;

// EDGEPIPE_HOST names this rank's host instead (tests: several hosts on one machine).
std::string host_name() {
  if (const char* fake = std::getenv("EDGEPIPE_HOST"); fake && *fake) return fake;
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Waiting inside a ping-pong spins (yielding the core), so that the round trip is the link's and
// not a sleep's; it lasts milliseconds, while nothing else runs.
template <typename Done>
void spin_for(Done done, double timeout_s, const char* what, int peer) {
  const double deadline = now_seconds() + timeout_s;
  while (!done()) {
    EP_CHECK_AS(TimeoutError, now_seconds() < deadline, "timed out after ", timeout_s,
                " s waiting for ", what, " with rank ", peer, " (link probe)");
    sched_yield();
  }
}

// One message there and back; returns the round trip in seconds.
double round_trip(Channel& ch, int peer, bool initiator, std::vector<char>& buf, size_t n,
                  double timeout_s) {
  const double t0 = now_seconds();
  if (initiator) {
    Channel::Handle s = ch.isend(peer, kTagPing, buf.data(), n);
    spin_for([&] { return ch.test(s); }, timeout_s, "a ping", peer);
  }
  Channel::Handle r = ch.irecv(peer, kTagPing, buf.data(), buf.size());
  spin_for([&] { return ch.test(r); }, timeout_s, "a ping", peer);
  if (!initiator) {
    Channel::Handle s = ch.isend(peer, kTagPing, buf.data(), n);
    spin_for([&] { return ch.test(s); }, timeout_s, "a pong", peer);
  }
  return now_seconds() - t0;
}

// Both ends run the same sequence; the initiator's round trips give the link.
Link ping_pong(Channel& ch, int peer, bool initiator, int64_t large, double timeout_s) {
  std::vector<char> buf(static_cast<size_t>(std::max(large, kSmallBytes)), 1);
  double small_rtt = 1e30, large_rtt = 1e30;
  for (int i = 0; i <= kSmallReps; ++i) {
    const double t = round_trip(ch, peer, initiator, buf, kSmallBytes, timeout_s);
    if (i > 0) small_rtt = std::min(small_rtt, t);
  }
  for (int i = 0; i <= kLargeReps; ++i) {
    const double t = round_trip(ch, peer, initiator, buf, static_cast<size_t>(large), timeout_s);
    if (i > 0) large_rtt = std::min(large_rtt, t);
  }
  Link link;
  link.latency_s = small_rtt / 2;
  const double transfer = std::max(large_rtt / 2 - link.latency_s, 1e-9);
  link.bandwidth_Bps = static_cast<double>(large) / transfer;
  return link;
}

std::string rank_profile_bytes(const RankProfile& p) {
  ByteWriter w;
  w.put_string(p.host);
  w.put<int32_t>(p.threads);
  w.put<double>(p.cores);
  w.put_vector(p.block_ms);
  w.put_vector(p.block_ms_busy);
  w.put<int64_t>(p.memory_limit);
  w.put_string(p.memory_source);
  w.put<double>(p.seconds);
  return w.out;
}

RankProfile rank_profile_from(const std::string& bytes) {
  ByteReader r{bytes, "a rank's profile"};
  RankProfile p;
  p.host = r.get_string();
  p.threads = r.get<int32_t>();
  p.cores = r.get<double>();
  p.block_ms = r.get_vector<double>();
  p.block_ms_busy = r.get_vector<double>();
  p.memory_limit = r.get<int64_t>();
  p.memory_source = r.get_string();
  p.seconds = r.get<double>();
  return p;
}

// A rank's answer to kTime: its profile, with a time for every block.
RankProfile recv_block_times(Channel& ch, int rank, size_t blocks, double timeout_s) {
  RankProfile p = rank_profile_from(recv_bytes(ch, rank, kTagProbe, timeout_s,
                                               "the block times of rank " + std::to_string(rank)));
  EP_CHECK(p.block_ms.size() == blocks, "rank ", rank, " timed ", p.block_ms.size(), " blocks of ",
           blocks);
  return p;
}

void send_order(Channel& ch, int rank, ProbeKind kind, double timeout_s) {
  ByteWriter w;
  w.put<uint8_t>(kind);
  send_bytes(ch, rank, kTagProbe, w.out, timeout_s);
}

RankProfile this_rank(const RunConfig& cfg) {
  RankProfile p;
  p.host = host_name();
  p.threads = at::get_num_threads();
  p.cores = usable_cores();
  std::string source;
  p.memory_limit = rank_memory_limit(cfg.max_memory, &source);
  p.memory_source = source;
  return p;
}

void send_ping_order(Channel& ch, int rank, int peer, bool initiator, int64_t bytes,
                     double timeout_s) {
  ByteWriter w;
  w.put<uint8_t>(kPing);
  w.put<int32_t>(peer);
  w.put<uint8_t>(initiator ? 1 : 0);
  w.put<int64_t>(bytes);
  send_bytes(ch, rank, kTagProbe, w.out, timeout_s);
}

// Stage ranks of the job on a host.
size_t stage_ranks_on(const StartupProfile& sp, const std::string& host) {
  size_t k = 0;
  for (size_t r = 1; r < sp.ranks.size(); ++r) k += sp.ranks[r].host == host;
  return k;
}

}  // namespace

StartupProfile probe_cluster(Channel& ch, const std::vector<std::string>& blocks,
                             const std::string& input_frame, int64_t probe_bytes,
                             const RunConfig& cfg, const Log& log) {
  const double t0 = now_seconds();
  const int n = ch.size();
  StartupProfile sp;
  sp.ranks.resize(n);
  sp.ranks[0] = this_rank(cfg);

  ByteWriter w;
  w.put<uint8_t>(kProfile);
  w.put<uint64_t>(blocks.size());
  for (const std::string& b : blocks) w.put_string(b);
  w.put_string(input_frame);
  w.put<uint8_t>(cfg.optimize ? 1 : 0);
  log.info("measuring " + std::to_string(n - 1) + " stage ranks (" + std::to_string(blocks.size()) +
           " blocks each, one rank per host at a time) and " + "their links");
  for (int r = 1; r < n; ++r) send_bytes(ch, r, kTagProbe, w.out, cfg.timeout_s);
  // Every rank builds its blocks at once, then says where it is.
  for (int r = 1; r < n; ++r)
    sp.ranks[r] = rank_profile_from(recv_bytes(
        ch, r, kTagProbe, cfg.timeout_s, "rank " + std::to_string(r) + " to load the blocks"));
  std::map<std::string, std::vector<int>> waiting;  // by host: stage ranks not yet timed
  for (int r = 1; r < n; ++r) waiting[sp.ranks[r].host].push_back(r);
  std::map<std::string, int> per_host;
  for (const RankProfile& p : sp.ranks) ++per_host[p.host];
  for (RankProfile& p : sp.ranks) p.ranks_on_host = per_host[p.host];
  // Rounds: one rank per host times its blocks while the others wait (test and sleep).
  for (bool more = true; more;) {
    std::vector<int> round;
    for (auto& [host, ranks] : waiting) {
      if (ranks.empty()) continue;
      round.push_back(ranks.front());
      ranks.erase(ranks.begin());
    }
    more = !round.empty();
    for (int r : round) send_order(ch, r, kTime, cfg.timeout_s);
    for (int r : round) {
      RankProfile p = recv_block_times(ch, r, blocks.size(), cfg.timeout_s);
      p.ranks_on_host = sp.ranks[r].ranks_on_host;
      sp.ranks[r] = p;
    }
  }

  // Then as many stage ranks of each host at once as its cores hold (at least 2): what sharing a
  // host costs beyond its cores' count (caches, memory bandwidth, hyperthreads). Beyond the
  // cores the ranks time-slice, which the core-count share accounts for (host_slowdown). The
  // ranks' timings drift in and out of step, so one round is noisy (10-20 % between runs on a
  // shared 2-core machine): take each block's median over kBusyRounds rounds.
  std::vector<int> together;
  {
    std::map<std::string, int> taken;
    for (int r = 1; r < n; ++r) {
      const RankProfile& p = sp.ranks[r];
      const int on_host = static_cast<int>(stage_ranks_on(sp, p.host));
      const int fit = std::max(2, static_cast<int>(p.cores / std::max(p.threads, 1) + 1e-9));
      if (on_host >= 2 && taken[p.host] < std::min(on_host, fit)) {
        ++taken[p.host];
        together.push_back(r);
      }
    }
  }
  if (!together.empty()) {
    std::vector<std::vector<std::vector<double>>> rounds(n);  // by rank, round, block
    for (int round = 0; round < kBusyRounds; ++round) {
      for (int r : together) send_order(ch, r, kTime, cfg.timeout_s);
      for (int r : together)
        rounds[r].push_back(recv_block_times(ch, r, blocks.size(), cfg.timeout_s).block_ms);
    }
    for (int r : together) {
      std::vector<double>& busy = sp.ranks[r].block_ms_busy;
      busy.assign(blocks.size(), 0);
      for (size_t b = 0; b < blocks.size(); ++b) {
        std::vector<double> v;
        for (const auto& times : rounds[r]) v.push_back(times[b]);
        std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
        busy[b] = v[v.size() / 2];
      }
    }
  }

  // Links, one pair at a time, so that pairs do not share the wire or the cores, and one pair
  // of ranks per pair of hosts: ranks on the same two hosts share the same wire (or, on one
  // host, the same memory), so probing every pair would measure it again, O(ranks^2) times
  // (64 ranks on 100 Mbit/s links: 2016 pairs, minutes).
  sp.links.assign(n, std::vector<Link>(n, Link{0, 1e18}));
  std::map<std::pair<std::string, std::string>, Link> by_hosts;
  for (int a = 0; a < n; ++a) {
    for (int b = a + 1; b < n; ++b) {
      const std::pair<std::string, std::string> hosts =
          std::minmax(sp.ranks[a].host, sp.ranks[b].host);
      if (auto seen = by_hosts.find(hosts); seen != by_hosts.end()) {
        sp.links[a][b] = sp.links[b][a] = seen->second;
        continue;
      }
      if (a > 0) send_ping_order(ch, a, b, true, probe_bytes, cfg.timeout_s);
      send_ping_order(ch, b, a, false, probe_bytes, cfg.timeout_s);
      Link link;
      if (a == 0) {
        link = ping_pong(ch, b, true, probe_bytes, cfg.timeout_s);
      } else {
        std::string reply = recv_bytes(
            ch, a, kTagProbe, cfg.timeout_s,
            "the link probe of ranks " + std::to_string(a) + " and " + std::to_string(b));
        ByteReader r{reply, "a link probe"};
        link.latency_s = r.get<double>();
        link.bandwidth_Bps = r.get<double>();
      }
      sp.links[a][b] = sp.links[b][a] = by_hosts[hosts] = link;
    }
  }
  log.info("measured " + std::to_string(by_hosts.size()) +
           (by_hosts.size() == 1 ? " link" : " links") +
           " (one pair of ranks per pair of hosts) for the " + std::to_string(n * (n - 1) / 2) +
           " pairs of ranks");
  for (int r = 1; r < n; ++r) send_order(ch, r, kDone, cfg.timeout_s);
  sp.seconds = now_seconds() - t0;
  return sp;
}

void answer_probe(Channel& ch, const std::string& request, const RunConfig& cfg) {
  std::optional<BlockChain> chain;
  double t_build = 0;
  {
    const double t0 = now_seconds();
    ByteReader r{request, "the profile request"};
    EP_CHECK(r.get<uint8_t>() == kProfile, "unexpected start-up message from rank 0");
    const auto nb = r.get<uint64_t>();
    EP_CHECK(nb <= 1 << 20, "the profile request is corrupt");
    std::vector<torch::jit::Module> blocks;
    for (uint64_t b = 0; b < nb; ++b) blocks.push_back(load_module_bytes(r.get_string()));
    const std::string frame = r.get_string();
    const bool optimize = r.get<uint8_t>() != 0;
    Frame f = decode_frame(frame.data(), frame.size());
    std::vector<at::Tensor> input;
    for (const auto& t : f.tensors) input.push_back(t.clone());
    chain.emplace(std::move(blocks), std::move(input), optimize);
    t_build = now_seconds() - t0;
    send_bytes(ch, 0, kTagProbe, rank_profile_bytes(this_rank(cfg)), cfg.timeout_s);
  }
  for (;;) {
    // Rank 0 may fail meanwhile: then its set-up message comes instead (run_worker reads it).
    if (wait_for_tag(ch, 0, {kTagSetup, kTagProbe}, cfg.timeout_s, "rank 0's link probe order") ==
        kTagSetup)
      return;
    std::string order = recv_bytes(ch, 0, kTagProbe, cfg.timeout_s, "rank 0's link probe order");
    ByteReader r{order, "a link probe order"};
    const auto kind = r.get<uint8_t>();
    if (kind == kDone) return;
    if (kind == kTime) {
      const double t0 = now_seconds();
      RankProfile p = this_rank(cfg);
      p.block_ms = chain->time(kBlockWarmup, kBlockReps, kBlockSeconds);
      p.seconds = t_build + now_seconds() - t0;
      send_bytes(ch, 0, kTagProbe, rank_profile_bytes(p), cfg.timeout_s);
      continue;
    }
    EP_CHECK(kind == kPing, "unexpected start-up message from rank 0");
    const int peer = r.get<int32_t>();
    const bool initiator = r.get<uint8_t>() != 0;
    const int64_t bytes = r.get<int64_t>();
    EP_CHECK(peer >= 0 && peer < ch.size() && bytes > 0, "a link probe order is corrupt");
    Link link = ping_pong(ch, peer, initiator, bytes, cfg.timeout_s);
    if (initiator) {
      ByteWriter w;
      w.put<double>(link.latency_s);
      w.put<double>(link.bandwidth_Bps);
      send_bytes(ch, 0, kTagProbe, w.out, cfg.timeout_s);
    }
  }
}

double host_slowdown(const StartupProfile& sp, size_t rank, size_t busy, double dispatcher_cores) {
  const RankProfile& me = sp.ranks.at(rank);
  const size_t on_host = stage_ranks_on(sp, me.host);
  if (busy == 0 || busy > on_host) busy = on_host;
  // Cores the busy stage ranks on this host want (ranks of one host run alike): beyond the
  // host's cores they time-slice.
  const double cores = std::max(me.cores, 0.01);
  auto share = [&](size_t b) {
    return std::max(1.0, static_cast<double>(b) * std::max(me.threads, 1) / cores);
  };
  // Rank 0's own work per batch, if it is on this host, as a share of a core per period. What
  // the spare cores cannot hold takes CPU from the stage ranks, and not evenly: while each stage
  // rank has a core of its own, the stage whose core rank 0 takes is late by rank 0's work, and
  // the stages after it wait for it, so the period grows by rank 0's work (a stage that loses a
  // share x of its core runs at 1 / (1 - x) its time), not by its share spread over all the
  // cores (measured on MobileNetV2, 2 stage ranks on 2 cores, rank 0 at 22 % of a core:
  // 1.37x alone, where the spread share said 1.11x). Ranks that time-slice anyway (more of
  // them than cores) share it evenly.
  const double want = static_cast<double>(busy) * std::max(me.threads, 1);
  const double extra = me.host == sp.ranks.at(0).host ? dispatcher_cores : 0.0;
  const double excess = std::max(0.0, extra - std::max(0.0, cores - want));
  const double lost = std::min(0.9, want > cores + 1e-9 ? excess / cores : excess);
  const double dispatcher = 1 / (1 - lost);
  if (busy <= 1) return share(busy) * dispatcher;
  // Interference: the host's ranks timed together (probe_cluster: as many as its cores hold),
  // against alone times their share. Ranks not in that round have no (or all-zero) busy times.
  auto timed = [](const RankProfile& p) {
    return p.block_ms_busy.size() == p.block_ms.size() &&
           std::any_of(p.block_ms_busy.begin(), p.block_ms_busy.end(),
                       [](double v) { return v > 0; });
  };
  size_t together = 0;
  for (size_t r = 1; r < sp.ranks.size(); ++r)
    together += sp.ranks[r].host == me.host && timed(sp.ranks[r]);
  std::vector<double> ratios;
  for (size_t r = 1; r < sp.ranks.size(); ++r) {
    const RankProfile& p = sp.ranks[r];
    if (p.host != me.host || !timed(p)) continue;
    double alone = 0, all = 0;
    for (size_t b = 0; b < p.block_ms.size(); ++b)
      alone += p.block_ms[b], all += p.block_ms_busy[b];
    if (alone > 0) ratios.push_back(all / (alone * share(together)));  // rank 0 was idle
  }
  double interference = 1;
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    interference = std::max(1.0, ratios[ratios.size() / 2]);
  }
  return share(busy) * interference * dispatcher;
}

bool cores_for_overlap(const StartupProfile& sp, size_t busy_per_host, bool dispatcher_codec) {
  for (size_t r = 1; r < sp.ranks.size(); ++r) {
    const RankProfile& me = sp.ranks[r];
    const size_t on_host = stage_ranks_on(sp, me.host);
    const size_t busy = busy_per_host == 0 ? on_host : std::min(busy_per_host, on_host);
    double want = static_cast<double>(busy) * 2 * std::max(me.threads, 1);
    if (dispatcher_codec && sp.ranks[0].host == me.host) want += std::max(sp.ranks[0].threads, 1);
    if (want > me.cores + 1e-9) return false;
  }
  return true;
}

Cluster cluster_of(const StartupProfile& sp, size_t busy_per_host, double dispatcher_cores) {
  Cluster c;
  for (size_t r = 0; r < sp.ranks.size(); ++r) {
    const RankProfile& p = sp.ranks[r];
    RankInfo info;
    info.name = p.host;
    const double slow = r > 0 ? host_slowdown(sp, r, busy_per_host, dispatcher_cores) : 1.0;
    for (double ms : p.block_ms) info.block_ms.push_back(ms * slow);
    const bool own = p.memory_source == "--max-memory";
    info.memory_bytes = static_cast<double>(p.memory_limit) / (own ? 1 : p.ranks_on_host);
    if (info.memory_bytes <= 0) info.memory_bytes = 1e18;  // the node says nothing: no limit
    c.ranks.push_back(info);
  }
  c.links = sp.links;
  return c;
}

std::string describe_profile(const StartupProfile& sp) {
  std::string s = "measured at start-up (" + format_duration(sp.seconds) + "):\n";
  s += "  rank  host              threads  cores  blocks ms alone  x sharing  memory for a "
       "stage\n";
  const Cluster c = cluster_of(sp);
  for (size_t r = 1; r < sp.ranks.size(); ++r) {
    double total = 0;
    for (double ms : sp.ranks[r].block_ms) total += ms;
    char line[320];
    std::snprintf(
        line, sizeof line, "  %4zu  %-16s  %7d  %5.1f  %15.2f  %9.2f  %s (%s%s)\n", r,
        sp.ranks[r].host.c_str(), sp.ranks[r].threads, sp.ranks[r].cores, total,
        host_slowdown(sp, r), format_bytes(c.ranks[r].memory_bytes).c_str(),
        sp.ranks[r].memory_source.c_str(),
        sp.ranks[r].memory_source == "--max-memory"
            ? ""
            : (", shared by " + std::to_string(sp.ranks[r].ranks_on_host) + " ranks").c_str());
    s += line;
  }
  double lat_min = 1e30, lat_max = 0, bw_min = 1e30, bw_max = 0;
  for (size_t a = 0; a < sp.links.size(); ++a)
    for (size_t b = 0; b < sp.links.size(); ++b) {
      if (a == b) continue;
      lat_min = std::min(lat_min, sp.links[a][b].latency_s);
      lat_max = std::max(lat_max, sp.links[a][b].latency_s);
      bw_min = std::min(bw_min, sp.links[a][b].bandwidth_Bps);
      bw_max = std::max(bw_max, sp.links[a][b].bandwidth_Bps);
    }
  if (sp.links.size() > 1)
    s += "  links: latency " + format_duration(lat_min) + " - " + format_duration(lat_max) +
         ", bandwidth " + format_bandwidth(bw_min) + " - " + format_bandwidth(bw_max) + "\n";
  return s;
}

}  // namespace edgepipe
