// readiness: the last step of set-up. Each stage rank loads the stage rank 0 sent it (checked
// against its memory limit, optimised for inference and checked against the plain stage, warmed
// up) and tells rank 0 it is ready or what went wrong (kTagReady); rank 0 waits for every
// stage's word before the stream starts.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

// A stage rank: the loaded stage, or nothing if it could not be loaded (the problem is logged
// and sent to rank 0). `max_memory` is --max-memory ("": the node's limit). Once the stage is
// loaded, setup.module_bytes (its archive) is released; with `memory`, the set-up's phase ends
// there (trace.h: its peak, the RSS before and after malloc_trim), before rank 0 hears of it.
std::optional<StageRunner> load_stage_and_report(Channel& ch, StageSetup& setup, bool optimize,
                                                 const std::string& max_memory, double timeout_s,
                                                 const Log& log, RankMemory* memory = nullptr);

// Rank 0: waits for every stage's report; throws naming the first stage that could not load
// (and its rank in the job: `members`, rank 0 then each stage's).
void await_stages_ready(Channel& ch, const std::vector<int>& members, double timeout_s);

}  // namespace edgepipe
