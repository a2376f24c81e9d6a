#include "edgepipe/pipeline/planning.h"

#include <algorithm>
#include <sstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/host.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/base/test_hooks.h"
#include "edgepipe/base/units.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/error_budget.h"
#include "edgepipe/pipeline/probe.h"
#include "edgepipe/pipeline/setup.h"
#include "edgepipe/pipeline/watchdog.h"
#include "edgepipe/records/profile_log.h"
#include "edgepipe/wire/frame.h"

namespace edgepipe {

void check_batch_memory(const ModelGraph& mg, const InputSource& in, const RunConfig& cfg) {
  std::string source;
  const int64_t limit = rank_memory_limit(cfg.max_memory, &source);
  if (limit <= 0) return;
  const std::string limit_text = format_bytes(static_cast<double>(limit)) + " (" + source + ")";
  int64_t row = static_cast<int64_t>(sizeof(float));
  for (int64_t d : in.sample_shape()) row *= d;
  const auto rows_fit = [&](int64_t per_row) {
    const int64_t n = limit / per_row;
    return n < 1 ? std::string("not one row fits")
                 : detail::concat(n, n == 1 ? " row" : " rows", " fit");
  };
  EP_CHECK(row * cfg.batch <= limit, "one input batch (", cfg.batch,
           cfg.batch == 1 ? " row" : " rows", " of shape ", at::IntArrayRef(in.sample_shape()),
           ") takes ", format_bytes(static_cast<double>(row * cfg.batch)),
           ", more than the memory limit of ", limit_text, "; ", rows_fit(row),
           " rows fit: use a smaller --batch or input");
  // One row, shapes only and under the limit: what the activations take per row.
  ProfileOptions po;
  po.reps = 0;
  po.memory_limit = limit;
  po.memory_source = source;
  const ModelProfile one = profile_model(mg, in.batch(0, 1), po);
  const auto worst = std::max_element(one.block_act_bytes.begin(), one.block_act_bytes.end());
  if (worst == one.block_act_bytes.end() || *worst <= 0) return;
  const double need = static_cast<double>(*worst) * static_cast<double>(cfg.batch);
  EP_CHECK(need <= static_cast<double>(limit), "a batch of ", cfg.batch, " rows needs about ",
           format_bytes(need), " for the activations of block ",
           worst - one.block_act_bytes.begin(), " (", format_bytes(static_cast<double>(*worst)),
           " per row), more than the memory limit of ", limit_text, "; ", rows_fit(*worst),
           ": use --batch ", std::max<int64_t>(limit / *worst, 1),
           " or less, or give the ranks more memory");
}

PlanPolicy policy_of(const RunConfig& cfg, int ranks) {
  PlanPolicy p;
  p.stages = cfg.stages;
  p.max_stages = cfg.max_stages;
  p.group_tolerance = cfg.group_tolerance;
  p.overlap = cfg.overlap;
  p.calibrate = cfg.calibrate;
  p.max_replicas = cfg.max_replicas;
  p.replicas = cfg.replicas;
  for (int l = 1; l <= ranks; ++l)
    if (cfg.codecs.for_link(l).kind != CodecKind::raw) p.coded_links.push_back(l);
  return p;
}

namespace {

// The distinct codecs of the job's links: the planner charges each cut the costliest, since it
// cannot know before planning which link a cut will travel on.
std::vector<CodecSpec> link_codecs(const RunConfig& cfg, int links) {
  if (cfg.error_budget > 0) return budget_candidates();
  std::vector<CodecSpec> out;
  for (int l = 1; l <= links; ++l)
    if (std::find(out.begin(), out.end(), cfg.codecs.for_link(l)) == out.end())
      out.push_back(cfg.codecs.for_link(l));
  return out;
}

// A saved profile must describe this job: as many ranks, as many blocks, and measured for the
// same model, batch, threads, input shape and codecs.
StoredProfile load_profile(const RunConfig& cfg, int ranks, size_t blocks,
                           const MeasuredIdentity& identity) {
  StoredProfile p = read_stored_profile(cfg.profile);
  const StartupProfile& sp = p.measurements.startup;
  EP_CHECK_AS(ConfigError, static_cast<int>(sp.ranks.size()) == ranks, "--profile ", cfg.profile,
              " was measured with ", sp.ranks.size(), " ranks but this job has ", ranks);
  EP_CHECK_AS(ConfigError, sp.ranks[1].block_ms.size() == blocks, "--profile ", cfg.profile,
              " has ", sp.ranks[1].block_ms.size(), " blocks but this model has ", blocks,
              ": it was measured for another model");
  const std::string differs = identity_differences(p.identity, identity);
  EP_CHECK_AS(ConfigError, differs.empty(), "--profile ", cfg.profile,
              " was measured for another job: ", differs);
  return p;
}

// Every rank and link, measured now: each stage rank gets the probe window's blocks and the
// batch its first block takes (rank 0 runs the blocks before it), never the whole model.
StartupProfile measure_ranks(const ModelGraph& mg, const ModelProfile& prof,
                             const at::Tensor& input, const RunConfig& cfg, Channel& ch,
                             const Log& log) {
  const SampleFn make_sample = [&](double memory_cap) {
    ProbeSample sample;
    sample.ref_ms = prof.block_ms;
    sample.window = choose_probe_window(prof.block_ms, prof.block_param_bytes, prof.block_act_bytes,
                                        static_cast<size_t>(ch.size() - 1), memory_cap);
    const ProbeWindow w = sample.window;
    std::vector<torch::jit::Module> modules = block_modules(mg);
    std::vector<at::Tensor> x{input};
    for (size_t b = 0; b < w.first; ++b) x = StageRunner(modules[b]).run(x);
    double ms = 0, total_ms = 0;
    for (size_t b = w.first; b < w.end; ++b) {
      sample.blocks.push_back(save_module_bytes(modules[b]));
      ms += prof.block_ms[b];
    }
    for (double t : prof.block_ms) total_ms += t;
    sample.window_share = total_ms > 0 ? ms / total_ms : 1.0;
    for (at::Tensor& t : x) t = t.contiguous();
    std::vector<char> frame;
    encode_frame(0, 0, x, frame);
    sample.input_frame.assign(frame.data(), frame.size());
    sample.memory_need = window_memory(prof.block_param_bytes, prof.block_act_bytes, w);
    double weights = 0;
    for (size_t b = w.first; b < w.end; ++b)
      weights += static_cast<double>(prof.block_param_bytes[b]);
    sample.need_text = "weights " + format_bytes(weights) + ", activations " +
                       format_bytes(sample.memory_need - weights);
    return sample;
  };
  int64_t largest = 0;
  for (const auto& metas : prof.cut_metas)
    largest = std::max<int64_t>(largest, static_cast<int64_t>(frame_bound(metas)));
  return probe_cluster(ch, make_sample, std::min<int64_t>(largest, 4 << 20), cfg, log);
}

// A codec on a link fast enough to move the raw frame quicker than the codec codes it slows the
// pipeline down (zfp on shared memory: 20 ms of coding to save 0.3 ms on the wire). The plan
// charges it either way; this says so, with the link speed below which the codec pays.
void advise_codecs(const RunPlan& p, const ModelProfile& prof, const RunConfig& cfg,
                   const Log& log) {
  const auto& st = p.decision.plan.stages;
  const size_t k = st.size();
  for (size_t l = 1; l <= k + 1; ++l) {
    const CodecSpec& codec = cfg.codecs.for_link(static_cast<int>(l));
    if (codec.kind == CodecKind::raw) continue;
    const auto costs = std::find_if(prof.codecs.begin(), prof.codecs.end(),
                                    [&](const CutCodecCosts& c) { return c.codec == codec; });
    if (costs == prof.codecs.end()) continue;
    // Link l carries cut `cut` from rank `from` to rank `to` (pipeline order, docs/codecs.md).
    const size_t cut = l == 1 ? 0 : l == k + 1 ? st.back().end : st[l - 1].first;
    const size_t from = l == 1 ? 0 : st[l - 2].rank, to = l == k + 1 ? 0 : st[l - 1].rank;
    const double raw = static_cast<double>(frame_bound(prof.cut_metas.at(cut)));
    const double saved = raw - static_cast<double>(costs->frame_bytes.at(cut));
    const double coding_s = (costs->encode_ms.at(cut) + costs->decode_ms.at(cut)) / 1e3;
    const double bandwidth = p.decision.cluster.links.at(from).at(to).bandwidth_Bps;
    if (saved <= 0 || coding_s < 0.05 * p.decision.plan.period_s() || coding_s <= saved / bandwidth)
      continue;
    log.warn(strprintf(
        "link %zu (rank %zu -> rank %zu): %s takes %s per batch to encode and "
        "decode, to save %s that this link (%s) moves in %s: raw is faster here; "
        "the codec pays on links slower than %s",
        l, from, to, codec.name().c_str(), format_duration(coding_s).c_str(),
        format_bytes(saved).c_str(), format_bandwidth(bandwidth).c_str(),
        format_duration(saved / bandwidth).c_str(), format_bandwidth(saved / coding_s).c_str()));
  }
}

// The plan's consequences: its stages' ranks in pipeline order, the cuts, each stage's set-up.
void lay_out(RunPlan& p, const ModelGraph& mg, const ModelProfile& prof, const RunConfig& cfg,
             int ranks, const Log& log) {
  const std::vector<Stage>& stages = p.decision.plan.stages;
  const int num_stages = static_cast<int>(stages.size());
  if (cfg.stages && static_cast<size_t>(num_stages) != cfg.stages)
    log.warn("--stages " + std::to_string(cfg.stages) +
             ": the planner found no better plan than one of " + std::to_string(num_stages) +
             " stages");
  // Links count in pipeline order: link s + 1 carries into stage s, link k + 1 back to rank 0.
  for (int l = num_stages + 2; l <= ranks; ++l)
    EP_CHECK(p.codecs.for_link(l) == p.codecs.all, "--codec names link ", l, " but the plan has ",
             num_stages, " stages: links 1..", num_stages + 1);
  // Pipeline ranks: rank 0, then every replica of stage 0, of stage 1, ...
  p.members.push_back(0);
  p.member_stage.push_back(-1);
  std::vector<std::vector<int>> route_ranks;
  for (int s = 0; s < num_stages; ++s) {
    route_ranks.emplace_back();
    for (size_t rank : stages[s].replicas()) {
      route_ranks.back().push_back(static_cast<int>(p.members.size()));
      p.members.push_back(static_cast<int>(rank));
      p.member_stage.push_back(s);
    }
  }
  p.routing = Routing(route_ranks, Routing::weights_of(p.decision.plan));
  for (int s = 1; s < num_stages; ++s)
    p.node_cuts.push_back(static_cast<int64_t>(mg.cuts[stages[s].first]));
  p.setups = stage_setups(mg, prof, p.decision, p.codecs, p.members, p.routing);
  p.max_out_bytes = frame_bound(prof.cut_metas.back());
  for (const auto& m : prof.cut_metas.back())
    p.max_out_tensor_bytes += static_cast<uint64_t>(m.bytes());
}

}  // namespace

RunPlan plan_run(const ModelGraph& mg, const RunConfig& cfg, const at::Tensor& input, double read_s,
                 const MeasuredIdentity& identity, Channel& ch, const Log& log,
                 const std::vector<at::Tensor>& calibration) {
  EP_CHECK(cfg.error_budget == 0 || !calibration.empty(),
           "--error-budget needs calibration inputs (a bug: none were given)");
  const int K = ch.size();
  cfg.codecs.check_links(K);
  EP_CHECK(cfg.stages <= mg.num_blocks(), "--stages ", cfg.stages, ": the model has ",
           mg.num_blocks(), " blocks, too few for ", cfg.stages, " stages");
  EP_CHECK(cfg.stages < static_cast<size_t>(K), "--stages ", cfg.stages, " needs ", cfg.stages + 1,
           " ranks (rank 0 dispatches) but the job has ", K);
  RunPlan p;
  if (!cfg.profile.empty()) {  // checked before any slow work
    p.profile = load_profile(cfg, K, mg.num_blocks(), identity);
    log.info("planning from the profile in " + cfg.profile);
    p.profile.source = "from " + cfg.profile;
  }
  ProfileOptions po;
  po.warmup = 1;
  po.reps = 3;  // rank 0's block times only calibrate the others' (policy.h)
  po.optimize = cfg.optimize;
  po.codecs = link_codecs(cfg, K);
  po.memory_limit = rank_memory_limit(cfg.max_memory, &po.memory_source);
  const ModelProfile prof = profile_model(mg, input, po);
  // Calibration times the planned stages as they will run, here on rank 0; with a saved profile,
  // its timings are replayed (and only a plan it never timed is timed now).
  CalibrateFn timing = [&](const std::vector<size_t>& bounds) {
    // EDGEPIPE_TEST_CRASH=slow_calibration: rounds that last (tests of a stop in this phase).
    const int repeats = test_hook_armed("slow_calibration") ? 1000000 : 1;
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
      // The stage ranks wait meanwhile; one asked to stop tells rank 0 (worker.h).
      if (const int sig = poll_stop_notices(ch, K - 1))
        throw StopRequested(sig,
                            detail::concat(signal_name(sig),
                                           " arrived at a stage rank while calibrating the plan: "
                                           "stopped"),
                            __FILE__, __LINE__);
      EP_THROW_IF_STOPPED("while calibrating the plan");
      ms = time_stages(mg, bounds, input, cfg.optimize);
    }
    return ms;
  };
  if (cfg.profile.empty()) {
    p.profile.measurements.startup = measure_ranks(mg, prof, input, cfg, ch, log);
    // Under a budget the codecs are chosen for the plan (choose_link_codecs): it is made raw.
    ModelProfile planned = prof;
    if (cfg.error_budget > 0) planned.codecs.clear();
    p.profile.measurements.model = model_costs(planned);
    p.profile.measurements.read_s = read_s;
    p.profile.source = "measured at start-up";
  } else {
    timing = replay_calibrations(p.profile.measurements.calibrations, timing);
  }
  p.profile.measurements.block_nodes = mg.cuts;
  p.profile.identity = identity;
  p.profile.policy = policy_of(cfg, K);
  p.decision = decide_plan(p.profile.measurements, p.profile.policy, timing);
  p.profile.measurements.calibrations = p.decision.calibrations;
  const std::string replicas = replicas_text(p.decision, p.profile.policy);
  if (!replicas.empty()) log.info(replicas);
  log.info(
      strprintf("rank 0's own work per batch (reading and checking inputs, its codec): "
                "%.2f ms, %.0f%% of a core at the planned period",
                1e3 * p.decision.dispatcher_s, 100 * p.decision.dispatcher_share));
  p.codecs = cfg.codecs;
  if (cfg.error_budget > 0) choose_link_codecs(p, mg, prof, cfg, calibration, log);
  lay_out(p, mg, prof, cfg, K, log);
  if (cfg.error_budget == 0) advise_codecs(p, prof, cfg, log);
  return p;
}

std::string describe_plan(const ModelGraph& mg, const RunPlan& p, const RunConfig& cfg) {
  std::ostringstream s;
  const size_t k = p.num_stages();
  const size_t idle = p.decision.cluster.num_stage_ranks() - p.decision.plan.ranks_used();
  s << describe_profile(p.profile.measurements.startup,
                        cfg.profile.empty()
                            ? "measured at start-up"
                            : "measured at the start-up of the run of " + cfg.profile);
  s << "plan: " << k << " stages over " << mg.nodes.size() << " nodes (" << mg.num_blocks()
    << " blocks)";
  if (idle) s << "; " << idle << " rank" << (idle == 1 ? "" : "s") << " left idle";
  s << "\n" << format_plan(p.decision.plan, p.decision.model, p.decision.cluster);
  if (p.decision.overlap)
    s << "overlap: each stage computes on a thread of its own beside its decode and encode "
         "(--overlap "
      << cfg.overlap << ")\n";
  s << predicted_text(p.decision.plan.period_s(), static_cast<double>(cfg.batch)) << "\n";
  if (p.budget.on()) s << p.budget.text();
  return s.str();
}

}  // namespace edgepipe
