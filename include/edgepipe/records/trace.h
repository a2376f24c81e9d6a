// trace: per-batch records of a stage rank, facts about each rank (host, cores, CPU time, memory),
// and the offsets that align every rank's steady clock with rank 0's: what the run log
// (runlog.h) holds per rank. The messages that carry them are in wire/protocol.h, the clock
// exchange in pipeline/clock_sync.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/records/metrics.h"

namespace edgepipe {

// One batch as a stage rank saw it. Times in seconds; t_* on this rank's steady clock (rank 0
// moves them onto its own). The time_* parts plus time_other add up to t_end - t_begin
// exactly: time_other is what no clock measured (posting sends, the record, the loop itself).
struct BatchRecord {
  int64_t seq = 0;
  double t_begin = 0;         // started waiting for this batch's input
  double t_end = 0;           // its output's send was posted
  double time_recv_wait = 0;  // t_begin until the input frame had arrived
  double time_decode = 0;
  double time_compute = 0;
  double time_send_wait = 0;  // an earlier send still in progress (next rank not ready)
  double time_encode = 0;
  double time_compute_wait = 0;  // --overlap: idle while the batch computed on its own thread
  double time_probe = 0;         // the watchdog's probes (they also drive MPI's progress)
  double time_other = 0;
  double bytes_in = 0;   // input frame as received
  double bytes_out = 0;  // output frame as sent
};

// The record of one batch from the stage counters before and after it (their differences), with
// the rest of [t_begin, t_end] as time_other. With overlap (now.overlap), time_compute ran beside
// the other parts and is not part of the span's sum: time_compute_wait is.
BatchRecord make_batch_record(int64_t seq, double t_begin, double t_end, const StageCounters& now,
                              const StageCounters& before);

// What rank 0 keeps per batch: the input's read, encode and send; the output's arrival,
// decode and write (rank 0's steady clock).
struct DispatchRecord {
  int64_t seq = 0;
  double t_sent = 0;     // input send posted
  double t_arrived = 0;  // output received (0: never, e.g. the run was stopped)
  double time_read = 0;  // reading the input rows (and the NaN check)
  double time_encode = 0;
  double time_decode = 0;
  double time_write = 0;  // writing the output rows
  double bytes_out = 0;   // input frame sent to rank 1
  double bytes_in = 0;    // output frame from the last stage
};

// Where a stage rank's resident memory goes (bytes; 0: not measured, e.g. rank 0): VmRSS at the
// boundaries of its phases and VmHWM, the peak, within each (from /proc/self/status,
// base/memory.h). The phases: start (MPI and LibTorch initialised), the start-up profiling
// (answer_probe), the stage's set-up (its bytes fetched, loaded, optimised, warmed up), the stream.
// At the end of the first two, malloc_trim(0) gives glibc's freed memory back: the RSS before and
// after says how much the allocator held. Peaks are each phase's own when peaks_per_phase is 1
// (VmHWM reset at each boundary), else since the process started (the kernel refused the reset).
// Trivially copyable.
struct RankMemory {
  double rss_baseline = 0;            // after start, once a tiny LibTorch op has run
  double profile_request = 0;         // size of the start-up profiling request received (0: none)
  double peak_rss_profile = 0;        // peak during the start-up profiling
  double rss_after_profile = 0;       // when it ended (its blocks destroyed), before malloc_trim
  double rss_after_profile_trim = 0;  // after malloc_trim
  double stage_archive = 0;           // the stage's TorchScript archive (about its weights)
  double max_frame_in = 0;            // largest input frame the stage can receive
  double peak_rss_load = 0;        // peak while the stage was fetched, loaded, optimised, warmed up
  double rss_after_load = 0;       // stage ready (archive, unoptimised copy dropped), before trim
  double rss_after_load_trim = 0;  // after malloc_trim
  double peak_rss_stream = 0;      // peak over the stream
  double rss_end = 0;              // after the stream
  int32_t peaks_per_phase = 0;     // 1: every VmHWM reset worked
};

// Facts about a rank and its totals over the streaming part of the run. Trivially copyable.
struct RankFacts {
  char host[64] = {};
  char cpus[128] = {};  // the cores this process may run on, e.g. "0-3"
  int32_t threads = 0;  // threads of the process at the end of the run
  int32_t intra_op_threads = 0;
  double t_begin = 0;          // stream start on this rank (its steady clock)
  double t_end = 0;            // end frame passed on
  double time_drain = 0;       // after the last batch: waiting for the end frame, passing it on
  double time_first_wait = 0;  // stage ranks: t_begin until the first batch arrived
  double cpu_user = 0;         // CPU seconds of the process during [t_begin, t_end]
  double cpu_system = 0;
  double peak_rss_bytes = 0;   // peak resident memory of the process over its whole life
  double rapl_joules = -1;     // package energy counted by RAPL over [t_begin, t_end]; -1: none
  char rapl_source[96] = {};   // which counters, e.g. "intel-rapl:0,intel-rapl:1"
  double records_dropped = 0;  // batches beyond the trace's capacity (not recorded)
  RankMemory memory;           // stage ranks: memory by phase
};

// Per-batch records kept in a vector reserved at start-up: recording is a store, never an
// allocation (beyond the capacity, records are counted as dropped, not stored).
class BatchTrace {
 public:
  BatchTrace(bool enabled, size_t capacity);
  bool enabled() const { return enabled_; }
  void add(const BatchRecord& r) {
    if (records_.size() < records_.capacity())
      records_.push_back(r);
    else
      ++dropped_;
  }
  const std::vector<BatchRecord>& records() const { return records_; }
  double dropped() const { return static_cast<double>(dropped_); }

 private:
  bool enabled_;
  std::vector<BatchRecord> records_;
  uint64_t dropped_ = 0;
};

// Sets host, cores, threads and peak memory of *f as they are now; leaves the other fields.
void sample_rank_facts(RankFacts* f);
// A stage rank's memory by phase (RankMemory): memory_start runs a tiny LibTorch op (its thread
// pool, its kernels' one-time set-up), takes the baseline and starts the first phase;
// memory_end_phase sets the phase's peak and the RSS at its end, then, with `trimmed`, calls
// malloc_trim(0) and sets the RSS after it; then it starts the next phase (VmHWM reset).
void memory_start(RankMemory* m);
void memory_end_phase(RankMemory* m, double* peak, double* rss, double* trimmed);
// CPU seconds (user, system) of this process so far.
void process_cpu_seconds(double* user, double* system);

// Clock alignment, as measured at start-up (pipeline/clock_sync.h): each rank's offset (its
// clock minus rank 0's, error at most half the round trip that measured it).
struct ClockSync {
  std::vector<double> offset_s;  // by rank; offset_s[0] = 0
  std::vector<double> rtt_s;     // the smallest round trip, by rank
};

}  // namespace edgepipe
