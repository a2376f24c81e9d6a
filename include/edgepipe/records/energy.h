// energy: how much energy each rank spent. A hardware counter where one is readable (Intel RAPL
// through Linux powercap), else a documented model from CPU time and wall time. Every figure
// carries the name of its source.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/records/trace.h"

namespace edgepipe {

// Power model: a node draws idle_w_per_node whenever it is up, plus active_w_per_core for each
// core kept busy (one CPU second costs active_w_per_core joules). docs/runlog.md gives the
// sources of the named models.
struct EnergyModel {
  std::string name;  // "edge", "server" or "custom"
  double idle_w_per_node = 0;
  double active_w_per_core = 0;
  std::string description() const;  // "model edge: 2.7 W idle per node + 0.925 W per busy core"
};

// "edge" (Raspberry Pi 4 B) or "server" (a Xeon core); throws on another name.
EnergyModel energy_model_named(const std::string& name);

// The package energy counters of a powercap tree (/sys/class/powercap/intel-rapl:N, not their
// sub-zones). read() sums them in microjoules.
class RaplCounters {
 public:
  explicit RaplCounters(const std::string& root = "/sys/class/powercap");
  bool available() const { return !zones_.empty(); }
  std::string names() const;  // "intel-rapl:0,intel-rapl:1"
  // Each zone's counter now (microjoules); empty if a counter could not be read.
  std::vector<uint64_t> read() const;
  // Joules between two readings of the same zones; a counter that went down wrapped once at
  // its max_energy_range_uj.
  double joules_between(const std::vector<uint64_t>& before,
                        const std::vector<uint64_t>& after) const;

 private:
  struct Zone {
    std::string name, energy_path;
    uint64_t max_range_uj = 0;
  };
  std::vector<Zone> zones_;
};

// Wrap handling on one counter (microjoules in, joules out).
double rapl_delta_joules(uint64_t before, uint64_t after, uint64_t max_range_uj);

// One rank's energy over its part of the run and where the figure came from.
struct RankEnergy {
  double joules = 0;
  std::string source;
};

// Per rank, in the order given. Ranks on one host share it: with RAPL on every rank of a host,
// the host's package energy (the largest of its ranks' readings, their windows nearly coincide)
// is split between its ranks in proportion to their CPU time; otherwise each rank gets the model:
// its share of the host's idle power over its wall time + active power x its CPU time.
std::vector<RankEnergy> attribute_energy(const std::vector<RankFacts>& ranks,
                                         const EnergyModel& model);

}  // namespace edgepipe
