#include "edgepipe/model/profile.h"

#include <torch/csrc/jit/passes/freeze_module.h>

#include <algorithm>
#include <utility>

#include "edgepipe/base/error.h"
#include "edgepipe/base/host.h"
#include "edgepipe/base/run_timer.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/base/units.h"
#include "edgepipe/model/stage.h"

namespace edgepipe {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One cut's frame under each codec: its size and the median encode and decode time.
void measure_codecs(const std::vector<at::Tensor>& x, int reps, ModelProfile& p) {
  for (CutCodecCosts& c : p.codecs) {
    FrameEncoder encoder(c.codec, 0);
    FrameDecoder decoder;
    std::vector<char> frame;
    std::vector<double> enc, dec;
    for (int i = 0; i < std::max(reps, 1); ++i) {
      EP_THROW_IF_STOPPED("while timing the codecs");
      const RunTimer encoding;
      encoder.encode(0, 0, x, frame);
      enc.push_back(encoding.ms());
      const RunTimer decoding;
      decoder.decode(frame.data(), frame.size());
      dec.push_back(decoding.ms());
    }
    c.frame_bytes.push_back(static_cast<int64_t>(frame.size()));
    c.encode_ms.push_back(median(enc));
    c.decode_ms.push_back(median(dec));
  }
}

}  // namespace

MemoryBudget::MemoryBudget(int64_t limit, std::string source, int64_t extra)
    : limit_(std::max<int64_t>(limit, 0)),
      extra_(3 * std::max<int64_t>(extra, 0)),  // the weights: 3 copies (profile.h)
      source_(std::move(source)) {
  AllocationMeter& meter = AllocationMeter::instance();
  previous_ = meter.limit();
  tensors_at_start_ = meter.current();
  resident_at_start_ = resident_bytes();
  if (limit_ > 0) meter.set_limit(tensors_at_start_ + limit_ + extra_);
}

MemoryBudget::~MemoryBudget() { AllocationMeter::instance().set_limit(previous_); }

void MemoryBudget::check(const std::string& what) const {
  if (limit_ <= 0) return;
  const AllocationMeter& meter = AllocationMeter::instance();
  const int64_t tensors = meter.current() - tensors_at_start_;
  const int64_t grown = resident_bytes() - resident_at_start_;
  const std::string fix = "; use a smaller --batch or input, or give the ranks more memory";
  if (const int64_t asked = meter.refused(); asked > 0)
    EP_FAIL(what, " needs more than the memory limit of ", format_bytes(limit_), " (", source_,
            "): it asked for ", format_bytes(asked), " with ", format_bytes(tensors),
            " allocated since it began; stopped before allocating it", fix);
  if (resident_at_start_ > 0 && grown > limit_ + extra_ + kResidentSlack)
    EP_FAIL(what, " passed the memory limit of ", format_bytes(limit_), " (", source_,
            "): this process grew by ", format_bytes(grown), fix);
}

int64_t ModelProfile::cut_bytes(size_t cut) const {
  int64_t n = 0;
  for (const auto& m : cut_metas.at(cut)) n += m.bytes();
  return n;
}

std::vector<torch::jit::Module> block_modules(const ModelGraph& model) {
  std::vector<torch::jit::Module> blocks;
  for (size_t b = 0; b < model.num_blocks(); ++b)
    blocks.push_back(build_stage_module(model, model.cuts[b], model.cuts[b + 1]));
  return blocks;
}

ModelProfile profile_model(const ModelGraph& model, const at::Tensor& input,
                           const ProfileOptions& options) {
  const size_t nb = model.num_blocks();
  std::vector<torch::jit::Module> modules = block_modules(model);
  ModelProfile p;
  for (const auto& m : modules) p.block_param_bytes.push_back(parameter_bytes(m));
  for (const CodecSpec& c : options.codecs) p.codecs.push_back({c, {}, {}, {}});
  AllocationMeter& meter = AllocationMeter::instance();
  int64_t weights = 0;
  for (int64_t w : p.block_param_bytes) weights += w;
  const MemoryBudget budget(options.memory_limit, options.memory_source,
                            options.optimize ? weights : 0);
  const std::string on = detail::concat(" on a batch of shape ", input.sizes());

  // First pass, unoptimised: shapes, peak activations, codec costs.
  {
    std::vector<StageRunner> blocks(modules.begin(), modules.end());
    std::vector<at::Tensor> x{input};
    p.cut_metas.push_back(metas_of(x));
    if (options.reps > 0) measure_codecs(x, 3, p);
    for (size_t b = 0; b < nb; ++b) {
      EP_THROW_IF_STOPPED("while profiling the model (block " + std::to_string(b) + ")");
      const int64_t before = meter.current();
      meter.reset_peak();
      try {
        x = blocks[b].run(x);
      } catch (const std::exception& e) {
        budget.check(detail::concat("profiling block ", b, on));  // the limit, not the model?
        EP_FAIL("the model fails on an input batch of shape ", input.sizes(), " (in block ", b,
                ", node ", describe_node(model.nodes[model.cuts[b]]),
                "): ", torch_error_summary(e));
      }
      // What the block allocated at its peak, plus its inputs (held while it runs).
      budget.check(detail::concat("profiling block ", b, on));
      p.block_act_bytes.push_back(meter.peak() - before + p.cut_bytes(b));
      p.cut_metas.push_back(metas_of(x));
      if (options.reps > 0) measure_codecs(x, 3, p);
    }
  }
  if (options.reps <= 0) {
    p.block_ms.assign(nb, 0.0);
    return p;
  }
  try {
    p.block_ms = time_blocks(std::move(modules), {input}, options.optimize, options.warmup,
                             options.reps, options.min_seconds);
  } catch (const std::exception&) {
    budget.check("timing the blocks" + on);
    throw;
  }
  budget.check("timing the blocks" + on);
  return p;
}

