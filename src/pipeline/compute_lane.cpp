#include "edgepipe/pipeline/compute_lane.h"

#include <ATen/Parallel.h>

#include "edgepipe/records/metrics.h"

namespace edgepipe {

ComputeLane::ComputeLane(StageRunner& stage, bool threaded) : stage_(stage) {
  if (threaded) thread_ = std::thread([this] { loop(); });
}

ComputeLane::~ComputeLane() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(m_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ComputeLane::submit(uint64_t seq, int slot, std::vector<at::Tensor> in) {
  if (!thread_.joinable()) {
    done_.push_back(run(seq, slot, in));
    inline_seconds_ += done_.back().seconds;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(m_);
    jobs_.push_back(Job{seq, slot, std::move(in)});
  }
  wake_.notify_all();
}

std::optional<ComputeLane::Result> ComputeLane::take() {
  std::lock_guard<std::mutex> lock(m_);
  if (done_.empty()) return std::nullopt;
  Result r = std::move(done_.front());
  done_.pop_front();
  return r;
}

bool ComputeLane::has_result() {
  std::lock_guard<std::mutex> lock(m_);
  return !done_.empty();
}

size_t ComputeLane::in_flight() {
  std::lock_guard<std::mutex> lock(m_);
  return jobs_.size() + done_.size() + (computing_ ? 1 : 0);
}

bool ComputeLane::computing(uint64_t* seq, double* since) {
  std::lock_guard<std::mutex> lock(m_);
  if (!computing_ && jobs_.empty()) return false;
  *seq = computing_ ? computing_seq_ : jobs_.front().seq;
  *since = computing_ ? computing_since_ : now_seconds();
  return true;
}

void ComputeLane::sleep(std::chrono::microseconds pause) {
  std::unique_lock<std::mutex> lock(m_);
  if (!thread_.joinable()) {
    lock.unlock();
    std::this_thread::sleep_for(pause);
    return;
  }
  const uint64_t seen = finished_count_;
  finished_.wait_for(lock, pause, [&] { return finished_count_ != seen; });
}

ComputeLane::Result ComputeLane::run(uint64_t seq, int slot, const std::vector<at::Tensor>& in) {
  Result r;
  r.seq = seq;
  r.slot = slot;
  const double t0 = now_seconds();
  try {
    r.out = stage_.run(in);
  } catch (...) {
    r.error = std::current_exception();
  }
  r.seconds = now_seconds() - t0;
  return r;
}

void ComputeLane::loop() {
  at::init_num_threads();  // LibTorch's intra-op threads for this thread: --threads, as on main
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return quit_ || !jobs_.empty(); });
      if (quit_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      computing_ = true;
      computing_seq_ = job.seq;
      computing_since_ = now_seconds();
    }
    Result r = run(job.seq, job.slot, job.in);
    job.in.clear();
    {
      std::lock_guard<std::mutex> lock(m_);
      done_.push_back(std::move(r));
      computing_ = false;
      ++finished_count_;
    }
    finished_.notify_all();
  }
}

}  // namespace edgepipe
