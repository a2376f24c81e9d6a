#include "edgepipe/dispatcher.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>

#include "edgepipe/error.h"
#include "edgepipe/hash.h"
#include "edgepipe/io.h"
#include "edgepipe/metrics.h"
#include "edgepipe/plan.h"
#include "edgepipe/profile.h"
#include "edgepipe/signals.h"
#include "edgepipe/stage.h"
#include "edgepipe/worker.h"

namespace edgepipe {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Everything set-up decides, kept for the run and the outputs file's attributes.
struct RunPlan {
  std::vector<size_t> block_bounds;  // stage s runs blocks [block_bounds[s], block_bounds[s+1])
  std::vector<int64_t> node_cuts;    // node positions where the model is cut
  std::vector<double> stage_ms;      // profiled compute per stage (sum of its blocks)
  std::vector<double> measured_ms;   // the stages timed as they will run (optimised), if done
  std::vector<int64_t> stage_out_bytes;
  std::vector<StageSetup> setups;    // one per worker rank, in rank order
  uint64_t max_out_bytes = 0;        // largest frame rank 0 receives
  uint64_t max_out_tensor_bytes = 0; // the most tensor bytes such a frame decodes to
};

std::vector<size_t> node_bounds(const ModelGraph& mg, const std::vector<size_t>& block_bounds) {
  std::vector<size_t> nodes;
  for (size_t b : block_bounds) nodes.push_back(mg.cuts[b]);
  return nodes;
}

// Optimising a stage speeds its blocks up by different factors, so a split balanced on the
// blocks' unoptimised times is not balanced once optimised. Each round times the stages as they
// will run, scales the blocks of each stage by its measured/profiled ratio and splits again;
// the split with the smallest measured slowest stage wins.
std::vector<size_t> calibrate(const ModelGraph& mg, const ModelProfile& prof, size_t k,
                              const at::Tensor& input, bool optimize, int rounds,
                              std::vector<double>* measured) {
  std::vector<double> costs = prof.block_ms;
  std::vector<size_t> bounds = partition_chain(costs, k), best = bounds;
  double best_period = std::numeric_limits<double>::infinity();
  for (int round = 0; round < rounds; ++round) {
    std::vector<double> ms = time_stages(mg, node_bounds(mg, bounds), input, optimize);
    double period = *std::max_element(ms.begin(), ms.end());
    if (period < best_period) {
      best_period = period;
      best = bounds;
      *measured = ms;
    }
    for (size_t s = 0; s < k; ++s) {
      double sum = 0;
      for (size_t b = bounds[s]; b < bounds[s + 1]; ++b) sum += costs[b];
      for (size_t b = bounds[s]; b < bounds[s + 1] && sum > 0; ++b) costs[b] *= ms[s] / sum;
    }
    auto next = partition_chain(costs, k);
    if (next == bounds) break;
    bounds = next;
  }
  return best;
}

RunPlan make_plan(const ModelGraph& mg, const ModelProfile& prof, int num_stages,
                  const RunConfig& cfg, const at::Tensor& input) {
  RunPlan p;
  cfg.codecs.check_links(num_stages + 1);
  p.block_bounds = cfg.calibrate > 0 && num_stages > 1
                       ? calibrate(mg, prof, num_stages, input, cfg.optimize, cfg.calibrate,
                                   &p.measured_ms)
                       : partition_chain(prof.block_ms, static_cast<size_t>(num_stages));
  for (int s = 0; s < num_stages; ++s) {
    size_t b0 = p.block_bounds[s], b1 = p.block_bounds[s + 1];
    size_t begin = mg.cuts[b0], end = mg.cuts[b1];
    if (s > 0) p.node_cuts.push_back(static_cast<int64_t>(begin));
    double ms = 0;
    for (size_t b = b0; b < b1; ++b) ms += prof.block_ms[b];
    p.stage_ms.push_back(ms);
    p.stage_out_bytes.push_back(prof.cut_bytes(b1));
    StageSetup setup;
    setup.stage = s;
    setup.num_stages = num_stages;
    setup.prev = s;  // stage s runs on rank s + 1
    setup.next = s + 1 == num_stages ? 0 : s + 2;
    setup.inputs = prof.cut_metas[b0];
    setup.max_in_bytes = frame_bound(prof.cut_metas[b0]);
    // Links are numbered by the rank they carry into (codec_spec.h): stage s sends on link
    // s + 2, into rank s + 2, or for the last stage back to rank 0.
    setup.out_codec = cfg.codecs.for_link(s + 2);
    torch::jit::Module module = build_stage_module(mg, begin, end);
    setup.module_bytes = save_module_bytes(module);
    p.setups.push_back(std::move(setup));
  }
  p.max_out_bytes = frame_bound(prof.cut_metas.back());
  for (const auto& m : prof.cut_metas.back())
    p.max_out_tensor_bytes += static_cast<uint64_t>(m.bytes());
  return p;
}

std::string describe_plan(const ModelGraph& mg, const RunPlan& p) {
  std::ostringstream s;
  s << "plan: " << p.setups.size() << " stages over " << mg.nodes.size() << " nodes ("
    << mg.num_blocks() << " blocks)\n";
  s << "  stage  rank  nodes        blocks      profiled ms  measured ms  out MB  stage MB\n";
  for (size_t i = 0; i < p.setups.size(); ++i) {
    size_t b0 = p.block_bounds[i], b1 = p.block_bounds[i + 1];
    char line[160];
    std::snprintf(line, sizeof line,
                  "  %5zu  %4zu  %4zu-%-6zu  %4zu-%-5zu  %11.2f  %11s  %6.2f  %8.1f\n", i, i + 1,
                  mg.cuts[b0], mg.cuts[b1], b0, b1, p.stage_ms[i],
                  p.measured_ms.empty() ? "-" : fmt("%.2f", p.measured_ms[i]).c_str(),
                  p.stage_out_bytes[i] / 1e6, p.setups[i].module_bytes.size() / 1e6);
    s << line;
  }
  return s.str();
}

// Checks the model's signature: edgepipe feeds exactly one tensor.
void check_model_inputs(const ModelGraph& mg) {
  const auto& inputs = mg.graph->inputs();
  EP_CHECK(inputs.size() == 2 && inputs[1]->type()->cast<c10::TensorType>(),
           "the model's forward takes ", inputs.size() - 1, " argument(s) of type(s) ",
           [&] {
             std::string t;
             for (size_t i = 1; i < inputs.size(); ++i)
               t += (i > 1 ? ", " : "") + inputs[i]->type()->str();
             return t;
           }(),
           "; edgepipe feeds exactly one tensor");
}

struct Results {
  int64_t images = 0;       // rows computed by this run (a resumed run starts part-way)
  double seconds = 0;       // first input sent to last output written
  double steady_per_s = 0;  // images/s after the pipeline has filled
  int stopped_by = 0;       // the signal that stopped the run early, or 0
  int64_t nonfinite_rows = 0;
  std::vector<StageCounters> counters;
  LinkCounters link_first;      // link 1 (rank 0 -> rank 1), as rank 0 encoded it
  double time_decode_last = 0;  // rank 0 decoding the last link
};

// A stage rank that was asked to stop tells rank 0 with a kTagSignal message.
int poll_worker_signals(Channel& ch, int num_stages) {
  for (int rank = 1; rank <= num_stages; ++rank) {
    size_t n = 0;
    if (ch.probe(rank, kTagSignal, &n)) {
      std::string sig = recv_bytes(ch, rank, kTagSignal, 10, "a signal notice");
      return sig.size() == sizeof(int) ? *reinterpret_cast<const int*>(sig.data()) : 15;
    }
  }
  return 0;
}

// The watchdog's report: asks every stage what it waits for, and gives it 3 s to answer.
std::string ask_stages(Channel& ch, int num_stages) {
  for (int rank = 1; rank <= num_stages; ++rank) send_bytes(ch, rank, kTagStatus, "?", 5);
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
  for (int rank = 1; rank <= num_stages; ++rank) {
    report += "  " + (answers[rank].empty()
                          ? detail::concat("stage ", rank - 1, " (rank ", rank,
                                           ") did not answer: busy computing, or hung")
                          : answers[rank]) + "\n";
  }
  return report;
}

Results stream(const RunConfig& cfg, Channel& ch, const RunPlan& plan, const InputSource& in,
               OutputSink& sink, const Log& log) {
  const int num_stages = static_cast<int>(plan.setups.size());
  const int last = num_stages;  // rank of the last stage
  const int64_t start = sink.rows_done(), total = in.count();
  const int64_t nb = (total - start + cfg.batch - 1) / cfg.batch;
  auto first_row = [&](int64_t b) { return start + b * cfg.batch; };
  const int64_t inflight = cfg.inflight > 0 ? cfg.inflight : 2 * num_stages;
  std::vector<char> send_buf[2], recv_buf(plan.max_out_bytes);
  FrameEncoder encoder(cfg.codecs.for_link(1));
  FrameDecoder decoder(plan.max_out_tensor_bytes);
  Channel::Handle send[2];
  bool sending[2] = {false, false};
  auto post_recv = [&] { return ch.irecv(last, kTagData, recv_buf.data(), recv_buf.size()); };
  Channel::Handle recv = post_recv();

  Results r;
  std::vector<double> arrival(nb);
  const double t0 = now_seconds();
  double last_progress = t0, last_checkpoint = t0, last_signal_poll = t0, drain_deadline = 0;
  int64_t sent = 0, done = 0;
  int s = 0;
  auto pause = std::chrono::microseconds(10);
  while (done < sent || (sent < nb && r.stopped_by == 0)) {
    bool progressed = false;
    double now = now_seconds();
    if (r.stopped_by == 0 && now - last_signal_poll > 0.01) {
      last_signal_poll = now;
      r.stopped_by = stop_signal() ? stop_signal() : poll_worker_signals(ch, num_stages);
      if (r.stopped_by) {
        sink.checkpoint();  // what is written is safe before anything else is tried
        drain_deadline = now + std::min(cfg.timeout_s, 20.0);
        log.info(std::string(signal_name(r.stopped_by)) + ": no more inputs; waiting for the " +
                 std::to_string(sent - done) + " batches in flight");
      }
    }
    if (sending[s] && ch.test(send[s])) sending[s] = false;
    if (r.stopped_by == 0 && sent < nb && sent - done < inflight && !sending[s]) {
      at::Tensor x = in.rows(first_row(sent), std::min(cfg.batch, total - first_row(sent)));
      if (!at::isfinite(x).all().item<bool>()) {
        at::Tensor bad = at::logical_not(at::isfinite(x).flatten(1).all(1)).nonzero();
        int64_t row = first_row(sent) + bad[0][0].item<int64_t>();
        EP_CHECK(!cfg.strict, "input row ", row, " contains NaN or Inf (--strict refuses them)");
        if (r.nonfinite_rows == 0)
          log.warn("input row " + std::to_string(row) + " contains NaN or Inf; its outputs will "
                   "too (--strict refuses such inputs)");
        r.nonfinite_rows += bad.size(0);
      }
      encoder.encode(static_cast<uint64_t>(sent), 0, {x}, send_buf[s]);
      send[s] = ch.isend(1, kTagData, send_buf[s].data(), send_buf[s].size());
      sending[s] = true;
      s ^= 1;
      ++sent;
      progressed = true;
    }
    size_t n = 0;
    if (ch.test(recv, &n)) {
      Frame f;
      {
        ScopedTimer t(r.time_decode_last);
        f = decoder.decode(recv_buf.data(), n);
      }
      EP_CHECK(!(f.flags & kFrameEnd), "the last stage ended the stream early, after ", done,
               " of ", nb, " batches");
      EP_CHECK(f.seq == static_cast<uint64_t>(done), "received batch ", f.seq,
               " from the last stage but expected batch ", done);
      sink.write(first_row(done), f.tensors);
      arrival[done] = now_seconds();
      ++done;
      recv = post_recv();
      progressed = true;
    }
    now = now_seconds();
    if (now - last_checkpoint > cfg.checkpoint_s) {
      sink.checkpoint();
      last_checkpoint = now;
    }
    if (progressed) {
      last_progress = now;
      pause = std::chrono::microseconds(10);
    } else {
      if (now - last_progress >= cfg.timeout_s) {
        EP_FAIL("watchdog: no batch completed for ", cfg.timeout_s, " s (--timeout); rank 0 sent ",
                sent, " batches to rank 1 and received ", done, " from rank ", last, "\n",
                ask_stages(ch, num_stages));
      }
      EP_CHECK(r.stopped_by == 0 || now < drain_deadline, "the batches in flight did not "
               "return in time after ", signal_name(r.stopped_by));
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(500));
    }
  }
  sink.checkpoint();
  // End of stream: it travels through every stage, so when it comes back all work is done.
  for (int i = 0; i < 2; ++i) {
    if (sending[i])
      wait_for([&] { return ch.test(send[i]); }, cfg.timeout_s, "rank 1 to take a batch");
  }
  encoder.encode(static_cast<uint64_t>(sent), kFrameEnd, {}, send_buf[0]);
  send[0] = ch.isend(1, kTagData, send_buf[0].data(), send_buf[0].size());
  size_t n = 0;
  wait_for([&] { return ch.test(recv, &n); }, cfg.timeout_s, "the end of the stream to return");
  EP_CHECK(decoder.decode(recv_buf.data(), n).flags & kFrameEnd, "unexpected batch after the end");
  wait_for([&] { return ch.test(send[0]); }, cfg.timeout_s, "rank 1 to take the end frame");
  for (int rank = 1; rank <= num_stages; ++rank) {
    r.counters.push_back(counters_from_bytes(recv_bytes(
        ch, rank, kTagStats, cfg.timeout_s, "the counters of rank " + std::to_string(rank))));
  }
  r.link_first = encoder.counters();
  // A stop that came late (after the last batch was sent) still stops nothing: all rows are done.
  if (sink.rows_done() == total) r.stopped_by = 0;

