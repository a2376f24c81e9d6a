#include "edgepipe/pipeline/error_budget.h"

#include <algorithm>
#include <numeric>

#include "edgepipe/base/test_hooks.h"
#include "edgepipe/base/text.h"
#include "edgepipe/model/codec_error.h"
#include "edgepipe/plan/codec_choice.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

std::vector<CodecSpec> budget_candidates() {
  std::vector<CodecSpec> out;
  for (const char* name : {"lz4", "q8+lz4", "q4+lz4", "q2+lz4", "zfp-precision:16",
                           "zfp-precision:12", "zfp-precision:8"})
    out.push_back(parse_codec(name));
  return out;
}

namespace {

// Each link's candidates (raw first) with what they cost and the error each adds alone.
struct LinkOptions {
  std::vector<std::vector<CodecOption>> options;
  std::vector<std::vector<CodecSpec>> specs;  // the same, as codecs
  // Keeps only link l's codecs of error below `limit`.
  void tighten(size_t l, double limit) {
    for (size_t i = options[l].size(); i-- > 0;)
      if (options[l][i].error >= limit) {
        options[l].erase(options[l].begin() + static_cast<std::ptrdiff_t>(i));
        specs[l].erase(specs[l].begin() + static_cast<std::ptrdiff_t>(i));
      }
  }
};

LinkOptions measure_options(const ModelProfile& prof, const CutErrorProbe& probe,
                            const std::vector<size_t>& cuts) {
  LinkOptions lo;
  for (size_t cut : cuts) {
    lo.options.push_back(
        {{"raw", static_cast<double>(frame_bound(prof.cut_metas.at(cut))), 0, 0, 0}});
    lo.specs.push_back({CodecSpec{}});
    for (const CutCodecCosts& c : prof.codecs) {
      // A lossy codec that a lossless one beats on bytes and both times is never chosen: its
      // error is not measured.
      const bool dominated =
          c.codec.lossy() &&
          std::any_of(prof.codecs.begin(), prof.codecs.end(), [&](const CutCodecCosts& o) {
            return !o.codec.lossy() && o.frame_bytes.at(cut) <= c.frame_bytes.at(cut) &&
                   o.encode_ms.at(cut) <= c.encode_ms.at(cut) &&
                   o.decode_ms.at(cut) <= c.decode_ms.at(cut);
          });
      if (dominated) continue;
      const double error = c.codec.lossy() ? probe.error({{cut, c.codec}}) : 0.0;
      lo.options.back().push_back({c.codec.name(), static_cast<double>(c.frame_bytes.at(cut)),
                                   c.encode_ms.at(cut), c.decode_ms.at(cut), error});
      lo.specs.back().push_back(c.codec);
    }
  }
  return lo;
}

// The choice whose error, measured with every link coded at once, is within the budget.
CodecChoice choose_within_budget(const ModelCosts& model, const Cluster& cluster,
                                 const std::vector<Stage>& stages, const CutErrorProbe& probe,
                                 LinkOptions& lo, ErrorBudgetReport& r) {
  const std::vector<size_t> cuts = link_cuts(stages);
  for (;;) {
    const CodecChoice choice = choose_codecs(model, cluster, stages, lo.options, r.budget);
    std::vector<CodedCut> coded;
    for (size_t l = 0; l < cuts.size(); ++l)
      coded.push_back({cuts[l], lo.specs[l][choice.option[l]]});
    r.measured_error = probe.error(coded);
    if (r.measured_error <= r.budget) return choice;
    // The link of the largest error keeps only codecs of less error than its choice.
    size_t worst = 0;
    for (size_t l = 1; l < cuts.size(); ++l)
      if (lo.options[l][choice.option[l]].error > lo.options[worst][choice.option[worst]].error)
        worst = l;
    const CodecOption& o = lo.options[worst][choice.option[worst]];
    r.tightened.push_back(strprintf(
        "link %zu: %s (error alone %.3g) with the others measured %.3g, over the budget: it "
        "takes a codec of less error",
        worst + 1, o.codec.c_str(), o.error, r.measured_error));
    lo.tighten(worst, o.error);
  }
}

}  // namespace

void choose_link_codecs(RunPlan& p, const ModelGraph& mg, const ModelProfile& prof,
                        const RunConfig& cfg, const std::vector<at::Tensor>& calibration,
                        const Log& log) {
  PlanDecision& d = p.decision;
  const std::vector<Stage>& stages = d.plan.stages;
  const std::vector<size_t> cuts = link_cuts(stages);
  ErrorBudgetReport& r = p.budget;
  r.budget = cfg.error_budget;
  r.candidates = prof.codecs.size() + 1;
  const int64_t rows =
      std::accumulate(calibration.begin(), calibration.end(), int64_t{0},
                      [](int64_t a, const at::Tensor& t) { return a + t.size(0); });
  log.info(
      strprintf("error budget %g: measuring %zu codecs' error at the plan's %zu links on "
                "%lld input rows",
                cfg.error_budget, prof.codecs.size(), cuts.size(), static_cast<long long>(rows)));
  const CutErrorProbe probe(mg, calibration, cuts);
  r.calibration_rows = probe.rows();
  LinkOptions lo = measure_options(prof, probe, cuts);
  // EDGEPIPE_TEST_CRASH=slow_links: the choice sees every link 1000x slower (tests of a lossy
  // choice on a machine whose links are shared memory).
  Cluster cluster = d.cluster;
  if (test_hook_armed("slow_links"))
    for (auto& row : cluster.links)
      for (Link& l : row) l.bandwidth_Bps /= 1000;
  r.period_raw_s = evaluate_plan(d.model, cluster, stages).period_s;
  const CodecChoice choice = choose_within_budget(d.model, cluster, stages, probe, lo, r);
  r.error_sum = choice.error_sum;
  r.period_s = choice.period_s;
  p.codecs = LinkCodecs{};
  for (size_t l = 0; l < cuts.size(); ++l) {
    const CodecOption& o = lo.options[l][choice.option[l]];
    r.links.push_back(
        {o.codec, cuts[l], lo.options[l][0].bytes, o.bytes, o.encode_ms, o.decode_ms, o.error});
    if (lo.specs[l][choice.option[l]] != CodecSpec{})
      p.codecs.per_link[static_cast<int>(l + 1)] = lo.specs[l][choice.option[l]];
  }
  // The plan as it will run: its predicted costs with the chosen codecs.
  d.model = with_link_codecs(d.model, stages, lo.options, choice.option);
  d.plan.cost = evaluate_plan(d.model, d.cluster, stages);
}

}  // namespace edgepipe
