// compute_lane: where a stage's batches compute. Inline, when submit() is called (the serial
// mode: decode, compute and encode take turns on the main thread), or on a compute thread of its
// own (--overlap: the main thread decodes the next batch and encodes the previous one while this
// batch computes). Results come out in the order the batches went in.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "edgepipe/model/stage.h"

namespace edgepipe {

class ComputeLane {
 public:
  struct Result {
    uint64_t seq = 0;
    int slot = 0;  // the input buffer the batch came in (it is free once the result is encoded)
    std::vector<at::Tensor> out;
    double seconds = 0;
    std::exception_ptr error;
  };

  ComputeLane(StageRunner& stage, bool threaded);
  ~ComputeLane();  // stops and joins the compute thread
  ComputeLane(const ComputeLane&) = delete;
  ComputeLane& operator=(const ComputeLane&) = delete;

  void submit(uint64_t seq, int slot, std::vector<at::Tensor> in);
  // The next finished batch, if there is one.
  std::optional<Result> take();
  // Seconds computed inline (on the caller's thread) so far.
  double inline_seconds() const { return inline_seconds_; }
  bool has_result();
  // Batches submitted and not yet taken.
  size_t in_flight();
  // Whether a batch is computing now (or queued to), which, and since when.
  bool computing(uint64_t* seq, double* since);
  // Sleeps up to `pause`, or less if a batch finishes meanwhile.
  void sleep(std::chrono::microseconds pause);

 private:
  struct Job {
    uint64_t seq;
    int slot;
    std::vector<at::Tensor> in;
  };
  Result run(uint64_t seq, int slot, const std::vector<at::Tensor>& in);
  void loop();

  StageRunner& stage_;
  std::mutex m_;
  std::condition_variable wake_, finished_;
  std::deque<Job> jobs_;
  std::deque<Result> done_;
  bool computing_ = false, quit_ = false;
  uint64_t computing_seq_ = 0, finished_count_ = 0;
  double inline_seconds_ = 0;
  double computing_since_ = 0;
  std::thread thread_;
};

}  // namespace edgepipe