  r.images = std::min(total, first_row(done)) - start;
  if (done == 0) return r;
  r.seconds = arrival[done - 1] - t0;
  const int64_t fill = std::min<int64_t>(num_stages, done - 1);
  if (done - fill >= 2 && fill > 0) {
    const int64_t rows_after = std::min(total, first_row(done)) - first_row(fill);
    r.steady_per_s = rows_after / (arrival[done - 1] - arrival[fill - 1]);
  } else {
    r.steady_per_s = r.images / r.seconds;
  }
  return r;
}

std::string describe_counters(const std::vector<StageCounters>& cs) {
  std::ostringstream s;
  s << "  stage  batches  compute ms/batch  recv wait ms  send wait ms  codec ms  busy %  MB out\n";
  for (size_t i = 0; i < cs.size(); ++i) {
    const auto& c = cs[i];
    const double b = std::max(c.batches, 1.0);
    char line[200];
    std::snprintf(line, sizeof line, "  %5zu  %7.0f  %16.2f  %12.2f  %12.2f  %8.2f  %6.1f  %6.1f\n",
                  i, c.batches, 1e3 * c.time_compute / b, 1e3 * c.time_recv_wait / b,
                  1e3 * c.time_send_wait / b, 1e3 * (c.time_encode + c.time_decode) / b,
                  100 * c.time_compute / std::max(c.time_total, 1e-9), c.bytes_out / 1e6);
    s << line;
  }
  return s.str();
}

