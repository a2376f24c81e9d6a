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
#include "edgepipe/base/text.h"
#include "edgepipe/base/units.h"
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
  p.resident_bytes = resident_bytes();
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
      p.resident_bytes = sp.ranks[r].resident_bytes;  // as it said hello
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

// Before anything large is sent: every stage rank must hold the probe window.
void check_window_fits(const StartupProfile& sp, const ProbeSample& sample) {
  for (size_t r = 1; r < sp.ranks.size(); ++r) {
    const RankProfile& p = sp.ranks[r];
    const auto share = static_cast<int64_t>(stage_memory(p));
    EP_CHECK(share <= 0 || sample.memory_need <= static_cast<double>(share), "rank ", r, " (host ",
             p.host, ") may use ", format_bytes(static_cast<double>(share)), " (", p.memory_source,
             p.memory_source == "--max-memory"
                 ? std::string()
                 : ", shared by " + std::to_string(p.ranks_on_host) + " ranks, less " +
                       format_bytes(static_cast<double>(p.resident_bytes)) + " held at start",
             ") but timing blocks ", sample.window.first, "..", sample.window.end - 1,
             " of the model at start-up needs about ", format_bytes(sample.memory_need), " (",
             sample.need_text,
             "), and no stage holding them could run there: give the ranks more memory or use a "
             "smaller --batch");
  }
}

}  // namespace

StartupProfile probe_cluster(Channel& ch, const SampleFn& make_sample, int64_t probe_bytes,
                             const RunConfig& cfg, const Log& log) {
  const double t0 = now_seconds();
  const int n = ch.size();
  StartupProfile sp;
  sp.ranks.resize(n);
  sp.ranks[0] = this_rank(cfg);
  // First each rank says where it is and what it may use, so that nothing large is sent to a
  // rank that cannot hold it.
  const std::string hello = ProbeOrder{ProbeKind::hello}.to_bytes();
  for (int r = 1; r < n; ++r) send_chunked(ch, r, kTagProbe, hello, cfg.timeout_s);
  for (int r = 1; r < n; ++r)
    sp.ranks[r] = rank_profile_from_bytes(
        recv_answer(ch, r, cfg.timeout_s, "rank " + std::to_string(r) + " to say where it is"));
  std::map<std::string, int> per_host;
  for (const RankProfile& p : sp.ranks) ++per_host[p.host];
  for (RankProfile& p : sp.ranks) p.ranks_on_host = per_host[p.host];
  double cap = 0;
  for (int r = 1; r < n; ++r)
    if (const double m = stage_memory(sp.ranks[r]); m > 0) cap = cap > 0 ? std::min(cap, m) : m;
  const ProbeSample sample = make_sample(cap);
  const size_t blocks = sample.window.size();
  sp.window = sample.window;
  check_window_fits(sp, sample);
  std::vector<int64_t> resident;
  for (const RankProfile& p : sp.ranks) resident.push_back(p.resident_bytes);
  const std::string request =
      ProfileRequest{sample.blocks, sample.input_frame, cfg.optimize}.to_bytes();
  log.info(strprintf(
      "measuring %d stage ranks on blocks %zu..%zu of %zu (%s each, %.0f%% of the "
      "model's compute; one rank per host at a time) and their links",
      n - 1, sample.window.first, sample.window.end - 1, sample.ref_ms.size(),
      format_bytes(static_cast<double>(request.size())).c_str(), 100 * sample.window_share));
  for (int r = 1; r < n; ++r) send_chunked(ch, r, kTagProbe, request, cfg.timeout_s);
  // Every rank builds its blocks at once, then says it is ready.
  for (int r = 1; r < n; ++r)
    sp.ranks[r] = rank_profile_from_bytes(
        recv_answer(ch, r, cfg.timeout_s, "rank " + std::to_string(r) + " to load the blocks"));
  for (int r = 0; r < n; ++r) {
    sp.ranks[r].ranks_on_host = per_host[sp.ranks[r].host];
    sp.ranks[r].resident_bytes = resident[r];  // as it said hello, before the window came
  }
  time_one_per_host(ch, sp, blocks, cfg.timeout_s);
  time_together(ch, sp, blocks, cfg.timeout_s);
  const size_t probed = probe_links(ch, sp, probe_bytes, cfg.timeout_s);
  log.info("measured " + std::to_string(probed) + (probed == 1 ? " link" : " links") +
           " (one pair of ranks per pair of hosts) for the " + std::to_string(n * (n - 1) / 2) +
           " pairs of ranks");
  for (int r = 1; r < n; ++r) send_order(ch, r, ProbeOrder{ProbeKind::done}, cfg.timeout_s);
  // The blocks no stage rank timed: rank 0's times at each rank's speed over the window.
  for (int r = 1; r < n; ++r) {
    RankProfile& p = sp.ranks[r];
    p.block_ms = extend_block_times(p.block_ms, sample.ref_ms, sample.window);
    if (!p.block_ms_busy.empty())
      p.block_ms_busy = extend_block_times(p.block_ms_busy, sample.ref_ms, sample.window);
  }
  sp.seconds = now_seconds() - t0;
  return sp;
}

// A stage rank says where it is, then builds and times the blocks rank 0 sends (the probe
// window) on the batch under its memory limit (MemoryBudget: the activations, and the copies of
// the weights optimize_for_inference makes), which an error names if the batch passes it.
size_t answer_probe(Channel& ch, const std::string& hello, const RunConfig& cfg) {
  EP_CHECK(ProbeOrder::from_bytes(hello).kind == ProbeKind::hello,
           "unexpected start-up message from rank 0");
  send_bytes(ch, 0, kTagProbe, rank_profile_to_bytes(this_rank(cfg)), cfg.timeout_s);
  EP_THROW_IF_STOPPED("while waiting for the blocks to time");
  // The blocks come if they fit this rank; else rank 0's set-up message says why (run_worker).
  if (wait_for_tag(ch, 0, {kTagSetup, kTagProbe}, cfg.timeout_s, "the blocks to time") == kTagSetup)
    return 0;
  const double t0 = now_seconds();
  size_t request_bytes = 0;
  const ProfileRequest req = [&] {
    const std::string request =
        recv_chunked(ch, 0, kTagProbe, cfg.timeout_s, "the blocks to time from rank 0");
    request_bytes = request.size();
    return ProfileRequest::from_bytes(request);
  }();
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
  return request_bytes;
}

}  // namespace edgepipe
