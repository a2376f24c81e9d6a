// progress: rank 0's progress line for long runs: batches done / total, images/s, ETA. On a
// terminal it is rewritten in place; otherwise (a Slurm log, a pipe) a new line every few
// seconds. Nothing when quiet.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace edgepipe {

class Progress {
 public:
  // `out` is usually stdout. in_place: 1 or 0 forces it; -1 decides: in place when `out` is a
  // terminal and this is not a batch job (Slurm without --pty, PBS, LSF), whose log is a file
  // even though mpirun gives rank 0 a terminal.
  Progress(int64_t total_batches, int64_t total_images, bool quiet, std::FILE* out, double every_s,
           int in_place = -1);
  // Cheap when nothing is due: one comparison. `now` on the steady clock (seconds).
  void update(int64_t batches_done, int64_t images_done, double now) {
    if (!quiet_ && now >= next_) print(batches_done, images_done, now);
  }
  // Prints the last state and ends the line (in place: a newline).
  void finish(int64_t batches_done, int64_t images_done, double now);
  // The text of a progress line (no newline).
  static std::string line(int64_t done, int64_t total, double images_per_s, double eta_s);

 private:
  void print(int64_t batches_done, int64_t images_done, double now);
  int64_t total_batches_, total_images_;
  bool quiet_, in_place_;
  std::FILE* out_;
  double every_s_, t0_ = -1, next_ = 0;
  int64_t images0_ = 0;
  bool printed_ = false;
};

}  // namespace edgepipe
