#include "edgepipe/cli/config.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"
#include "edgepipe/plan/cluster.h"

namespace po = boost::program_options;

namespace edgepipe {

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long d = 0;
    try {
      d = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    EP_CHECK_AS(ConfigError, used == item.size() && !item.empty() && d > 0, "bad shape '", text,
                "': expected positive integers separated by commas, e.g. 1,3,224,224");
    dims.push_back(d);
  }
  EP_CHECK_AS(ConfigError, !dims.empty(), "bad shape '", text, "': empty");
  return dims;
}

namespace {

const char* kUsage =
    "usage: edgepipe COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run       run a model as a pipeline over MPI ranks (mpirun -n K edgepipe run ...)\n"
    "  single    run the whole model in one process (the baseline and the reference)\n"
    "  inspect   print a model's nodes, blocks and cut candidates\n"
    "  plan      profile a model here and plan its stages for a described cluster (no MPI)\n"
    "  report    summarise a run log: edgepipe report RUN.log.h5 [--compare A B]\n"
    "  version   print the version\n"
    "\n"
    "edgepipe COMMAND --help lists the options of a command.\n";

po::options_description run_options(bool pipeline) {
  po::options_description o(pipeline ? "edgepipe run options" : "edgepipe single options");
  // clang-format off
  o.add_options()
    ("help,h", "print this help")
    ("config", po::value<std::string>(), "config file of 'key = value' lines (keys as below); "
                                        "flags override it")
    ("model", po::value<std::string>(), "TorchScript model file (required)")
    ("input", po::value<std::string>(), "inputs as FILE.h5:DATASET (rows are samples)")
    ("synthetic", po::value<int64_t>(), "use N random inputs instead of --input")
    ("input-shape", po::value<std::string>(), "shape of one batch, e.g. 1,3,224,224 (the batch "
                                             "dimension is replaced by --batch); default: from "
                                             "the model file or the input dataset")
    ("output", po::value<std::string>(), "HDF5 outputs file (required)")
    ("batch", po::value<int64_t>()->default_value(1), "samples per batch")
    ("threads", po::value<int>()->default_value(1), "intra-op threads per rank")
    ("timeout", po::value<double>()->default_value(300), "seconds any wait may take before "
                                                        "the run fails")
    ("optimize", po::value<bool>()->default_value(true), "run optimize_for_inference on the "
                                                        "model or each stage (true/false)")
    ("overwrite", po::bool_switch(), "replace an existing output file")
    ("resume", po::bool_switch(), "continue the OUTPUT.partial left by a run that stopped")
    ("checkpoint", po::value<double>()->default_value(10), "seconds between progress marks "
                                                          "in the outputs file")
    ("strict", po::bool_switch(), "refuse inputs that contain NaN or Inf (default: warn)")
    ("max-memory", po::value<std::string>(), "memory each stage rank (with single: the process) "
                                            "may use, e.g. 512MiB (default: the cgroup limit, "
                                            "else physical memory)")
    ("quiet", po::bool_switch(), "print nothing but errors")
    ("seed", po::value<uint64_t>()->default_value(1), "seed of --synthetic inputs");
  if (pipeline) {
    o.add_options()
      ("inflight", po::value<int>()->default_value(0), "batches in flight (0 = 2 x stage ranks)")
      ("profile", po::value<std::string>(), "plan from the start-up measurements stored in this "
                 "earlier run log (same model, batch, threads and ranks) instead of measuring")
      ("calibrate", po::value<int>()->default_value(3), "rounds of timing the planned stages as "
                 "they will run (on rank 0) and planning again (0 = plan on the ranks' block "
                 "times as measured)")
      ("stages", po::value<int>()->default_value(0), "plan this many stages (the planner still "
                 "chooses cuts and ranks; 0 = choose the number too)")
      ("max-stages", po::value<int>()->default_value(0), "at most this many stages (0 = up to "
                 "one per stage rank; the planner may use fewer)")
      ("max-replicas", po::value<int>()->default_value(0), "at most this many ranks per stage: "
                 "a plan with replicas runs when it is predicted faster than the best single "
                 "pipeline (0 = as many as pay, 1 = no replicas; none with --stages)")
      ("replicas", po::value<int>()->default_value(0), "run every stage on exactly this many "
                 "ranks (0 = the planner decides, see --max-replicas; with --stages too)")
      ("group-tolerance", po::value<double>()->default_value(0.05), "ranks whose measured block "
                 "times, memory and links agree within this fraction are planned as one type "
                 "(docs/planner.md); 0 = exact")
      ("overlap", po::value<std::string>()->default_value("auto"), "run each stage's blocks on "
                 "a compute thread beside its decode and encode: on, off, or auto (on when every "
                 "stage rank has 2 x --threads cores to itself)")
      ("codec", po::value<std::string>()->default_value("raw"), "codec of every link, or per "
                 "link as 1=zfp-rate:8,2=lz4 (links in pipeline order: link 1 carries the inputs "
                 "into stage 0, link i+1 stage i's outputs; the last one back to rank 0): raw, "
                 "lz4, zfp-reversible, zfp-rate:R, "
                 "zfp-precision:P, zfp-accuracy:E, zfp-relacc:E, q8, q4, q2 (8-, 4-, 2-bit "
                 "quantisation), each zfp mode and quantiser +lz4; see docs/codecs.md")
      ("error-budget", po::value<double>()->default_value(0), "choose each link's codec: the "
                 "fastest plan whose outputs' relative L2 error (worst row) stays within this "
                 "on the calibration inputs, measured before streaming (e.g. 1e-2; 0 = off, "
                 "--codec decides; docs/codecs.md, \"Error budget\")")
      ("calibration-rows", po::value<int64_t>()->default_value(8), "with --error-budget: the "
                 "first this many input rows (in whole batches) measure each codec's error")
      ("stage-cache", po::value<std::string>()->default_value(""), "folder on each node's local "
                 "disk where stage ranks keep the stages they received, so that a repeated run "
                 "does not ship them again; default $EDGEPIPE_STAGE_CACHE, else $SLURM_TMPDIR, "
                 "else $TMPDIR, else /tmp, plus /edgepipe-stages-<uid>; off = none (docs/design.md, \"Stage cache\")")
      ("log", po::value<std::string>(), "run log (HDF5; docs/runlog.md); default: OUTPUT minus "
                                       ".h5 plus .log.h5")
      ("no-trace", po::bool_switch(), "keep only per-rank totals in the run log, no per-batch "
                                      "records")
      ("progress", po::value<double>()->default_value(5), "seconds between progress lines when "
                                                         "not on a terminal (0 = none)")
      ("progress-lines", po::bool_switch(), "progress as separate lines even on a terminal "
                                            "(mpirun gives rank 0 a terminal even when its own "
                                            "output goes to a file)")
      ("energy-model", po::value<std::string>()->default_value("edge"), "energy model where no "
                 "RAPL counter is readable: edge (Raspberry Pi 4) or server (a Xeon core)")
      ("energy-idle-watts", po::value<double>(), "idle watts per node (overrides the model)")
      ("energy-core-watts", po::value<double>(), "watts per busy core (overrides the model)");
  } else {
    o.add_options()
      ("warmup", po::value<int>()->default_value(3), "untimed batches before timing");
  }
  // clang-format on
  return o;
}

po::options_description inspect_options() {
  po::options_description o("edgepipe inspect MODEL options");
  // clang-format off
  o.add_options()
    ("help,h", "print this help")
    ("model", po::value<std::string>(), "TorchScript model file")
    ("input-shape", po::value<std::string>(), "shape of one batch, e.g. 1,3,224,224 "
                                             "(default: from the model file)")
    ("threads", po::value<int>()->default_value(1), "threads for timing the blocks")
    ("no-profile", po::bool_switch(), "do not time the blocks");
  // clang-format on
  return o;
}

// ---- edgepipe plan ----
po::options_description plan_options() {
  po::options_description o("edgepipe plan options");
  // clang-format off
  o.add_options()
    ("help,h", "print this help")
    ("model", po::value<std::string>(), "TorchScript model file (required)")
    ("cluster", po::value<std::string>(), "cluster description file (configs/cluster-*.ini; "
                                         "format in docs/planner.md); speeds in it are relative "
                                         "to this machine")
    ("ranks", po::value<int>(), "instead of --cluster: N stage ranks like this machine (speed 1, "
                               "memory as below) plus a dispatcher")
    ("profile", po::value<std::string>(), "instead of --cluster: plan as the run that wrote this "
                 "run log did, from its measurements, options and calibration timings")
    ("max-memory", po::value<std::string>(), "with --ranks: memory per rank, e.g. 512MiB "
                                            "(default: this node's cgroup limit, else physical "
                                            "memory)")
    ("bandwidth", po::value<std::string>(), "with --ranks: bandwidth of every link (default "
                                           "1Gbit/s)")
    ("latency", po::value<std::string>(), "with --ranks: latency of every link (default 0.1ms)")
    ("input-shape", po::value<std::string>(), "shape of one batch, e.g. 1,3,224,224 (the batch "
                                             "dimension is replaced by --batch); default: from "
                                             "the model file")
    ("batch", po::value<int64_t>()->default_value(1), "samples per batch")
    ("threads", po::value<int>()->default_value(1), "intra-op threads for profiling (as each "
                                                   "rank of the run would use)")
    ("codec", po::value<std::string>()->default_value("raw"), "codec of every link: raw, lz4, "
               "zfp-reversible, zfp-rate:R, zfp-precision:P, zfp-accuracy:E, zfp-relacc:E, "
               "q8, q4, q2 (8-, 4-, 2-bit quantisation), each zfp mode and quantiser +lz4 "
               "(docs/codecs.md)")
    ("optimize", po::value<bool>()->default_value(true), "profile the blocks after "
                                                        "optimize_for_inference, as run does "
                                                        "(true/false)")
    ("max-stages", po::value<int>()->default_value(0), "at most this many stages (0 = one per "
                                                      "stage rank)")
    ("group-tolerance", po::value<double>()->default_value(0), "plan ranks whose speed, memory "
                 "and links agree within this relative tolerance as one type (0 = identical "
                 "ranks only; the plan is then exact)")
    ("max-replicas", po::value<int>()->default_value(0), "at most this many ranks per stage "
                 "in the plan with replicas shown beside the single pipeline (0 = as many as the "
                 "planner predicts pay, 1 = no replicas)")
    ("no-baselines", po::bool_switch(), "do not compare with the random, greedy, equal-blocks "
                                        "and pipeedge baselines");
  // clang-format on
  return o;
}

PlanCommandConfig to_plan_config(const po::variables_map& vm) {
  PlanCommandConfig c;
  if (vm.count("profile")) c.profile = vm["profile"].as<std::string>();
  EP_CHECK_AS(ConfigError, vm.count("model") || vm.count("profile"),
              "no model given: pass --model FILE.pt");
  if (vm.count("model")) c.model = vm["model"].as<std::string>();
  EP_CHECK_AS(ConfigError, vm.count("cluster") + vm.count("ranks") + vm.count("profile") == 1,
              "give exactly one of --cluster FILE (a cluster description, e.g. "
              "configs/cluster-8-small.ini) and --ranks N (N ranks like this machine), or "
              "--profile LOG (an earlier run's measurements)");
  if (vm.count("cluster")) {
    c.cluster = vm["cluster"].as<std::string>();
    for (const char* key : {"max-memory", "bandwidth", "latency"})
      EP_CHECK_AS(ConfigError, !vm.count(key), "--", key,
                  " goes with --ranks; with --cluster, set it in ", c.cluster);
  } else if (vm.count("ranks")) {
    c.ranks = vm["ranks"].as<int>();
    EP_CHECK_AS(ConfigError, c.ranks > 0, "--ranks must be positive, got ", c.ranks);
    if (vm.count("max-memory")) {
      c.max_memory = vm["max-memory"].as<std::string>();
      EP_CHECK_AS(ConfigError, parse_bytes(c.max_memory) > 0, "--max-memory must be positive, got ",
                  c.max_memory);
    }
    if (vm.count("bandwidth")) c.bandwidth = vm["bandwidth"].as<std::string>();
    if (vm.count("latency")) c.latency = vm["latency"].as<std::string>();
    EP_CHECK_AS(ConfigError, parse_bandwidth(c.bandwidth) > 0, "--bandwidth must be positive, got ",
                c.bandwidth);
    EP_CHECK_AS(ConfigError, parse_duration(c.latency) >= 0, "--latency must not be negative, got ",
                c.latency);
  }
  if (vm.count("input-shape")) c.input_shape = parse_shape(vm["input-shape"].as<std::string>());
  c.batch = vm["batch"].as<int64_t>();
  EP_CHECK_AS(ConfigError, c.batch > 0, "--batch must be positive, got ", c.batch);
  c.threads = vm["threads"].as<int>();
  EP_CHECK_AS(ConfigError, c.threads > 0, "--threads must be positive, got ", c.threads);
  const std::string codec = vm["codec"].as<std::string>();
  EP_CHECK_AS(ConfigError,
              codec.find('=') == std::string::npos && codec.find(',') == std::string::npos,
              "--codec '", codec,
              "': edgepipe plan takes one codec for every link (e.g. lz4), "
              "not a per-link list");
  c.codec = parse_codec(codec);
  c.optimize = vm["optimize"].as<bool>();
  const int max_stages = vm["max-stages"].as<int>();
  EP_CHECK_AS(ConfigError, max_stages >= 0, "--max-stages must be 0 (no limit) or positive, got ",
              max_stages);
  c.max_stages = static_cast<size_t>(max_stages);
  c.group_tolerance = vm["group-tolerance"].as<double>();
  EP_CHECK_AS(ConfigError, c.group_tolerance >= 0 && c.group_tolerance < 1,
              "--group-tolerance must be in [0, 1), got ", c.group_tolerance);
  const int max_replicas = vm["max-replicas"].as<int>();
  EP_CHECK_AS(ConfigError, max_replicas >= 0,
              "--max-replicas must be 0 (as many as pay), 1 (none) or more, got ", max_replicas);
  c.max_replicas = static_cast<size_t>(max_replicas);
  c.baselines = !vm["no-baselines"].as<bool>();
  return c;
}

std::string help_of(const po::options_description& o, const char* usage) {
  std::ostringstream s;
  s << usage << "\n" << o;
  return s.str();
}

// The options only `run` has (the pipeline's: planning, codecs, the run log, progress, energy).
void read_pipeline_options(const po::variables_map& vm, RunConfig& c) {
  c.inflight = vm["inflight"].as<int>();
  EP_CHECK_AS(ConfigError, c.inflight >= 0, "--inflight must be 0 (auto) or positive, got ",
              c.inflight);
  if (vm.count("profile")) c.profile = vm["profile"].as<std::string>();
  c.calibrate = vm["calibrate"].as<int>();
  EP_CHECK_AS(ConfigError, c.calibrate >= 0, "--calibrate must not be negative, got ", c.calibrate);
  const int max_stages = vm["max-stages"].as<int>();
  EP_CHECK_AS(ConfigError, max_stages >= 0,
              "--max-stages must be 0 (as many as ranks) or positive, got ", max_stages);
  c.max_stages = static_cast<size_t>(max_stages);
  const int stages = vm["stages"].as<int>();
  EP_CHECK_AS(ConfigError, stages >= 0, "--stages must be 0 (planner's choice) or positive, got ",
              stages);
  c.stages = static_cast<size_t>(stages);
  if (c.stages) c.max_stages = c.stages;
  const int max_replicas = vm["max-replicas"].as<int>();
  EP_CHECK_AS(ConfigError, max_replicas >= 0,
              "--max-replicas must be 0 (as many as pay), 1 (none) or more, got ", max_replicas);
  const int replicas = vm["replicas"].as<int>();
  EP_CHECK_AS(ConfigError, replicas >= 0,
              "--replicas must be 0 (the planner decides) or positive, got ", replicas);
  c.replicas = static_cast<size_t>(replicas);
  EP_CHECK_AS(ConfigError,
              !c.replicas || !max_replicas || c.replicas <= static_cast<size_t>(max_replicas),
              "--replicas ", c.replicas, " is more than --max-replicas ", max_replicas);
  // A forced number of stages is a single pipeline unless --replicas says otherwise.
  c.max_replicas = c.replicas ? c.replicas : c.stages ? 1 : static_cast<size_t>(max_replicas);
  c.group_tolerance = vm["group-tolerance"].as<double>();
  EP_CHECK_AS(ConfigError, c.group_tolerance >= 0 && c.group_tolerance < 1,
              "--group-tolerance must be in [0, 1), got ", c.group_tolerance);
  c.codecs = parse_link_codecs(vm["codec"].as<std::string>());
  c.error_budget = vm["error-budget"].as<double>();
  EP_CHECK_AS(ConfigError, std::isfinite(c.error_budget) && c.error_budget >= 0,
              "--error-budget must be a relative error >= 0 (0 = off), got ", c.error_budget);
  EP_CHECK_AS(ConfigError, c.error_budget == 0 || vm["codec"].defaulted(),
              "--error-budget chooses every link's codec: give it or --codec, not both");
  c.calibration_rows = vm["calibration-rows"].as<int64_t>();
  EP_CHECK_AS(ConfigError, c.calibration_rows > 0, "--calibration-rows must be positive, got ",
              c.calibration_rows);
  c.overlap = vm["overlap"].as<std::string>();
  EP_CHECK_AS(ConfigError, c.overlap == "auto" || c.overlap == "on" || c.overlap == "off",
              "--overlap must be auto, on or off, got '", c.overlap, "'");
  c.stage_cache = vm["stage-cache"].as<std::string>();
  if (vm.count("log")) c.log = vm["log"].as<std::string>();
  c.trace = !vm["no-trace"].as<bool>();
  c.progress_s = vm["progress"].as<double>();
  c.progress_lines = vm["progress-lines"].as<bool>();
  EP_CHECK_AS(ConfigError, c.progress_s >= 0, "--progress must not be negative, got ",
              c.progress_s);
  c.energy_model = vm["energy-model"].as<std::string>();
  EP_CHECK_AS(ConfigError, c.energy_model == "edge" || c.energy_model == "server",
              "--energy-model must be "
              "edge or server, got '",
              c.energy_model, "'");
  if (vm.count("energy-idle-watts")) c.energy_idle_w = vm["energy-idle-watts"].as<double>();
  if (vm.count("energy-core-watts")) c.energy_core_w = vm["energy-core-watts"].as<double>();
  EP_CHECK_AS(ConfigError, !vm.count("energy-idle-watts") || c.energy_idle_w >= 0,
              "--energy-idle-watts must not be negative");
  EP_CHECK_AS(ConfigError, !vm.count("energy-core-watts") || c.energy_core_w >= 0,
              "--energy-core-watts must not be negative");
}

RunConfig to_run_config(const po::variables_map& vm, bool pipeline) {
  RunConfig c;
  EP_CHECK_AS(ConfigError, vm.count("model"),
              "no model given: pass --model FILE.pt (or model = ... in --config)");
  c.model = vm["model"].as<std::string>();
  EP_CHECK_AS(ConfigError, vm.count("output"), "no output file given: pass --output FILE.h5");
  c.output = vm["output"].as<std::string>();
  EP_CHECK_AS(ConfigError, vm.count("input") + vm.count("synthetic") == 1,
              "give exactly one of --input FILE.h5:DATASET and --synthetic N");
  if (vm.count("input")) {
    std::string spec = vm["input"].as<std::string>();
    auto colon = spec.rfind(':');
    EP_CHECK_AS(ConfigError, colon != std::string::npos && colon > 0 && colon + 1 < spec.size(),
                "bad --input '", spec, "': expected FILE.h5:DATASET");
    c.input_file = spec.substr(0, colon);
    c.input_dataset = spec.substr(colon + 1);
  } else {
    c.synthetic = vm["synthetic"].as<int64_t>();
    EP_CHECK_AS(ConfigError, c.synthetic > 0, "--synthetic must be positive, got ", c.synthetic);
  }
  if (vm.count("input-shape")) c.input_shape = parse_shape(vm["input-shape"].as<std::string>());
  c.batch = vm["batch"].as<int64_t>();
  EP_CHECK_AS(ConfigError, c.batch > 0, "--batch must be positive, got ", c.batch);
  c.threads = vm["threads"].as<int>();
  EP_CHECK_AS(ConfigError, c.threads > 0, "--threads must be positive, got ", c.threads);
  c.timeout_s = vm["timeout"].as<double>();
  EP_CHECK_AS(ConfigError, c.timeout_s > 0, "--timeout must be positive, got ", c.timeout_s);
  c.optimize = vm["optimize"].as<bool>();
  c.overwrite = vm["overwrite"].as<bool>();
  c.resume = vm["resume"].as<bool>();
  EP_CHECK_AS(ConfigError, !(c.overwrite && c.resume),
              "--overwrite and --resume contradict each other");
  c.checkpoint_s = vm["checkpoint"].as<double>();
  EP_CHECK_AS(ConfigError, c.checkpoint_s > 0, "--checkpoint must be positive, got ",
              c.checkpoint_s);
  c.strict = vm["strict"].as<bool>();
  if (vm.count("max-memory")) {
    c.max_memory = vm["max-memory"].as<std::string>();
    EP_CHECK_AS(ConfigError, parse_bytes(c.max_memory) > 0, "--max-memory must be positive, got ",
                c.max_memory);
  }
  c.quiet = vm["quiet"].as<bool>();
  c.seed = vm["seed"].as<uint64_t>();
  if (pipeline) {
    read_pipeline_options(vm, c);
  } else {
    c.warmup = vm["warmup"].as<int>();
    EP_CHECK_AS(ConfigError, c.warmup >= 0, "--warmup must not be negative, got ", c.warmup);
  }
  return c;
}

// The option whose name is closest to `name` (a typo, or a longer or shorter form), or "".
std::string nearest_option(const po::options_description& o, const std::string& name) {
  std::string best;
  size_t best_d = std::max<size_t>(3, name.size() / 3) + 1;
  for (const auto& opt : o.options()) {
    const std::string& candidate = opt->long_name();
    size_t d = edit_distance(name, candidate);
    if (candidate.rfind(name, 0) == 0 || name.rfind(candidate, 0) == 0) d = std::min<size_t>(d, 2);
    if (d < best_d) {
      best_d = d;
      best = candidate;
    }
  }
  return best;
}

// Parses flags, then the config file: po::store keeps the first value stored, so flags win.
po::variables_map parse(const std::vector<std::string>& args, const po::options_description& o,
                        const po::positional_options_description* positional) {
  po::variables_map vm;
  std::string where;  // "config file X: " while the config file is parsed
  try {
    po::command_line_parser parser(args);
    parser.options(o);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("config")) {
      std::string path = vm["config"].as<std::string>();
      std::error_code ec;
      EP_CHECK_AS(ConfigError, !std::filesystem::is_directory(path, ec), "config file '", path,
                  "' is a directory; name a file of 'key = value' lines");
      std::ifstream file(path);
      EP_CHECK_AS(ConfigError, file, "cannot open config file '", path, "'");
      where = "config file " + path + ": ";
      po::store(po::parse_config_file(file, o), vm);
      EP_CHECK_AS(ConfigError, !file.bad(), "cannot read config file '", path, "'");
      where.clear();
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    while (!name.empty() && name[0] == '-') name.erase(0, 1);
    std::string best = nearest_option(o, name);
    EP_FAIL_AS(ConfigError, where, e.what(), best.empty() ? "" : "; did you mean " + best + "?",
               " (edgepipe COMMAND --help lists the options)");
  } catch (const po::error& e) {
    EP_FAIL_AS(ConfigError, where, e.what(), " (edgepipe COMMAND --help lists the options)");
  }
  return vm;
}

}  // namespace

