#include "edgepipe/single.h"

#include <torch/csrc/jit/passes/freeze_module.h>

#include <cstdio>

#include "edgepipe/error.h"
#include "edgepipe/graph.h"
#include "edgepipe/hash.h"
#include "edgepipe/io.h"
#include "edgepipe/metrics.h"
#include "edgepipe/stage.h"

namespace edgepipe {

int run_single(const RunConfig& cfg, const Log& log) {
  ModelGraph mg = load_model_graph(cfg.model);
  InputSource in(cfg, mg.input_shape);
  OutputSink sink(cfg.output, cfg.overwrite, in.count());
  const int64_t nb = in.num_batches(cfg.batch);
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
  // Warm-up (untimed): the JIT profiles and optimises on the first runs.
  for (int i = 0; i < cfg.warmup; ++i) model.run({first});
  const double t0 = now_seconds();
  for (int64_t b = 0; b < nb; ++b) {
    at::Tensor x = in.batch(b, cfg.batch);
    sink.write(b * cfg.batch, model.run({x}));
  }
  const double seconds = now_seconds() - t0;
  const double per_s = in.count() / seconds;
  auto& f = sink.file();
  f.set_attribute("model", cfg.model);
  f.set_attribute("model_sha256", sha256_file(cfg.model));
  f.set_attribute("input", in.description());
  f.set_attribute("stages", std::vector<int64_t>{1});
  f.set_attribute("cuts", std::vector<int64_t>{});
  f.set_attribute("batch", std::vector<int64_t>{cfg.batch});
  f.set_attribute("threads_per_rank", std::vector<int64_t>{cfg.threads});
  f.set_attribute("images_per_second", per_s);
  f.set_attribute("command_line", cfg.command_line);
  sink.commit();
  char line[256];
  std::snprintf(line, sizeof line, "%lld images in %.2f s: %.2f images/s (%d threads); outputs in %s",
                static_cast<long long>(in.count()), seconds, per_s, cfg.threads,
                cfg.output.c_str());
  log.info(line);
  return 0;
}

}  // namespace edgepipe
