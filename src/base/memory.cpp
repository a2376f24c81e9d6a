#include "edgepipe/base/memory.h"

#include <malloc.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace edgepipe {

namespace {

// "  12345 kB" after the key: bytes, or -1.
int64_t kib_field(const std::string& line, size_t key_size) {
  const char* p = line.c_str() + key_size;
  char* end = nullptr;
  const long long kib = std::strtoll(p, &end, 10);
  if (end == p || kib < 0) return -1;
  while (*end == ' ' || *end == '\t') ++end;
  if (std::string(end).rfind("kB", 0) != 0) return -1;
  return static_cast<int64_t>(kib) * 1024;
}

}  // namespace

ProcMemory parse_proc_status(const std::string& status) {
  ProcMemory m;
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_bytes = kib_field(line, 6);
    if (line.rfind("VmHWM:", 0) == 0) m.hwm_bytes = kib_field(line, 6);
  }
  return m;
}

ProcMemory read_proc_memory() {
  std::ifstream f("/proc/self/status");
  if (!f) return {};
  std::ostringstream text;
  text << f.rdbuf();
  return parse_proc_status(text.str());
}

bool reset_peak_rss(const std::string& clear_refs) {
  std::ofstream f(clear_refs);
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

bool release_free_memory() { return malloc_trim(0) != 0; }

}  // namespace edgepipe
