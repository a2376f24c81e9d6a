// protocol: every message of edgepipe's wire protocol besides the data frames (frame.h): the
// tags, and the layout of each message with its encoder and decoder. What is sent when:
//
//   rank 0 -> stage  kTagProbe   start-up measurements: a hello (ProbeOrder), then, once the
//                                rank's answer shows the blocks fit its memory, a ProfileRequest
//                                (the probe window's blocks only), then ProbeOrders
//   stage -> rank 0  kTagProbe   answers: a RankProfile (after the hello: host, cores, memory
//                                limit; after loading; after each timing),
//                                a measured Link (after a ping-pong it initiated)
//   stage <-> stage  kTagPing    link probes: opaque bytes there and back (probe.h)
//   rank 0 -> stage  kTagSetup   StageSetup: the stage to run (its SHA-256 and size, without
//                                its bytes), or nothing to do, or failure
//   stage -> rank 0  kTagCache   after a StageSetup with a stage: hit (the rank's stage cache
//                                holds those bytes, pipeline/stage_cache.h) or miss (one byte)
//   rank 0 -> stage  kTagSetup   after a miss only: the stage's TorchScript archive (chunked.h)
//   stage -> rank 0  kTagReady   "" when the stage is loaded, else what went wrong (text)
//   rank 0 <-> stage kTagClock   ClockPing and its answer, kClockRounds times (clock_sync.h)
//   rank 0 <-> stage kTagData    frames (frame.h): inputs, activations, outputs
//   rank 0 <-> stage kTagEnd     the end of the stream (an end frame), from every replica of a
//                                stage to every replica of the next, after its last batch
//   rank 0 -> stage  kTagStatus  the watchdog's question (kStatusRequest); the stage answers
//                                with one line of text: what it waits for (watchdog.h)
//   stage -> rank 0  kTagSignal  a signal notice: this rank was asked to stop (SIGTERM, ...)
//   stage -> rank 0  kTagFailed  StageFailure: the stream failed on this stage (rank 0 says
//                                why, naming the input rows, and ends the job)
//   stage -> rank 0  kTagStats   StageCounters, at the end of the stream
//   stage -> rank 0  kTagTrace   RankFacts + BatchRecords, after the counters
//
// All ranks run the same build on the same architecture, so values travel as they are in
// memory; every decoder checks sizes and names the message it could not read.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/plan/measured.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

enum Tag : int {
  kTagSetup = 1,
  kTagReady = 2,
  kTagData = 3,
  kTagStats = 4,
  kTagSignal = 5,
  kTagStatus = 6,
  kTagClock = 7,
  kTagTrace = 8,
  kTagProbe = 9,
  kTagPing = 10,
  kTagEnd = 11,
  kTagFailed = 12,
  kTagCache = 13,
};

// ---- set-up (kTagSetup) ----

// What rank 0 sends a stage rank once the plan is made.
struct StageSetup {
  bool ok = true;              // false: rank 0 failed to set up; the worker just exits
  bool nothing_to_do = false;  // with ok false: there was no work (not a failure)
  bool stopped = false;        // with ok false: a stop signal ended rank 0's set-up (it reports it)
  int stage = 0;               // 0-based stage index
  int num_stages = 0;
  int replica = 0;                 // which of the stage's replicas this rank is (0-based)
  int prev = 0;                    // rank that sends this stage its inputs (without replicas)
  int next = 0;                    // rank this stage sends its outputs to (without replicas)
  std::vector<TensorMeta> inputs;  // the stage's inputs at full batch size (for warm-up)
  uint64_t max_in_bytes = 0;       // largest frame this stage can receive
  CodecSpec out_codec;             // codec of the link this stage sends on (codec_spec.h)
  bool overlap = false;            // run the blocks on a compute thread, beside the codec work
                                   // (--overlap; rank 0 decides)
  std::vector<int32_t> members;    // the job's ranks in pipeline order: rank 0, then the rank of
                                   // each stage; prev and next count in this order
                                   // (RemappedChannel); with replicas, every replica of stage
                                   // 0, then of stage 1, ...
  // The batches' routes (pipeline/routing.h): replicas per stage, then every stage's replicas'
  // pipeline ranks and integer weights, stage after stage.
  std::vector<int32_t> route_replicas, route_ranks, route_weights;
  std::string module_sha256;  // SHA-256 (hex) of the stage's archive: its stage-cache key
  uint64_t module_size = 0;   // the archive's size in bytes
  std::string module_bytes;   // the archive: empty on the wire (it follows a cache miss, kTagSetup)

