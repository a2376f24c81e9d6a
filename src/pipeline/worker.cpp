#include "edgepipe/pipeline/worker.h"

#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/freeze_module.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "edgepipe/base/bytes.h"
#include "edgepipe/base/error.h"
#include "edgepipe/base/host.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/probe.h"
#include "edgepipe/plan/cluster.h"
#include "edgepipe/records/energy.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"

namespace edgepipe {

std::string StageSetup::to_bytes() const {
  ByteWriter w;
  w.put<uint8_t>(ok ? 1 : nothing_to_do ? 2 : 0);
  w.put<int32_t>(stage);
  w.put<int32_t>(num_stages);
  w.put<int32_t>(prev);
  w.put<int32_t>(next);
  w.put<uint64_t>(max_in_bytes);
  w.put<uint8_t>(static_cast<uint8_t>(out_codec.kind));
  w.put<uint8_t>(out_codec.lz4);
  w.put<double>(out_codec.param);
  w.put<uint8_t>(overlap ? 1 : 0);
  w.put<uint32_t>(static_cast<uint32_t>(inputs.size()));
  for (const auto& m : inputs) {
    w.put<int8_t>(static_cast<int8_t>(m.dtype));
    w.put<uint32_t>(static_cast<uint32_t>(m.shape.size()));
    for (int64_t d : m.shape) w.put<int64_t>(d);
  }
  w.put_vector(members);
  w.put_string(module_bytes);
  return w.out;
}

StageSetup StageSetup::from_bytes(const std::string& bytes) {
  ByteReader r{bytes, "stage set-up message"};
  StageSetup s;
  const auto status = r.get<uint8_t>();
  s.ok = status == 1;
  s.nothing_to_do = status == 2;
  s.stage = r.get<int32_t>();
  s.num_stages = r.get<int32_t>();
  s.prev = r.get<int32_t>();
  s.next = r.get<int32_t>();
  s.max_in_bytes = r.get<uint64_t>();
  const auto kind = r.get<uint8_t>();
  EP_CHECK(kind <= static_cast<uint8_t>(kLastCodecKind), "stage set-up message is corrupt");
  s.out_codec.kind = static_cast<CodecKind>(kind);
  s.out_codec.lz4 = r.get<uint8_t>() != 0;
  s.out_codec.param = r.get<double>();
  s.overlap = r.get<uint8_t>() != 0;
  auto n = r.get<uint32_t>();
  EP_CHECK(n <= 1024, "stage set-up message is corrupt");
  for (uint32_t i = 0; i < n; ++i) {
    TensorMeta m;
    m.dtype = static_cast<c10::ScalarType>(r.get<int8_t>());
    auto nd = r.get<uint32_t>();
    EP_CHECK(nd <= 16, "stage set-up message is corrupt");
    for (uint32_t k = 0; k < nd; ++k) m.shape.push_back(r.get<int64_t>());
    s.inputs.push_back(std::move(m));
  }
  s.members = r.get_vector<int32_t>();
  s.module_bytes = r.get_string();
  return s;
}

namespace {

// Loads the stage, optimises it for inference (checked against the unoptimised stage) and runs
// it twice so that the JIT's profiling runs and one-time allocations happen before the first
// real batch.
StageRunner prepare_stage(const StageSetup& setup, const RunConfig& cfg, const Log& log) {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<c10::ScalarType> dtypes;
  for (const auto& m : setup.inputs) {
    shapes.push_back(m.shape);
    dtypes.push_back(m.dtype);
  }
  std::vector<at::Tensor> sample = random_inputs(shapes, dtypes);
  auto load = [&] { return load_module_bytes(setup.module_bytes); };
  std::string why;
  torch::jit::Module module = cfg.optimize ? optimize_checked(load, sample, 1e-5, &why) : load();
  if (!why.empty()) log.warn("stage " + std::to_string(setup.stage) + ": " + why);
  StageRunner stage(module);
  for (int i = 0; i < 2; ++i) stage.run(sample);
  return stage;
}

// Runs a stage's batches: inline, when submit() is called (the serial mode: decode, compute and
// encode take turns on the main thread), or on a compute thread of its own (--overlap: the main
// thread decodes the next batch and encodes the previous one while this batch computes). Results
// come out in the order the batches went in.
class ComputeLane {
 public:
  struct Result {
    uint64_t seq = 0;
    int slot = 0;  // the input buffer the batch came in (it is free once the result is encoded)
    std::vector<at::Tensor> out;
    double seconds = 0;
    std::exception_ptr error;
  };