// Per-link codec totals (codec_spec.h numbers the links: link i carries into rank i, the last
// back to rank 0): bytes, encode time and error from the sending rank, decode time from the
// receiving one.
std::vector<LinkCounters> links_of(const Results& r) {
  const size_t k = r.counters.size() + 1;
  std::vector<LinkCounters> links(k);
  links[0] = r.link_first;
  for (size_t i = 1; i < k; ++i) links[i] = r.counters[i - 1].link_out;
  for (size_t i = 0; i + 1 < k; ++i) links[i].time_decode = r.counters[i].time_decode;
  links[k - 1].time_decode = r.time_decode_last;
  return links;
}

// The same as attributes of the outputs file: link<i>_codec, link<i>_bytes_raw, ... (times in
// seconds; error attributes for lossy links only).
void record_links(H5OutputFile& f, const RunConfig& cfg, const std::vector<LinkCounters>& links) {
  f.set_attribute("codec", cfg.codecs.text());
  for (size_t i = 0; i < links.size(); ++i) {
    const LinkCounters& c = links[i];
    const std::string p = "link" + std::to_string(i + 1) + "_";
    f.set_attribute(p + "codec", std::string(c.codec));
    f.set_attribute(p + "frames", c.frames);
    f.set_attribute(p + "bytes_raw", c.bytes_raw);
    f.set_attribute(p + "bytes_encoded", c.bytes_encoded);
    f.set_attribute(p + "bytes_frames", c.bytes_frames);
    f.set_attribute(p + "time_encode", c.time_encode);
    f.set_attribute(p + "time_decode", c.time_decode);
    if (c.lossy_tensors > 0) {
      f.set_attribute(p + "time_error", c.time_error);
      f.set_attribute(p + "error_max_rel", c.error_max_rel);
      f.set_attribute(p + "error_max_rel_l2", c.error_max_rel_l2);
      f.set_attribute(p + "error_rel_l2", c.ref_sq > 0 ? std::sqrt(c.error_sq / c.ref_sq) : 0.0);
    }
  }
}

