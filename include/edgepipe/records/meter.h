// meter: one rank's CPU time and energy over a span of the run. Started by its constructor
// (reads the process's CPU seconds and the RAPL counters, if readable), read once at the end of
// the span; every rank meters its part of the stream with one (runlog.h, docs/runlog.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/records/energy.h"
#include "edgepipe/records/trace.h"

namespace edgepipe {

class Meter {
 public:
  Meter();  // the span starts now
  Meter(const Meter&) = delete;
  Meter& operator=(const Meter&) = delete;

  // What the process used since the span started.
  struct Deltas {
    double cpu_user_s = 0;
    double cpu_system_s = 0;
    double rapl_joules = -1;  // package energy counted by RAPL; -1: no readable counter
    std::string rapl_source;  // which counters, e.g. "intel-rapl:0,intel-rapl:1"
  };
  Deltas read() const;
  // Writes read() into the facts' cpu_user, cpu_system, rapl_joules and rapl_source.
  void record(RankFacts* facts) const;

 private:
  RaplCounters rapl_;
  std::vector<uint64_t> energy0_;
  double user0_ = 0, system0_ = 0;
};

}  // namespace edgepipe
