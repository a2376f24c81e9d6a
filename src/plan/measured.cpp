#include "edgepipe/plan/measured.h"

#include <algorithm>
#include <cstdio>

#include "edgepipe/base/error.h"

namespace edgepipe {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string t;
  for (size_t i = 0; i < shape.size(); ++i) t += (i ? "x" : "") + std::to_string(shape[i]);
  return t;
}

std::string identity_differences(const MeasuredIdentity& stored, const MeasuredIdentity& current) {
  std::string out;
  auto differ = [&](const std::string& what, const std::string& was, const std::string& now) {
    if (was != now) out += (out.empty() ? "" : "; ") + what + " " + was + " (this run " + now + ")";
  };
  differ("model SHA-256", stored.model_sha256, current.model_sha256);
  differ("batch", std::to_string(stored.batch), std::to_string(current.batch));
  differ("threads", std::to_string(stored.threads), std::to_string(current.threads));
  differ("input shape", shape_text(stored.input_shape), shape_text(current.input_shape));
  differ("codec", stored.codec, current.codec);
  return out;
}

// Stage ranks of the job on a host.
size_t stage_ranks_on(const StartupProfile& sp, const std::string& host) {
  size_t k = 0;
  for (size_t r = 1; r < sp.ranks.size(); ++r) k += sp.ranks[r].host == host;
  return k;
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

double window_memory(const std::vector<int64_t>& param_bytes, const std::vector<int64_t>& act_bytes,
                     ProbeWindow window) {
  double weights = 0, acts = 0;
  for (size_t b = window.first; b < window.end; ++b) {
    weights += static_cast<double>(param_bytes.at(b));
    acts = std::max(acts, static_cast<double>(act_bytes.at(b)));
  }
  return weights + acts;
}

ProbeWindow choose_probe_window(const std::vector<double>& ref_ms,
                                const std::vector<int64_t>& param_bytes,
                                const std::vector<int64_t>& act_bytes, size_t stage_ranks,
                                double memory_cap) {
  const size_t n = ref_ms.size();
  EP_CHECK(n > 0 && param_bytes.size() == n && act_bytes.size() == n, "choose_probe_window: ", n,
           " block times for ", param_bytes.size(), " blocks");
  const double parts = static_cast<double>(std::max<size_t>(stage_ranks, 1));
  double total_ms = 0, total_bytes = 0, max_ms = 0, max_bytes = 0;
  for (size_t b = 0; b < n; ++b) {
    total_ms += ref_ms[b];
    total_bytes += static_cast<double>(param_bytes[b]);
    max_ms = std::max(max_ms, ref_ms[b]);
    max_bytes = std::max(max_bytes, static_cast<double>(param_bytes[b]));
  }
  const double cap_ms = std::max(max_ms, total_ms / parts) * (1 + 1e-9);
  const double cap_bytes = std::max(max_bytes, total_bytes / parts) * (1 + 1e-9);
  ProbeWindow best{0, 1};
  double best_ms = -1, best_bytes = 0;
  for (size_t a = 0; a < n; ++a) {
    double ms = 0, bytes = 0, acts = 0;
    for (size_t e = a + 1; e <= n; ++e) {
      ms += ref_ms[e - 1];
      bytes += static_cast<double>(param_bytes[e - 1]);
      acts = std::max(acts, static_cast<double>(act_bytes[e - 1]));
      if (e > a + 1 &&
          (ms > cap_ms || bytes > cap_bytes || (memory_cap > 0 && bytes + acts > memory_cap)))
        break;
      if (ms > best_ms || (ms == best_ms && bytes < best_bytes)) {
        best = ProbeWindow{a, e};
        best_ms = ms;
        best_bytes = bytes;
      }
    }
  }
  return best;
}

std::vector<double> extend_block_times(const std::vector<double>& window_ms,
                                       const std::vector<double>& ref_ms, ProbeWindow window) {
  EP_CHECK(
      window.end <= ref_ms.size() && window.first < window.end && window_ms.size() == window.size(),
      "extend_block_times: ", window_ms.size(), " times for the window [", window.first, ", ",
      window.end, ") of ", ref_ms.size(), " blocks");
  double mine = 0, ref = 0;
  for (size_t b = window.first; b < window.end; ++b) {
    mine += window_ms[b - window.first];
    ref += ref_ms[b];
  }
  const double speed = ref > 0 ? mine / ref : 1.0;
  std::vector<double> out(ref_ms.size());
  for (size_t b = 0; b < ref_ms.size(); ++b)
    out[b] = b >= window.first && b < window.end ? window_ms[b - window.first] : ref_ms[b] * speed;
  return out;
}

double stage_memory(const RankProfile& p) {
  if (p.memory_limit <= 0) return 0;
  if (p.memory_source == "--max-memory") return static_cast<double>(p.memory_limit);
  const double share = static_cast<double>(p.memory_limit) / std::max(p.ranks_on_host, 1) -
                       static_cast<double>(p.resident_bytes);
  return std::max(share, 1.0);  // a rank that has nothing left can hold no stage
}

Cluster cluster_of(const StartupProfile& sp, size_t busy_per_host, double dispatcher_cores) {
  Cluster c;
  for (size_t r = 0; r < sp.ranks.size(); ++r) {
    const RankProfile& p = sp.ranks[r];
    RankInfo info;
    info.name = p.host;
    const double slow = r > 0 ? host_slowdown(sp, r, busy_per_host, dispatcher_cores) : 1.0;
    for (double ms : p.block_ms) info.block_ms.push_back(ms * slow);
    info.memory_bytes = stage_memory(p);
    if (info.memory_bytes <= 0) info.memory_bytes = 1e18;  // the node says nothing: no limit
    c.ranks.push_back(info);
  }
  c.links = sp.links;
  return c;
}

std::string describe_profile(const StartupProfile& sp, const std::string& source) {
  std::string s = source + " (" + format_duration(sp.seconds) + "):\n";
  const size_t blocks = sp.ranks.size() > 1 ? sp.ranks[1].block_ms.size() : 0;
  if (sp.window.end > 0 && sp.window.size() < blocks)
    s += "  each stage rank timed blocks " + std::to_string(sp.window.first) + ".." +
         std::to_string(sp.window.end - 1) + " of " + std::to_string(blocks) +
         "; its other blocks are rank 0's times at its speed over those\n";
  s += "  rank  host              threads  cores  blocks ms alone  x sharing  memory for a "
       "stage\n";
  const Cluster c = cluster_of(sp);
  for (size_t r = 1; r < sp.ranks.size(); ++r) {
    double total = 0;
    for (double ms : sp.ranks[r].block_ms) total += ms;
    const RankProfile& p = sp.ranks[r];
    std::string note;
    if (p.memory_source != "--max-memory") {
      note = ", shared by " + std::to_string(p.ranks_on_host) + " ranks";
      if (p.resident_bytes > 0)
        note += ", less " + format_bytes(static_cast<double>(p.resident_bytes)) + " held at start";
    }
    char line[400];
    std::snprintf(line, sizeof line, "  %4zu  %-16s  %7d  %5.1f  %15.2f  %9.2f  %s (%s%s)\n", r,
                  p.host.c_str(), p.threads, p.cores, total, host_slowdown(sp, r),
                  format_bytes(c.ranks[r].memory_bytes).c_str(), p.memory_source.c_str(),
                  note.c_str());
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
