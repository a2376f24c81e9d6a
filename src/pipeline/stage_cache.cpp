#include "edgepipe/pipeline/stage_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "edgepipe/base/hash.h"

namespace edgepipe {

namespace {

std::string errno_text() { return std::strerror(errno); }

bool is_key(const std::string& sha256) {
  return sha256.size() == 64 && sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Closes a descriptor on every path (a failed close of a read-only one loses nothing).
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) (void)close(fd);
  }
};

}  // namespace

std::string stage_cache_dir(const std::string& option) {
  if (option.empty()) {  // EDGEPIPE_STAGE_CACHE: a site's or a test suite's default
    const char* site = std::getenv("EDGEPIPE_STAGE_CACHE");
    if (site && *site) return stage_cache_dir(site);
  }
  if (option == "off") return "";
  if (!option.empty()) return option;
  std::string base = "/tmp";
  for (const char* var : {"SLURM_TMPDIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v && *v) {
      base = v;
      break;
    }
  }
  return base + "/edgepipe-stages-" + std::to_string(geteuid());
}

std::optional<StageCache> StageCache::open(const std::string& given, const Log& log) {
  std::string dir = given;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();  // "link/" would follow the link
  auto refuse = [&](const std::string& why) -> std::optional<StageCache> {
    log.warn("stage cache " + given + ": " + why + "; this rank runs without a stage cache");
    return std::nullopt;
  };
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return refuse("cannot create it: " + errno_text());
  struct stat named;
  if (lstat(dir.c_str(), &named) != 0) return refuse("cannot stat it: " + errno_text());
  if (S_ISLNK(named.st_mode)) return refuse("it is a symbolic link (refused)");
  if (!S_ISDIR(named.st_mode)) return refuse("it is not a directory");
  Fd fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (fd.fd < 0) return refuse("cannot open it: " + errno_text());
  struct stat st;
  if (fstat(fd.fd, &st) != 0) return refuse("cannot stat it: " + errno_text());
  if (st.st_dev != named.st_dev || st.st_ino != named.st_ino)
    return refuse("it was replaced while it was opened (refused)");
  if (st.st_uid != geteuid())
    return refuse("it is owned by uid " + std::to_string(st.st_uid) + ", not by this uid (" +
                  std::to_string(geteuid()) + ") (refused)");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return refuse(strprintf("it is writable by %s (mode %04o; refused: make it 0700)",
                            (st.st_mode & S_IWOTH) ? "others" : "its group",
                            static_cast<unsigned>(st.st_mode & 07777)));
  StageCache cache(dir, fd.fd);
  fd.fd = -1;
  return std::optional<StageCache>(std::move(cache));
}

StageCache::StageCache(StageCache&& other) noexcept : dir_(std::move(other.dir_)), fd_(other.fd_) {
  other.fd_ = -1;
}

StageCache::~StageCache() {
  if (fd_ >= 0) (void)close(fd_);
}

std::optional<std::string> StageCache::lookup(const std::string& sha256, const Log& log) const {
  if (!is_key(sha256)) return std::nullopt;
  const std::string name = sha256 + ".pt";
  const std::string path = dir_ + "/" + name;
  // O_NONBLOCK: a FIFO planted under the name must not block the open (it is refused below).
  Fd in{openat(fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
  if (in.fd < 0) {
    if (errno != ENOENT)
      log.warn("stage cache entry " + path + " cannot be read (" + errno_text() +
               "): not used; the stage is fetched from rank 0");
    return std::nullopt;
  }
  struct stat st;
  if (fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    log.warn("stage cache entry " + path + " is not a regular file: not used");
    return std::nullopt;
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = read(in.fd, &bytes[got], bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log.warn("stage cache entry " + path + " cannot be read (" +
               (n < 0 ? errno_text() : std::string("it is shorter than its size")) +
               "): not used; the stage is fetched from rank 0");
      return std::nullopt;
    }
    got += static_cast<size_t>(n);
  }
  const std::string actual = sha256_bytes(bytes);
  if (actual != sha256) {
    log.warn("stage cache entry " + path + " is corrupt (its bytes hash to " + actual +
             "): not used; the stage is fetched from rank 0 and replaces it");
    return std::nullopt;
  }
  (void)futimens(in.fd, nullptr);  // used now: the last to be trimmed
  return bytes;
}

bool StageCache::store(const std::string& sha256, const std::string& bytes, const Log& log,
                       uint64_t max_bytes) const {
  if (!is_key(sha256)) return false;
  static std::atomic<unsigned> counter{0};
  const std::string name = sha256 + ".pt";
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    tmp = "." + sha256 + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
    fd = openat(fd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  auto fail = [&](const std::string& what) {
    log.warn("stage cache " + dir_ + ": " + what + " (" + errno_text() +
             "): the stage is not kept for the next run");
    if (fd >= 0) (void)close(fd);
    if (!tmp.empty()) (void)unlinkat(fd_, tmp.c_str(), 0);
    return false;
  };
  if (fd < 0) {
    tmp.clear();
    return fail("cannot create a temporary entry");
  }
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("writing " + tmp + " failed");
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("fsync of " + tmp + " failed");
  const int closed = close(fd);
  fd = -1;
  if (closed != 0) return fail("closing " + tmp + " failed");
  if (renameat(fd_, tmp.c_str(), fd_, name.c_str()) != 0)
    return fail("renaming " + tmp + " to " + name + " failed");
  tmp.clear();
  if (fsync(fd_) != 0) return fail("fsync of the directory failed");
  trim(name, max_bytes, log);
  return true;
}

void StageCache::trim(const std::string& keep, uint64_t max_bytes, const Log& log) const {
  // A descriptor of its own (a dup would share the directory's read position).
  const int fd = openat(fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!d) {
    if (fd >= 0) (void)close(fd);
    return;
  }
  struct Entry {
    std::string name;
    uint64_t bytes;
    timespec used;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  const std::time_t now = std::time(nullptr);
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    struct stat st;
    if (fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    const bool entry =
        name.size() == 67 && name.compare(64, 3, ".pt") == 0 && is_key(name.substr(0, 64));
    const bool stale_tmp = name.size() > 70 && name[0] == '.' &&
                           name.find(".tmp.") != std::string::npos && now - st.st_mtime > 3600;
    if (stale_tmp) (void)unlinkat(fd_, name.c_str(), 0);
    if (!entry) continue;
    total += static_cast<uint64_t>(st.st_size);
    if (name != keep) entries.push_back({name, static_cast<uint64_t>(st.st_size), st.st_mtim});
  }
  (void)closedir(d);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec
                                          : a.used.tv_nsec < b.used.tv_nsec;
  });
  for (const Entry& e : entries) {
    if (total <= max_bytes) break;
    if (unlinkat(fd_, e.name.c_str(), 0) == 0) {
      total -= e.bytes;
    } else if (errno != ENOENT) {
      log.warn("stage cache " + dir_ + ": cannot remove " + e.name + " (" + errno_text() + ")");
      return;
    }
  }
}

}  // namespace edgepipe
