#include "edgepipe/plan/plan_format.h"

#include <cstdio>
#include <sstream>

namespace edgepipe {

namespace {

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

}  // namespace

std::string format_plan(const Plan& p, const ModelCosts& m, const Cluster& c) {
  std::ostringstream out;
  char buf[256];
  if (!p.found()) {
    out << p.method << ": no plan (" << p.note << ")\n";
    return out.str();
  }
  std::snprintf(buf, sizeof buf, "%-5s %-14s %-9s %10s %9s %9s %11s %11s %10s\n", "stage", "rank",
                "blocks", "compute_ms", "recv_ms", "send_ms", "memory_MiB", "bytes_out",
                "period_ms");
  out << buf;
  for (size_t k = 0; k < p.stages.size(); ++k) {
    const Stage& s = p.stages[k];
    const StageCost& sc = p.cost.stages[k];
    std::string rank = std::to_string(s.rank);
    if (!c.ranks[s.rank].name.empty()) rank += " (" + c.ranks[s.rank].name + ")";
    std::string blocks = std::to_string(s.first) + "-" + std::to_string(s.end - 1);
    std::snprintf(buf, sizeof buf, "%-5zu %-14s %-9s %10.3f %9.3f %9.3f %11.1f %11.0f %10.3f%s\n",
                  k, rank.c_str(), blocks.c_str(), sc.compute_s * 1e3, sc.recv_s * 1e3,
                  sc.send_s * 1e3, mib(sc.memory_bytes), m.cut_bytes[s.end], sc.period_s() * 1e3,
                  sc.fits() ? "" : "  (does not fit)");
    out << buf;
  }
  std::snprintf(
      buf, sizeof buf, "%s: %zu stages, predicted period %.3f ms%s%s\n", p.method.c_str(),
      p.stages.size(), p.cost.period_s * 1e3, p.cost.fits ? "" : " (DOES NOT FIT)",
      m.codec_thread ? "; codec beside compute: compute_ms = max(blocks, decode + encode)" : "");
  out << buf;
  return out.str();
}

}  // namespace edgepipe
