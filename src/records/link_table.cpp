#include "edgepipe/records/link_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace edgepipe {

std::string describe_links(const std::vector<LinkCounters>& links) {
  std::ostringstream s;
  s << "  link  ranks   codec                 frames    MB raw   MB sent   ratio  encode ms  "
       "decode ms  max rel err  rel L2 err\n";
  for (size_t i = 0; i < links.size(); ++i) {
    const auto& c = links[i];
    const double fr = std::max(c.frames, 1.0);
    char err[64] = "           -           -";
    if (c.lossy_tensors > 0)
      std::snprintf(err, sizeof err, "  %11.3g  %10.3g", c.error_max_rel,
                    c.ref_sq > 0 ? std::sqrt(c.error_sq / c.ref_sq) : 0.0);
    char line[256];
    std::snprintf(line, sizeof line,
                  "  %4zu  %2zu -> %-2zu %-20s %7.0f  %8.2f  %8.2f  %5.2fx  %9.3f  %9.3f%s\n",
                  i + 1, i, (i + 1) % links.size(), c.codec, c.frames, c.bytes_raw / 1e6,
                  c.bytes_encoded / 1e6, c.bytes_raw / std::max(c.bytes_encoded, 1.0),
                  1e3 * c.time_encode / fr, 1e3 * c.time_decode / fr, err);
    s << line;
  }
  return s.str();
}

}  // namespace edgepipe
