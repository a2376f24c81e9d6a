#include "edgepipe/pipeline/stage_loop.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "edgepipe/base/error.h"

namespace edgepipe {

StagePosition stage_position(const StageSetup& setup) {
  StagePosition at;
  at.stage = setup.stage;
  at.prev = setup.prev;
  at.next = setup.next;
  at.rank = setup.members.at(setup.stage + 1);  // stage s is pipeline rank s + 1
  at.prev_rank = setup.members.at(setup.prev);
  at.next_rank = setup.members.at(setup.next);
  at.max_in_bytes = setup.max_in_bytes;
  for (const auto& m : setup.inputs) at.max_in_tensor_bytes += static_cast<uint64_t>(m.bytes());
  at.overlap = setup.overlap;
  return at;
}

StageLoop::StageLoop(Channel& ch, const StagePosition& at, const CodecSpec& codec,
                     StageRunner& stage, StageCounters& counters, BatchTrace& trace,
                     double timeout_s)
    : ch_(ch),
      at_(at),
      counters_(counters),
      trace_(trace),
      timeout_s_(timeout_s * 1.5 + 10),
      encoder_(codec),
      lane_(stage, at.overlap),
      reporter_(ch) {
  for (int i = 0; i < 2; ++i) {
    decoder_[i].emplace(at.max_in_tensor_bytes);  // a frame claiming more is corrupt
    in_buf_[i].resize(at.max_in_bytes);
    post_receive(i);
  }
  counters_.overlap = at.overlap ? 1 : 0;
  waiting_since_ = now_seconds();
}

void StageLoop::run(RankFacts& facts) {
  facts_ = &facts;
  facts.t_begin = now_seconds();
  t_mark_ = facts.t_begin;
  if (trace_.enabled()) before_ = counters_;
  idle_since_ = now_seconds();
  for (;;) {
    const double t_iter = now_seconds();
    pass_recv_test_ = pass_send_test_ = pass_probe_ = 0;
    serve();
    bool progress = take_input();
    progress = send_output() || progress;
    if (ended_ && lane_.in_flight() == 0) break;
    if (progress)
      count_pass(t_iter);
    else
      idle(t_iter);
  }
  drain();
  facts.t_end = now_seconds();
  counters_.time_total = facts.t_end - t_start_;
  reporter_.finish();
  counters_.link_out = encoder_.counters();
}

// Posting a receive can match a message that has arrived and copy it: part of the receive's wait.
void StageLoop::post_receive(int slot) {
  const double t = now_seconds();
  recv_[slot] = ch_.irecv(at_.prev, kTagData, in_buf_[slot].data(), in_buf_[slot].size());
  receiving_[slot] = true;
  if (t_start_ > 0) pass_recv_test_ += now_seconds() - t;
}

// A batch has arrived: decode it and hand it to the lane.
bool StageLoop::take_input() {
  size_t n = 0;
  if (ended_ || !receiving_[in_slot_]) return false;
  // Each test for the input is part of its wait, also the one that completes it (it can move
  // the message's last bytes); until the first input, that wait is counted apart.
  const double t_test = now_seconds();
  const bool received = ch_.test(recv_[in_slot_], &n);
  const double t_tested = now_seconds();
  if (t_start_ > 0) pass_recv_test_ += t_tested - t_test;
  if (!received) return false;
  receiving_[in_slot_] = false;
  if (t_start_ == 0) {
    t_start_ = t_tested;
    facts_->time_first_wait = t_start_ - facts_->t_begin;
  }
  counters_.bytes_in += static_cast<double>(n);
  Frame frame;
  {
    ScopedTimer t(counters_.time_decode);
    frame = decoder_[in_slot_]->decode(in_buf_[in_slot_].data(), n);
  }
  if (frame.flags & kFrameEnd) {
    ended_ = true;
    end_seq_ = frame.seq;
    return true;
  }
  EP_CHECK(frame.seq == expected_, "stage ", at_.stage, " received batch ", frame.seq,
           " but expected batch ", expected_);
  ++expected_;
  lane_.submit(frame.seq, in_slot_, std::move(frame.tensors));
  in_slot_ ^= 1;
  return true;
}

// A batch is computed and an output buffer is free: encode the batch and send it.
bool StageLoop::send_output() {
  if (!lane_.has_result()) return false;
  if (sending_[out_slot_]) {  // each test for the send of two batches ago is part of its wait
    const double t_test = now_seconds();
    const bool sent = ch_.test(send_[out_slot_]);
    pass_send_test_ += now_seconds() - t_test;
    if (!sent) return false;
  }
  sending_[out_slot_] = false;
  ComputeLane::Result r = *lane_.take();
  if (r.error) std::rethrow_exception(r.error);
  counters_.time_compute += r.seconds;
  {
    ScopedTimer t(counters_.time_encode);
    encoder_.encode(r.seq, 0, r.out, out_buf_[out_slot_]);
  }
  r.out.clear();
  if (!ended_) post_receive(r.slot);  // the batch's input buffer is free now
  std::vector<char>& out = out_buf_[out_slot_];
  send_[out_slot_] = ch_.isend(at_.next, kTagData, out.data(), out.size());
  sending_[out_slot_] = true;
  counters_.bytes_out += static_cast<double>(out.size());
  counters_.batches += 1;
  if (trace_.enabled()) record(r.seq);
  out_slot_ ^= 1;
  return true;
}

// Per-batch records cost one clock reading and a copy of the counters per batch.
void StageLoop::record(uint64_t seq) {
  const double t_begin = t_mark_;
  t_mark_ = now_seconds();
  BatchRecord rec =
      make_batch_record(static_cast<int64_t>(seq), t_begin, t_mark_, counters_, before_);
  if (counters_.batches == 1) {  // the first wait is not in the counters (set-up of other ranks)
    rec.time_recv_wait += facts_->time_first_wait;
    rec.time_other -= facts_->time_first_wait;
  }
  trace_.add(rec);
  before_ = counters_;
}

// A pass that did something: its tests, decode, compute and encode are booked by their own
// clocks; the rest of it (posting the next receive and send, the record) is
// booked as nothing, so it shows as time_other (wall minus the measured parts).
void StageLoop::count_pass(double t_iter) {
  counters_.time_recv_wait += pass_recv_test_;
  counters_.time_send_wait += pass_send_test_;
  pause_ = std::chrono::microseconds(10);
  idle_since_ = t_iter;
}

// Nothing to do: say what for, and sleep a little (test and sleep: Open MPI busy-polls in its
// waits). A batch computing on the lane is not waited for here: compute takes its time.
void StageLoop::idle(double t_iter) {
  uint64_t seq = 0;
  double since = 0;
  const bool computing = at_.overlap && lane_.computing(&seq, &since);
  if (computing)
    waiting(StageWait::compute, seq);
  else if (lane_.has_result())
    waiting(StageWait::send, static_cast<uint64_t>(counters_.batches));
  else
    waiting(StageWait::input, expected_);
  if (computing) idle_since_ = t_iter;
  EP_CHECK_AS(TimeoutError, t_iter - idle_since_ < timeout_s_, "timed out after ", timeout_s_,
              " s waiting for ", waiting_for());
  lane_.sleep(pause_);
  pause_ = std::min(pause_ * 2, std::chrono::microseconds(500));
  // The whole idle pass counts as the wait, its tests too (its probe is counted apart).
  const double slept = now_seconds() - t_iter - pass_probe_;
  if (t_start_ == 0) return;  // the first wait is counted apart
  if (computing)
    counters_.time_compute_wait += slept;
  else if (lane_.has_result() && sending_[out_slot_])
    counters_.time_send_wait += slept;
  else
    counters_.time_recv_wait += slept;
}

// The end frame: once every batch before it is sent, pass it on.
// (Its probes are part of the drain, not of time_probe.)
void StageLoop::drain() {
  ScopedTimer t(facts_->time_drain);
  for (int i = 0; i < 2; ++i)
    if (receiving_[i]) ch_.cancel(recv_[i]);
  for (int i = 0; i < 2; ++i) {
    if (!sending_[i]) continue;
    waiting(StageWait::drain, 0);
    wait_for([&] { return reporter_.serve([this] { return status(); }), ch_.test(send_[i]); },
             timeout_s_, detail::concat("rank ", at_.next_rank, " to take a batch"));
    sending_[i] = false;
  }
  encoder_.encode(end_seq_, kFrameEnd, {}, out_buf_[0]);
  send_[0] = ch_.isend(at_.next, kTagData, out_buf_[0].data(), out_buf_[0].size());
  wait_for([&] { return reporter_.serve([this] { return status(); }), ch_.test(send_[0]); },
           timeout_s_, detail::concat("rank ", at_.next_rank, " to take the end of the stream"));
}

void StageLoop::serve() {
  const double t = now_seconds();
  reporter_.serve([this] { return status(); });
  const double probed = now_seconds() - t;
  pass_probe_ += probed;
  if (t_start_ > 0) counters_.time_probe += probed;
}

void StageLoop::waiting(StageWait wait, uint64_t seq) {
  if (wait != wait_ || seq != wait_seq_) waiting_since_ = now_seconds();
  wait_ = wait;
  wait_seq_ = seq;
}

std::string StageLoop::waiting_for() const {
  return stage_wait_text(wait_, wait_seq_, t_start_ > 0, at_.prev_rank, at_.next_rank);
}

// The watchdog's answer: what this stage does or waits for, and for how long.
std::string StageLoop::status() {
  uint64_t seq = 0;
  double since = 0;
  const std::string who = detail::concat("stage ", at_.stage, " (rank ", at_.rank, ") ");
  if (at_.overlap && lane_.computing(&seq, &since))
    return detail::concat(who, "has computed batch ", seq, " for ",
                          static_cast<int>(now_seconds() - since), " s; ", counters_.batches,
                          " batches done");
  return detail::concat(who, "has waited ", static_cast<int>(now_seconds() - waiting_since_),
                        " s for ", waiting_for(), "; ", counters_.batches, " batches done");
}

}  // namespace edgepipe