ModelProfile profile_model(const ModelGraph& model, const at::Tensor& input, int warmup, int reps) {
  ProfileOptions o;
  o.warmup = warmup;
  o.reps = reps;
  return profile_model(model, input, o);
}

BlockChain::BlockChain(std::vector<torch::jit::Module> blocks, std::vector<at::Tensor> input,
                       bool optimize)
    : input_(std::move(input)) {
  std::vector<at::Tensor> x = input_;
  for (size_t b = 0; b < blocks.size(); ++b) {
    EP_THROW_IF_STOPPED("while preparing the blocks for timing");
    torch::jit::Module m = blocks[b];
    if (optimize) {
      std::string why;
      // A fresh copy per call: optimize_for_inference rewrites the module it is given.
      const std::string bytes = save_module_bytes(blocks[b]);
      m = optimize_checked([&] { return load_module_bytes(bytes); }, x, 1e-5, &why);
    }
    runners_.emplace_back(m);
    x = runners_.back().run(x);
  }
}

std::vector<double> BlockChain::time(int warmup, int reps, double min_seconds) {
  const size_t nb = runners_.size();
  std::vector<std::vector<double>> times(nb);
  double timed_ms = 0;
  for (int pass = 0;
       pass < warmup + reps || (timed_ms < 1e3 * min_seconds && pass < warmup + kMaxTimedPasses);
       ++pass) {
    std::vector<at::Tensor> x = input_;
    for (size_t b = 0; b < nb; ++b) {
      EP_THROW_IF_STOPPED("while timing the blocks");
      const RunTimer timer;
      x = runners_[b].run(x);
      if (pass >= warmup) {
        times[b].push_back(timer.ms());
        timed_ms += times[b].back();
      }
    }
  }
  std::vector<double> ms;
  for (auto& t : times) ms.push_back(median(t));
  return ms;
}

std::vector<double> time_blocks(std::vector<torch::jit::Module> blocks,
                                const std::vector<at::Tensor>& input, bool optimize, int warmup,
                                int reps, double min_seconds) {
  return BlockChain(std::move(blocks), input, optimize).time(warmup, reps, min_seconds);
}

ModelCosts model_costs(const ModelProfile& prof) {
  ModelCosts m;
  const size_t nb = prof.block_ms.size();
  for (size_t b = 0; b < nb; ++b) {
    BlockCost c;
    c.ref_ms = prof.block_ms[b];
    c.param_bytes = static_cast<double>(prof.block_param_bytes.at(b));
    c.act_bytes =
        b < prof.block_act_bytes.size() ? static_cast<double>(prof.block_act_bytes[b]) : 0.0;
    m.blocks.push_back(c);
  }
  for (size_t cut = 0; cut <= nb; ++cut) {
    if (prof.codecs.empty()) {
      m.cut_bytes.push_back(static_cast<double>(frame_bound(prof.cut_metas.at(cut))));
      continue;
    }
    double bytes = 0, enc = 0, dec = 0;
    for (const CutCodecCosts& c : prof.codecs) {
      bytes = std::max(bytes, static_cast<double>(c.frame_bytes.at(cut)));
      enc = std::max(enc, c.encode_ms.at(cut));
      dec = std::max(dec, c.decode_ms.at(cut));
    }
    m.cut_bytes.push_back(bytes);
    m.cut_encode_ms.push_back(enc);
    m.cut_decode_ms.push_back(dec);
  }
  return m;
}

std::vector<double> time_stages(const ModelGraph& model, const std::vector<size_t>& node_bounds,
                                const at::Tensor& input, bool optimize, int warmup, int reps,
                                double min_seconds) {
  std::vector<double> ms;
  std::vector<at::Tensor> x{input};
  for (size_t s = 0; s + 1 < node_bounds.size(); ++s) {
    EP_THROW_IF_STOPPED("while building stage " + std::to_string(s) + " to time it");
    torch::jit::Module m = build_stage_module(model, node_bounds[s], node_bounds[s + 1]);
    if (optimize) m = torch::jit::optimize_for_inference(m);
    StageRunner stage(m);
    std::vector<double> t;
    std::vector<at::Tensor> y;
    double timed_ms = 0;
    for (int i = 0;
         i < warmup + reps || (timed_ms < 1e3 * min_seconds && i < warmup + kMaxTimedPasses); ++i) {
      EP_THROW_IF_STOPPED("while timing the stages");
      const RunTimer timer;
      y = stage.run(x);
      if (i >= warmup) {
        t.push_back(timer.ms());
        timed_ms += t.back();
      }
    }
    ms.push_back(median(t));
    x = y;
  }
  return ms;
}

}  // namespace edgepipe