ParsedCommand parse_command_line(int argc, const char* const argv[]) {
  ParsedCommand p;
  p.help_text = kUsage;
  if (argc < 2) return p;
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return p;
  if (cmd == "version" || cmd == "--version") {
    p.command = Command::version;
    return p;
  }
  if (cmd == "run" || cmd == "single") {
    bool pipeline = cmd == "run";
    auto o = run_options(pipeline);
    auto vm = parse(args, o, nullptr);
    if (vm.count("help")) {
      p.help_text = help_of(o, pipeline ? "usage: mpirun -n K edgepipe run [options]"
                                        : "usage: edgepipe single [options]");
      return p;
    }
    p.command = pipeline ? Command::run : Command::single;
    p.run = to_run_config(vm, pipeline);
    std::string line;
    for (int i = 0; i < argc; ++i) line += (i ? " " : "") + std::string(argv[i]);
    p.run.command_line = line;
    return p;
  }
  if (cmd == "inspect") {
    auto o = inspect_options();
    po::positional_options_description pos;
    pos.add("model", 1);
    auto vm = parse(args, o, &pos);
    if (vm.count("help")) {
      p.help_text = help_of(o, "usage: edgepipe inspect MODEL [--input-shape 1,3,224,224]");
      return p;
    }
    p.command = Command::inspect;
    EP_CHECK_AS(ConfigError, vm.count("model"), "no model given: edgepipe inspect MODEL");
    p.inspect.model = vm["model"].as<std::string>();
    if (vm.count("input-shape"))
      p.inspect.input_shape = parse_shape(vm["input-shape"].as<std::string>());
    p.inspect.threads = vm["threads"].as<int>();
    EP_CHECK_AS(ConfigError, p.inspect.threads > 0, "--threads must be positive");
    p.inspect.profile = !vm["no-profile"].as<bool>();
    return p;
  }
  if (cmd == "plan") {
    auto o = plan_options();
    auto vm = parse(args, o, nullptr);
    if (vm.count("help")) {
      p.help_text = help_of(o,
                            "usage: edgepipe plan --model M.pt (--cluster FILE.ini | --ranks N) "
                            "[options]");
      return p;
    }
    p.command = Command::plan;
    p.plan = to_plan_config(vm);
    return p;
  }
  EP_FAIL_AS(ConfigError, "unknown command '", cmd, "'\n", kUsage);
}

}  // namespace edgepipe
