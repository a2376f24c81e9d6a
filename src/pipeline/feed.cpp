#include "edgepipe/pipeline/feed.h"

#include <algorithm>
#include <thread>

#include "edgepipe/base/error.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/pipeline/watchdog.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

Feed::Feed(Channel& ch, const RunConfig& cfg, const RunPlan& plan, const InputSource& in,
           OutputSink& sink, const Log& log)
    : ch_(ch),
      cfg_(cfg),
      plan_(plan),
      in_(in),
      sink_(sink),
      log_(log),
      bad_inputs_("input", cfg.strict),
      bad_outputs_("output", cfg.strict),
      num_stages_(static_cast<int>(plan.num_stages())),
      stage_ranks_(static_cast<int>(plan.num_stage_ranks())),
      start_(sink.rows_done()),
      total_(in.count()),
      batches_((total_ - start_ + cfg.batch - 1) / cfg.batch),
      inflight_(cfg.inflight > 0 ? cfg.inflight : 2 * stage_ranks_),
      recv_buf_(plan.max_out_bytes),
      encoder_(cfg.codecs.for_link(1)),
      decoder_(plan.max_out_tensor_bytes),
      arrival_(static_cast<size_t>(batches_)),
      progress_(batches_, total_ - start_, log.quiet(), stdout, cfg.progress_s,
                cfg.progress_lines ? 0 : -1),
      // Rank 0 keeps batches queued ahead of the first stage, so it can sleep longer than the
      // stages: every wake-up preempts a computing rank when ranks outnumber cores. But not
      // longer than a tenth of the predicted period: large frames move only while rank 0 tests
      // them (rendezvous), so a long sleep would stall a fast pipeline.
      max_pause_(
          static_cast<int64_t>(std::clamp(1e5 * plan.decision.plan.period_s(), 100.0, 4000.0))) {
  if (cfg.trace) r_.dispatch.resize(static_cast<size_t>(batches_));  // filled in place
  post_receive();
}

// The next output in order, from the last stage's replica that computes it.
void Feed::post_receive() {
  if (done_ >= batches_) return;
  const int from = plan_.routing.rank_of(num_stages_ - 1, done_);
  recv_ = ch_.irecv(from, kTagData, recv_buf_.data(), recv_buf_.size());
  receiving_ = true;
}

StreamResults Feed::run() {
  t0_ = r_.t0 = now_seconds();
  last_progress_ = last_checkpoint_ = last_signal_poll_ = t0_;
  while (done_ < sent_ || (sent_ < batches_ && r_.stopped_by == 0)) {
    poll_stop(now_seconds());
    bool progressed = send_next();
    progressed = take_output() || progressed;
    const double now = now_seconds();
    if (now - last_checkpoint_ > cfg_.checkpoint_s) {
      sink_.checkpoint();
      last_checkpoint_ = now;
    }
    if (progressed) {
      last_progress_ = now;
      pause_ = std::chrono::microseconds(10);
    } else {
      idle(now);
    }
  }
  progress_.finish(done_, std::min(total_, first_row(done_)) - start_, now_seconds());
  if (cfg_.trace) r_.dispatch.resize(static_cast<size_t>(sent_));
  for (const NonFiniteRows* bad : {&bad_inputs_, &bad_outputs_})
    if (bad->count()) log_.warn(bad->summary());
  sink_.checkpoint();
  end_stream();
  gather();
  // A stop that came late (after the last batch was sent) still stops nothing: all rows are done.
  if (sink_.rows_done() == total_) r_.stopped_by = 0;
  StreamResults r = r_;
  derive(r);
  return r;
}

StreamResults Feed::partial() const {
  StreamResults r = r_;
  if (cfg_.trace) r.dispatch.resize(static_cast<size_t>(std::min(sent_, batches_)));
  if (r.t_end == 0) r.t_end = now_seconds();
  r.link_first = encoder_.counters();
  derive(r);
  return r;
}

