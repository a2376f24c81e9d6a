// stage_loop: a stage rank's steady state, one loop of test and sleep on the main thread: a batch
// that has arrived is decoded and handed to the compute lane; a computed batch is encoded and
// sent once an output buffer is free. Two input and two output buffers alternate; an input
// buffer is received into again only after its batch's outputs are encoded (a stage may pass an
// input tensor through as an output), and each has its own decoder, whose buffers hold the
// decoded tensors till then. The loop knows only its channel, its codec, its stage, its counters
// and where it sits in the pipeline; it answers the watchdog while it waits or computes.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/compute_lane.h"
#include "edgepipe/pipeline/routing.h"
#include "edgepipe/pipeline/watchdog.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/frame.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

// Where a stage rank sits: its stage and replica, the batches' routes (routing.h: who sends it
// each of its batches and who takes each result, in pipeline ranks, RemappedChannel), the job's
// ranks (for its messages), and the largest input it can receive.
struct StagePosition {
  int stage = 0;
  int replica = 0;                   // which of the stage's replicas this rank is
  int self = 0;                      // its pipeline rank
  int rank = 0;                      // its rank in the job
  Routing routing;                   // every stage's replicas and their schedule
  std::vector<int> members;          // the job's rank of each pipeline rank
  uint64_t max_in_bytes = 0;         // largest frame it can receive
  uint64_t max_in_tensor_bytes = 0;  // the most tensor bytes such a frame decodes to
  bool overlap = false;              // blocks compute on a thread of their own
  // Pipeline ranks: who sends batch `seq` here, who takes its result; every rank that sends
  // here (the previous stage's replicas, or rank 0) and every rank this one sends to.
  int prev_of(int64_t seq) const { return routing.rank_of(stage - 1, seq); }
  int next_of(int64_t seq) const { return routing.rank_of(stage + 1, seq); }
  std::vector<int> senders() const;
  std::vector<int> takers() const;
};

// The stage's model failed on a batch: what rank 0 is told (kTagFailed), so that it can name the
// input rows.
class StageBatchError : public Error {
 public:
  explicit StageBatchError(StageFailure f) : Error(f.what), failure(std::move(f)) {}
  StageFailure failure;
};

// The position of the stage rank that `setup` describes. A set-up without routes is a single
// pipeline: stage s on pipeline rank s + 1.
StagePosition stage_position(const StageSetup& setup);

class StageLoop {
 public:
  // `timeout_s` is the run's --timeout: rank 0's watchdog fires first, with the whole
  // pipeline's picture, so the loop's own backstop waits longer (1.5 x + 10 s). `trace` keeps
  // a record per batch when enabled.
  StageLoop(Channel& ch, const StagePosition& at, const CodecSpec& codec, StageRunner& stage,
            StageCounters& counters, BatchTrace& trace, double timeout_s);
  StageLoop(const StageLoop&) = delete;
  StageLoop& operator=(const StageLoop&) = delete;

  // Runs until the end frame has come and been passed on; sets the facts' t_begin, t_end,
  // time_first_wait and time_drain, and the counters' time_total and link_out.
  void run(RankFacts& facts);

 private:
  void post_receive(int slot);
  bool take_end();
  bool take_input();
  bool send_output();
  [[noreturn]] void fail_batch(const ComputeLane::Result& r);
  void record(uint64_t seq);
  void count_pass(double t_iter);
  void idle(double t_iter);
  void drain();
  void serve();
  void waiting(StageWait wait, uint64_t seq);
  std::string waiting_for() const;
  std::string status();

  Channel& ch_;
  const StagePosition at_;
  StageCounters& counters_;
  BatchTrace& trace_;
  const double timeout_s_;
  RankFacts* facts_ = nullptr;

  FrameEncoder encoder_;
  std::optional<FrameDecoder> decoder_[2];
  std::vector<char> in_buf_[2], out_buf_[2];
  Channel::Handle recv_[2] = {-1, -1}, send_[2] = {-1, -1};
  bool receiving_[2] = {false, false}, sending_[2] = {false, false};
  ComputeLane lane_;
  StageReporter reporter_;

  // This rank's batches (routing.h): the next to arrive, the next to post a receive for, and
  // the batch each input slot is posted for and each output slot last sent.
  uint64_t expected_ = 0;
  uint64_t next_post_ = 0;
  uint64_t sent_seq_[2] = {0, 0};
  // The end of the stream: an end frame from every sender (kTagEnd), each into its own buffer;
  // the first says how many batches there are (end_seq_); ended_ once all of this rank's have
  // come.
  std::vector<int> senders_;
  std::vector<std::vector<char>> end_buf_;
  std::vector<Channel::Handle> end_recv_;
  std::vector<bool> end_pending_;
  bool end_known_ = false;
  bool ended_ = false;
  uint64_t end_seq_ = 0;
  int in_slot_ = 0;     // the input buffer the next batch arrives in (they alternate)
  int out_slot_ = 0;    // the output buffer the next result is encoded into
  double t_start_ = 0;  // the first batch arrived (set-up of other ranks is not counted)
  // What the main thread waits for when it has nothing to do (kept as a state and a number,
  // made into words only when asked), and since when.
  StageWait wait_ = StageWait::input;
  uint64_t wait_seq_ = ~uint64_t(0);
  double waiting_since_ = 0;
  // Per-batch records: each part is the growth of its counter since the last record, and each
  // record starts where the previous one ended.
  double t_mark_ = 0;
  StageCounters before_;
  std::chrono::microseconds pause_{10};  // test and sleep: 10 us doubling to 500 us
  double idle_since_ = 0;                // the last pass that did something (backstop timeout)
  double pass_recv_test_ = 0;            // this pass: seconds testing the receive, the send
  double pass_send_test_ = 0;
  double pass_probe_ = 0;  // this pass: seconds in the watchdog's probe
};

}  // namespace edgepipe
