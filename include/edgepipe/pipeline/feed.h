// feed: rank 0's stream. It reads input batches, encodes them and sends them to the first stage,
// keeping at most --inflight in the pipeline; it receives the last stage's outputs, decodes them
// and writes them in input order; it polls for stop signals (its own and the stages'), marks
// progress in the outputs file, prints the progress line, and fires the watchdog when no batch
// completes for --timeout seconds. After the last batch it sends the end of the stream, waits
// for it to come back through every stage, and gathers each stage's counters and records.
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "edgepipe/base/log.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/io/data.h"
#include "edgepipe/io/finite.h"
#include "edgepipe/pipeline/planning.h"
#include "edgepipe/records/progress.h"
#include "edgepipe/records/run_record.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

class Feed {
 public:
  // `ch` counts ranks in pipeline order (plan.members: rank 0, then every stage's replicas);
  // batch b goes to the first stage's replica plan.routing says and comes back from the last
  // stage's. Reading starts at the sink's first row not done (--resume).
  Feed(Channel& ch, const RunConfig& cfg, const RunPlan& plan, const InputSource& in,
       OutputSink& sink, const Log& log);
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  // Streams every batch (or until a stop signal), ends the stream and gathers the stages'
  // results. Throws on failure: the watchdog's verdict (TimeoutError), a bad frame, ...
  StreamResults run();
  // What is known so far: for the log of a run that failed part-way.
  StreamResults partial() const;

 private:
  int64_t first_row(int64_t batch) const { return start_ + batch * cfg_.batch; }
  void poll_stop(double now);
  bool send_next();
  bool take_output();
  void post_receive();
  void idle(double now);
  void end_stream();
  void gather();
  void derive(StreamResults& r) const;

  Channel& ch_;
  const RunConfig& cfg_;
  const RunPlan& plan_;
  const InputSource& in_;
  OutputSink& sink_;
  const Log& log_;
  NonFiniteRows bad_inputs_, bad_outputs_;  // io/finite.h
  const int num_stages_, stage_ranks_;
  const int64_t start_, total_, batches_, inflight_;  // rows done before, rows, batches to send

  std::vector<char> send_buf_[2], recv_buf_;
  FrameEncoder encoder_;
  FrameDecoder decoder_;
  Channel::Handle send_[2] = {-1, -1}, recv_ = -1;
  bool sending_[2] = {false, false}, receiving_ = false;
  int send_to_[2] = {0, 0};  // the pipeline rank each send buffer went to
  int slot_ = 0;             // the send buffer the next input is encoded into

  StreamResults r_;
  std::vector<double> arrival_;  // when each batch's output was written (rank 0's clock)
  Progress progress_;
  int64_t sent_ = 0, done_ = 0;
  double t0_ = 0, last_progress_ = 0, last_checkpoint_ = 0, last_signal_poll_ = 0;
  double drain_deadline_ = 0;  // after a stop: when the batches in flight must be back
  std::chrono::microseconds pause_{10}, max_pause_{100};
};

}  // namespace edgepipe
