#include "edgepipe/pipeline/dispatcher.h"

#include <hdf5.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <sstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/base/version.h"
#include "edgepipe/io/data.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/pipeline/probe.h"
#include "edgepipe/pipeline/worker.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/records/energy.h"
#include "edgepipe/records/link_table.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/progress.h"
#include "edgepipe/records/runlog.h"
#include "edgepipe/records/trace.h"

namespace edgepipe {

namespace {

// Everything set-up decides, kept for the run and the outputs file's attributes.
struct RunPlan {
  StartupProfile profile;             // what the ranks and links measured (or a saved profile)
  ModelCosts costs;                   // the model as the planner saw it
  Cluster cluster;                    // the ranks and links as the planner saw them
  Plan planned;                       // the planner's stages, ranks and predicted costs
  std::vector<int> members;           // rank 0, then the rank of each stage (RemappedChannel)
  std::vector<int64_t> node_cuts;     // node positions where the model is cut
  std::vector<StageSetup> setups;     // one per stage, in pipeline order
  uint64_t max_out_bytes = 0;         // largest frame rank 0 receives
  uint64_t max_out_tensor_bytes = 0;  // the most tensor bytes such a frame decodes to
};

// The distinct codecs of the job's links: the planner charges each cut the costliest, since it
// cannot know before planning which link a cut will travel on.
std::vector<CodecSpec> link_codecs(const RunConfig& cfg, int links) {
  std::vector<CodecSpec> out;
  for (int l = 1; l <= links; ++l)
    if (std::find(out.begin(), out.end(), cfg.codecs.for_link(l)) == out.end())
      out.push_back(cfg.codecs.for_link(l));
  return out;
}

// A saved profile must describe this job: as many ranks, as many blocks.
StartupProfile load_profile(const RunConfig& cfg, int ranks, size_t blocks) {
  StartupProfile p = read_startup_profile(cfg.profile);
  EP_CHECK(static_cast<int>(p.ranks.size()) == ranks, "--profile ", cfg.profile,
           " was measured "
           "with ",
           p.ranks.size(), " ranks but this job has ", ranks);
  EP_CHECK(p.ranks[1].block_ms.size() == blocks, "--profile ", cfg.profile, " has ",
           p.ranks[1].block_ms.size(), " blocks but this model has ", blocks,
           ": it was measured for another model");
  return p;
}

// A codec on a link fast enough to move the raw frame quicker than the codec codes it slows the
// pipeline down (zfp on shared memory: 20 ms of coding to save 0.3 ms on the wire). The plan
// charges it either way; this says so, with the link speed below which the codec pays.
void advise_codecs(const RunPlan& p, const ModelProfile& prof, const RunConfig& cfg,
                   const Log& log) {
  const auto& st = p.planned.stages;
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
    const double bandwidth = p.cluster.links.at(from).at(to).bandwidth_Bps;
    if (saved <= 0 || coding_s < 0.05 * p.planned.period_s() || coding_s <= saved / bandwidth)
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

// Start-up: rank 0 profiles the model's shapes, memory and codec costs; every stage rank times
// the blocks (probe.h) and every link is measured; the exact planner (plan.h) chooses the number
// of stages, the cuts and the ranks. Ranks the plan leaves out get nothing to do.
RunPlan make_plan(const ModelGraph& mg, const RunConfig& cfg, const at::Tensor& input,
                  double read_s, Channel& ch, const Log& log) {
  RunPlan p;
  const int K = ch.size();
  cfg.codecs.check_links(K);
  EP_CHECK(cfg.stages <= mg.num_blocks(), "--stages ", cfg.stages, ": the model has ",
           mg.num_blocks(), " blocks, too few for ", cfg.stages, " stages");
  EP_CHECK(cfg.stages < static_cast<size_t>(K), "--stages ", cfg.stages, " needs ", cfg.stages + 1,
           " ranks (rank 0 dispatches) but the job has ", K);
  ProfileOptions po;
  po.warmup = 1;
  po.reps = 3;  // rank 0's block times only calibrate the others' (below)
  po.optimize = cfg.optimize;
  po.codecs = link_codecs(cfg, K);
  ModelProfile prof = profile_model(mg, input, po);
  p.costs = model_costs(prof);
  if (cfg.profile.empty()) {
    std::vector<std::string> blocks;
    for (const auto& m : block_modules(mg)) blocks.push_back(save_module_bytes(m));
    std::vector<char> frame;
    encode_frame(0, 0, {input.contiguous()}, frame);
    int64_t largest = 0;
    for (const auto& metas : prof.cut_metas)
      largest = std::max<int64_t>(largest, static_cast<int64_t>(frame_bound(metas)));
    p.profile = probe_cluster(ch, blocks, std::string(frame.data(), frame.size()),
                              std::min<int64_t>(largest, 4 << 20), cfg, log);
  } else {
    p.profile = load_profile(cfg, K, mg.num_blocks());
    log.info("planning from the profile in " + cfg.profile);
  }
  PlanOptions options;
  options.group_tolerance = cfg.group_tolerance;
  options.max_stages = cfg.max_stages;
  options.min_stages = cfg.stages;  // --stages N: exactly N, even when fewer would be faster
  // Ranks that share a host's cores are slower the more of them compute (probe.h), so a plan
  // with fewer stages than ranks runs its stages faster: plan for each number of busy ranks per
  // host with that slowdown, and keep the best.
  Cluster measured = cluster_of(p.profile);
  bool overlap = cfg.overlap == "on";
  // Rank 0's CPU per batch: reading and checking an input batch (read_s), its codec work.
  const double dispatcher_s =
      read_s + (p.costs.cut_encode_ms.empty()
                    ? 0.0
                    : (p.costs.cut_encode_ms.front() + p.costs.cut_decode_ms.back()) / 1e3);
  double dispatcher_share = 0;
  size_t chosen_k = 0;
  {
    const size_t most = options.max_stages ? options.max_stages : measured.num_stage_ranks();
    double best_k = std::numeric_limits<double>::infinity();
    for (size_t k = cfg.stages ? cfg.stages : 1; k <= most; ++k) {
      PlanOptions o = options;
      o.max_stages = k;
      ModelCosts costs = p.costs;
      const bool dispatcher_codec =
          cfg.codecs.for_link(1).kind != CodecKind::raw ||
          cfg.codecs.for_link(static_cast<int>(k) + 1).kind != CodecKind::raw;
      costs.codec_thread =
          cfg.overlap == "on" ||
          (cfg.overlap == "auto" && cores_for_overlap(p.profile, k, dispatcher_codec));
      try {
        // Rank 0 keeps dispatcher_s / period of a core busy on its host: the stage ranks there
        // share the cores with it. The period depends on that share: iterate a few times.
        Cluster c;
        double period = 0, d = 0;
        for (int round = 0; round < 8; ++round) {
          c = cluster_of(p.profile, k, d);
          period = plan_optimal(costs, c, o).period_s();
          const double next = dispatcher_s / period;
          if (std::abs(next - d) < 0.01) break;
          d = next;
        }
        if (period < best_k * 0.999) {  // fewer stages unless more are really faster
          dispatcher_share = d;
          best_k = period;
          measured = c;
          options.max_stages = k;
          chosen_k = k;
          overlap = costs.codec_thread;
        }
      } catch (const std::exception&) {
        if (k == most) throw;  // too few stages may not fit in memory; the most must
      }
    }
  }
  // Calibration. Blocks optimised one by one are slower than the same blocks optimised as one
  // stage (each pays its own layout conversions; fusions across blocks are lost), by a factor
  // that depends on the blocks. So each round times the planned stages as they will run, on
  // rank 0, scales every rank's times of those blocks so that they add up to what was measured,
  // and plans again; the plan with the best period under the times known when it was measured
  // wins.
  p.costs.codec_thread = overlap;
  std::vector<double> factor(mg.num_blocks(), 1.0);
  auto scaled = [&] {
    Cluster c = measured;
    for (size_t r = 1; r < c.ranks.size(); ++r)
      for (size_t b = 0; b < factor.size(); ++b) c.ranks[r].block_ms[b] *= factor[b];
    return c;
  };
  double best = std::numeric_limits<double>::infinity();
  for (int round = 0; round < std::max(cfg.calibrate, 1); ++round) {
    const Cluster c = scaled();
    Plan candidate = plan_optimal(p.costs, c, options);
    if (round > 0 && candidate.stages.size() == p.planned.stages.size() &&
        std::equal(candidate.stages.begin(), candidate.stages.end(), p.planned.stages.begin(),
                   [](const Stage& a, const Stage& b) {
                     return a.rank == b.rank && a.first == b.first && a.end == b.end;
                   }))
      break;
    if (cfg.calibrate > 0 && candidate.stages.size() > 1) {
      std::vector<size_t> bounds{0};
      for (const Stage& st : candidate.stages) bounds.push_back(mg.cuts[st.end]);
      const std::vector<double> ms = time_stages(mg, bounds, input, cfg.optimize);
      for (size_t s = 0; s < candidate.stages.size(); ++s) {
        double sum = 0;
        for (size_t b = candidate.stages[s].first; b < candidate.stages[s].end; ++b)
          sum += prof.block_ms[b] * factor[b];
        for (size_t b = candidate.stages[s].first; b < candidate.stages[s].end && sum > 0; ++b)
          factor[b] *= ms[s] / sum;
      }
    }
    const Cluster after = scaled();
    Plan evaluated = candidate;
    evaluated.cost = evaluate_plan(p.costs, after, candidate.stages);
    if (evaluated.period_s() < best) {
      best = evaluated.period_s();
      p.planned = evaluated;
      p.cluster = after;
    }
    if (cfg.calibrate == 0) break;
  }
  // Calibration changes the period, and with it the share of a core rank 0's own work takes:
  // predict the chosen plan again with that share until it settles.
  for (int round = 0; round < 8 && chosen_k > 0; ++round) {
    const double d = dispatcher_s / p.planned.period_s();
    if (std::abs(d - dispatcher_share) < 0.01) break;
    dispatcher_share = d;
    measured = cluster_of(p.profile, chosen_k, d);
    p.cluster = scaled();
    p.planned.cost = evaluate_plan(p.costs, p.cluster, p.planned.stages);
  }
  log.info(
      strprintf("rank 0's own work per batch (reading and checking inputs, its codec): "
                "%.2f ms, %.0f%% of a core at the planned period",
                1e3 * dispatcher_s, 100 * dispatcher_share));
  const int num_stages = static_cast<int>(p.planned.stages.size());
  if (cfg.stages && static_cast<size_t>(num_stages) != cfg.stages)
    log.warn("--stages " + std::to_string(cfg.stages) +
             ": the planner found no better plan "
             "than one of " +
             std::to_string(num_stages) + " stages");
  // Links count in pipeline order: link s + 1 carries into stage s, link k + 1 back to rank 0.
  for (int l = num_stages + 2; l <= K; ++l)
    EP_CHECK(cfg.codecs.for_link(l) == cfg.codecs.all, "--codec names link ", l,
             " but the plan "
             "has ",
             num_stages, " stages: links 1..", num_stages + 1);
  p.members.push_back(0);
  for (const Stage& st : p.planned.stages) p.members.push_back(static_cast<int>(st.rank));
  for (int s = 0; s < num_stages; ++s) {
    const size_t b0 = p.planned.stages[s].first, b1 = p.planned.stages[s].end;
    const size_t begin = mg.cuts[b0], end = mg.cuts[b1];
    if (s > 0) p.node_cuts.push_back(static_cast<int64_t>(begin));
    StageSetup setup;
    setup.stage = s;
    setup.num_stages = num_stages;
    setup.prev = s;  // in pipeline order: stage s is rank s + 1
    setup.next = s + 1 == num_stages ? 0 : s + 2;
    setup.inputs = prof.cut_metas[b0];
    setup.max_in_bytes = frame_bound(prof.cut_metas[b0]);
    setup.out_codec = cfg.codecs.for_link(s + 2);
    setup.overlap = overlap;
    setup.members = std::vector<int32_t>(p.members.begin(), p.members.end());
    setup.module_bytes = save_module_bytes(build_stage_module(mg, begin, end));
    p.setups.push_back(std::move(setup));
  }
  p.max_out_bytes = frame_bound(prof.cut_metas.back());
  for (const auto& m : prof.cut_metas.back())
    p.max_out_tensor_bytes += static_cast<uint64_t>(m.bytes());
  advise_codecs(p, prof, cfg, log);
  return p;
}

std::string describe_plan(const ModelGraph& mg, const RunPlan& p, const RunConfig& cfg) {
  std::ostringstream s;
  const size_t k = p.setups.size(), idle = p.cluster.num_stage_ranks() - k;
  s << describe_profile(p.profile);
  s << "plan: " << k << " stages over " << mg.nodes.size() << " nodes (" << mg.num_blocks()
    << " blocks)";
  if (idle) s << "; " << idle << " rank" << (idle == 1 ? "" : "s") << " left idle";
  s << "\n" << format_plan(p.planned, p.costs, p.cluster);
  if (!p.setups.empty() && p.setups[0].overlap)
    s << "overlap: each stage computes on a thread of its own beside its decode and encode "
         "(--overlap "
      << cfg.overlap << ")\n";
  s << "predicted: " << strprintf("%.2f", 1e3 * p.planned.period_s()) << " ms per batch, "
    << strprintf("%.2f", p.planned.throughput(static_cast<double>(cfg.batch))) << " images/s\n";
  return s.str();
}

// Checks the model's signature: edgepipe feeds exactly one tensor.
void check_model_inputs(const ModelGraph& mg) {
  const auto& inputs = mg.graph->inputs();
  EP_CHECK(
      inputs.size() == 2 && inputs[1]->type()->cast<c10::TensorType>(),
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
  // For the run log: rank 0's own records and times, and every stage's facts and records.
  double t0 = 0, t_end = 0;  // stream start, end of the stream back (rank 0's clock)
  std::vector<DispatchRecord> dispatch;
  DispatchRecord dispatch_totals;  // seq = batches that came back
  std::vector<RankFacts> stage_facts;
  std::vector<std::vector<BatchRecord>> stage_batches;
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
std::string ask_stages(Channel& ch, int num_stages, const std::vector<int>& members) {
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
    report +=
        "  " +
        (answers[rank].empty() ? detail::concat("stage ", rank - 1, " (rank ", members.at(rank),
                                                ") did not answer: busy computing, or hung")
                               : answers[rank]) +
        "\n";
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
  if (cfg.trace) r.dispatch.resize(static_cast<size_t>(nb));  // filled in place: no allocation
  DispatchRecord& tot = r.dispatch_totals;
  Progress progress(nb, total - start, log.quiet(), stdout, cfg.progress_s,
                    cfg.progress_lines ? 0 : -1);
  const double t0 = now_seconds();
  r.t0 = t0;
  double last_progress = t0, last_checkpoint = t0, last_signal_poll = t0, drain_deadline = 0;
  int64_t sent = 0, done = 0;
  int s = 0;
  auto pause = std::chrono::microseconds(10);
  const auto max_pause = std::chrono::microseconds(static_cast<int64_t>(
      std::clamp(1e5 * plan.planned.period_s(), 100.0, 4000.0)));  // period / 10, in us
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
      const double t_read = now_seconds();
      at::Tensor x = in.rows(first_row(sent), std::min(cfg.batch, total - first_row(sent)));
      if (!at::isfinite(x).all().item<bool>()) {
        at::Tensor bad = at::logical_not(at::isfinite(x).flatten(1).all(1)).nonzero();
        int64_t row = first_row(sent) + bad[0][0].item<int64_t>();
        EP_CHECK(!cfg.strict, "input row ", row, " contains NaN or Inf (--strict refuses them)");
        if (r.nonfinite_rows == 0)
          log.warn("input row " + std::to_string(row) +
                   " contains NaN or Inf; its outputs will "
                   "too (--strict refuses such inputs)");
        r.nonfinite_rows += bad.size(0);
      }
      const double t_encode = now_seconds();
      encoder.encode(static_cast<uint64_t>(sent), 0, {x}, send_buf[s]);
      const double t_sent = now_seconds();
      tot.time_read += t_encode - t_read;
      tot.time_encode += t_sent - t_encode;
      tot.bytes_out += static_cast<double>(send_buf[s].size());
      if (cfg.trace) {
        DispatchRecord& d = r.dispatch[sent];
        d.seq = sent;
        d.t_sent = t_sent - t0;
        d.time_read = t_encode - t_read;
        d.time_encode = t_sent - t_encode;
        d.bytes_out = static_cast<double>(send_buf[s].size());
      }
      send[s] = ch.isend(1, kTagData, send_buf[s].data(), send_buf[s].size());
      sending[s] = true;
      s ^= 1;
      ++sent;
      progressed = true;
    }
    size_t n = 0;
    if (ch.test(recv, &n)) {
      Frame f;
      const double decode_before = r.time_decode_last;
      {
        ScopedTimer t(r.time_decode_last);
        f = decoder.decode(recv_buf.data(), n);
      }
      const double t_write = now_seconds();
      EP_CHECK(!(f.flags & kFrameEnd), "the last stage ended the stream early, after ", done,
               " of ", nb, " batches");
      EP_CHECK(f.seq == static_cast<uint64_t>(done), "received batch ", f.seq,
               " from the last stage but expected batch ", done);
      sink.write(first_row(done), f.tensors);
      arrival[done] = now_seconds();
      tot.time_decode += r.time_decode_last - decode_before;
      tot.time_write += arrival[done] - t_write;
      tot.bytes_in += static_cast<double>(n);
      if (cfg.trace) {
        DispatchRecord& d = r.dispatch[done];
        d.t_arrived = arrival[done] - t0;
        d.time_decode = r.time_decode_last - decode_before;
        d.time_write = arrival[done] - t_write;
        d.bytes_in = static_cast<double>(n);
      }
      ++done;
      progress.update(done, std::min(total, first_row(done)) - start, arrival[done - 1]);
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
                ask_stages(ch, num_stages, plan.members));
      }
      EP_CHECK(r.stopped_by == 0 || now < drain_deadline,
               "the batches in flight did not "
               "return in time after ",
               signal_name(r.stopped_by));
      std::this_thread::sleep_for(pause);
      // Rank 0 keeps batches queued ahead of the first stage, so it can sleep longer than the
      // stages: every wake-up preempts a computing rank when ranks outnumber cores. But not
      // longer than a tenth of the predicted period: large frames move only while rank 0 tests
      // them (rendezvous), so a long sleep would stall a fast pipeline.
      pause = std::min(pause * 2, max_pause);
    }
  }
  progress.finish(done, std::min(total, first_row(done)) - start, now_seconds());
  tot.seq = done;
  if (cfg.trace) r.dispatch.resize(static_cast<size_t>(sent));
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
  r.t_end = now_seconds();
  for (int rank = 1; rank <= num_stages; ++rank) {
    r.counters.push_back(counters_from_bytes(recv_bytes(
        ch, rank, kTagStats, cfg.timeout_s, "the counters of rank " + std::to_string(rank))));
    r.stage_facts.emplace_back();
    r.stage_batches.emplace_back();
    trace_from_bytes(
        recv_bytes(ch, rank, kTagTrace, cfg.timeout_s, "the trace of rank " + std::to_string(rank)),
        &r.stage_facts.back(), &r.stage_batches.back());
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
  return cfg.resume      ? OutputMode::resume
         : cfg.overwrite ? OutputMode::overwrite
                         : OutputMode::create;
}

// Attributes that describe the run, for the record (each run that worked on the file rewrites
// them: a resumed file shows the last run's).
void describe_run(H5OutputFile& f, const RunConfig& cfg, const InputSource& in, const RunPlan& plan,
                  int num_stages) {
  f.set_attribute("model", cfg.model);
  f.set_attribute("input", in.description());
  f.set_attribute("stages", std::vector<int64_t>{num_stages});
  f.set_attribute("cuts", plan.node_cuts);
  f.set_attribute("batch", std::vector<int64_t>{cfg.batch});
  f.set_attribute("threads_per_rank", std::vector<int64_t>{cfg.threads});
  f.set_attribute("command_line", cfg.command_line);
}

// What rank 0 measured about itself over the stream (times filled by the caller).
struct RootMeter {
  RaplCounters rapl;
  std::vector<uint64_t> energy0;
  double user0 = 0, system0 = 0;
  std::string start_time_utc;
  RootMeter() {
    energy0 = rapl.read();
    process_cpu_seconds(&user0, &system0);
    char buf[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    start_time_utc = buf;
  }
};

std::string software_versions() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string mpi_line(mpi, static_cast<size_t>(len));
  mpi_line = mpi_line.substr(0, mpi_line.find_first_of("\n,"));
  unsigned h5[3] = {0, 0, 0};
  H5get_libversion(&h5[0], &h5[1], &h5[2]);
  return detail::concat("edgepipe ", version(), "; LibTorch ", TORCH_VERSION_MAJOR, ".",
                        TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH, "; ", mpi_line, "; HDF5 ",
                        h5[0], ".", h5[1], ".", h5[2]);
}

std::string config_text(const RunConfig& c, const InputSource& in) {
  return detail::concat(
      "model = ", c.model, "\ninput = ", in.description(), "\nbatch = ", c.batch,
      "\nthreads = ", c.threads, "\ninflight = ", c.inflight, "\ncalibrate = ", c.calibrate,
      "\nprofile = ", c.profile, "\nmax-stages = ", c.max_stages,
      "\ngroup-tolerance = ", c.group_tolerance, "\ncodec = ", c.codecs.text(),
      "\noptimize = ", c.optimize, "\ntimeout = ", c.timeout_s, "\ntrace = ", c.trace,
      "\nenergy-model = ", c.energy_model, "\nenergy-idle-watts = ", c.energy_idle_w,
      "\nenergy-core-watts = ", c.energy_core_w, "\n");
}

// Everything gathered at the end of the stream, as a run log (runlog.h), written to --log.
void write_log(const RunConfig& cfg, const InputSource& in, const RunPlan& plan, const Results& r,
               const ClockSync& clocks, const RootMeter& meter, const Log& log) {
  RunLog L;
  L.command_line = cfg.command_line;
  L.config = config_text(cfg, in);
  L.model = cfg.model;
  L.model_sha256 = sha256_file(cfg.model);
  L.output = cfg.output;
  L.start_time_utc = meter.start_time_utc;
  L.versions = software_versions();
  L.stopped_by_signal = r.stopped_by;
  L.trace = cfg.trace;
  L.cuts = plan.node_cuts;
  L.plan_method = plan.planned.method;
  L.overlap = !plan.setups.empty() && plan.setups[0].overlap;
  L.plan_period_s = plan.planned.period_s();
  for (size_t s = 0; s < plan.planned.stages.size(); ++s) {
    const Stage& st = plan.planned.stages[s];
    const StageCost& c = plan.planned.cost.stages[s];
    L.stage_rank.push_back(static_cast<int64_t>(st.rank));
    L.stage_first_block.push_back(static_cast<int64_t>(st.first));
    L.stage_end_block.push_back(static_cast<int64_t>(st.end));
    L.stage_compute_s.push_back(c.compute_s);
    L.stage_recv_s.push_back(c.recv_s);
    L.stage_send_s.push_back(c.send_s);
    L.stage_memory_bytes.push_back(c.memory_bytes);
  }
  L.profile = plan.profile;

  RankLog root;
  root.rank = 0;
  sample_rank_facts(&root.facts);
  root.facts.t_begin = 0;
  root.facts.t_end = r.t_end - r.t0;
  double user1 = 0, system1 = 0;
  process_cpu_seconds(&user1, &system1);
  root.facts.cpu_user = user1 - meter.user0;
  root.facts.cpu_system = system1 - meter.system0;
  const std::vector<uint64_t> energy1 = meter.rapl.read();
  if (!meter.energy0.empty() && !energy1.empty()) {
    root.facts.rapl_joules = meter.rapl.joules_between(meter.energy0, energy1);
    std::snprintf(root.facts.rapl_source, sizeof root.facts.rapl_source, "%s",
                  meter.rapl.names().c_str());
  }
  root.dispatch = r.dispatch;
  root.dispatch_totals = r.dispatch_totals;
  L.ranks.push_back(std::move(root));
  for (size_t i = 0; i < r.stage_facts.size(); ++i) {
    RankLog rl;
    rl.rank = plan.members[i + 1];  // the job's rank (stage i runs there)
    rl.stage = static_cast<int>(i);
    rl.counters = r.counters[i];
    rl.clock_offset_s = clocks.offset_s[i + 1];
    rl.clock_rtt_s = clocks.rtt_s[i + 1];
    const double shift = rl.clock_offset_s + r.t0;  // this rank's clock -> run time
    rl.facts = r.stage_facts[i];
    rl.facts.t_begin -= shift;
    rl.facts.t_end -= shift;
    rl.batches = r.stage_batches[i];
    for (BatchRecord& b : rl.batches) {
      b.t_begin -= shift;
      b.t_end -= shift;
    }
    L.ranks.push_back(std::move(rl));
  }
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
  L.links = links_of(r);
  L.summary.images = r.images;
  L.summary.batches = r.dispatch_totals.seq;
  L.summary.batch_size = cfg.batch;
  L.summary.wall_s = r.seconds;
  L.summary.steady_images_per_s = r.steady_per_s;
  summarise(L);
  const std::string path = cfg.log.empty() ? default_log_path(cfg.output) : cfg.log;
  write_run_log(path, L);
  log.info("run log in " + path + " (edgepipe report " + path + ")");
}

}  // namespace

int run_dispatcher(const RunConfig& cfg, Channel& world, const Log& log) {
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
    for (int rank = 1; rank < world.size(); ++rank)
      send_bytes(world, rank, kTagSetup, nothing.to_bytes(), cfg.timeout_s);
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
    double read_s = now_seconds();  // what reading and checking a batch costs rank 0
    for (int i = 0; i < 3; ++i) (void)at::isfinite(in->batch(0, cfg.batch)).all().item<bool>();
    read_s = (now_seconds() - read_s) / 3;
    plan = make_plan(*mg, cfg, first, read_s, world, log);
    sink.emplace(cfg.output, output_mode(cfg),
                 OutputIdentity{sha256_file(cfg.model), in->identity(), in->count()});
    if (cfg.resume)
      log.info("resuming " + sink->file().partial_path() + " at row " +
               std::to_string(sink->rows_done()) + " of " + std::to_string(in->count()));
  } catch (const std::exception& e) {
    log.error(e);
    StageSetup failed;
    failed.ok = false;
    for (int rank = 1; rank < world.size(); ++rank)
      send_bytes(world, rank, kTagSetup, failed.to_bytes(), cfg.timeout_s);
    if (sink && !cfg.resume) sink->file().discard_on_close();
    return 1;
  }
  log.info(describe_plan(*mg, plan, cfg));
  const int num_stages = static_cast<int>(plan.setups.size());
  // From here on ranks count in pipeline order: stage s is rank s + 1 (RemappedChannel).
  RemappedChannel ch(world, plan.members);

