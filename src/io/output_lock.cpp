#include "edgepipe/io/output_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {

// Who holds a lock, as its holder wrote it into the lock file.
std::string holder_of(int fd) {
  char text[256] = {0};
  const ssize_t n = pread(fd, text, sizeof text - 1, 0);
  return n > 0 ? std::string(text, static_cast<size_t>(n)) : "a process that has not said who";
}

std::string describe_self() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "?");
  char when[64] = {0};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (!localtime_r(&now, &tm) || !std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm))
    std::snprintf(when, sizeof when, "?");
  return detail::concat("pid ", getpid(), " on ", host, " since ", when);
}

bool same_file(int fd, const std::string& path) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

}  // namespace

OutputLock::OutputLock(const std::string& output) : path_(path_for(output)) {
  // A holder removes the lock file as it releases the lock: a lock taken on a file that was
  // removed in between is no lock, so take it again on the file the path now names.
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    EP_CHECK(fd >= 0, "cannot create the lock file '", path_,
             "' beside the output: ", std::strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string holder = err == EWOULDBLOCK ? holder_of(fd) : "";
      close(fd);
      EP_CHECK(err == EWOULDBLOCK, "cannot lock '", path_, "': ", std::strerror(err));
      EP_FAIL("'", output, "' is being written by another edgepipe job (", holder, "; lock '",
              path_, "'): wait for it to end, or choose another --output");
    }
    if (same_file(fd, path_))
      fd_ = fd;
    else
      close(fd);
  }
  EP_CHECK(fd_ >= 0, "cannot lock '", path_, "': it keeps being replaced");
  // Who holds it, for the message of the next job that tries. Only a courtesy: on a full disk
  // (resuming a run once the disk filled) it cannot be written, and the lock holds all the same.
  const std::string me = describe_self();
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, me.data(), me.size(), 0) < 0) {
    const int err = errno;
    if (err != ENOSPC && err != EDQUOT) {
      release();
      EP_FAIL("cannot write the lock file '", path_, "': ", std::strerror(err));
    }
  }
}

OutputLock::~OutputLock() { release(); }

OutputLock::OutputLock(OutputLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) {
  o.fd_ = -1;
}

OutputLock& OutputLock::operator=(OutputLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

void OutputLock::release() noexcept {
  if (fd_ < 0) return;
  // Removed while still held, so that nobody can take a lock on it that is no lock.
  if (same_file(fd_, path_) && unlink(path_.c_str()) != 0)
    std::fprintf(stderr, "edgepipe: warning: cannot remove the lock file '%s': %s\n", path_.c_str(),
                 std::strerror(errno));
  if (close(fd_) != 0)
    std::fprintf(stderr, "edgepipe: warning: closing the lock file '%s' failed: %s\n",
                 path_.c_str(), std::strerror(errno));
  fd_ = -1;
}

}  // namespace edgepipe
