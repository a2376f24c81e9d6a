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
    // After an error: the rows of the batch (from 0) that fail when run alone, and whether every
    // row was tried (at most kRowCheckSeconds are spent trying them).
    int64_t rows = 0;
    std::vector<int64_t> bad_rows;
    bool rows_checked = false;
  };
  static constexpr double kRowCheckSeconds = 10;

  // `join_timeout_s`: how long the destructor waits for the batch computing then to end.
  ComputeLane(StageRunner& stage, bool threaded, double join_timeout_s = 30);
  // Stops and joins the compute thread, waiting at most join_timeout_s for its batch; past
  // that, says so on stderr and ends the process (status 1) rather than hang.
  ~ComputeLane();
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
  void find_bad_rows(const std::vector<at::Tensor>& in, Result& r);
  void loop();

  StageRunner& stage_;
  std::mutex m_;
  std::condition_variable wake_, finished_;
  std::deque<Job> jobs_;
  std::deque<Result> done_;
  bool computing_ = false, quit_ = false, exited_ = false;
  double join_timeout_s_ = 30;
  uint64_t computing_seq_ = 0, finished_count_ = 0;
  double inline_seconds_ = 0;
  double computing_since_ = 0;
  std::thread thread_;
};

}  // namespace edgepipe
