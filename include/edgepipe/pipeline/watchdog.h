// watchdog: what a stalled or stopped run tells, and who tells it. When no batch completes for
// --timeout seconds, rank 0 asks every stage what it waits for (kTagStatus), gives them 3 s to
// answer and ends the job with their answers; a stage answers at once, computing or not. A stage
// rank asked to stop (SIGTERM, SIGINT) passes the signal on to rank 0 (kTagSignal), which stops
// feeding inputs and drains the pipeline. Every rank is named by its rank in the job.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edgepipe/wire/channel.h"

namespace edgepipe {

// ---- rank 0 ----

// The signal a stage rank reported (its kTagSignal notice), or 0. Pipeline ranks 1..stages.
int poll_stop_notices(Channel& ch, int num_stages);

// A stage's failure notice (kTagFailed), if one has come, as rank 0's error: which stage and rank,
// and for a batch's compute the input rows, counted from the start of the inputs (`first_row`:
// the batch's first row): "stage 0 (rank 1) failed on input row 3 (batch 3, rows 3 to 3; each
// row tried alone): Exception: bad". Else "". Pipeline ranks 1..stage_ranks.
// `stage_of`: the stage a pipeline rank runs (replicas: several ranks run one stage).
std::string poll_failure_notices(Channel& ch, int stage_ranks, const std::vector<int>& members,
                                 const std::function<int64_t(int64_t)>& first_row,
                                 const std::function<int(int)>& stage_of);

// The watchdog's verdict: its first line ("watchdog: no batch completed for 4 s (--timeout);
// rank 0 sent 9 batches to rank 2 and received 5 from rank 1"), then one line per stage: its
// answer, or that it did not answer. `members`: the job's rank of each pipeline rank (rank 0,
// then each stage's).
std::string watchdog_headline(double timeout_s, int64_t sent, int64_t done,
                              const std::vector<int>& members);
std::string ask_stages(Channel& ch, int num_stages, const std::vector<int>& members);

// ---- a stage rank ----

// What a stage's main thread waits for when it has nothing to do.
enum class StageWait { input, compute, send, drain };

// In words, for the watchdog and the stage's own timeout: "batch 7 from rank 2", "rank 3 to
// take batch 5", ... `started`: the first batch has come. `prev_rank`, `next_rank`: the job's
// ranks the stage receives from and sends to.
std::string stage_wait_text(StageWait wait, uint64_t seq, bool started, int prev_rank,
                            int next_rank);

// Answers rank 0's status questions and passes a stop signal on to it (once), from the stage's
// loop; the answers are sent without waiting.
class StageReporter {
 public:
  explicit StageReporter(Channel& ch) : ch_(ch) {}
  StageReporter(const StageReporter&) = delete;
  StageReporter& operator=(const StageReporter&) = delete;
  // Cheap when nothing was asked: a probe. `status` makes the answer when one is due.
  void serve(const std::function<std::string()>& status);
  // Waits (at most 5 s) for a stop notice to be taken (it is small: sent eagerly).
  void finish();

 private:
  Channel& ch_;
  int stop_reported_ = 0;
  std::string notice_, answer_;
  Channel::Handle notice_send_ = -1, answer_send_ = -1;
};

}  // namespace edgepipe
