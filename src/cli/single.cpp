#include "edgepipe/cli/single.h"

#include <torch/csrc/jit/passes/freeze_module.h>

#include <cstdio>

#include "edgepipe/base/error.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/io/data.h"
#include "edgepipe/io/finite.h"
#include "edgepipe/io/output_paths.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/planning.h"
#include "edgepipe/records/metrics.h"

namespace edgepipe {

namespace {

// The model as it will run: checked on the first batch, optimised (and the optimisation
// checked) with --optimize.
torch::jit::Module prepare_model(const RunConfig& cfg, torch::jit::Module module,
                                 const at::Tensor& first, const Log& log) {
  try {
    StageRunner(module).run({first});
    if (cfg.optimize) {
      // Optimising rewrites the module's graph in place: each candidate is a fresh copy.
      auto load = [&] { return load_model_graph(cfg.model).module; };
      std::string why;
      module = optimize_checked(load, {first}, 1e-5, &why);
      if (!why.empty()) log.warn("the model: " + why);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    EP_FAIL("the model fails on an input batch of shape ", first.sizes(), ": ",
            torch_error_summary(e));
  }
  return module;
}

// Every batch from the first row not done: inputs and outputs checked for NaN, rows written in
// order, progress marked every --checkpoint seconds; a stop signal ends it (StopRequested).
void run_rows(const RunConfig& cfg, const InputSource& in, StageRunner& model, OutputSink& sink,
              const Log& log) {
  NonFiniteRows bad_inputs("input", cfg.strict), bad_outputs("output", cfg.strict);
  double last_checkpoint = now_seconds();
  for (int64_t row = sink.rows_done(); row < in.count(); row += cfg.batch) {
    EP_THROW_IF_STOPPED("while computing the rows");
    at::Tensor x = in.rows(row, std::min(cfg.batch, in.count() - row));
    bad_inputs.check({x}, row, log);
    const std::vector<at::Tensor> y = model.run({x});
    bad_outputs.check(y, row, log);
    sink.write(row, y);
    if (now_seconds() - last_checkpoint > cfg.checkpoint_s) {
      sink.checkpoint();
      last_checkpoint = now_seconds();
    }
  }
  for (const NonFiniteRows* bad : {&bad_inputs, &bad_outputs})
    if (bad->count()) log.warn(bad->summary());
}

void describe_run(OutputSink& sink, const RunConfig& cfg, const InputSource& in, double per_s) {
  auto& f = sink.file();
  f.set_attribute("model", cfg.model);
  f.set_attribute("input", in.description());
  f.set_attribute("stages", std::vector<int64_t>{1});
  f.set_attribute("cuts", std::vector<int64_t>{});
  f.set_attribute("batch", std::vector<int64_t>{cfg.batch});
  f.set_attribute("threads_per_rank", std::vector<int64_t>{cfg.threads});
  f.set_attribute("images_per_second", per_s);
  f.set_attribute("command_line", cfg.command_line);
}

}  // namespace

int run_single(const RunConfig& cfg, const Log& log) {
  // Before any slow work: every path checked, and the output locked for the whole run.
  const OutputPaths paths = check_output_paths(cfg, /*writes_log=*/false);
  OutputLock lock(paths.output);
  ModelGraph mg = load_model_graph(cfg.model);
  EP_THROW_IF_STOPPED("while loading the model");
  InputSource in(cfg, mg.input_shape);
  const OutputIdentity id = output_identity(cfg, in, /*pipeline=*/false);
  if (cfg.resume && resume_finds_complete(paths.output, id)) {
    log.info(cfg.output + " is complete already: nothing to resume");
    return 0;
  }
  check_batch_memory(mg, in, cfg);  // from the shapes, before the first batch is built
  const at::Tensor first = in.batch(0, cfg.batch);
  StageRunner model(prepare_model(cfg, mg.module, first, log));
  OutputSink sink(paths.output, output_mode_of(cfg), id, std::move(lock));
  const int64_t start = sink.rows_done();
  double seconds = 0;
  try {
    // Warm-up (untimed): the JIT profiles and optimises on the first runs.
    for (int i = 0; i < cfg.warmup; ++i) {
      EP_THROW_IF_STOPPED("during the warm-up");
      model.run({first});
    }
    const double t0 = now_seconds();
    run_rows(cfg, in, model, sink, log);
    seconds = now_seconds() - t0;
    describe_run(sink, cfg, in, (in.count() - start) / seconds);
    sink.commit();
  } catch (const StopRequested& e) {
    const std::string kept = sink.keep_after_failure(cfg.resume);
    log.error(std::string(e.what()) + "; " + (kept.empty() ? "no row was written yet" : kept));
    return e.exit_status();
  } catch (const std::exception& e) {
    log.error(e);
    const std::string kept = sink.keep_after_failure(cfg.resume);
    if (!kept.empty()) log.error(kept);
    return 1;
  }
  log.info(strprintf("%lld images in %.2f s: %.2f images/s (%d threads); outputs in %s",
                     static_cast<long long>(in.count() - start), seconds,
                     (in.count() - start) / seconds, cfg.threads, cfg.output.c_str()));
  return 0;
}

}  // namespace edgepipe
