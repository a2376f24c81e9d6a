#include "edgepipe/records/run_record.h"

#include <hdf5.h>
#include <mpi.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "edgepipe/base/error.h"
#include "edgepipe/base/version.h"
#include "edgepipe/records/energy.h"

namespace edgepipe {

namespace {

// A stage's replicas send on one link: their totals add up, their worst errors are the link's.
void add_link(LinkCounters& to, const LinkCounters& c) {
  if (to.codec[0] == 0) std::snprintf(to.codec, sizeof to.codec, "%s", c.codec);
  to.frames += c.frames;
  to.bytes_raw += c.bytes_raw;
  to.bytes_encoded += c.bytes_encoded;
  to.bytes_frames += c.bytes_frames;
  to.time_encode += c.time_encode;
  to.time_decode += c.time_decode;
  to.time_error += c.time_error;
  to.lossy_tensors += c.lossy_tensors;
  to.error_max_rel = std::max(to.error_max_rel, c.error_max_rel);
  to.error_max_rel_l2 = std::max(to.error_max_rel_l2, c.error_max_rel_l2);
  to.error_sq += c.error_sq;
  to.ref_sq += c.ref_sq;
}

}  // namespace

std::vector<LinkCounters> links_of(const StreamResults& r, size_t stages) {
  std::vector<LinkCounters> links(stages + 1);
  links[0] = r.link_first;
  for (size_t i = 0; i < r.counters.size(); ++i) {
    const size_t s = i < r.counter_stage.size() ? static_cast<size_t>(r.counter_stage[i]) : i;
    if (s >= stages) continue;
    add_link(links[s + 1], r.counters[i].link_out);
    links[s].time_decode += r.counters[i].time_decode;  // stage s decodes link s + 1
  }
  links[stages].time_decode = r.time_decode_last;
  return links;
}

std::string software_versions() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  if (MPI_Get_library_version(mpi, &len) != MPI_SUCCESS) len = 0;
  std::string mpi_line(mpi, static_cast<size_t>(len));
  mpi_line = mpi_line.substr(0, mpi_line.find_first_of("\n,"));
  unsigned h5[3] = {0, 0, 0};
  if (H5get_libversion(&h5[0], &h5[1], &h5[2]) < 0) h5[0] = h5[1] = h5[2] = 0;
  return detail::concat("edgepipe ", version(), "; LibTorch ", TORCH_VERSION_MAJOR, ".",
                        TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH, "; ", mpi_line, "; HDF5 ",
                        h5[0], ".", h5[1], ".", h5[2]);
}

std::string config_text(const RunConfig& c, const std::string& input) {
  return detail::concat(
      "model = ", c.model, "\ninput = ", input, "\nbatch = ", c.batch, "\nthreads = ", c.threads,
      "\ninflight = ", c.inflight, "\ncalibrate = ", c.calibrate, "\nprofile = ", c.profile,
      "\nstages = ", c.stages, "\nmax-stages = ", c.max_stages, "\nmax-replicas = ", c.max_replicas,
      "\nreplicas = ", c.replicas, "\ngroup-tolerance = ", c.group_tolerance,
      "\noverlap = ", c.overlap,
      "\nstage-cache = ", c.stage_cache.empty() ? "default" : c.stage_cache,
      "\ncodec = ", c.codecs.text(), "\noptimize = ", c.optimize, "\ntimeout = ", c.timeout_s,
      "\ntrace = ", c.trace, "\nenergy-model = ", c.energy_model,
      "\nenergy-idle-watts = ", c.energy_idle_w, "\nenergy-core-watts = ", c.energy_core_w, "\n");
}

std::string utc_now() {
  char buf[32] = {};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm) == nullptr ||
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return "unknown";
  return buf;
}

