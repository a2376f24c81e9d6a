#include "edgepipe/cli/single.h"

#include <torch/csrc/jit/passes/freeze_module.h>

#include <cstdio>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/io/data.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/records/metrics.h"

namespace edgepipe {

int run_single(const RunConfig& cfg, const Log& log) {
  const OutputMode mode = cfg.resume      ? OutputMode::resume
                          : cfg.overwrite ? OutputMode::overwrite
                                          : OutputMode::create;
  if (cfg.resume && H5OutputFile::already_complete(cfg.output)) {
    log.info(cfg.output + " is complete already: nothing to resume");
    return 0;
  }
  H5OutputFile::preflight(cfg.output, mode);
  ModelGraph mg = load_model_graph(cfg.model);
  InputSource in(cfg, mg.input_shape);
  at::Tensor first = in.batch(0, cfg.batch);
  torch::jit::Module module = mg.module;
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
  StageRunner model(module);
  OutputSink sink(cfg.output, mode, {sha256_file(cfg.model), in.identity(), in.count()});
  // Warm-up (untimed): the JIT profiles and optimises on the first runs.
  for (int i = 0; i < cfg.warmup; ++i) model.run({first});
  const double t0 = now_seconds();
  double last_checkpoint = t0;
  const int64_t start = sink.rows_done();
  for (int64_t row = start; row < in.count(); row += cfg.batch) {
    if (stop_signal()) {
      sink.checkpoint();
      EP_FAIL(signal_name(stop_signal()), " stopped the run: ", sink.rows_done(), " of ",
              in.count(), " rows are in ", sink.file().partial_path(),
              "; run the same command with --resume to continue");
    }
    at::Tensor x = in.rows(row, std::min(cfg.batch, in.count() - row));
    sink.write(row, model.run({x}));
    if (now_seconds() - last_checkpoint > cfg.checkpoint_s) {
      sink.checkpoint();
      last_checkpoint = now_seconds();
    }
  }
  const double seconds = now_seconds() - t0;
  const double per_s = (in.count() - start) / seconds;
  auto& f = sink.file();
  f.set_attribute("model", cfg.model);
  f.set_attribute("input", in.description());
  f.set_attribute("stages", std::vector<int64_t>{1});
  f.set_attribute("cuts", std::vector<int64_t>{});
  f.set_attribute("batch", std::vector<int64_t>{cfg.batch});
  f.set_attribute("threads_per_rank", std::vector<int64_t>{cfg.threads});
  f.set_attribute("images_per_second", per_s);
  f.set_attribute("command_line", cfg.command_line);
  sink.commit();
  char line[256];
  std::snprintf(
      line, sizeof line, "%lld images in %.2f s: %.2f images/s (%d threads); outputs in %s",
      static_cast<long long>(in.count() - start), seconds, per_s, cfg.threads, cfg.output.c_str());
  log.info(line);
  return 0;
}

}  // namespace edgepipe
