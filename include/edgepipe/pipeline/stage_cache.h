// stage_cache: a stage rank's store of the stages it received (run --stage-cache DIR), on the
// node's local disk, so that a repeated job does not ship each stage over the network again.
// Entries are content-addressed: DIR/<sha256>.pt holds the TorchScript archive whose SHA-256 is
// <sha256> (rank 0 computes it and sends it in the StageSetup, protocol.h).
//
// Security (the tools run as root, issue 18): the directory is created 0700; one that is a
// symlink, is not a directory, is not owned by this process's effective uid, or is writable by
// group or others is not used (a warning says why, and the rank runs without a cache). It is
// opened once (O_DIRECTORY | O_NOFOLLOW) and every entry is reached through that descriptor.
// An entry is written to a temporary file in the directory (O_CREAT | O_EXCL | O_NOFOLLOW,
// 0600), fsynced, renamed to its name and the directory fsynced: a half-written entry is never
// seen under its name. An entry is read with O_NOFOLLOW, must be a regular file, and is hashed:
// one whose bytes do not match its name is never used (a warning says so; the bytes rank 0
// then sends replace it).
//
// Size: a hit refreshes its entry's time; after a store the entries least recently used are
// removed until the folder holds at most kStageCacheMaxBytes (the entry just stored is kept),
// and temporary files older than an hour (left by a rank that died while writing) go too.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "edgepipe/base/log.h"

namespace edgepipe {

constexpr uint64_t kStageCacheMaxBytes = uint64_t{2} << 30;  // 2 GiB of entries per folder

// The directory `--stage-cache` names on this node: "off" -> "" (no cache); "" (the default) ->
// $SLURM_TMPDIR, else $TMPDIR, else /tmp, plus "/edgepipe-stages-<uid>"; anything else as given.
std::string stage_cache_dir(const std::string& option);

class StageCache {
 public:
  // Opens (creating it 0700 if missing; its parent must exist) the cache at `dir`. Returns
  // nothing, with a warning on `log` naming the directory and the reason, when it cannot be used.
  static std::optional<StageCache> open(const std::string& dir, const Log& log);
  StageCache(StageCache&& other) noexcept;
  StageCache& operator=(StageCache&&) = delete;
  StageCache(const StageCache&) = delete;
  ~StageCache();

  const std::string& dir() const { return dir_; }
  // The entry of `sha256` (64 lowercase hex digits) if the cache holds it and its bytes hash to
  // it; a missing entry gives nothing, one that cannot be read or does not match gives nothing
  // with a warning.
  std::optional<std::string> lookup(const std::string& sha256, const Log& log) const;
  // Stores `bytes` as the entry of `sha256` (replacing one there), then trims the folder to
  // `max_bytes` (above); a failure is a warning. Returns true when the entry was written.
  bool store(const std::string& sha256, const std::string& bytes, const Log& log,
             uint64_t max_bytes = kStageCacheMaxBytes) const;

 private:
  StageCache(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  void trim(const std::string& keep, uint64_t max_bytes, const Log& log) const;
  std::string dir_;
  int fd_ = -1;  // the directory, opened O_DIRECTORY | O_NOFOLLOW
};

}  // namespace edgepipe
