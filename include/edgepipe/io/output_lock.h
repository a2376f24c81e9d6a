// output_lock: one job per outputs file. An exclusive flock(2) on "<output>.lock" beside the
// output, taken before anything touches the output or its partial file and held for the run, so
// that a second job on the same output fails at once, naming the job that holds it, instead of
// truncating or interleaving the first one's rows. The kernel releases it when the process dies.
#pragma once
#include <string>

namespace edgepipe {

class OutputLock {
 public:
  OutputLock() = default;  // holds nothing
  // Takes the lock on `output`; throws naming the holder (pid, host, since) if another process
  // holds it, or the system's reason if the lock file cannot be made.
  explicit OutputLock(const std::string& output);
  ~OutputLock();  // removes the lock file and releases the lock; never throws
  OutputLock(OutputLock&& o) noexcept;
  OutputLock& operator=(OutputLock&& o) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  bool held() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  // The lock file of an output: "<output>.lock".
  static std::string path_for(const std::string& output) { return output + ".lock"; }

 private:
  void release() noexcept;
  int fd_ = -1;
  std::string path_;
};

}  // namespace edgepipe