  ComputeLane(StageRunner& stage, bool threaded) : stage_(stage) {
    if (threaded) thread_ = std::thread([this] { loop(); });
  }
  ~ComputeLane() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  ComputeLane(const ComputeLane&) = delete;
  ComputeLane& operator=(const ComputeLane&) = delete;

  void submit(uint64_t seq, int slot, std::vector<at::Tensor> in) {
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
  // The next finished batch, if there is one.
  std::optional<Result> take() {
    std::lock_guard<std::mutex> lock(m_);
    if (done_.empty()) return std::nullopt;
    Result r = std::move(done_.front());
    done_.pop_front();
    return r;
  }
  // Seconds computed inline (on the caller's thread) so far.
  double inline_seconds() const { return inline_seconds_; }
  bool has_result() {
    std::lock_guard<std::mutex> lock(m_);
    return !done_.empty();
  }
  // Batches submitted and not yet taken.
  size_t in_flight() {
    std::lock_guard<std::mutex> lock(m_);
    return jobs_.size() + done_.size() + (computing_ ? 1 : 0);
  }
  // Whether a batch is computing now, which, and since when.
  bool computing(uint64_t* seq, double* since) {
    std::lock_guard<std::mutex> lock(m_);
    if (!computing_ && jobs_.empty()) return false;
    *seq = computing_ ? computing_seq_ : jobs_.front().seq;
    *since = computing_ ? computing_since_ : now_seconds();
    return true;
  }
  // Sleeps up to `pause`, or less if a batch finishes meanwhile.
  void sleep(std::chrono::microseconds pause) {
    std::unique_lock<std::mutex> lock(m_);
    if (!thread_.joinable()) {
      lock.unlock();
      std::this_thread::sleep_for(pause);
      return;
    }
    const uint64_t seen = finished_count_;
    finished_.wait_for(lock, pause, [&] { return finished_count_ != seen; });
  }

 private:
  struct Job {
    uint64_t seq;
    int slot;
    std::vector<at::Tensor> in;
  };
  Result run(uint64_t seq, int slot, const std::vector<at::Tensor>& in) {
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
    return r;
  }
  void loop() {
    at::init_num_threads();  // LibTorch's intra-op threads for this thread: --threads, as on main
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return quit_ || !jobs_.empty(); });
        if (quit_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        computing_ = true;
        computing_seq_ = job.seq;
        computing_since_ = now_seconds();
      }
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

