#include "edgepipe/pipeline/watchdog.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "edgepipe/base/error.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

int poll_stop_notices(Channel& ch, int num_stages) {
  for (int rank = 1; rank <= num_stages; ++rank) {
    size_t n = 0;
    if (ch.probe(rank, kTagSignal, &n))
      return signal_notice_from_bytes(recv_bytes(ch, rank, kTagSignal, 10, "a signal notice"));
  }
  return 0;
}

namespace {

std::string row_list(const std::vector<int64_t>& rows, int64_t first) {
  std::string out;
  const size_t shown = std::min<size_t>(rows.size(), 10);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + std::to_string(first + rows[i]);
  if (rows.size() > shown) out += detail::concat(" and ", rows.size() - shown, " more");
  return out;
}

std::string describe_failure(const StageFailure& f, int stage, int rank, int64_t first) {
  const std::string who = detail::concat("stage ", stage, " (rank ", rank, ") failed");
  if (f.seq < 0) return who + ": " + f.what;
  const std::string batch = detail::concat("batch ", f.seq, ", input rows ", first, " to ",
                                           first + std::max<int64_t>(f.batch_rows, 1) - 1);
  if (f.bad_rows.empty())
    return detail::concat(who, " on ", batch,
                          f.rows_checked ? " (no row fails on its own: only the whole batch)"
                                         : " (its rows were not tried alone)",
                          ": ", f.what);
  return detail::concat(who, " on input row", f.bad_rows.size() > 1 ? "s " : " ",
                        row_list(f.bad_rows, first), " (", batch,
                        f.rows_checked ? "; each row tried alone" : "; not every row was tried",
                        "): ", f.what);
}

}  // namespace

std::string poll_failure_notices(Channel& ch, int stage_ranks, const std::vector<int>& members,
                                 const std::function<int64_t(int64_t)>& first_row,
                                 const std::function<int(int)>& stage_of) {
  for (int rank = 1; rank <= stage_ranks; ++rank) {
    size_t n = 0;
    if (!ch.probe(rank, kTagFailed, &n)) continue;
    const StageFailure f =
        stage_failure_from_bytes(recv_bytes(ch, rank, kTagFailed, 10, "a stage's failure notice"));
    return describe_failure(f, stage_of(rank), members.at(rank), f.seq < 0 ? 0 : first_row(f.seq));
  }
  return "";
}

std::string watchdog_headline(double timeout_s, int64_t sent, int64_t done,
                              const std::vector<int>& members) {
  return detail::concat("watchdog: no batch completed for ", timeout_s,
                        " s (--timeout); rank 0 sent ", sent, " batches to rank ", members.at(1),
                        " and received ", done, " from rank ", members.back());
}

std::string ask_stages(Channel& ch, int num_stages, const std::vector<int>& members) {
  for (int rank = 1; rank <= num_stages; ++rank)
    send_bytes(ch, rank, kTagStatus, kStatusRequest, 5);
  std::vector<std::string> answers(num_stages + 1);
  const double deadline = now_seconds() + 3;
  int missing = num_stages;
  while (missing > 0 && now_seconds() < deadline) {
    for (int rank = 1; rank <= num_stages; ++rank) {
      size_t n = 0;
      if (answers[rank].empty() && ch.probe(rank, kTagStatus, &n)) {
        answers[rank] = recv_bytes(ch, rank, kTagStatus, 5, "a status answer");
        --missing;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string report;
  for (int rank = 1; rank <= num_stages; ++rank)
    report +=
        "  " +
        (answers[rank].empty() ? detail::concat("stage ", rank - 1, " (rank ", members.at(rank),
                                                ") did not answer: busy computing, or hung")
                               : answers[rank]) +
        "\n";
  return report;
}

std::string stage_wait_text(StageWait wait, uint64_t seq, bool started, int prev_rank,
                            int next_rank) {
  switch (wait) {
    case StageWait::input:
      return started ? detail::concat("batch ", seq, " from rank ", prev_rank)
                     : detail::concat("its first batch from rank ", prev_rank);
    case StageWait::compute:
      return detail::concat("batch ", seq, " to compute");
    case StageWait::send:
      return detail::concat("rank ", next_rank, " to take batch ", static_cast<int64_t>(seq) - 2);
    case StageWait::drain:
      break;
  }
  return detail::concat("rank ", next_rank, " to take the last batches");
}

void StageReporter::serve(const std::function<std::string()>& status) {
  if (!stop_reported_ && stop_signal()) {
    stop_reported_ = stop_signal();
    notice_ = signal_notice_to_bytes(stop_reported_);
    notice_send_ = ch_.isend(0, kTagSignal, notice_.data(), notice_.size());
  }
  size_t n = 0;
  if (!ch_.probe(0, kTagStatus, &n)) return;
  recv_bytes(ch_, 0, kTagStatus, 5, "rank 0's status request");
  if (answer_send_ >= 0) {
    if (!ch_.test(answer_send_)) return;  // the previous answer is pending: skip this question
    answer_send_ = -1;                    // (a handle is released once its test succeeds)
  }
  answer_ = status();
  answer_send_ = ch_.isend(0, kTagStatus, answer_.data(), answer_.size());
}

void StageReporter::finish() {
  if (notice_send_ < 0) return;
  try {
    wait_for([&] { return ch_.test(notice_send_); }, 5, "rank 0 to take the stop notice");
  } catch (const Error&) {
    // rank 0 drains the pipeline either way; the notice only made it stop sooner
  }
}

}  // namespace edgepipe
