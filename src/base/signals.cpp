#include "edgepipe/base/signals.h"

#include <cerrno>
#include <csignal>
#include <cstring>

namespace edgepipe {

namespace {
// A signal handler can only set a flag of this type: the one piece of file-scope mutable state.
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_stop_signal == 0) g_stop_signal = signal;
}
}  // namespace

void install_stop_signals() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGTERM, SIGINT})
    EP_CHECK(sigaction(signal, &action, nullptr) == 0, "cannot install the handler of ",
             signal_name(signal), ": ", std::strerror(errno));
}

int stop_signal() { return g_stop_signal; }

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "a signal";
  }
}

void throw_if_stopped(const std::string& phase, const char* file, int line) {
  if (const int s = stop_signal())
    throw StopRequested(s, std::string(signal_name(s)) + " arrived " + phase + ": stopped", file,
                        line);
}

}  // namespace edgepipe