namespace {

// /plan: the chosen stages with their predicted costs.
void record_plan(const RunDescription& run, RunLog& L) {
  L.cuts = run.node_cuts;
  L.plan_method = run.plan.method;
  L.overlap = run.overlap;
  L.plan_period_s = run.plan.period_s();
  for (size_t s = 0; s < run.plan.stages.size(); ++s) {
    const Stage& st = run.plan.stages[s];
    const StageCost& c = run.plan.cost.stages[s];
    L.stage_rank.push_back(static_cast<int64_t>(st.rank));
    L.stage_first_block.push_back(static_cast<int64_t>(st.first));
    L.stage_end_block.push_back(static_cast<int64_t>(st.end));
    L.stage_compute_s.push_back(c.compute_s);
    L.stage_recv_s.push_back(c.recv_s);
    L.stage_send_s.push_back(c.send_s);
    L.stage_memory_bytes.push_back(c.memory_bytes);
    L.stage_replicas.push_back(static_cast<int64_t>(st.replicas().size()));
    for (size_t i = 0; i < st.replicas().size(); ++i) {
      L.replica_ranks.push_back(static_cast<int64_t>(st.replicas()[i]));
      const bool known = s < run.weights.size() && i < run.weights[s].size();
      L.replica_weights.push_back(known ? run.weights[s][i] : 1);
    }
  }
  L.profile = run.profile;
  L.budget = run.budget;
}

RankLog root_rank(const StreamResults& r, const Meter::Deltas& root) {
  RankLog rl;
  rl.rank = 0;
  sample_rank_facts(&rl.facts);
  rl.facts.t_begin = 0;
  rl.facts.t_end = r.t_end - r.t0;
  rl.facts.cpu_user = root.cpu_user_s;
  rl.facts.cpu_system = root.cpu_system_s;
  if (root.rapl_joules >= 0) {
    rl.facts.rapl_joules = root.rapl_joules;
    std::snprintf(rl.facts.rapl_source, sizeof rl.facts.rapl_source, "%s",
                  root.rapl_source.c_str());
  }
  rl.dispatch = r.dispatch;
  rl.dispatch_totals = r.dispatch_totals;
  return rl;
}

// Stage i's rank, its clock offset, and its records moved onto rank 0's clock and time origin.
RankLog stage_rank(const RunDescription& run, const StreamResults& r, const ClockSync& clocks,
                   size_t i) {
  RankLog rl;
  rl.rank = run.members.at(i + 1);  // the job's rank (stage rank i runs there)
  rl.stage = i + 1 < run.member_stage.size() ? run.member_stage[i + 1] : static_cast<int>(i);
  rl.counters = r.counters[i];
  if (i < run.setup_bytes.size()) rl.setup_bytes = run.setup_bytes[i];
  if (i < run.stage_cache_hit.size()) rl.stage_cache_hit = run.stage_cache_hit[i];
  if (i + 1 < clocks.offset_s.size()) {
    rl.clock_offset_s = clocks.offset_s[i + 1];
    rl.clock_rtt_s = clocks.rtt_s[i + 1];
  }
  const double shift = rl.clock_offset_s + r.t0;  // this rank's clock -> run time
  rl.facts = r.stage_facts[i];
  rl.facts.t_begin -= shift;
  rl.facts.t_end -= shift;
  rl.batches = r.stage_batches[i];
  for (BatchRecord& b : rl.batches) {
    b.t_begin -= shift;
    b.t_end -= shift;
  }
  return rl;
}

void attribute_rank_energy(const RunConfig& cfg, RunLog& L) {
  EnergyModel model = energy_model_named(cfg.energy_model);
  if (cfg.energy_idle_w >= 0 || cfg.energy_core_w >= 0) model.name += " with overrides";
  if (cfg.energy_idle_w >= 0) model.idle_w_per_node = cfg.energy_idle_w;
  if (cfg.energy_core_w >= 0) model.active_w_per_core = cfg.energy_core_w;
  std::vector<RankFacts> facts;
  for (const RankLog& rl : L.ranks) facts.push_back(rl.facts);
  const std::vector<RankEnergy> energy = attribute_energy(facts, model);
  for (size_t i = 0; i < L.ranks.size(); ++i) {
    L.ranks[i].energy_j = energy[i].joules;
    L.ranks[i].energy_source = energy[i].source;
  }
}

}  // namespace

RunLog assemble_run_log(const RunConfig& cfg, const RunDescription& run, const StreamResults& r,
                        const ClockSync& clocks, const Meter::Deltas& root,
                        const std::string& failure) {
  RunLog L;
  L.command_line = cfg.command_line;
  L.config = config_text(cfg, run.input);
  L.model = cfg.model;
  L.model_sha256 = run.model_sha256;
  L.output = cfg.output;
  L.start_time_utc = run.start_time_utc;
  L.versions = software_versions();
  L.stopped_by_signal = r.stopped_by;
  L.failure = failure;
  L.trace = cfg.trace;
  record_plan(run, L);
  L.ranks.push_back(root_rank(r, root));
  // A failed run has what the stages sent before it failed: both messages of a stage, or none.
  const size_t answered = std::min(r.counters.size(), r.stage_facts.size());
  for (size_t i = 0; i < answered; ++i) L.ranks.push_back(stage_rank(run, r, clocks, i));
  attribute_rank_energy(cfg, L);
  L.links = links_of(r, run.plan.stages.size());
  L.summary.images = r.images;
  L.summary.batches = r.dispatch_totals.seq;
  L.summary.batch_size = cfg.batch;
  L.summary.wall_s = r.seconds;
  L.summary.steady_images_per_s = r.steady_per_s;
  summarise(L);
  return L;
}

}  // namespace edgepipe
