#include "edgepipe/records/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace edgepipe {

namespace {
bool in_batch_job() {
  if (std::getenv("SLURM_JOB_ID") && !std::getenv("SLURM_PTY_PORT")) return true;
  return std::getenv("PBS_JOBID") || std::getenv("LSB_JOBID");
}
}  // namespace

Progress::Progress(int64_t total_batches, int64_t total_images, bool quiet, std::FILE* out,
                   double every_s, int in_place)
    : total_batches_(total_batches),
      total_images_(total_images),
      quiet_(quiet || every_s <= 0),
      in_place_(in_place >= 0 ? in_place != 0 : isatty(fileno(out)) != 0 && !in_batch_job()),
      out_(out),
      every_s_(in_place_ ? std::min(every_s, 0.5) : every_s) {}

std::string Progress::line(int64_t done, int64_t total, double images_per_s, double eta_s) {
  char eta[32] = "-";
  if (std::isfinite(eta_s) && eta_s >= 0) {
    const long s = std::lround(eta_s);
    std::snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld/%lld batches (%.0f%%), %.1f images/s, ETA %s",
                static_cast<long long>(done), static_cast<long long>(total),
                total > 0 ? 100.0 * done / total : 100.0, images_per_s, eta);
  return buf;
}

void Progress::print(int64_t batches_done, int64_t images_done, double now) {
  if (t0_ < 0) {  // the first call starts the clock
    t0_ = now;
    images0_ = images_done;
    next_ = now + every_s_;
    return;
  }
  next_ = now + every_s_;
  const double elapsed = now - t0_;
  const double rate = elapsed > 0 ? (images_done - images0_) / elapsed : 0;
  const double eta = rate > 0 ? (total_images_ - images_done) / rate : NAN;
  const std::string text = "edgepipe (0): " + line(batches_done, total_batches_, rate, eta);
  if (in_place_)
    std::fprintf(out_, "\r%s\033[K", text.c_str());
  else
    std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
  printed_ = true;
}

void Progress::finish(int64_t batches_done, int64_t images_done, double now) {
  if (quiet_ || !printed_) return;  // short runs: the summary says it all
  print(batches_done, images_done, now);
  if (in_place_) std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace edgepipe