// Rank 0's own signal, or a stage's notice: no more inputs; the batches in flight drain.
// A stage's failure notice ends the run with its error (the caller ends the job).
void Feed::poll_stop(double now) {
  if (now - last_signal_poll_ <= 0.01) return;
  last_signal_poll_ = now;
  const std::string failed = poll_failure_notices(
      ch_, stage_ranks_, plan_.members, [this](int64_t seq) { return first_row(seq); },
      [this](int rank) { return plan_.routing.stage_of_rank(rank); });
  EP_CHECK(failed.empty(), failed);
  if (r_.stopped_by != 0) return;
  r_.stopped_by = stop_signal() ? stop_signal() : poll_stop_notices(ch_, stage_ranks_);
  if (!r_.stopped_by) return;
  sink_.checkpoint();  // what is written is safe before anything else is tried
  drain_deadline_ = now + std::min(cfg_.timeout_s, 20.0);
  log_.info(std::string(signal_name(r_.stopped_by)) + ": no more inputs; waiting for the " +
            std::to_string(sent_ - done_) + " batches in flight");
}

// The next input batch, read, checked, encoded and posted, when the pipeline has room for it.
bool Feed::send_next() {
  if (sending_[slot_] && ch_.test(send_[slot_])) sending_[slot_] = false;
  if (r_.stopped_by != 0 || sent_ >= batches_ || sent_ - done_ >= inflight_ || sending_[slot_])
    return false;
  const double t_read = now_seconds();
  const at::Tensor x = in_.rows(first_row(sent_), std::min(cfg_.batch, total_ - first_row(sent_)));
  bad_inputs_.check({x}, first_row(sent_), log_);
  r_.nonfinite_rows = bad_inputs_.count();
  const double t_encode = now_seconds();
  std::vector<char>& buf = send_buf_[slot_];
  encoder_.encode(static_cast<uint64_t>(sent_), 0, {x}, buf);
  const double t_sent = now_seconds();
  DispatchRecord& tot = r_.dispatch_totals;
  tot.time_read += t_encode - t_read;
  tot.time_encode += t_sent - t_encode;
  tot.bytes_out += static_cast<double>(buf.size());
  if (cfg_.trace) {
    DispatchRecord& d = r_.dispatch[sent_];
    d.seq = sent_;
    d.t_sent = t_sent - t0_;
    d.time_read = t_encode - t_read;
    d.time_encode = t_sent - t_encode;
    d.bytes_out = static_cast<double>(buf.size());
  }
  send_to_[slot_] = plan_.routing.rank_of(0, sent_);
  send_[slot_] = ch_.isend(send_to_[slot_], kTagData, buf.data(), buf.size());
  sending_[slot_] = true;
  slot_ ^= 1;
  ++sent_;
  return true;
}

// The last stage's output for the next batch in order: decoded and written.
bool Feed::take_output() {
  size_t n = 0;
  if (!receiving_ || !ch_.test(recv_, &n)) return false;
  receiving_ = false;
  Frame f;
  const double decode_before = r_.time_decode_last;
  {
    ScopedTimer t(r_.time_decode_last);
    f = decoder_.decode(recv_buf_.data(), n);
  }
  const double t_write = now_seconds();
  EP_CHECK(!(f.flags & kFrameEnd), "the last stage sent an end frame as a batch, after ", done_,
           " of ", batches_, " batches");
  EP_CHECK(f.seq == static_cast<uint64_t>(done_), "received batch ", f.seq, " from rank ",
           plan_.members.at(plan_.routing.rank_of(num_stages_ - 1, done_)),
           " of the last stage but expected batch ", done_);
  bad_outputs_.check(f.tensors, first_row(done_), log_);
  sink_.write(first_row(done_), f.tensors);
  arrival_[done_] = now_seconds();
  DispatchRecord& tot = r_.dispatch_totals;
  tot.time_decode += r_.time_decode_last - decode_before;
  tot.time_write += arrival_[done_] - t_write;
  tot.bytes_in += static_cast<double>(n);
  if (cfg_.trace) {
    DispatchRecord& d = r_.dispatch[done_];
    d.t_arrived = arrival_[done_] - t0_;
    d.time_decode = r_.time_decode_last - decode_before;
    d.time_write = arrival_[done_] - t_write;
    d.bytes_in = static_cast<double>(n);
  }
  ++done_;
  tot.seq = done_;
  progress_.update(done_, std::min(total_, first_row(done_)) - start_, arrival_[done_ - 1]);
  post_receive();
  return true;
}

