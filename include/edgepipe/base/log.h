// Log lines that carry the rank, "(3): ...". Ranks other than 0 are quiet unless there is an error.
#pragma once
#include <exception>
#include <string>

#include "edgepipe/base/text.h"  // strprintf, for the lines logged

namespace edgepipe {

class Log {
 public:
  Log(int rank = 0, bool quiet = false) : rank_(rank), quiet_(quiet) {}
  // Progress and summaries: printed by rank 0 only, and not with --quiet.
  void info(const std::string& msg) const;
  // Problems that do not stop the run: printed by every rank.
  void warn(const std::string& msg) const;
  // The error that ends the run: printed by every rank.
  void error(const std::string& msg) const;
  // The same for an exception: its message, and with EDGEPIPE_DEBUG=1 in the environment the
  // file and line that raised it (edgepipe::Error, error.h).
  void error(const std::exception& e) const;
  int rank() const { return rank_; }
  bool quiet() const { return quiet_; }

 private:
  int rank_;
  bool quiet_;
};

}  // namespace edgepipe
