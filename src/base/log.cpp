#include "edgepipe/base/log.h"

#include <cstdio>
#include <cstdlib>

#include "edgepipe/base/error.h"

namespace edgepipe {

void Log::info(const std::string& msg) const {
  if (rank_ != 0 || quiet_) return;
  std::fprintf(stdout, "edgepipe (%d): %s\n", rank_, msg.c_str());
  std::fflush(stdout);
}

void Log::warn(const std::string& msg) const {
  std::fprintf(stderr, "edgepipe (%d): warning: %s\n", rank_, msg.c_str());
  std::fflush(stderr);
}

void Log::error(const std::string& msg) const {
  std::fprintf(stderr, "edgepipe (%d): error: %s\n", rank_, msg.c_str());
  std::fflush(stderr);
}

void Log::error(const std::exception& e) const {
  const char* debug = std::getenv("EDGEPIPE_DEBUG");
  const auto* ep = dynamic_cast<const Error*>(&e);
  if (debug && *debug && std::string(debug) != "0" && ep && !ep->where().empty())
    error(std::string(e.what()) + " [raised at " + ep->where() + "]");
  else
    error(std::string(e.what()));
}

}  // namespace edgepipe
