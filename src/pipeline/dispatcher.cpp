#include "edgepipe/pipeline/dispatcher.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/io/data.h"
#include "edgepipe/io/output_lock.h"
#include "edgepipe/io/output_paths.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/pipeline/clock_sync.h"
#include "edgepipe/pipeline/feed.h"
#include "edgepipe/pipeline/planning.h"
#include "edgepipe/pipeline/readiness.h"
#include "edgepipe/pipeline/setup.h"
#include "edgepipe/records/link_table.h"
#include "edgepipe/records/meter.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/run_record.h"
#include "edgepipe/records/runlog.h"

namespace edgepipe {

namespace {

// What rank 0 sets up before the stream: the model, the inputs, the plan and the outputs file.
struct Prepared {
  std::optional<ModelGraph> mg;
  std::optional<InputSource> in;
  std::optional<OutputLock> lock;  // held from the first check until the sink takes it
  std::optional<OutputSink> sink;
  std::string model_sha256;
  RunPlan plan;
};

// Checks the model's signature: edgepipe feeds exactly one tensor.
void check_model_inputs(const ModelGraph& mg) {
  const auto& inputs = mg.graph->inputs();
  std::string types;
  for (size_t i = 1; i < inputs.size(); ++i)
    types += (i > 1 ? ", " : "") + inputs[i]->type()->str();
  EP_CHECK(inputs.size() == 2 && inputs[1]->type()->cast<c10::TensorType>(),
           "the model's forward takes ", inputs.size() - 1, " argument(s) of type(s) ", types,
           "; edgepipe feeds exactly one tensor");
}

// A batch larger than the inputs runs as one batch of all of them: plan, prediction and record
// are for the batch actually run.
void clamp_batch(RunConfig& cfg, int64_t rows, const Log& log) {
  if (cfg.batch <= rows) return;
  log.warn("--batch " + std::to_string(cfg.batch) + " is more than the " + std::to_string(rows) +
           " input rows: running batches of " + std::to_string(rows));
  cfg.batch = rows;
}

// What reading and checking one input batch costs rank 0 (it shares a host with stages).
double read_seconds(const InputSource& in, int64_t batch) {
  const double t0 = now_seconds();
  for (int i = 0; i < 3; ++i) (void)at::isfinite(in.batch(0, batch)).all().item<bool>();
  return (now_seconds() - t0) / 3;
}

// Model, inputs, plan, outputs file: everything that can fail before any stage has work.
// Returns false when --resume finds the output complete already (nothing to do).
bool prepare(RunConfig& cfg, Channel& world, const Log& log, Prepared& p) {
  // Before any slow work: every path checked, and the output locked for the whole run.
  const OutputPaths paths = check_output_paths(cfg, /*writes_log=*/true);
  p.lock.emplace(paths.output);
  p.mg.emplace(load_model_graph(cfg.model));
  EP_THROW_IF_STOPPED("while loading the model");
  check_model_inputs(*p.mg);
  p.in.emplace(cfg, p.mg->input_shape);
  const OutputIdentity id = output_identity(cfg, *p.in, /*pipeline=*/true);
  if (cfg.resume && resume_finds_complete(paths.output, id)) return false;
  clamp_batch(cfg, p.in->count(), log);
  log.info("model " + cfg.model + ": " + std::to_string(p.mg->nodes.size()) + " nodes, " +
           std::to_string(p.mg->num_blocks()) + " blocks; inputs " + p.in->description());
  check_batch_memory(*p.mg, *p.in, cfg);  // before the first batch is built
  const at::Tensor first = p.in->batch(0, cfg.batch);
  const double read_s = read_seconds(*p.in, cfg.batch);
  // The stage ranks wait for rank 0 to start measuring them: hash the model before only when
  // the identity is checked before (--profile).
  if (!cfg.profile.empty()) p.model_sha256 = sha256_file(cfg.model);
  MeasuredIdentity identity{p.model_sha256, cfg.batch, cfg.threads, p.in->sample_shape(),
                            cfg.codecs.text()};
  // --error-budget: the first input rows measure the codecs' error, in whole batches.
  std::vector<at::Tensor> calibration;
  if (cfg.error_budget > 0)
    for (int64_t b = 0; b * cfg.batch < std::min(cfg.calibration_rows, p.in->count()); ++b)
      calibration.push_back(p.in->batch(b, cfg.batch));
  p.plan = plan_run(*p.mg, cfg, first, read_s, identity, world, log, calibration);
  cfg.codecs = p.plan.codecs;  // the links' codecs as chosen (--error-budget) or given
  if (p.model_sha256.empty())
    p.plan.profile.identity.model_sha256 = p.model_sha256 = sha256_file(cfg.model);
  p.sink.emplace(paths.output, output_mode_of(cfg), id, std::move(*p.lock));
  p.lock.reset();
  if (cfg.resume)
    log.info("resuming " + p.sink->file().partial_path() + " at row " +
             std::to_string(p.sink->rows_done()) + " of " + std::to_string(p.in->count()));
  return true;
}

// One line per stage rank: a stage's replicas each have theirs (their shares of the batches).
std::string describe_counters(const std::vector<StageCounters>& cs, const RunPlan& plan) {
  std::ostringstream s;
  s << "  stage  rank  batches  compute ms/batch  recv wait ms  send wait ms  codec ms  busy %  "
       "MB out\n";
  for (size_t i = 0; i < cs.size(); ++i) {
    const auto& c = cs[i];
    const double b = std::max(c.batches, 1.0);
    s << strprintf("  %5d  %4d  %7.0f  %16.2f  %12.2f  %12.2f  %8.2f  %6.1f  %6.1f\n",
                   plan.member_stage.at(i + 1), plan.members.at(i + 1), c.batches,
                   1e3 * c.time_compute / b, 1e3 * c.time_recv_wait / b, 1e3 * c.time_send_wait / b,
                   1e3 * (c.time_encode + c.time_decode) / b,
                   100 * c.time_compute / std::max(c.time_total, 1e-9), c.bytes_out / 1e6);
  }
  return s.str();
}

// The outputs file's record of the run (each run that worked on the file rewrites it: a resumed
// file shows the last run's): the run, and per link link<i>_codec, link<i>_bytes_raw, ... (times
// in seconds; error attributes for lossy links only).
void describe_run(H5OutputFile& f, const RunConfig& cfg, const InputSource& in, const RunPlan& plan,
                  const StreamResults& r) {
  f.set_attribute("model", cfg.model);
  f.set_attribute("input", in.description());
  f.set_attribute("stages", std::vector<int64_t>{static_cast<int64_t>(plan.num_stages())});
  f.set_attribute("cuts", plan.node_cuts);
  f.set_attribute("batch", std::vector<int64_t>{cfg.batch});
  f.set_attribute("threads_per_rank", std::vector<int64_t>{cfg.threads});
  f.set_attribute("command_line", cfg.command_line);
  f.set_attribute("images_per_second", r.steady_per_s);
  f.set_attribute("codec", cfg.codecs.text());
  const std::vector<LinkCounters> links = links_of(r, plan.num_stages());
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

// Writes the run log (runlog.h) to --log; a log that cannot be written does not fail the run.
void write_log(const RunConfig& cfg, const RunDescription& run, const StreamResults& r,
               const ClockSync& clocks, const Meter::Deltas& root, const std::string& failure,
               const Log& log) {
  const std::string path = cfg.log.empty() ? default_log_path(cfg.output) : cfg.log;
  try {
    write_run_log(path, assemble_run_log(cfg, run, r, clocks, root, failure));
  } catch (const std::exception& e) {
    log.warn(std::string("could not write the run log: ") + e.what());
    return;
  }
  if (failure.empty())
    log.info("run log in " + path + " (edgepipe report " + path + ")");
  else
    log.error("the run log of the part that ran is in " + path + " (marked incomplete)");
}

// After the stream: the outputs file's record, then the file committed (or, after a stop
// signal, left partial to resume). Returns the exit code.
int finish_outputs(const RunConfig& cfg, Prepared& p, const StreamResults& r, const Log& log) {
  OutputSink& sink = *p.sink;
  describe_run(sink.file(), cfg, *p.in, p.plan, r);
  if (r.stopped_by) {
    sink.checkpoint();
    log.error(std::string(signal_name(r.stopped_by)) +
              " stopped the run: " + std::to_string(sink.rows_done()) + " of " +
              std::to_string(p.in->count()) + " rows are in " + sink.file().partial_path() +
              "; run the same command with --resume to continue");
    return 128 + r.stopped_by;
  }
  sink.commit();
  log.info("stages:\n" + describe_counters(r.counters, p.plan));
  log.info("links:\n" + describe_links(links_of(r, p.plan.num_stages())));
  if (r.images > 0)
    log.info(std::to_string(r.images) + " images in " + strprintf("%.2f", r.seconds) +
             " s: " + strprintf("%.2f", r.images / r.seconds) + " images/s (" +
             strprintf("%.2f", r.steady_per_s) +
             " images/s once the pipeline is full); outputs in " + cfg.output);
  else
    log.info("nothing left to compute; outputs in " + cfg.output);
  return 0;
}

// After a failure during the run: the rows done are made durable for --resume (or the file is
// dropped when it holds nothing worth keeping).
void keep_progress(const RunConfig& cfg, Prepared& p, const Log& log) {
  try {
    const std::string kept = p.sink->keep_after_failure(cfg.resume);
    if (!kept.empty()) log.error(kept);
  } catch (const std::exception& e) {
    log.error(std::string("could not record progress: ") + e.what());
  }
  p.sink.reset();
}

RunDescription description_of(const Prepared& p) {
  RunDescription d;
  d.input = p.in->description();
  d.model_sha256 = p.model_sha256;
  d.plan = p.plan.decision.plan;
  d.overlap = p.plan.decision.overlap;
  d.node_cuts = p.plan.node_cuts;
  d.members = p.plan.members;
  d.member_stage = p.plan.member_stage;
  for (size_t s = 0; s < p.plan.routing.num_stages(); ++s)
    d.weights.push_back(p.plan.routing.weights(s));
  d.profile = p.plan.profile;
  d.budget = p.plan.budget;
  return d;
}

// Ships the stages, waits for them, aligns the clocks and streams; records the run, complete or
// not. A failure here ends the whole job (a stage may be stuck: nothing waits for it at exit).
int stream_and_record(const RunConfig& cfg, Channel& world, Prepared& p, const Log& log) {
  // From here on ranks count in pipeline order: stage s is rank s + 1 (RemappedChannel).
  RemappedChannel ch(world, p.plan.members);
  RunDescription run = description_of(p);
  ClockSync clocks;
  std::optional<Meter> meter;
  std::optional<Feed> feed;
  try {
    const std::vector<ShippedStage> shipped = ship_stages(world, ch, p.plan, cfg.timeout_s);
    for (const ShippedStage& s : shipped) {
      run.setup_bytes.push_back(s.setup_bytes);
      run.stage_cache_hit.push_back(s.cache_hit ? 1 : 0);
    }
    log.info(describe_shipped(shipped));
    await_stages_ready(ch, p.plan.members, cfg.timeout_s);
    // The batch count is announced with the clocks (so stages reserve their traces); then the
    // stream, metered from its first batch.
    clocks = sync_clocks_root(ch, (p.in->count() - p.sink->rows_done() + cfg.batch - 1) / cfg.batch,
                              cfg.timeout_s);
    meter.emplace();
    run.start_time_utc = utc_now();
    feed.emplace(ch, cfg, p.plan, *p.in, *p.sink, log);
    const StreamResults r = feed->run();
    write_log(cfg, run, r, clocks, meter->read(), "", log);
    return finish_outputs(cfg, p, r, log);
  } catch (const std::exception& e) {
    log.error(e);
    StreamResults known;
    if (feed) known = feed->partial();
    write_log(cfg, run, known, clocks, meter ? meter->read() : Meter::Deltas{}, e.what(), log);
    keep_progress(cfg, p, log);
    // A stop signal (a stage rank's, before the stream) ends the job with 128 + the signal.
    const auto* stop = dynamic_cast<const StopRequested*>(&e);
    ch.abort(stop ? stop->exit_status() : 1);
  }
}

}  // namespace

int run_dispatcher(const RunConfig& given, Channel& world, const Log& log) {
  RunConfig cfg = given;  // the batch is clamped to the inputs
  Prepared p;
  try {
    if (!prepare(cfg, world, log, p)) {
      // A requeued job whose first attempt finished: done, and not an error.
      log.info(cfg.output + " is complete already: nothing to resume");
      tell_every_rank(world, NoStage::nothing_to_do, cfg.timeout_s);
      return 0;
    }
  } catch (const TimeoutError& e) {
    // A rank did not answer during set-up: it cannot be told to exit, and the others would wait
    // for it at the end of the job. End the job.
    log.error(e);
    world.abort(1);
  } catch (const std::exception& e) {
    log.error(e);
    // A stop signal during set-up ends the run with 128 + the signal, like any other phase; the
    // stage ranks exit 0 then, so that the job's status is rank 0's.
    const auto* stop = dynamic_cast<const StopRequested*>(&e);
    tell_every_rank(world, stop ? NoStage::stopped : NoStage::failed, cfg.timeout_s);
    if (p.sink && !cfg.resume) p.sink->file().discard_on_close();
    return stop ? stop->exit_status() : 1;
  }
  log.info(describe_plan(*p.mg, p.plan, cfg));
  return stream_and_record(cfg, world, p, log);
}

}  // namespace edgepipe
