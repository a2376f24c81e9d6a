// output_identity: what an outputs file was made from, recorded in its root attributes when it
// is created and checked whenever --resume would continue it or call it done: the model
// (SHA-256), the inputs (InputSource::identity()), the row count, and every setting that changes
// the values of the rows (the codec, when it is lossy, and --optimize). A file is never continued
// with other settings, so it never mixes exact and lossy rows, and a changed model or input never
// keeps stale outputs.
#pragma once
#include <cstdint>
#include <string>

#include "edgepipe/cli/config.h"
#include "edgepipe/io/h5.h"

namespace edgepipe {

class InputSource;

struct OutputIdentity {
  std::string model_sha256;
  std::string input;  // InputSource::identity()
  int64_t rows = 0;
  std::string settings = "";  // output_settings() ("" in files made before it was recorded)
};

// "codec lossless, optimize on", or with a lossy codec on some link its --codec text
// ("codec zfp-rate:4, optimize on"). Lossless codecs (raw, lz4, zfp-reversible) give the same
// rows, so they may be mixed. `pipeline`: `run`'s codecs; `single` has none (lossless).
std::string output_settings(const RunConfig& cfg, bool pipeline);

// The identity of the outputs `cfg` makes from `in`; both commands build theirs with it.
OutputIdentity output_identity(const RunConfig& cfg, const InputSource& in, bool pipeline);

// Writes `id` as root attributes of a new outputs file (model_sha256, input_identity,
// rows_total, output_settings).
void record_identity(H5OutputFile& file, const OutputIdentity& id);

// Throws, naming the first difference and what to do, unless the file `name` (its attributes
// read through `file`) was made with identity `id`.
void check_identity(const H5AttributeReader& file, const OutputIdentity& id,
                    const std::string& name);

// For --resume: true when `output` is complete (and no partial file is left to continue) and
// was made with identity `id`: nothing to do. Throws if it is complete but made otherwise.
bool resume_finds_complete(const std::string& output, const OutputIdentity& id);

}  // namespace edgepipe