  std::string to_bytes() const;
  static StageSetup from_bytes(const std::string& bytes);
};

// ---- the stage cache's answer (kTagCache) ----

std::string stage_cache_answer_to_bytes(bool hit);
bool stage_cache_answer_from_bytes(const std::string& bytes);  // true: hit

// ---- start-up measurements (kTagProbe) ----

enum class ProbeKind : uint8_t { profile = 1, ping = 2, done = 3, time = 4, hello = 5 };

// After the hello: the probe window's blocks as stage archives (plan/measured.h ProbeWindow) and
// the input batch of the window's first block as a frame.
struct ProfileRequest {
  std::vector<std::string> blocks;
  std::string input_frame;
  bool optimize = true;
  std::string to_bytes() const;
  static ProfileRequest from_bytes(const std::string& bytes);
};

// The hello (say who you are: a RankProfile without times), then orders: time your blocks (time),
// ping-pong with `peer` (ping), or done.
struct ProbeOrder {
  ProbeKind kind = ProbeKind::done;
  int32_t peer = 0;        // ping: the other rank
  bool initiator = false;  // ping: this rank sends first and reports the link
  int64_t bytes = 0;       // ping: size of the large message
  std::string to_bytes() const;
  static ProbeOrder from_bytes(const std::string& bytes);
};

std::string rank_profile_to_bytes(const RankProfile& p);
RankProfile rank_profile_from_bytes(const std::string& bytes);
std::string link_to_bytes(const Link& link);
Link link_from_bytes(const std::string& bytes);

// ---- clock alignment (kTagClock) ----

// Rank 0's ping: its clock, and the number of batches to come (so that a stage reserves its
// trace). The answer is the stage's clock (a double).
struct ClockPing {
  double t_root = 0;
  int64_t batches = 0;
};
std::string clock_ping_to_bytes(const ClockPing& p);
ClockPing clock_ping_from_bytes(const std::string& bytes);
std::string clock_answer_to_bytes(double t_rank);
double clock_answer_from_bytes(const std::string& bytes);

// ---- watchdog (kTagStatus) and stop notices (kTagSignal) ----

constexpr const char* kStatusRequest = "?";
std::string signal_notice_to_bytes(int signal);
// The signal number; SIGTERM (15) for a notice of the wrong size.
int signal_notice_from_bytes(const std::string& bytes);

// ---- a stage's failure during the stream (kTagFailed) ----

struct StageFailure {
  int64_t seq = -1;               // the batch whose compute failed (-1: not a batch's compute)
  int64_t batch_rows = 0;         // rows in that batch
  std::vector<int64_t> bad_rows;  // rows of the batch (from 0) that fail on their own
  bool rows_checked = false;      // every row was tried alone (else bad_rows may miss some)
  std::string what;
};
std::string stage_failure_to_bytes(const StageFailure& f);
StageFailure stage_failure_from_bytes(const std::string& bytes);

// ---- end of stream (kTagStats, kTagTrace) ----

std::string counters_to_bytes(const StageCounters& c);
StageCounters counters_from_bytes(const std::string& bytes);
std::string trace_to_bytes(const RankFacts& facts, const std::vector<BatchRecord>& records);
void trace_from_bytes(const std::string& bytes, RankFacts* facts,
                      std::vector<BatchRecord>* records);

}  // namespace edgepipe
