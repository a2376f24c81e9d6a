// error_sums: what a lossy method's encoder measures of its own error, piece by piece (zfp
// chunks, q8 blocks) on several threads, added up in piece order so that the link's figures are
// the same on any number of threads.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "edgepipe/records/metrics.h"

namespace edgepipe {

// Squared error, squared reference and largest error of a decoded range against the original.
struct ErrorSums {
  double e2 = 0, r2 = 0, emax = 0;

  void add(const ErrorSums& o) {
    e2 += o.e2;
    r2 += o.r2;
    emax = std::max(emax, o.emax);
  }
};

// The sums over x[0..n) against decoded(i), the value x[i] came back as.
template <typename T, typename Decoded>
ErrorSums error_sums_of(const T* x, size_t n, const Decoded& decoded) {
  ErrorSums s;
  for (size_t i = 0; i < n; ++i) {
    const double xi = static_cast<double>(x[i]);
    const double d = static_cast<double>(decoded(i)) - xi;
    s.e2 += d * d;
    s.r2 += xi * xi;
    s.emax = std::max(s.emax, std::fabs(d));
  }
  return s;
}

// One lossy tensor's error, added to its link's totals (maxabs: its largest magnitude).
inline void add_error(const ErrorSums& s, double maxabs, LinkCounters& c) {
  const double e2 = s.e2, r2 = s.r2, emax = s.emax;
  c.lossy_tensors += 1;
  c.error_max_rel = std::max(c.error_max_rel, maxabs > 0 ? emax / maxabs : (emax > 0 ? 1.0 : 0));
  c.error_max_rel_l2 =
      std::max(c.error_max_rel_l2, r2 > 0 ? std::sqrt(e2 / r2) : (e2 > 0 ? 1.0 : 0));
  c.error_sq += e2;
  c.ref_sq += r2;
}

}  // namespace edgepipe
