// metrics: per-rank counters kept cheaply in the hot loop, and RAII timers that add to them.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace edgepipe {

// Totals of one stage rank over a run; times in seconds. Sent to rank 0 at the end as raw bytes.
struct StageCounters {
  double time_recv_wait = 0;  // waiting for the next input frame to arrive
  double time_decode = 0;
  double time_compute = 0;
  double time_encode = 0;
  double time_send_wait = 0;  // waiting for an earlier send to finish before reusing its buffer
  double time_total = 0;      // from the first receive posted to the end frame sent
  double bytes_in = 0;
  double bytes_out = 0;
  double batches = 0;
};

// Adds the seconds between its construction and destruction to `total`.
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

// Seconds since an arbitrary fixed point (steady clock).
double now_seconds();

std::string counters_to_bytes(const StageCounters& c);
StageCounters counters_from_bytes(const std::string& bytes);

}  // namespace edgepipe
