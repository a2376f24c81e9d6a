// What the run log's unit tests share: a temporary folder, a file writer, a rank's facts.
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "edgepipe/records/trace.h"

namespace edgepipe {

// A fresh folder under the system's temporary folder, removed with everything in it.
struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("edgepipe-runlog-" + std::to_string(getpid()) + "-" + std::to_string(std::rand()));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

inline void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A rank on `host` that ran for `wall` seconds and used `cpu` CPU seconds (RAPL: `rapl` J).
inline RankFacts facts(const char* host, double wall, double cpu, double rapl = -1) {
  RankFacts f;
  std::strcpy(f.host, host);
  f.t_begin = 1;
  f.t_end = 1 + wall;
  f.cpu_user = cpu;
  f.rapl_joules = rapl;
  std::strcpy(f.rapl_source, "intel-rapl:0");
  return f;
}

}  // namespace edgepipe
