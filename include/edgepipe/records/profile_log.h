// profile_log: the run log's /profile group, what a run planned from (policy.h's StoredProfile):
// every rank's and link's start-up measurements, rank 0's profile of the model and its own work
// per batch, the calibration timings, the planning options and what the measurements are valid
// for. `run --profile LOG` and `plan --profile LOG` plan from it again (docs/runlog.md).
#pragma once
#include <hdf5.h>

#include <string>

#include "edgepipe/plan/policy.h"

namespace edgepipe {

// Writes /profile into an open run log file.
void write_profile_group(hid_t file, const StoredProfile& profile);

// Reads the /profile of a run log. Throws edgepipe::Error naming the file when it has none, or
// one that is inconsistent or from an edgepipe that did not store the model's costs.
StoredProfile read_stored_profile(const std::string& path);

}  // namespace edgepipe