  StageRunner& stage_;
  std::mutex m_;
  std::condition_variable wake_, finished_;
  std::deque<Job> jobs_;
  std::deque<Result> done_;
  bool computing_ = false, quit_ = false;
  uint64_t computing_seq_ = 0, finished_count_ = 0;
  double inline_seconds_ = 0;
  double computing_since_ = 0;
  std::thread thread_;
};

// The stage's steady state, one loop of test and sleep on the main thread: a batch that has
// arrived is decoded and handed to the compute lane; a computed batch is encoded and sent once an
// output buffer is free. Two input and two output buffers alternate; an input buffer is received
// into again only after its batch's outputs are encoded (a stage may pass an input tensor through
// as an output), and each has its own decoder, whose buffers hold the decoded tensors till then.
void stream(const StageSetup& setup, StageRunner& stage, const RunConfig& cfg, Channel& ch,
            StageCounters& c, BatchTrace& trace, RankFacts& facts) {
  double t_start = 0;  // set when the first batch arrives: set-up of other ranks is not counted
  std::vector<char> in_buf[2], out_buf[2];
  FrameEncoder encoder(setup.out_codec);
  uint64_t max_in_tensor_bytes = 0;  // a frame claiming more is corrupt
  for (const auto& m : setup.inputs) max_in_tensor_bytes += static_cast<uint64_t>(m.bytes());
  std::optional<FrameDecoder> decoder[2];
  Channel::Handle recv[2], send[2];
  bool receiving[2] = {false, false}, sending[2] = {false, false};
  for (int i = 0; i < 2; ++i) {
    decoder[i].emplace(max_in_tensor_bytes);
    in_buf[i].resize(setup.max_in_bytes);
    recv[i] = ch.irecv(setup.prev, kTagData, in_buf[i].data(), in_buf[i].size());
    receiving[i] = true;
  }
  ComputeLane lane(stage, setup.overlap);
  c.overlap = setup.overlap ? 1 : 0;
  // A signal to this rank is passed on to rank 0, which stops feeding inputs and drains the
  // pipeline; this rank goes on until the end frame comes.
  int stop_reported = 0;
  Channel::Handle stop_notice = -1;
  auto report_stop = [&] {
    if (stop_reported || !stop_signal()) return;
    stop_reported = stop_signal();
    stop_notice = ch.isend(0, kTagSignal, reinterpret_cast<const char*>(&stop_reported),
                           sizeof stop_reported);
  };
  uint64_t expected = 0;  // sequence number of the next batch to arrive
  bool ended = false;     // the end frame has come
  uint64_t end_seq = 0;
  int rslot = 0;  // the input buffer the next batch arrives in (they alternate)
  int s = 0;      // the output buffer the next result is encoded into
  // What the main thread waits for when it has nothing to do: for rank 0's watchdog, which asks
  // every stage (this rank answers at once, computing or not), and for this rank's own backstop.
  // (Kept as a state and a number, made into words only when asked: the loop sets it each time
  // it finds nothing to do.)
  enum class Wait { input, compute, send, drain } wait_state = Wait::input;
  uint64_t wait_seq = ~uint64_t(0);
  double waiting_since = now_seconds();
  auto waiting = [&](Wait state, uint64_t seq) {
    if (state != wait_state || seq != wait_seq) waiting_since = now_seconds();
    wait_state = state;
    wait_seq = seq;
  };
  auto waiting_for = [&]() -> std::string {
    switch (wait_state) {
      case Wait::input:
        return t_start == 0 ? detail::concat("its first batch from rank ", setup.prev)
                            : detail::concat("batch ", wait_seq, " from rank ", setup.prev);
      case Wait::compute:
        return detail::concat("batch ", wait_seq, " to compute");
      case Wait::send:
        return detail::concat("rank ", setup.next, " to take batch ",
                              static_cast<int64_t>(wait_seq) - 2);
      case Wait::drain:
        break;
    }
    return detail::concat("rank ", setup.next, " to take the last batches");
  };
  std::string status;
  Channel::Handle status_reply = -1;
  auto service = [&] {
    report_stop();
    size_t n = 0;
    if (!ch.probe(0, kTagStatus, &n)) return;
    recv_bytes(ch, 0, kTagStatus, 5, "rank 0's status request");
    if (status_reply >= 0 && !ch.test(status_reply)) return;  // the previous answer is pending
    uint64_t seq = 0;
    double since = 0;
    const std::string who =
        detail::concat("stage ", setup.stage, " (rank ", setup.members.at(ch.rank()), ") ");
    if (setup.overlap && lane.computing(&seq, &since))
      status = detail::concat(who, "has computed batch ", seq, " for ",
                              static_cast<int>(now_seconds() - since), " s; ", c.batches,
                              " batches done");
    else
      status = detail::concat(who, "has waited ", static_cast<int>(now_seconds() - waiting_since),
                              " s for ", waiting_for(), "; ", c.batches, " batches done");
    status_reply = ch.isend(0, kTagStatus, status.data(), status.size());
  };
  // Rank 0's watchdog fires first, with the whole pipeline's picture; this is the backstop.
  const double timeout = cfg.timeout_s * 1.5 + 10;
  // Per-batch records cost one clock reading and a copy of the counters per batch: each part is
  // the growth of its counter, and each record starts where the previous one ended.
  facts.t_begin = now_seconds();
  double t_mark = facts.t_begin;
  StageCounters before;
  if (trace.enabled()) before = c;
  auto pause = std::chrono::microseconds(10);
  double idle_since = now_seconds();
  for (;;) {
    bool progress = false;
    const double t_iter = now_seconds();
    const double busy_before = c.time_decode + c.time_encode + lane.inline_seconds();
    double send_test = 0;  // a test that completed a send, counted as waiting for it
    service();
    // A batch has arrived: decode it and hand it to the lane.
    size_t n = 0;
    if (!ended && receiving[rslot] && ch.test(recv[rslot], &n)) {
      receiving[rslot] = false;
      progress = true;
      if (t_start == 0) {
        t_start = now_seconds();
        facts.time_first_wait = t_start - facts.t_begin;
      }
      c.bytes_in += static_cast<double>(n);
      Frame frame;
      {
        ScopedTimer t(c.time_decode);
        frame = decoder[rslot]->decode(in_buf[rslot].data(), n);
      }
      if (frame.flags & kFrameEnd) {
        ended = true;
        end_seq = frame.seq;
      } else {
        EP_CHECK(frame.seq == expected, "stage ", setup.stage, " received batch ", frame.seq,
                 " but expected batch ", expected);
        ++expected;
        lane.submit(frame.seq, rslot, std::move(frame.tensors));
        rslot ^= 1;
      }
    }
    // A batch is computed and an output buffer is free: encode the batch and send it.
    const double t_send_test = now_seconds();
    if (lane.has_result() && (!sending[s] || ch.test(send[s]))) {
      if (sending[s]) send_test = now_seconds() - t_send_test;
      c.time_send_wait += send_test;
      sending[s] = false;
      progress = true;
      ComputeLane::Result r = *lane.take();
      if (r.error) std::rethrow_exception(r.error);
      c.time_compute += r.seconds;
      {
        ScopedTimer t(c.time_encode);
        encoder.encode(r.seq, 0, r.out, out_buf[s]);
      }
      r.out.clear();
      if (!ended) {  // the batch's input buffer is free now
        recv[r.slot] = ch.irecv(setup.prev, kTagData, in_buf[r.slot].data(), in_buf[r.slot].size());
        receiving[r.slot] = true;
      }
      send[s] = ch.isend(setup.next, kTagData, out_buf[s].data(), out_buf[s].size());
      sending[s] = true;
      c.bytes_out += static_cast<double>(out_buf[s].size());
      c.batches += 1;
      if (trace.enabled()) {
        const double t_begin = t_mark;
        t_mark = now_seconds();
        BatchRecord rec =
            make_batch_record(static_cast<int64_t>(r.seq), t_begin, t_mark, c, before);
        if (c.batches == 1) {  // the first wait is not in the counters (set-up of other ranks)
          rec.time_recv_wait += facts.time_first_wait;
          rec.time_other -= facts.time_first_wait;
        }
        trace.add(rec);
        before = c;
      }
      s ^= 1;
    }
    if (ended && lane.in_flight() == 0) break;
    if (progress) {
      // The rest of the pass, besides decode, compute and encode: the tests and probes (a test
      // that completes a receive can copy the message), posting the next receive and send, the
      // record: counted as the receive's wait, as when the pass found nothing to do.
      if (t_start > 0)
        c.time_recv_wait += now_seconds() - t_iter - send_test -
                            (c.time_decode + c.time_encode + lane.inline_seconds() - busy_before);
      pause = std::chrono::microseconds(10);
      idle_since = t_iter;
      continue;
    }
    // Nothing to do: say what for, and sleep a little (test and sleep: Open MPI busy-polls in
    // its waits). A batch computing on the lane is not waited for here: compute takes its time.
    uint64_t seq = 0;
    double since = 0;
    const bool computing = setup.overlap && lane.computing(&seq, &since);
    const bool waits_to_send = !computing && lane.has_result();
    if (computing)
      waiting(Wait::compute, seq);
    else if (waits_to_send)
      waiting(Wait::send, static_cast<uint64_t>(c.batches));
    else
      waiting(Wait::input, expected);
    if (computing) idle_since = t_iter;
    EP_CHECK_AS(TimeoutError, t_iter - idle_since < timeout, "timed out after ", timeout,
                " s waiting for ", waiting_for());
    lane.sleep(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(500));
    // The whole idle pass counts as the wait, its tests and probes too.
    const double slept = now_seconds() - t_iter;
    if (t_start == 0) continue;  // the first wait is counted apart
    if (computing)
      c.time_compute_wait += slept;
    else if (lane.has_result() && sending[s])
      c.time_send_wait += slept;
    else
      c.time_recv_wait += slept;
  }
  {
    // The end frame: once every batch before it is sent, pass it on.
    ScopedTimer drain(facts.time_drain);
    for (int i = 0; i < 2; ++i)
      if (receiving[i]) ch.cancel(recv[i]);
    for (int i = 0; i < 2; ++i) {
      if (!sending[i]) continue;
      waiting(Wait::drain, 0);
      wait_for([&] { return service(), ch.test(send[i]); }, timeout,
               detail::concat("rank ", setup.next, " to take a batch"));
      sending[i] = false;
    }
    encoder.encode(end_seq, kFrameEnd, {}, out_buf[0]);
    send[0] = ch.isend(setup.next, kTagData, out_buf[0].data(), out_buf[0].size());
    wait_for([&] { return service(), ch.test(send[0]); }, timeout,
             detail::concat("rank ", setup.next, " to take the end of the stream"));
  }
  facts.t_end = now_seconds();
  c.time_total = facts.t_end - t_start;
  if (stop_notice >= 0) {  // a small message: sent eagerly, so this does not wait for rank 0
    try {
      wait_for([&] { return ch.test(stop_notice); }, 5, "rank 0 to take the stop notice");
    } catch (const Error&) {
    }
  }
  c.link_out = encoder.counters();
}

}  // namespace

int run_worker(const RunConfig& cfg, Channel& world, const Log& log) {
  StageSetup setup;
  try {
    // Rank 0 first measures the ranks and links (probe.h), unless it failed before or planned
    // from a saved profile; then it sends each rank its stage, or nothing to do.
    if (wait_for_tag(world, 0, {kTagProbe, kTagSetup}, cfg.timeout_s, "rank 0 to start the run") ==
        kTagProbe) {
      try {
        answer_probe(world, recv_bytes(world, 0, kTagProbe, cfg.timeout_s, "rank 0's request"),
                     cfg);
      } catch (const std::exception& e) {
        log.error(std::string("measuring this rank at start-up: ") + e.what());
        world.abort(1);
      }
    }
    setup = StageSetup::from_bytes(
        recv_bytes(world, 0, kTagSetup, cfg.timeout_s, "the stage from rank 0"));
  } catch (const std::exception& e) {
    log.error(e);
    return 1;
  }
  if (!setup.ok) return setup.nothing_to_do ? 0 : 1;  // rank 0 has said why
  // From here on ranks count in pipeline order: stage s is rank s + 1.
  RemappedChannel ch(world, std::vector<int>(setup.members.begin(), setup.members.end()));

  std::optional<StageRunner> stage;
  std::string problem;
  try {
    // The stage's weights plus its frame buffers (two in, two out) must fit this rank's memory.
    std::string source;
    const int64_t limit = rank_memory_limit(cfg.max_memory, &source);
    const double need = static_cast<double>(setup.module_bytes.size()) + 4.0 * setup.max_in_bytes;
    EP_CHECK(limit <= 0 || need <= static_cast<double>(limit), "the stage needs about ",
             format_bytes(need), " (weights ", format_bytes(setup.module_bytes.size()),
             " + frame buffers) but this rank may use ", format_bytes(limit), " (", source, ")");
    stage.emplace(prepare_stage(setup, cfg, log));
  } catch (const std::exception& e) {
    problem = e.what();
  }
  send_bytes(ch, 0, kTagReady, problem, cfg.timeout_s);
  if (!problem.empty()) {
    log.error("stage " + std::to_string(setup.stage) + ": " + problem);
    return 1;
  }

  StageCounters counters;
  try {
    // Rank 0 aligns the clocks and says how many batches to expect (to reserve the trace).
    const int64_t batches = sync_clocks_worker(ch, cfg.timeout_s);
    BatchTrace trace(cfg.trace, static_cast<size_t>(std::max<int64_t>(batches, 0)) + 16);
    const RaplCounters rapl;
    const std::vector<uint64_t> energy0 = rapl.read();
    double user0 = 0, system0 = 0, user1 = 0, system1 = 0;
    process_cpu_seconds(&user0, &system0);
    RankFacts facts;
    stream(setup, *stage, cfg, ch, counters, trace, facts);
    process_cpu_seconds(&user1, &system1);
    const std::vector<uint64_t> energy1 = rapl.read();
    sample_rank_facts(&facts);
    facts.cpu_user = user1 - user0;
    facts.cpu_system = system1 - system0;
    if (!energy0.empty() && !energy1.empty()) {
      facts.rapl_joules = rapl.joules_between(energy0, energy1);
      std::snprintf(facts.rapl_source, sizeof facts.rapl_source, "%s", rapl.names().c_str());
    }
    facts.records_dropped = trace.dropped();
    send_bytes(ch, 0, kTagStats, counters_to_bytes(counters), cfg.timeout_s);
    send_bytes(ch, 0, kTagTrace, trace_to_bytes(facts, trace.records()), cfg.timeout_s);
  } catch (const std::exception& e) {
    log.error("stage " + std::to_string(setup.stage) + ": " + e.what());
    ch.abort(1);
  }
  return 0;
}

}  // namespace edgepipe
