// output_paths: every file a command writes, checked before anything slow runs, so that a bad
// path fails at once with the cause instead of after the compute, and no input is ever
// replaced. The checks: each folder exists and is writable (else the system's reason, e.g.
// "Read-only file system"); no output names a directory; no output is the model, the inputs,
// the --profile log or another output (compared by real path and by device and inode); an
// existing output, partial file or run log is replaced only with --overwrite (--resume continues
// the partial file and replaces the earlier attempt's run log, if it is an HDF5 file).
#pragma once
#include <cstdint>
#include <string>

#include "edgepipe/cli/config.h"
#include "edgepipe/io/h5.h"

namespace edgepipe {

// The files a run writes.
struct OutputPaths {
  std::string output;   // --output: only ever complete
  std::string partial;  // <output>.partial, renamed to <output> when complete
  std::string lock;     // <output>.lock (output_lock.h)
  std::string log;      // the run log (`run`; "" for `single`, which writes none)
};

// --resume, --overwrite or neither.
OutputMode output_mode_of(const RunConfig& cfg);

// The output, its partial and its lock file for `mode` (H5OutputFile::preflight). Throws
// ConfigError naming the path and the problem.
void check_output_file(const std::string& output, OutputMode mode);

// All the files `cfg` makes a command write (`writes_log`: `run`), against each other and against
// the files it reads. Throws ConfigError naming the path, the problem and what to do.
OutputPaths check_output_paths(const RunConfig& cfg, bool writes_log);

// Throws Error unless the file system holding `file` has `bytes` free for it ("the outputs need
// 80.0 MiB for 20000 rows, and the file system of '/data' has 3.9 MiB free").
void check_free_space(const std::string& file, int64_t bytes, const std::string& what);

}  // namespace edgepipe
