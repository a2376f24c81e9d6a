// metrics: per-rank counters kept cheaply in the hot loop, and RAII timers that add to them.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace edgepipe {

// One link's codec totals over a run (see codec_spec.h for how links are numbered). The rank
// that encodes fills all but time_decode; the rank that decodes adds time_decode. Times in
// seconds. Trivially copyable: it travels inside StageCounters as raw bytes.
struct LinkCounters {
  char codec[40] = {};          // canonical name of the link's codec, e.g. "zfp-rate:8+lz4"
  double frames = 0;            // frames with tensors
  double bytes_raw = 0;         // tensor bytes before encoding
  double bytes_encoded = 0;     // tensor payload bytes after encoding (frame headers excluded)
  double bytes_frames = 0;      // whole frames as sent (headers, descriptors, padding included)
  double time_encode = 0;       // encoding, error measurement excluded
  double time_decode = 0;       // decoding at the receiving rank
  double time_error = 0;        // decoding again at the sender to measure a lossy codec's error
  double lossy_tensors = 0;     // tensors encoded with a lossy zfp mode (error measured)
  double error_max_rel = 0;     // max over those tensors of max|x' - x| / max|x|
  double error_max_rel_l2 = 0;  // max over those tensors of ||x' - x|| / ||x||
  double error_sq = 0;          // sum over them of ||x' - x||^2 (for the link's overall rel L2)
  double ref_sq = 0;            // sum over them of ||x||^2
};

// Totals of one stage rank over a run; times in seconds. Sent to rank 0 at the end as raw bytes.
struct StageCounters {
  double time_recv_wait = 0;  // waiting for the next input frame to arrive
  double time_decode = 0;
  double time_compute = 0;
  double time_encode = 0;
  double time_send_wait = 0;  // waiting for an earlier send to finish before reusing its buffer
  // --overlap: compute runs on a thread of its own, so time_compute overlaps the main thread's
  // parts; this is the main thread's idle time while a batch computed (0 without overlap).
  double time_compute_wait = 0;
  // The watchdog's probe in each pass of the worker's loop (MPI_Iprobe: it also drives MPI's
  // progress, moving the pending receives' and sends' data, and may yield the core).
  double time_probe = 0;
  double overlap = 0;     // 1 with --overlap (a double: the struct is sent as bytes)
  double time_total = 0;  // from the first receive posted to the end frame sent
  double bytes_in = 0;
  double bytes_out = 0;
  double batches = 0;
  LinkCounters link_out;  // the link this rank sends on (its encoder's totals)
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

}  // namespace edgepipe
