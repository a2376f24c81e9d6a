#include "edgepipe/log.h"

#include <cstdarg>
#include <cstdio>

namespace edgepipe {

std::string strprintf(const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

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

}  // namespace edgepipe