// Nothing happened this pass: the watchdog, the drain deadline after a stop, and a short sleep.
void Feed::idle(double now) {
  if (now - last_progress_ >= cfg_.timeout_s)
    EP_FAIL_AS(TimeoutError, watchdog_headline(cfg_.timeout_s, sent_, done_, plan_.members), "\n",
               ask_stages(ch_, stage_ranks_, plan_.members));
  EP_CHECK(r_.stopped_by == 0 || now < drain_deadline_,
           "the batches in flight did not return in time after ", signal_name(r_.stopped_by));
  std::this_thread::sleep_for(pause_);
  pause_ = std::min(pause_ * 2, max_pause_);
}

// End of stream: an end frame to every replica of the first stage; it travels through every
// stage rank (each passes it on to every replica of the next once its batches are sent), so
// when it has come back from every replica of the last stage, all work is done.
void Feed::end_stream() {
  for (int i = 0; i < 2; ++i)
    if (sending_[i])
      wait_for([&] { return ch_.test(send_[i]); }, cfg_.timeout_s,
               "rank " + std::to_string(plan_.members.at(send_to_[i])) + " to take a batch");
  sending_[0] = sending_[1] = false;
  if (receiving_) ch_.cancel(recv_);  // a stop: the batch it waits for was never sent
  receiving_ = false;
  encoder_.encode(static_cast<uint64_t>(sent_), kFrameEnd, {}, send_buf_[0]);
  const std::vector<int>& first = plan_.routing.ranks(0);
  const std::vector<int>& last = plan_.routing.ranks(static_cast<size_t>(num_stages_ - 1));
  std::vector<Channel::Handle> sends;
  for (int to : first)
    sends.push_back(ch_.isend(to, kTagEnd, send_buf_[0].data(), send_buf_[0].size()));
  for (int from : last) {
    const std::string who = std::to_string(plan_.members.at(from));
    const Channel::Handle h = ch_.irecv(from, kTagEnd, recv_buf_.data(), recv_buf_.size());
    size_t n = 0;
    wait_for([&] { return ch_.test(h, &n); }, cfg_.timeout_s,
             "the end of the stream to return from rank " + who);
    const Frame f = decoder_.decode(recv_buf_.data(), n);
    EP_CHECK(f.flags & kFrameEnd, "rank ", who, " sent a batch as the end of the stream");
    EP_CHECK(f.seq == static_cast<uint64_t>(sent_), "rank ", who, " ended the stream after ", f.seq,
             " batches but ", sent_, " were sent");
  }
  for (size_t i = 0; i < first.size(); ++i)
    wait_for([&] { return ch_.test(sends[i]); }, cfg_.timeout_s,
             "rank " + std::to_string(plan_.members.at(first[i])) + " to take the end frame");
  r_.t_end = now_seconds();
  r_.link_first = encoder_.counters();
}

// Every stage rank's counters and per-batch records, in pipeline order.
void Feed::gather() {
  for (int rank = 1; rank <= stage_ranks_; ++rank) {
    const std::string who = std::to_string(plan_.members.at(rank));
    r_.counters.push_back(counters_from_bytes(
        recv_bytes(ch_, rank, kTagStats, cfg_.timeout_s, "the counters of rank " + who)));
    r_.counter_stage.push_back(plan_.member_stage.at(rank));
    RankFacts facts;
    std::vector<BatchRecord> batches;
    trace_from_bytes(recv_bytes(ch_, rank, kTagTrace, cfg_.timeout_s, "the trace of rank " + who),
                     &facts, &batches);
    r_.stage_facts.push_back(facts);
    r_.stage_batches.push_back(std::move(batches));
  }
}

// Throughput: all images over the wall time, and once the pipeline had filled.
void Feed::derive(StreamResults& r) const {
  r.images = std::min(total_, first_row(done_)) - start_;
  if (done_ == 0) return;
  r.seconds = arrival_[done_ - 1] - t0_;
  const int64_t fill = std::min<int64_t>(stage_ranks_, done_ - 1);
  if (done_ - fill >= 2 && fill > 0) {
    const int64_t rows_after = std::min(total_, first_row(done_)) - first_row(fill);
    r.steady_per_s = rows_after / (arrival_[done_ - 1] - arrival_[fill - 1]);
  } else {
    r.steady_per_s = r.images / r.seconds;
  }
}

}  // namespace edgepipe
