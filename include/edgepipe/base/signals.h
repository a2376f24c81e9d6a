// Termination signals (SIGTERM from Slurm at the time limit or from mpirun, SIGINT from Ctrl-C)
// become a flag. The streaming loops poll it to stop cleanly (outputs flushed, progress
// recorded, resumable); every other long loop (profiling, timing, `single`'s warm-up and loop)
// calls throw_if_stopped(), so that each phase of each command stops promptly, and the command
// ends with exit status 128 + the signal's number, as a shell reports a process it killed.
#pragma once
#include <string>

#include "edgepipe/base/error.h"

namespace edgepipe {

// Installs the handlers for SIGTERM and SIGINT (once per process).
void install_stop_signals();

// 0, or the number of the first signal that asked this process to stop.
int stop_signal();

// "SIGTERM", "SIGINT", ...
const char* signal_name(int signal);

// A stop signal arrived: thrown by throw_if_stopped, caught by cli_main, which prints the message
// and returns exit_status().
class StopRequested : public Error {
 public:
  StopRequested(int signal, const std::string& what, const char* file, int line)
      : Error(what, file, line), signal_(signal) {}
  int signal() const { return signal_; }
  int exit_status() const { return 128 + signal_; }

 private:
  int signal_;
};

// Throws StopRequested("SIGINT arrived <phase>: stopped") if a stop signal has arrived. `phase`
// says where, e.g. "while timing block 3 of the model".
#define EP_THROW_IF_STOPPED(phase) ::edgepipe::throw_if_stopped(phase, __FILE__, __LINE__)
void throw_if_stopped(const std::string& phase, const char* file = nullptr, int line = 0);

}  // namespace edgepipe
