#include "edgepipe/io/output_paths.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/units.h"
#include "edgepipe/records/runlog.h"

namespace edgepipe {

namespace fs = std::filesystem;

namespace {

// A file by the role it plays in the command ("--output", "--model", ...).
struct NamedFile {
  std::string role, path;
};

std::string folder_of(const std::string& file) {
  const std::string dir = fs::path(file).parent_path().string();
  return dir.empty() ? "." : dir;
}

// The folder a file is to be written in exists and may be written (the system's reason if not).
void check_folder(const NamedFile& f) {
  const std::string dir = folder_of(f.path);
  std::error_code ec;
  EP_CHECK_AS(ConfigError, fs::is_directory(dir, ec), "the folder of ", f.role, " '", f.path,
              "' does not exist");
  const int err = access(dir.c_str(), W_OK | X_OK) == 0 ? 0 : errno;
  EP_CHECK_AS(ConfigError, err == 0, "cannot write ", f.role, " '", f.path, "': its folder '", dir,
              "' is not writable (", std::strerror(err), ")");
  EP_CHECK_AS(ConfigError, !fs::is_directory(f.path, ec), f.role, " '", f.path,
              "' is a directory; name a file");
}

// Two paths name the same file: the same device and inode when both exist, else the same real
// path (symbolic links and "..", resolved).
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ea, eb;
  const fs::path ra = fs::weakly_canonical(fs::absolute(a), ea);
  const fs::path rb = fs::weakly_canonical(fs::absolute(b), eb);
  return !ea && !eb && ra == rb;
}

// An HDF5 file starts with this signature (at offset 0 for the files edgepipe writes).
bool is_hdf5(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[8] = {0};
  return in.read(head, sizeof head) && std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0;
}

void check_log(const NamedFile& log, OutputMode mode) {
  check_folder(log);
  if (!fs::exists(log.path)) return;
  EP_CHECK_AS(ConfigError, mode != OutputMode::create, "run log '", log.path,
              "' exists; pass --overwrite to replace it, or --log to write another");
  EP_CHECK_AS(ConfigError, mode != OutputMode::resume || is_hdf5(log.path), "run log '", log.path,
              "' exists and is not an HDF5 run log: --resume replaces only an earlier attempt's "
              "log; pass --log to write another");
}

}  // namespace

OutputMode output_mode_of(const RunConfig& cfg) {
  return cfg.resume      ? OutputMode::resume
         : cfg.overwrite ? OutputMode::overwrite
                         : OutputMode::create;
}

void check_output_file(const std::string& path, OutputMode mode) {
  const std::string partial = path + ".partial";
  check_folder({"output file", path});
  check_folder({"partial file", partial});
  switch (mode) {
    case OutputMode::create:
      EP_CHECK_AS(ConfigError, !fs::exists(path), "output file '", path,
                  "' exists; pass --overwrite to replace it");
      EP_CHECK_AS(ConfigError, !fs::exists(partial), "'", partial,
                  "' holds the outputs of an unfinished run: pass "
                  "--resume to continue it, or --overwrite to start again");
      break;
    case OutputMode::overwrite:
      break;
    case OutputMode::resume:
      EP_CHECK_AS(ConfigError, fs::exists(partial) || fs::exists(path), "--resume: there is no '",
                  partial, "' from an earlier run to continue");
      break;
  }
}

OutputPaths check_output_paths(const RunConfig& cfg, bool writes_log) {
  OutputPaths p;
  p.output = cfg.output;
  p.partial = cfg.output + ".partial";
  p.lock = OutputLock::path_for(cfg.output);
  if (writes_log) p.log = cfg.log.empty() ? default_log_path(cfg.output) : cfg.log;
  std::vector<NamedFile> written{
      {"--output", p.output}, {"the partial file", p.partial}, {"the lock file", p.lock}};
  if (writes_log) {
    written.push_back({"--log", p.log});
    written.push_back({"the run log's temporary file", p.log + ".tmp"});
  }
  std::vector<NamedFile> read{{"--model", cfg.model}};
  if (!cfg.input_file.empty()) read.push_back({"--input", cfg.input_file});
  if (!cfg.profile.empty()) read.push_back({"--profile", cfg.profile});
  for (size_t i = 0; i < written.size(); ++i) {
    for (const NamedFile& r : read)
      EP_CHECK_AS(ConfigError, !same_file(written[i].path, r.path), "refusing to write ",
                  written[i].role, " '", written[i].path, "': it is the ", r.role, " file ('",
                  r.path, "'), which this command reads; choose another ", written[i].role);
    for (size_t j = 0; j < i; ++j)
      EP_CHECK_AS(ConfigError, !same_file(written[i].path, written[j].path), written[i].role, " '",
                  written[i].path, "' is the same file as ", written[j].role, " '", written[j].path,
                  "'; choose another ", written[i].role);
  }
  const OutputMode mode = output_mode_of(cfg);
  check_output_file(p.output, mode);
  if (writes_log) check_log({"run log", p.log}, mode);
  return p;
}

void check_free_space(const std::string& file, int64_t bytes, const std::string& what) {
  const std::string dir = folder_of(file);
  struct statvfs vfs;
  EP_CHECK(statvfs(dir.c_str(), &vfs) == 0, "cannot tell the free space of '", dir,
           "': ", std::strerror(errno));
  const double free_bytes = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
  EP_CHECK(free_bytes >= static_cast<double>(bytes), "not enough space for '", file, "': ", what,
           " need ", format_bytes(static_cast<double>(bytes)), ", and the file system of '", dir,
           "' has ", format_bytes(free_bytes), " free");
}

}  // namespace edgepipe
