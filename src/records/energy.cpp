#include "edgepipe/records/energy.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "edgepipe/base/error.h"

namespace edgepipe {

std::string EnergyModel::description() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "model %s: %.3g W idle per node + %.3g W per busy core",
                name.c_str(), idle_w_per_node, active_w_per_core);
  return buf;
}

EnergyModel energy_model_named(const std::string& name) {
  // Raspberry Pi 4 B: 2.7 W idle, 6.4 W with stress --cpu 4 (Pi Dramble power benchmarks):
  // (6.4 - 2.7) / 4 cores.
  if (name == "edge") return {"edge", 2.7, 0.925};
  // A server core: 150 W TDP / 20 cores of a Xeon Gold 6248 (Intel ARK); a 2-socket node idles
  // at about 60 W (order of magnitude of SPECpower_ssj2008 idle results).
  if (name == "server") return {"server", 60.0, 7.5};
  EP_FAIL("unknown energy model '", name,
          "': expected edge or server (or give "
          "--energy-idle-watts and --energy-core-watts)");
}

namespace {
bool read_u64(const std::string& path, uint64_t* v) {
  std::ifstream f(path);
  unsigned long long x = 0;
  if (!(f >> x)) return false;
  *v = x;
  return true;
}
}  // namespace

RaplCounters::RaplCounters(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    // Package zones only: "intel-rapl:0"; sub-zones "intel-rapl:0:0" are parts of a package.
    if (n.rfind("intel-rapl:", 0) == 0 && n.find(':', 11) == std::string::npos) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    Zone z{n, root + "/" + n + "/energy_uj", 0};
    uint64_t probe = 0;
    if (!read_u64(root + "/" + n + "/max_energy_range_uj", &z.max_range_uj)) continue;
    if (!read_u64(z.energy_path, &probe)) continue;  // root only on recent kernels
    zones_.push_back(z);
  }
}

std::string RaplCounters::names() const {
  std::string out;
  for (const auto& z : zones_) out += (out.empty() ? "" : ",") + z.name;
  return out;
}

std::vector<uint64_t> RaplCounters::read() const {
  std::vector<uint64_t> v(zones_.size());
  for (size_t i = 0; i < zones_.size(); ++i)
    if (!read_u64(zones_[i].energy_path, &v[i])) return {};
  return v;
}

double rapl_delta_joules(uint64_t before, uint64_t after, uint64_t max_range_uj) {
  const uint64_t uj = after >= before ? after - before : (max_range_uj - before) + after;
  return 1e-6 * static_cast<double>(uj);
}

double RaplCounters::joules_between(const std::vector<uint64_t>& before,
                                    const std::vector<uint64_t>& after) const {
  EP_CHECK(before.size() == zones_.size() && after.size() == zones_.size(),
           "RAPL readings do not match the zones");
  double j = 0;
  for (size_t i = 0; i < zones_.size(); ++i)
    j += rapl_delta_joules(before[i], after[i], zones_[i].max_range_uj);
  return j;
}

std::vector<RankEnergy> attribute_energy(const std::vector<RankFacts>& ranks,
                                         const EnergyModel& model) {
  std::map<std::string, std::vector<size_t>> by_host;
  for (size_t i = 0; i < ranks.size(); ++i) by_host[ranks[i].host].push_back(i);
  std::vector<RankEnergy> out(ranks.size());
  for (const auto& [host, members] : by_host) {
    bool rapl = true;
    double node_j = 0, cpu_sum = 0;
    for (size_t i : members) {
      rapl = rapl && ranks[i].rapl_joules >= 0;
      node_j = std::max(node_j, ranks[i].rapl_joules);
      cpu_sum += ranks[i].cpu_user + ranks[i].cpu_system;
    }
    const double n = static_cast<double>(members.size());
    for (size_t i : members) {
      const RankFacts& f = ranks[i];
      const double cpu = f.cpu_user + f.cpu_system;
      if (rapl) {
        out[i].joules = cpu_sum > 0 ? node_j * cpu / cpu_sum : node_j / n;
        out[i].source = detail::concat("RAPL ", f.rapl_source, " (package energy of ", host,
                                       ", split among its ", members.size(), " ranks by CPU time)");
      } else {
        out[i].joules =
            model.idle_w_per_node / n * (f.t_end - f.t_begin) + model.active_w_per_core * cpu;
        out[i].source =
            detail::concat(model.description(), "; idle power of ", host, " split among its ",
                           members.size(), " ranks (no readable RAPL counter)");
      }
    }
  }
  return out;
}

}  // namespace edgepipe