  try {
    StageSetup idle;
    idle.ok = false;
    idle.nothing_to_do = true;
    for (int rank = 1; rank < world.size(); ++rank)
      if (std::find(plan.members.begin(), plan.members.end(), rank) == plan.members.end())
        send_bytes(world, rank, kTagSetup, idle.to_bytes(), cfg.timeout_s);
    for (int rank = 1; rank <= num_stages; ++rank)
      send_bytes(ch, rank, kTagSetup, plan.setups[rank - 1].to_bytes(), cfg.timeout_s);
    for (int rank = 1; rank <= num_stages; ++rank) {
      std::string problem = recv_bytes(ch, rank, kTagReady, cfg.timeout_s,
                                       "rank " + std::to_string(rank) + " to load its stage");
      EP_CHECK(problem.empty(), "rank ", rank, " could not set up stage ", rank - 1, ": ", problem);
    }
    // Clocks aligned and the batch count announced (so stages reserve their traces); then the
    // stream, metered from its first batch.
    const ClockSync clocks = sync_clocks_root(
        ch, (in->count() - sink->rows_done() + cfg.batch - 1) / cfg.batch, cfg.timeout_s);
    const RootMeter meter;
    Results r = stream(cfg, ch, plan, *in, *sink, log);
    try {
      write_log(cfg, *in, plan, r, clocks, meter, log);
    } catch (const std::exception& e) {
      log.warn(std::string("could not write the run log: ") + e.what());
    }
    describe_run(sink->file(), cfg, *in, plan, num_stages);
    sink->file().set_attribute("images_per_second", r.steady_per_s);
    record_links(sink->file(), cfg, links_of(r));
    if (r.nonfinite_rows)
      log.warn(std::to_string(r.nonfinite_rows) + " input rows contained NaN or Inf");
    if (r.stopped_by) {
      sink->checkpoint();
      log.error(std::string(signal_name(r.stopped_by)) +
                " stopped the run: " + std::to_string(sink->rows_done()) + " of " +
                std::to_string(in->count()) + " rows are in " + sink->file().partial_path() +
                "; run the same command with --resume to continue");
      return 128 + r.stopped_by;
    }
    sink->commit();
    log.info("stages:\n" + describe_counters(r.counters));
    log.info("links:\n" + describe_links(links_of(r)));
    if (r.images > 0)
      log.info(std::to_string(r.images) + " images in " + strprintf("%.2f", r.seconds) +
               " s: " + strprintf("%.2f", r.images / r.seconds) + " images/s (" +
               strprintf("%.2f", r.steady_per_s) +
               " images/s once the pipeline is full); outputs in " + cfg.output);
    else
      log.info("nothing left to compute; outputs in " + cfg.output);
  } catch (const std::exception& e) {
    log.error(e);
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
