#include "edgepipe/records/profile_log.h"

#include <filesystem>
#include <map>

#include "edgepipe/base/error.h"
#include "edgepipe/io/h5_attributes.h"

namespace edgepipe {

namespace {

std::vector<int64_t> as_ints(const std::vector<size_t>& v) {
  return std::vector<int64_t>(v.begin(), v.end());
}

std::vector<size_t> as_sizes(const std::vector<int64_t>& v) {
  return std::vector<size_t>(v.begin(), v.end());
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == '\n')
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

// Ranks and links: per-rank tables row-major (ranks x blocks, ranks x ranks).
void write_startup(hid_t g, const StartupProfile& p) {
  const size_t n = p.ranks.size(), nb = n > 1 ? p.ranks[1].block_ms.size() : 0;
  std::vector<double> block_ms, block_ms_busy, latency, bandwidth, cores;
  std::vector<int64_t> memory, threads, on_host, resident;
  std::string hosts, sources;
  for (size_t r = 0; r < n; ++r) {
    const RankProfile& rp = p.ranks[r];
    for (size_t b = 0; b < nb; ++b) {
      block_ms.push_back(b < rp.block_ms.size() ? rp.block_ms[b] : 0.0);
      block_ms_busy.push_back(b < rp.block_ms_busy.size() ? rp.block_ms_busy[b] : 0.0);
    }
    for (size_t q = 0; q < n; ++q) {
      latency.push_back(p.links[r][q].latency_s);
      bandwidth.push_back(p.links[r][q].bandwidth_Bps);
    }
    memory.push_back(rp.memory_limit);
    threads.push_back(rp.threads);
    cores.push_back(rp.cores);
    on_host.push_back(rp.ranks_on_host);
    resident.push_back(rp.resident_bytes);
    hosts += (r ? "\n" : "") + rp.host;
    sources += (r ? "\n" : "") + rp.memory_source;
  }
  h5_write_double_attr(g, "seconds", p.seconds);
  h5_write_int_attr(g, "ranks", static_cast<int64_t>(n));
  h5_write_int_attr(g, "blocks", static_cast<int64_t>(nb));
  // An unset window (end 0) means every stage rank timed every block.
  const ProbeWindow window = p.window.end ? p.window : ProbeWindow{0, nb};
  h5_write_int_attr(g, "probe_first_block", static_cast<int64_t>(window.first));
  h5_write_int_attr(g, "probe_end_block", static_cast<int64_t>(window.end));
  h5_write_text_attr(g, "hosts", hosts);
  h5_write_text_attr(g, "memory_sources", sources);
  h5_write_doubles(g, "block_ms", block_ms,
                   "milliseconds per batch; ranks x blocks, row-major (row 0, the dispatcher: "
                   "zeros)");
  h5_write_doubles(g, "block_ms_busy", block_ms_busy,
                   "milliseconds per batch; ranks x blocks: the same, all stage ranks timing at "
                   "once");
  h5_write_doubles(g, "link_latency_s", latency, "seconds; ranks x ranks, row-major");
  h5_write_doubles(g, "link_bandwidth_Bps", bandwidth, "bytes per second; ranks x ranks");
  h5_write_ints(g, "memory_limit_bytes", memory);
  h5_write_ints(g, "threads", threads);
  h5_write_doubles(g, "cores", cores, "cores each rank may use (affinity, cgroup CPU quota)");
  h5_write_ints(g, "ranks_on_host", on_host);
  h5_write_ints(g, "resident_bytes", resident);
}

// Rank 0's profile of the model (ModelCosts), its own work per batch and the calibrations.
void write_model(hid_t g, const PlanMeasurements& m) {
  std::vector<double> ref_ms, params, acts;
  for (const BlockCost& b : m.model.blocks) {
    ref_ms.push_back(b.ref_ms);
    params.push_back(b.param_bytes);
    acts.push_back(b.act_bytes);
  }
  h5_write_double_attr(g, "read_s", m.read_s);
  h5_write_doubles(g, "model_ref_ms", ref_ms, "milliseconds per batch of each block on rank 0");
  h5_write_doubles(g, "model_param_bytes", params, "bytes of weights of each block");
  h5_write_doubles(g, "model_act_bytes", acts, "bytes: peak activations of each block");
  h5_write_doubles(g, "cut_bytes", m.model.cut_bytes, "bytes per batch across each cut");
  h5_write_doubles(g, "cut_encode_ms", m.model.cut_encode_ms,
                   "milliseconds per batch to encode each cut (empty: no codec measured)");
  h5_write_doubles(g, "cut_decode_ms", m.model.cut_decode_ms,
                   "milliseconds per batch to decode each cut");
  h5_write_ints(g, "block_nodes", as_ints(m.block_nodes));
  std::vector<int64_t> bounds, stages;
  std::vector<double> ms;
  for (const Calibration& c : m.calibrations) {
    stages.push_back(static_cast<int64_t>(c.stage_ms.size()));
    for (size_t b : c.node_bounds) bounds.push_back(static_cast<int64_t>(b));
    ms.insert(ms.end(), c.stage_ms.begin(), c.stage_ms.end());
  }
  h5_write_ints(g, "calibration_stages", stages);
  h5_write_ints(g, "calibration_node_bounds", bounds);
  h5_write_doubles(g, "calibration_stage_ms", ms,
                   "milliseconds per batch of each stage timed as it runs, timing after timing");
}

void write_identity_and_policy(hid_t g, const StoredProfile& p) {
  h5_write_text_attr(g, "source", p.source);
  h5_write_text_attr(g, "for_model_sha256", p.identity.model_sha256);
  h5_write_int_attr(g, "for_batch", p.identity.batch);
  h5_write_int_attr(g, "for_threads", p.identity.threads);
  h5_write_ints_attr(g, "for_input_shape", p.identity.input_shape);
  h5_write_text_attr(g, "for_codec", p.identity.codec);
  h5_write_int_attr(g, "policy_stages", static_cast<int64_t>(p.policy.stages));
  h5_write_int_attr(g, "policy_max_stages", static_cast<int64_t>(p.policy.max_stages));
  h5_write_double_attr(g, "policy_group_tolerance", p.policy.group_tolerance);
  h5_write_text_attr(g, "policy_overlap", p.policy.overlap);
  h5_write_int_attr(g, "policy_calibrate", p.policy.calibrate);
  h5_write_int_attr(g, "policy_max_replicas", static_cast<int64_t>(p.policy.max_replicas));
  h5_write_int_attr(g, "policy_replicas", static_cast<int64_t>(p.policy.replicas));
  h5_write_ints_attr(g, "policy_coded_links", p.policy.coded_links);
}

StartupProfile read_startup(hid_t g, const std::string& path, std::map<std::string, double>& n,
                            std::map<std::string, std::string>& t) {
  const auto ranks = static_cast<size_t>(n["ranks"]), blocks = static_cast<size_t>(n["blocks"]);
  const auto block_ms = h5_read_doubles(g, "block_ms", path);
  const auto busy = h5_read_doubles(g, "block_ms_busy", path);
  const auto latency = h5_read_doubles(g, "link_latency_s", path);
  const auto bandwidth = h5_read_doubles(g, "link_bandwidth_Bps", path);
  const auto memory = h5_read_ints(g, "memory_limit_bytes", path);
  const auto threads = h5_read_ints(g, "threads", path);
  const auto cores = h5_read_doubles(g, "cores", path);
  const auto on_host = h5_read_ints(g, "ranks_on_host", path);
  // Logs written before it: nothing held at start counted (as those runs planned).
  const auto resident = h5_exists(g, "resident_bytes") ? h5_read_ints(g, "resident_bytes", path)
                                                       : std::vector<int64_t>(ranks, 0);
  const auto hosts = split_lines(t["hosts"]), sources = split_lines(t["memory_sources"]);
  EP_CHECK(ranks >= 2 && block_ms.size() == ranks * blocks && busy.size() == block_ms.size() &&
               latency.size() == ranks * ranks && bandwidth.size() == ranks * ranks &&
               memory.size() == ranks && threads.size() == ranks && cores.size() == ranks &&
               on_host.size() == ranks && resident.size() == ranks && hosts.size() == ranks &&
               sources.size() == ranks,
           "'", path, "': /profile is inconsistent (", ranks, " ranks, ", blocks, " blocks)");
  StartupProfile p;
  p.seconds = n["seconds"];
  // Logs written before the probe window: every stage rank timed every block.
  p.window = n.count("probe_end_block") ? ProbeWindow{static_cast<size_t>(n["probe_first_block"]),
                                                      static_cast<size_t>(n["probe_end_block"])}
                                        : ProbeWindow{0, blocks};
  EP_CHECK(p.window.first < p.window.end && p.window.end <= blocks, "'", path,
           "': /profile's probe window [", p.window.first, ", ", p.window.end,
           ") is not within its ", blocks, " blocks");
  p.ranks.resize(ranks);
  p.links.assign(ranks, std::vector<Link>(ranks));
  for (size_t r = 0; r < ranks; ++r) {
    RankProfile& rp = p.ranks[r];
    rp.host = hosts[r];
    rp.memory_source = sources[r];
    rp.memory_limit = memory[r];
    rp.threads = static_cast<int>(threads[r]);
    rp.cores = cores[r];
    rp.ranks_on_host = static_cast<int>(on_host[r]);
    rp.resident_bytes = resident[r];
    if (r > 0) {
      rp.block_ms.assign(block_ms.begin() + r * blocks, block_ms.begin() + (r + 1) * blocks);
      rp.block_ms_busy.assign(busy.begin() + r * blocks, busy.begin() + (r + 1) * blocks);
    }
    for (size_t q = 0; q < ranks; ++q)
      p.links[r][q] = Link{latency[r * ranks + q], bandwidth[r * ranks + q]};
  }
  return p;
}

void read_model(hid_t g, const std::string& path, size_t blocks, double read_s,
                PlanMeasurements& m) {
  EP_CHECK(h5_exists(g, "model_ref_ms"), "'", path,
           "': its /profile has no model costs of rank 0 (an older edgepipe wrote it): run "
           "without --profile to measure again");
  const auto ref_ms = h5_read_doubles(g, "model_ref_ms", path);
  const auto params = h5_read_doubles(g, "model_param_bytes", path);
  const auto acts = h5_read_doubles(g, "model_act_bytes", path);
  m.model.cut_bytes = h5_read_doubles(g, "cut_bytes", path);
  m.model.cut_encode_ms = h5_read_doubles(g, "cut_encode_ms", path);
  m.model.cut_decode_ms = h5_read_doubles(g, "cut_decode_ms", path);
  m.block_nodes = as_sizes(h5_read_ints(g, "block_nodes", path));
  const size_t codec_cuts = m.model.cut_encode_ms.empty() ? 0 : blocks + 1;
  EP_CHECK(ref_ms.size() == blocks && params.size() == blocks && acts.size() == blocks &&
               m.model.cut_bytes.size() == blocks + 1 && m.block_nodes.size() == blocks + 1 &&
               m.model.cut_encode_ms.size() == codec_cuts &&
               m.model.cut_decode_ms.size() == codec_cuts,
           "'", path, "': the model costs in /profile are inconsistent (", blocks, " blocks)");
  for (size_t b = 0; b < blocks; ++b) m.model.blocks.push_back({ref_ms[b], params[b], acts[b]});
  m.read_s = read_s;
  const auto stages = h5_read_ints(g, "calibration_stages", path);
  const auto bounds = h5_read_ints(g, "calibration_node_bounds", path);
  const auto ms = h5_read_doubles(g, "calibration_stage_ms", path);
  size_t at_bound = 0, at_ms = 0;
  for (int64_t k : stages) {
    EP_CHECK(k > 0 && at_ms + k <= ms.size() && at_bound + k + 1 <= bounds.size(), "'", path,
             "': the calibrations in /profile are inconsistent");
    Calibration c;
    c.node_bounds = as_sizes({bounds.begin() + at_bound, bounds.begin() + at_bound + k + 1});
    c.stage_ms.assign(ms.begin() + at_ms, ms.begin() + at_ms + k);
    at_bound += k + 1, at_ms += k;
    m.calibrations.push_back(std::move(c));
  }
}

void read_identity_and_policy(hid_t g, std::map<std::string, double>& n,
                              std::map<std::string, std::string>& t, StoredProfile& p) {
  p.source = t["source"];
  p.identity.model_sha256 = t["for_model_sha256"];
  p.identity.batch = static_cast<int64_t>(n["for_batch"]);
  p.identity.threads = static_cast<int64_t>(n["for_threads"]);
  p.identity.input_shape = h5_read_ints_attr(g, "for_input_shape");
  p.identity.codec = t["for_codec"];
  p.policy.stages = static_cast<size_t>(n["policy_stages"]);
  p.policy.max_stages = static_cast<size_t>(n["policy_max_stages"]);
  p.policy.group_tolerance = n["policy_group_tolerance"];
  p.policy.overlap = t["policy_overlap"];
  p.policy.calibrate = static_cast<int>(n["policy_calibrate"]);
  // Logs from before replicas ran planned without them.
  p.policy.max_replicas =
      n.count("policy_max_replicas") ? static_cast<size_t>(n["policy_max_replicas"]) : 1;
  p.policy.replicas = static_cast<size_t>(n["policy_replicas"]);
  p.policy.coded_links = h5_read_ints_attr(g, "policy_coded_links");
}

}  // namespace

void write_profile_group(hid_t file, const StoredProfile& p) {
  H5Id g = h5_create_group(file, "profile");
  write_startup(g.get(), p.measurements.startup);
  write_model(g.get(), p.measurements);
  write_identity_and_policy(g.get(), p);
}

StoredProfile read_stored_profile(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  EP_CHECK(std::filesystem::exists(path), "profile '", path, "' does not exist");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
            "cannot open '" + path + "' as HDF5");
  EP_CHECK(h5_exists(file.get(), "profile"), "'", path,
           "' has no /profile: not the run log of an `edgepipe run` that measured its ranks");
  H5Id g = h5_open_group(file.get(), "profile", path);
  std::map<std::string, double> n;
  std::map<std::string, std::string> t;
  h5_read_attrs(g.get(), "/profile", &n, &t);
  StoredProfile p;
  p.measurements.startup = read_startup(g.get(), path, n, t);
  read_model(g.get(), path, static_cast<size_t>(n["blocks"]), n["read_s"], p.measurements);
  read_identity_and_policy(g.get(), n, t, p);
  return p;
}

}  // namespace edgepipe
