#include "edgepipe/pipeline/probe.h"

#include <ATen/Parallel.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "edgepipe/base/error.h"
#include "edgepipe/base/host.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/watchdog.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/wire/chunked.h"
#include "edgepipe/wire/frame.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

namespace {

constexpr int kBlockWarmup = 1, kBlockReps = 5;  // block timing: untimed, then timed passes,
constexpr double kBlockSeconds = 0.25;           // and more until they take this long
constexpr int kBusyRounds = 3;                   // all stage ranks timing at once
constexpr int kSmallReps = 10, kLargeReps = 3;   // ping-pongs per size (after one warm-up)
constexpr int64_t kSmallBytes = 64;

// EDGEPIPE_HOST names this rank's host instead (tests: several hosts on one machine).
std::string host_name() {
  if (const char* fake = std::getenv("EDGEPIPE_HOST"); fake && *fake) return fake;
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// Waiting inside a ping-pong spins (yielding the core), so that the round trip is the link's and
// not a sleep's; it lasts milliseconds, while nothing else runs.
template <typename Done>
void spin_for(Done done, double timeout_s, const char* what, int peer) {
  const double deadline = now_seconds() + timeout_s;
  while (!done()) {
    EP_THROW_IF_STOPPED("while measuring the links");
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

// A stage rank's answer on kTagProbe; a stop notice from any stage rank meanwhile (kTagSignal:
// it was asked to stop, and waits for rank 0's set-up message) stops the run.
std::string recv_answer(Channel& ch, int rank, double timeout_s, const std::string& what) {
  wait_for(
      [&] {
        size_t n = 0;
        if (const int sig = poll_stop_notices(ch, ch.size() - 1))
          throw StopRequested(sig,
                              detail::concat(signal_name(sig),
                                             " arrived at a stage rank while measuring the ranks: "
                                             "stopped"),
                              __FILE__, __LINE__);
        return ch.probe(rank, kTagProbe, &n);
      },
      timeout_s, what);
  return recv_bytes(ch, rank, kTagProbe, timeout_s, what);
}

void send_order(Channel& ch, int rank, const ProbeOrder& order, double timeout_s) {
  send_bytes(ch, rank, kTagProbe, order.to_bytes(), timeout_s);
}

// A rank's answer to a time order: its profile, with a time for every block.
RankProfile recv_block_times(Channel& ch, int rank, size_t blocks, double timeout_s) {
  RankProfile p = rank_profile_from_bytes(
      recv_answer(ch, rank, timeout_s, "the block times of rank " + std::to_string(rank)));
  EP_CHECK(p.block_ms.size() == blocks, "rank ", rank, " timed ", p.block_ms.size(), " blocks of ",
           blocks);
  return p;
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

// Rounds: one rank per host times its blocks while the others wait (test and sleep).
void time_one_per_host(Channel& ch, StartupProfile& sp, size_t blocks, double timeout_s) {
  std::map<std::string, std::vector<int>> waiting;  // by host: stage ranks not yet timed
  for (int r = 1; r < ch.size(); ++r) waiting[sp.ranks[r].host].push_back(r);
  for (bool more = true; more;) {
    EP_THROW_IF_STOPPED("while measuring the ranks");
    std::vector<int> round;
    for (auto& [host, ranks] : waiting) {
      if (ranks.empty()) continue;
      round.push_back(ranks.front());
      ranks.erase(ranks.begin());
    }
    more = !round.empty();
    for (int r : round) send_order(ch, r, ProbeOrder{ProbeKind::time}, timeout_s);
    for (int r : round) {
      RankProfile p = recv_block_times(ch, r, blocks, timeout_s);
      p.ranks_on_host = sp.ranks[r].ranks_on_host;
      sp.ranks[r] = p;
    }
  }
}

// Then as many stage ranks of each host at once as its cores hold (at least 2): what sharing a
// host costs beyond its cores' count (caches, memory bandwidth, hyperthreads). Beyond the
// cores the ranks time-slice, which the core-count share accounts for (host_slowdown). The
// ranks' timings drift in and out of step, so one round is noisy (10-20 % between runs on a
// shared 2-core machine): take each block's median over kBusyRounds rounds.
void time_together(Channel& ch, StartupProfile& sp, size_t blocks, double timeout_s) {
  std::vector<int> together;
  std::map<std::string, int> taken;
  for (int r = 1; r < ch.size(); ++r) {
    const RankProfile& p = sp.ranks[r];
    const int on_host = static_cast<int>(stage_ranks_on(sp, p.host));
    const int fit = std::max(2, static_cast<int>(p.cores / std::max(p.threads, 1) + 1e-9));
    if (on_host >= 2 && taken[p.host] < std::min(on_host, fit)) {
      ++taken[p.host];
      together.push_back(r);
    }
  }
  if (together.empty()) return;
  std::vector<std::vector<std::vector<double>>> rounds(ch.size());  // by rank, round, block
  for (int round = 0; round < kBusyRounds; ++round) {
    EP_THROW_IF_STOPPED("while measuring the ranks together");
    for (int r : together) send_order(ch, r, ProbeOrder{ProbeKind::time}, timeout_s);
    for (int r : together) rounds[r].push_back(recv_block_times(ch, r, blocks, timeout_s).block_ms);
  }
  for (int r : together) {
    std::vector<double>& busy = sp.ranks[r].block_ms_busy;
    busy.assign(blocks, 0);
    for (size_t b = 0; b < blocks; ++b) {
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
// (64 ranks on 100 Mbit/s links: 2016 pairs, minutes). Returns the number of links probed.
size_t probe_links(Channel& ch, StartupProfile& sp, int64_t probe_bytes, double timeout_s) {
  const int n = ch.size();
  sp.links.assign(n, std::vector<Link>(n, Link{0, 1e18}));
  std::map<std::pair<std::string, std::string>, Link> by_hosts;
  for (int a = 0; a < n; ++a) {
    EP_THROW_IF_STOPPED("while measuring the links");
    for (int b = a + 1; b < n; ++b) {
      const auto hosts = std::minmax(sp.ranks[a].host, sp.ranks[b].host);
      if (auto seen = by_hosts.find(hosts); seen != by_hosts.end()) {
        sp.links[a][b] = sp.links[b][a] = seen->second;
        continue;
      }
      if (a > 0) send_order(ch, a, ProbeOrder{ProbeKind::ping, b, true, probe_bytes}, timeout_s);
      send_order(ch, b, ProbeOrder{ProbeKind::ping, a, false, probe_bytes}, timeout_s);
      const Link link =
          a == 0 ? ping_pong(ch, b, true, probe_bytes, timeout_s)
                 : link_from_bytes(recv_answer(ch, a, timeout_s,
                                               "the link probe of ranks " + std::to_string(a) +
                                                   " and " + std::to_string(b)));
      sp.links[a][b] = sp.links[b][a] = by_hosts[hosts] = link;
    }
  }
  return by_hosts.size();
}

// The stage rank's side of the start-up measurements, once its blocks are loaded.
void answer_orders(Channel& ch, const ProfileRequest& req, std::vector<torch::jit::Module> blocks,
                   const RunConfig& cfg, const MemoryBudget& budget, double t0) {
  std::optional<BlockChain> chain;
  double t_build = 0;
  {
    Frame f = decode_frame(req.input_frame.data(), req.input_frame.size());
    std::vector<at::Tensor> input;
    for (const auto& t : f.tensors) input.push_back(t.clone());
    chain.emplace(std::move(blocks), std::move(input), req.optimize);
    budget.check("building the blocks");
    t_build = now_seconds() - t0;
    send_bytes(ch, 0, kTagProbe, rank_profile_to_bytes(this_rank(cfg)), cfg.timeout_s);
  }
  for (;;) {
    EP_THROW_IF_STOPPED("while rank 0 measures this rank");
    // Rank 0 may fail meanwhile: then its set-up message comes instead (run_worker reads it).
    if (wait_for_tag(ch, 0, {kTagSetup, kTagProbe}, cfg.timeout_s, "rank 0's link probe order") ==
        kTagSetup)
      return;
    const ProbeOrder order = ProbeOrder::from_bytes(
        recv_bytes(ch, 0, kTagProbe, cfg.timeout_s, "rank 0's link probe order"));
    if (order.kind == ProbeKind::done) return;
    if (order.kind == ProbeKind::time) {
      const double t_timing = now_seconds();
      RankProfile p = this_rank(cfg);
      p.block_ms = chain->time(kBlockWarmup, kBlockReps, kBlockSeconds);
      budget.check("timing the blocks");
      p.seconds = t_build + now_seconds() - t_timing;
      send_bytes(ch, 0, kTagProbe, rank_profile_to_bytes(p), cfg.timeout_s);
      continue;
    }
    EP_CHECK(order.peer < ch.size(), "a link probe order is corrupt");
    const Link link = ping_pong(ch, order.peer, order.initiator, order.bytes, cfg.timeout_s);
    if (order.initiator) send_bytes(ch, 0, kTagProbe, link_to_bytes(link), cfg.timeout_s);
  }
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
  const std::string request = ProfileRequest{blocks, input_frame, cfg.optimize}.to_bytes();
  log.info("measuring " + std::to_string(n - 1) + " stage ranks (" + std::to_string(blocks.size()) +
           " blocks each, one rank per host at a time) and their links");
  for (int r = 1; r < n; ++r) send_chunked(ch, r, kTagProbe, request, cfg.timeout_s);
  // Every rank builds its blocks at once, then says where it is.
  for (int r = 1; r < n; ++r)
    sp.ranks[r] = rank_profile_from_bytes(
        recv_answer(ch, r, cfg.timeout_s, "rank " + std::to_string(r) + " to load the blocks"));
  std::map<std::string, int> per_host;
  for (const RankProfile& p : sp.ranks) ++per_host[p.host];
  for (RankProfile& p : sp.ranks) p.ranks_on_host = per_host[p.host];
  time_one_per_host(ch, sp, blocks.size(), cfg.timeout_s);
  time_together(ch, sp, blocks.size(), cfg.timeout_s);
  const size_t probed = probe_links(ch, sp, probe_bytes, cfg.timeout_s);
  log.info("measured " + std::to_string(probed) + (probed == 1 ? " link" : " links") +
           " (one pair of ranks per pair of hosts) for the " + std::to_string(n * (n - 1) / 2) +
           " pairs of ranks");
  for (int r = 1; r < n; ++r) send_order(ch, r, ProbeOrder{ProbeKind::done}, cfg.timeout_s);
  sp.seconds = now_seconds() - t0;
  return sp;
}

// A stage rank builds and times every block on the whole batch under its memory limit
// (MemoryBudget: the activations, and the copies of the weights optimize_for_inference makes),
// which an error names if the batch passes it.
void answer_probe(Channel& ch, const std::string& request, const RunConfig& cfg) {
  const double t0 = now_seconds();
  const ProfileRequest req = ProfileRequest::from_bytes(request);
  std::vector<torch::jit::Module> blocks;
  int64_t weights = 0;
  for (const std::string& b : req.blocks) {
    blocks.push_back(load_module_bytes(b));
    weights += parameter_bytes(blocks.back());
  }
  std::string source;
  const MemoryBudget budget(rank_memory_limit(cfg.max_memory, &source), source,
                            req.optimize ? weights : 0);
  try {
    answer_orders(ch, req, std::move(blocks), cfg, budget, t0);
  } catch (const StopRequested&) {
    throw;
  } catch (const std::exception&) {
    budget.check("timing the blocks");
    throw;
  }
}

}  // namespace edgepipe
