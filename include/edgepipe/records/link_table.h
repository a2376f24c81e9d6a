// link_table: the per-link table rank 0 prints at the end of a run (docs/codecs.md, "What a run
// reports"): each link's codec, bytes before and after encoding, ratio, codec times and error.
#pragma once
#include <string>
#include <vector>

#include "edgepipe/records/metrics.h"

namespace edgepipe {

// links[i] is link i + 1 (into rank i + 1; the last into rank 0), with bytes before and after
// encoding, ratio, encode and decode ms per frame, error.
std::string describe_links(const std::vector<LinkCounters>& links);

}  // namespace edgepipe
