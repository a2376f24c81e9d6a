// Termination signals (SIGTERM from Slurm at the time limit or from mpirun, SIGINT from Ctrl-C)
// become a flag that the dispatcher's and the workers' loops poll, so that a run stops cleanly:
// outputs flushed, progress recorded, resumable.
#pragma once

namespace edgepipe {

// Installs the handlers for SIGTERM and SIGINT (once per process).
void install_stop_signals();

// 0, or the number of the first signal that asked this process to stop.
int stop_signal();

// "SIGTERM", "SIGINT", ...
const char* signal_name(int signal);

}  // namespace edgepipe
