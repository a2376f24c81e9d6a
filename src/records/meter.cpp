#include "edgepipe/records/meter.h"

#include <cstdio>

namespace edgepipe {

Meter::Meter() : energy0_(rapl_.read()) { process_cpu_seconds(&user0_, &system0_); }

Meter::Deltas Meter::read() const {
  Deltas d;
  double user = 0, system = 0;
  process_cpu_seconds(&user, &system);
  d.cpu_user_s = user - user0_;
  d.cpu_system_s = system - system0_;
  const std::vector<uint64_t> energy1 = rapl_.read();
  if (!energy0_.empty() && !energy1.empty()) {
    d.rapl_joules = rapl_.joules_between(energy0_, energy1);
    d.rapl_source = rapl_.names();
  }
  return d;
}

void Meter::record(RankFacts* facts) const {
  const Deltas d = read();
  facts->cpu_user = d.cpu_user_s;
  facts->cpu_system = d.cpu_system_s;
  if (d.rapl_joules >= 0) {
    facts->rapl_joules = d.rapl_joules;
    std::snprintf(facts->rapl_source, sizeof facts->rapl_source, "%s", d.rapl_source.c_str());
  }
}

}  // namespace edgepipe
