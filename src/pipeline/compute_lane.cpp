#include "edgepipe/pipeline/compute_lane.h"

#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "edgepipe/base/test_hooks.h"
#include "edgepipe/records/metrics.h"

namespace edgepipe {

ComputeLane::ComputeLane(StageRunner& stage, bool threaded, double join_timeout_s)
    : stage_(stage), join_timeout_s_(join_timeout_s) {
  if (threaded) thread_ = std::thread([this] { loop(); });
}

// The compute thread ends as soon as its batch does: a batch that never ends (a model that
// hangs) must not keep the rank from exiting, so the wait is bounded, and past it the rank says
// so and exits (its peers see it gone; under MPI the job ends).
ComputeLane::~ComputeLane() {
  if (!thread_.joinable()) return;
  std::unique_lock<std::mutex> lock(m_);
  quit_ = true;
  wake_.notify_all();
  const bool ended = finished_.wait_for(lock, std::chrono::duration<double>(join_timeout_s_),
                                        [&] { return exited_; });
  lock.unlock();
  if (ended) {
    thread_.join();
    return;
  }
  std::fprintf(stderr,
               "edgepipe: error: the compute thread did not finish batch %llu within %.0f s of "
               "the stage's end (a model that hangs?): exiting\n",
               static_cast<unsigned long long>(computing_seq_), join_timeout_s_);
  std::fflush(stderr);
  std::_Exit(1);  // the thread still uses the stage: nothing may be destroyed under it
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
  if (r.error) find_bad_rows(in, r);
  return r;
}

// The batch failed: which of its rows fail alone? On the thread that computes (the stage is not
// thread-safe). Only for inputs that all have the batch's rows as their first dimension.
void ComputeLane::find_bad_rows(const std::vector<at::Tensor>& in, Result& r) {
  if (in.empty() || in[0].dim() == 0) return;
  r.rows = in[0].size(0);
  for (const at::Tensor& t : in)
    if (t.dim() == 0 || t.size(0) != r.rows) return;
  const double deadline = now_seconds() + kRowCheckSeconds;
  for (int64_t i = 0; i < r.rows; ++i) {
    if (now_seconds() > deadline) return;
    std::vector<at::Tensor> row;
    for (const at::Tensor& t : in) row.push_back(t.narrow(0, i, 1));
    try {
      (void)stage_.run(row);
    } catch (...) {
      r.bad_rows.push_back(i);
    }
  }
  r.rows_checked = true;
}

void ComputeLane::loop() {
  at::init_num_threads();  // LibTorch's intra-op threads for this thread: --threads, as on main
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return quit_ || !jobs_.empty(); });
      if (quit_) {
        exited_ = true;
        finished_.notify_all();
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
      computing_ = true;
      computing_seq_ = job.seq;
      computing_since_ = now_seconds();
    }
    if (test_hook_armed("compute_hang", static_cast<int64_t>(job.seq) + 1))
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // a model that hangs
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
