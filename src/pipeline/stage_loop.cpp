#include "edgepipe/pipeline/stage_loop.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "edgepipe/base/error.h"

namespace edgepipe {

StagePosition stage_position(const StageSetup& setup) {
  StagePosition at;
  at.stage = setup.stage;
  at.replica = setup.replica;
  at.members = std::vector<int>(setup.members.begin(), setup.members.end());
  if (setup.route_replicas.empty()) {
    std::vector<std::vector<int>> ranks, weights;
    for (int s = 0; s < setup.num_stages; ++s) {
      ranks.push_back({s + 1});
      weights.push_back({1});
    }
    at.routing = Routing(ranks, weights);
  } else {
    at.routing = Routing::from_flat(setup.route_replicas, setup.route_ranks, setup.route_weights);
  }
  EP_CHECK(setup.stage >= 0 && static_cast<size_t>(setup.stage) < at.routing.num_stages() &&
               setup.replica >= 0 &&
               static_cast<size_t>(setup.replica) < at.routing.ranks(setup.stage).size(),
           "stage set-up: stage ", setup.stage, " replica ", setup.replica,
           " is not in its routes");
  at.self = at.routing.ranks(setup.stage).at(setup.replica);
  at.rank = at.members.at(at.self);
  at.max_in_bytes = setup.max_in_bytes;
  for (const auto& m : setup.inputs) at.max_in_tensor_bytes += static_cast<uint64_t>(m.bytes());
  at.overlap = setup.overlap;
  return at;
}

std::vector<int> StagePosition::senders() const {
  return stage == 0 ? std::vector<int>{0} : routing.ranks(stage - 1);
}

std::vector<int> StagePosition::takers() const {
  return static_cast<size_t>(stage) + 1 == routing.num_stages() ? std::vector<int>{0}
                                                                : routing.ranks(stage + 1);
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
      lane_(stage, at.overlap, timeout_s),
      reporter_(ch) {
  expected_ = next_post_ = static_cast<uint64_t>(at.routing.next_batch(at.stage, at.replica, 0));
  senders_ = at.senders();
  for (size_t i = 0; i < senders_.size(); ++i) {
    end_buf_.emplace_back(frame_bound({}) + 64);
    end_recv_.push_back(ch_.irecv(senders_[i], kTagEnd, end_buf_[i].data(), end_buf_[i].size()));
    end_pending_.push_back(true);
  }
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
    bool progress = take_end();
    progress = take_input() || progress;
    progress = send_output() || progress;
    if (ended_ && lane_.in_flight() == 0) break;
    if (progress)
      count_pass(t_iter);
    else
      idle(t_iter);
  }
  drain();
  facts.t_end = now_seconds();
  if (t_start_ == 0) t_start_ = facts.t_end;  // a replica the stream gave no batch
  counters_.time_total = facts.t_end - t_start_;
  reporter_.finish();
  counters_.link_out = encoder_.counters();
}

// Slot `slot` receives this rank's next batch not yet posted for, from the rank that sends it.
// Posting a receive can match a message that has arrived and copy it: part of the receive's wait.
void StageLoop::post_receive(int slot) {
  const double t = now_seconds();
  const int from = at_.prev_of(static_cast<int64_t>(next_post_));
  recv_[slot] = ch_.irecv(from, kTagData, in_buf_[slot].data(), in_buf_[slot].size());
  receiving_[slot] = true;
  next_post_ = static_cast<uint64_t>(
      at_.routing.next_batch(at_.stage, at_.replica, static_cast<int64_t>(next_post_) + 1));
  if (t_start_ > 0) pass_recv_test_ += now_seconds() - t;
}

// An end frame from a sender: the stream has end_seq_ batches. It may overtake the sender's
// last batches (another tag): the stream has ended here once every batch before it has come.
bool StageLoop::take_end() {
  bool took = false;
  for (size_t i = 0; i < senders_.size(); ++i) {
    size_t n = 0;
    if (!end_pending_[i]) continue;
    const double t_test = now_seconds();  // a test for the end is part of the receive's wait
    const bool arrived = ch_.test(end_recv_[i], &n);
    if (t_start_ > 0) pass_recv_test_ += now_seconds() - t_test;
    if (!arrived) continue;
    end_pending_[i] = false;
    const Frame f = decode_frame(end_buf_[i].data(), n);
    EP_CHECK(f.flags & kFrameEnd, "stage ", at_.stage, " received a frame that is not the end on ",
             "the end's tag from rank ", at_.members.at(senders_[i]));
    EP_CHECK(!end_known_ || f.seq == end_seq_, "stage ", at_.stage, " received ends after ",
             end_seq_, " and after ", f.seq, " batches");
    end_known_ = true;
    end_seq_ = f.seq;
    took = true;
  }
  if (end_known_ && !ended_ && expected_ >= end_seq_) {
    ended_ = true;
    if (t_start_ == 0 && facts_) facts_->time_first_wait = now_seconds() - facts_->t_begin;
  }
  return took;
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
  EP_CHECK(!(frame.flags & kFrameEnd), "stage ", at_.stage, " received an end frame as a batch");
  EP_CHECK(frame.seq == expected_, "stage ", at_.stage, " received batch ", frame.seq,
           " but expected batch ", expected_);
  expected_ = static_cast<uint64_t>(
      at_.routing.next_batch(at_.stage, at_.replica, static_cast<int64_t>(expected_) + 1));
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
  if (r.error) fail_batch(r);
  counters_.time_compute += r.seconds;
  {
    ScopedTimer t(counters_.time_encode);
    encoder_.encode(r.seq, 0, r.out, out_buf_[out_slot_]);
  }
  r.out.clear();
  if (!ended_) post_receive(r.slot);  // the batch's input buffer is free now
  std::vector<char>& out = out_buf_[out_slot_];
  sent_seq_[out_slot_] = r.seq;
  const int to = at_.next_of(static_cast<int64_t>(r.seq));
  send_[out_slot_] = ch_.isend(to, kTagData, out.data(), out.size());
  sending_[out_slot_] = true;
  counters_.bytes_out += static_cast<double>(out.size());
  counters_.batches += 1;
  if (trace_.enabled()) record(r.seq);
  out_slot_ ^= 1;
  return true;
}

void StageLoop::fail_batch(const ComputeLane::Result& r) {
  StageFailure f;
  f.seq = static_cast<int64_t>(r.seq);
  f.batch_rows = r.rows;
  f.bad_rows = r.bad_rows;
  f.rows_checked = r.rows_checked;
  try {
    std::rethrow_exception(r.error);
  } catch (const std::exception& e) {
    f.what = torch_error_summary(e);
  } catch (...) {
    f.what = "an unknown exception";
  }
  throw StageBatchError(std::move(f));
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
    waiting(StageWait::send, sent_seq_[out_slot_] + 2);  // the text names the batch 2 before
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

// The end of the stream: the receives posted for batches past it are cancelled (no rank sends
// them), the other senders' end frames awaited; once every batch is sent, the end goes on to
// every rank this one sends to.
// (Its probes are part of the drain, not of time_probe.)
void StageLoop::drain() {
  ScopedTimer t(facts_->time_drain);
  for (int i = 0; i < 2; ++i)
    if (receiving_[i]) ch_.cancel(recv_[i]);
  waiting(StageWait::drain, 0);
  const auto serve_drain = [this] { return reporter_.serve([this] { return status(); }); };
  const auto every_end = [&] {
    serve_drain();
    take_end();
    return std::find(end_pending_.begin(), end_pending_.end(), true) == end_pending_.end();
  };
  wait_for(every_end, timeout_s_,
           detail::concat("the end of the stream from every rank before stage ", at_.stage));
  for (int i = 0; i < 2; ++i) {
    if (!sending_[i]) continue;
    const int to = at_.members.at(at_.next_of(static_cast<int64_t>(sent_seq_[i])));
    wait_for([&] { return serve_drain(), ch_.test(send_[i]); }, timeout_s_,
             detail::concat("rank ", to, " to take a batch"));
    sending_[i] = false;
  }
  encoder_.encode(end_seq_, kFrameEnd, {}, out_buf_[0]);
  const std::vector<int> takers = at_.takers();
  std::vector<Channel::Handle> sends;
  for (int to : takers)
    sends.push_back(ch_.isend(to, kTagEnd, out_buf_[0].data(), out_buf_[0].size()));
  for (size_t i = 0; i < takers.size(); ++i)
    wait_for([&] { return serve_drain(), ch_.test(sends[i]); }, timeout_s_,
             detail::concat("rank ", at_.members.at(takers[i]), " to take the end of the stream"));
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
  const int prev = at_.members.at(at_.prev_of(static_cast<int64_t>(expected_)));
  const int next = at_.members.at(at_.next_of(static_cast<int64_t>(sent_seq_[out_slot_])));
  return stage_wait_text(wait_, wait_seq_, t_start_ > 0, prev, next);
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