OutputMode output_mode(const RunConfig& cfg) {
  return cfg.resume ? OutputMode::resume
                    : cfg.overwrite ? OutputMode::overwrite : OutputMode::create;
}

// Attributes that describe the run, for the record (each run that worked on the file rewrites
// them: a resumed file shows the last run's).
void describe_run(H5OutputFile& f, const RunConfig& cfg, const InputSource& in,
                  const RunPlan& plan, int num_stages) {
  f.set_attribute("model", cfg.model);
  f.set_attribute("input", in.description());
  f.set_attribute("stages", std::vector<int64_t>{num_stages});
  f.set_attribute("cuts", plan.node_cuts);
  f.set_attribute("batch", std::vector<int64_t>{cfg.batch});
  f.set_attribute("threads_per_rank", std::vector<int64_t>{cfg.threads});
  f.set_attribute("command_line", cfg.command_line);
}

}  // namespace

int run_dispatcher(const RunConfig& cfg, Channel& ch, const Log& log) {
  const int num_stages = ch.size() - 1;
  std::optional<OutputSink> sink;
  std::optional<InputSource> in;
  std::optional<ModelGraph> mg;
  RunPlan plan;
  if (cfg.resume && H5OutputFile::already_complete(cfg.output)) {
    // A requeued job whose first attempt finished: done, and not an error.
    log.info(cfg.output + " is complete already: nothing to resume");
    StageSetup nothing;
    nothing.ok = false;
    nothing.nothing_to_do = true;
    for (int rank = 1; rank < ch.size(); ++rank)
      send_bytes(ch, rank, kTagSetup, nothing.to_bytes(), cfg.timeout_s);
    return 0;
  }
  try {
    H5OutputFile::preflight(cfg.output, output_mode(cfg));  // before any slow work
    mg.emplace(load_model_graph(cfg.model));
    check_model_inputs(*mg);
    in.emplace(cfg, mg->input_shape);
    log.info("model " + cfg.model + ": " + std::to_string(mg->nodes.size()) + " nodes, " +
             std::to_string(mg->num_blocks()) + " blocks; inputs " + in->description());
    at::Tensor first = in->batch(0, cfg.batch);
    ModelProfile prof = profile_model(*mg, first);
    plan = make_plan(*mg, prof, num_stages, cfg, first);
    sink.emplace(cfg.output, output_mode(cfg),
                 OutputIdentity{sha256_file(cfg.model), in->identity(), in->count()});
    if (cfg.resume)
      log.info("resuming " + sink->file().partial_path() + " at row " +
               std::to_string(sink->rows_done()) + " of " + std::to_string(in->count()));
  } catch (const std::exception& e) {
    log.error(e.what());
    StageSetup failed;
    failed.ok = false;
    for (int rank = 1; rank < ch.size(); ++rank)
      send_bytes(ch, rank, kTagSetup, failed.to_bytes(), cfg.timeout_s);
    if (sink && !cfg.resume) sink->file().discard_on_close();
    return 1;
  }
  log.info(describe_plan(*mg, plan));

  try {
    for (int rank = 1; rank <= num_stages; ++rank)
      send_bytes(ch, rank, kTagSetup, plan.setups[rank - 1].to_bytes(), cfg.timeout_s);
    for (int rank = 1; rank <= num_stages; ++rank) {
      std::string problem = recv_bytes(ch, rank, kTagReady, cfg.timeout_s,
                                       "rank " + std::to_string(rank) + " to load its stage");
      EP_CHECK(problem.empty(), "rank ", rank, " could not set up stage ", rank - 1, ": ", problem);
    }
    Results r = stream(cfg, ch, plan, *in, *sink, log);
    describe_run(sink->file(), cfg, *in, plan, num_stages);
    sink->file().set_attribute("images_per_second", r.steady_per_s);
    record_links(sink->file(), cfg, links_of(r));
    if (r.nonfinite_rows)
      log.warn(std::to_string(r.nonfinite_rows) + " input rows contained NaN or Inf");
    if (r.stopped_by) {
      sink->checkpoint();
      log.error(std::string(signal_name(r.stopped_by)) + " stopped the run: " +
                std::to_string(sink->rows_done()) + " of " + std::to_string(in->count()) +
                " rows are in " + sink->file().partial_path() +
                "; run the same command with --resume to continue");
      return 128 + r.stopped_by;
    }
    sink->commit();
    log.info("stages:\n" + describe_counters(r.counters));
    log.info("links:\n" + describe_links(links_of(r)));
    if (r.images > 0)
      log.info(std::to_string(r.images) + " images in " + fmt("%.2f", r.seconds) + " s: " +
               fmt("%.2f", r.images / r.seconds) + " images/s (" +
               fmt("%.2f", r.steady_per_s) + " images/s once the pipeline is full); outputs in " +
               cfg.output);
    else
      log.info("nothing left to compute; outputs in " + cfg.output);
  } catch (const std::exception& e) {
    log.error(e.what());
    try {
      sink->checkpoint();
      if (sink->rows_done() == 0 && !cfg.resume)
        sink->file().discard_on_close();  // nothing worth keeping
      else
        log.error(std::to_string(sink->rows_done()) + " of " + std::to_string(in->count()) +
                  " rows are kept in " + sink->file().partial_path() +
                  "; run the same command with --resume to continue");
    } catch (const std::exception& e2) {
      log.error(std::string("could not record progress: ") + e2.what());
    }
    sink.reset();
    ch.abort(1);
  }
  return 0;
}

}  // namespace edgepipe
