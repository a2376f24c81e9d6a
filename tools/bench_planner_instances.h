// bench_planner_instances: what the two halves of tools/bench_planner share (bench_planner.cpp:
// baselines against the optimum; bench_planner_replicas.cpp: plans with replicas): its options,
// the random instances, the CSV writer and small statistics.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/plan/plan.h"

namespace edgepipe {
namespace bench {

constexpr double kMiB = 1024.0 * 1024.0;

struct Options {
  size_t instances = 1000, ranks = 8, blocks = 24, repeats = 5;
  uint64_t seed = 1;
  std::string configs, csv;
};

struct Instance {
  ModelCosts model;
  Cluster cluster;
};

double seconds_since(std::chrono::steady_clock::time_point t0);

// How random clusters are drawn.
struct Scenario {
  const char* name;
  double bw_min, bw_max;        // bit/s, log-uniform, per pair of ranks (both directions alike)
  double lat_min, lat_max;      // s, uniform
  double speed_min, speed_max;  // log-uniform
};
inline const Scenario kScenarios[] = {
    {"edge", 10e6, 1e9, 0.1e-3, 5e-3, 0.25, 4},  // Wi-Fi to gigabit; phones to desktops
    {"lan", 100e6, 1e9, 0.1e-3, 1e-3, 0.5, 2},   // one switched LAN, milder speed spread
};

// A heterogeneous cluster and a model chain:
//   blocks: compute 1..50 ms at speed 1, weights 0.1..20 MB, peak activations 0.2..5 MB,
//           cuts 20 KB..4 MB (input 588 KiB, output 4 KB), all log-uniform;
//   ranks:  speed and links as the scenario says; memory 15%..100% (uniform) of what the whole
//           model needs (its weights + its largest activation); the dispatcher's links likewise.
// With `classes` < R, ranks come in that many classes of identical ranks (speed, memory, links
// by class pair), so that the planner's types have several members.
Instance random_instance(std::mt19937_64& rng, size_t R, size_t n, const Scenario& sc,
                         size_t classes = 0);

// 64 ranks in 4 types of 16 (speeds 0.5, 1, 2, 4; memories 64 MiB..512 MiB; links by type pair),
// and a chain of n blocks drawn as above.
Instance typed_instance(std::mt19937_64& rng, size_t n);

// The CSV file of --csv (none: rows are dropped): one row per table line, closed and checked
// at the end.
class CsvOut {
 public:
  explicit CsvOut(const std::string& path) : path_(path) {
    if (path_.empty()) return;
    out_.open(path_);
    EP_CHECK(out_, "cannot write ", path_);
    out_ << "table,name,value1,value2,value3,value4,value5\n";
  }
  void row(const std::string& line) {
    if (!path_.empty()) out_ << line << "\n";
  }
  void close() {
    if (path_.empty()) return;
    out_.close();
    EP_CHECK(out_, "cannot write ", path_);
  }

 private:
  std::string path_;
  std::ofstream out_;
};

double mean_of(const std::vector<double>& v);
double percentile(std::vector<double> v, double q);

// The half with replicas (bench_planner_replicas.cpp). Each prints its table and writes its CSV
// rows.
// 4. The optimum with replicas against the best single pipeline and data parallelism on a
//    scenario's random instances of R ranks (in `classes` classes; 0: all distinct); returns how
//    often either beat the optimum (never, if the planner is exact).
size_t bench_replica_scenario(const Options& o, const Scenario& sc, size_t R, size_t classes,
                              CsvOut& csv);
// 5. The planner with replicas on 64 ranks of 4 types; returns its time on the ResNet50-shaped
//    chain (median, s).
double bench_typed64_replicas(const Options& o, CsvOut& csv);
// 6. The ResNet50-shaped chain on the shipped cluster descriptions, with and without replicas.
void bench_configs_replicas(const Options& o, CsvOut& csv);

}  // namespace bench
}  // namespace edgepipe
