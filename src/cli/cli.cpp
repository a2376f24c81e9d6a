#include "edgepipe/cli/cli.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "edgepipe/base/error.h"
#include "edgepipe/base/log.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/base/version.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/cli/inspect.h"
#include "edgepipe/cli/plan_command.h"
#include "edgepipe/cli/single.h"
#include "edgepipe/io/h5.h"
#include "edgepipe/pipeline/dispatcher.h"
#include "edgepipe/pipeline/worker.h"
#include "edgepipe/records/report.h"
#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/mpi.h"

namespace edgepipe {

namespace {

// The rank a launcher gave this process, before MPI is initialised (0 if none).
int launcher_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* v = std::getenv(var)) return std::atoi(v);
  }
  return 0;
}

// LibTorch's warnings (e.g. from optimize_for_inference's rewrites) would otherwise be printed by
// glog once per batch; print each distinct one once, with the rank.
class OnceWarningHandler : public c10::WarningHandler {
 public:
  explicit OnceWarningHandler(int rank) : rank_(rank) {}
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (seen_.insert(msg).second) Log(rank_).warn("LibTorch: " + msg + " (shown once)");
  }

 private:
  int rank_;
  std::mutex mutex_;
  std::set<std::string> seen_;
};

// One thread pool per process: LibTorch's. OpenBLAS's own pool would fight it, so it is pinned
// to one thread (as OPENBLAS_NUM_THREADS=1 would, but also when the variable is not set).
void set_threads(int threads) {
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
}

int run_pipeline(const RunConfig& cfg, int* argc, char*** argv) {
  MpiEnvironment env(argc, argv);
  MpiComm comm(MPI_COMM_WORLD);
  Log log(comm.rank(), cfg.quiet);
  if (comm.size() < 2) {
    log.error(
        "edgepipe run needs at least 2 ranks (rank 0 dispatches, ranks 1.. run stages); "
        "got " +
        std::to_string(comm.size()) + ": start it with mpirun -n K, K >= 2");
    return 1;
  }
  set_threads(cfg.threads);
  MpiChannel ch(comm);
  return comm.rank() == 0 ? run_dispatcher(cfg, ch, log) : run_worker(cfg, ch, log);
}

// A bad option: under a launcher every rank parses the same command line and fails alike, and
// the launcher ends the job as soon as one rank exits, possibly before rank 0 has printed. So
// rank 0 reports at once; the others wait a few seconds for the launcher to end them after rank
// 0's exit (a stop signal) and report the error themselves if it does not: someone always says.
int option_error(const std::exception& e, int rank) {
  using namespace std::chrono_literals;
  for (int waited_ms = 0; rank != 0 && waited_ms < 3000; waited_ms += 10) {
    if (stop_signal()) return 2;
    std::this_thread::sleep_for(10ms);
  }
  Log(rank).error(e);
  return 2;
}

}  // namespace

int cli_main(int argc, char** argv) {
  const int rank = launcher_rank();
  static OnceWarningHandler warnings(rank);
  h5_library_init();  // before any HDF5 call (h5.h)
  try {
    install_stop_signals();
  } catch (const std::exception& e) {
    Log(rank).error(e);
    return 1;
  }
  c10::Warning::set_warning_handler(&warnings);
  if (argc >= 2 && std::string(argv[1]) == "report") {  // reads a run log: no MPI, no Torch
    try {
      return run_report(argc, argv, std::cout);
    } catch (const std::exception& e) {
      Log(0).error(e);
      return 1;
    }
  }
  ParsedCommand cmd;
  try {
    cmd = parse_command_line(argc, argv);
  } catch (const std::exception& e) {
    return option_error(e, rank);
  }
  try {
    switch (cmd.command) {
      case Command::help:
        if (rank == 0) std::cout << cmd.help_text;
        return 0;
      case Command::version:
        std::cout << "edgepipe " << version() << "\n";
        return 0;
      case Command::inspect:
        set_threads(cmd.inspect.threads);
        return run_inspect(cmd.inspect, std::cout);
      case Command::plan:  // profiles here, plans for a described cluster: no MPI
        set_threads(cmd.plan.threads);
        return run_plan_command(cmd.plan, std::cout);
      case Command::single:
        set_threads(cmd.run.threads);
        return run_single(cmd.run, Log(0, cmd.run.quiet));
      case Command::run:
        return run_pipeline(cmd.run, &argc, &argv);
    }
  } catch (const StopRequested& e) {  // a stop signal in a phase without its own clean-up
    Log(rank).error(e);
    return e.exit_status();
  } catch (const std::exception& e) {
    Log(rank).error(e);
    return 1;
  }
  return 0;
}

}  // namespace edgepipe
