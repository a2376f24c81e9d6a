// worker: ranks 1..N. Receive a frame, decode, run the stage, encode, send on; nothing else.
#pragma once
#include <string>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

// What rank 0 sends a stage rank at start-up (tag kTagSetup).
struct StageSetup {
  bool ok = true;              // false: rank 0 failed to set up; the worker just exits
  bool nothing_to_do = false;  // with ok false: there was no work (not a failure)
  int stage = 0;               // 0-based stage index
  int num_stages = 0;
  int prev = 0;                    // rank that sends this stage its inputs
  int next = 0;                    // rank this stage sends its outputs to
  std::vector<TensorMeta> inputs;  // the stage's inputs at full batch size (for warm-up)
  uint64_t max_in_bytes = 0;       // largest frame this stage can receive
  CodecSpec out_codec;             // codec of the link this stage sends on (codec_spec.h)
  bool overlap = false;            // run the blocks on a compute thread, beside the codec work
                                   // (--overlap; rank 0 decides)
  std::vector<int32_t> members;    // the job's ranks in pipeline order: rank 0, then the rank of
                                   // each stage; prev and next count in this order
                                   // (RemappedChannel)
  std::string module_bytes;        // the stage's TorchScript archive

  std::string to_bytes() const;
  static StageSetup from_bytes(const std::string& bytes);
};

// Runs one stage rank until the end frame; returns the process exit code. Errors during the
// steady state abort the whole job (the error is printed first, with the rank).
int run_worker(const RunConfig& cfg, Channel& ch, const Log& log);

}  // namespace edgepipe
