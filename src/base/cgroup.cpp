#include "edgepipe/base/cgroup.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

namespace edgepipe {

namespace {

// One cgroup hierarchy as mounted: which part of it (`root`, "/" for all of it) and where.
struct CgroupMount {
  std::string root;
  std::string point;
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

bool has_item(const std::string& comma_list, const std::string& name) {
  const auto items = split(comma_list, ',');
  return std::find(items.begin(), items.end(), name) != items.end();
}

// mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::strtol(oct.c_str(), nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// The v2 hierarchy (controller "") or the v1 one that carries `controller`. Without a readable
// mountinfo: the usual places under /sys/fs/cgroup.
std::optional<CgroupMount> find_mount(const CgroupFiles& f, const std::string& controller) {
  std::ifstream in(f.mountinfo);
  if (!in) {
    const std::string point =
        f.root + "/sys/fs/cgroup" + (controller.empty() ? "" : "/" + controller);
    return CgroupMount{"/", point};
  }
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    const auto fields = split(line, ' ');
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string& fstype = dash[1];
    const bool match = controller.empty() ? fstype == "cgroup2"
                                          : fstype == "cgroup" && has_item(dash[3], controller);
    if (match) return CgroupMount{unescape(fields[3]), f.root + unescape(fields[4])};
  }
  return std::nullopt;
}

// This process's cgroup in that hierarchy, from /proc/self/cgroup ("ID:CONTROLLERS:PATH").
std::optional<std::string> find_path(const CgroupFiles& f, const std::string& controller) {
  std::ifstream in(f.self_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const bool match = controller.empty() ? line.substr(0, a) == "0" && controllers.empty()
                                          : has_item(controllers, controller);
    if (match) return line.substr(b + 1);
  }
  return std::nullopt;
}

// The directories of this process's cgroup and of each of its ancestors up to the mount point.
std::vector<std::string> cgroup_dirs(const CgroupFiles& f, const std::string& controller) {
  const auto mount = find_mount(f, controller);
  const auto path = find_path(f, controller);
  if (!mount || !path) return {};
  std::string rel = *path;
  // A mount of part of the hierarchy (a container's own cgroup) holds the paths below its root.
  if (mount->root != "/")
    rel = rel.rfind(mount->root, 0) == 0 ? rel.substr(mount->root.size()) : "";
  // Outside the mounted part ("/../.." under a cgroup namespace): only the mount point is ours.
  if (rel.find("..") != std::string::npos) rel.clear();
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  if (!rel.empty() && rel[0] != '/') rel = "/" + rel;
  std::string dir = mount->point + rel;
  std::vector<std::string> dirs{dir};
  while (dir.size() > mount->point.size()) {
    dir.erase(dir.rfind('/'));
    dirs.push_back(dir);
  }
  return dirs;
}

// The first word of a file, or "" when it cannot be read.
std::string first_word(const std::string& path, std::string* second = nullptr) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word)) return "";
  if (second && !(in >> *second)) second->clear();
  return word;
}

// A positive integer, or 0 for anything else ("max", -1, garbage).
int64_t positive(const std::string& text) {
  if (text.empty()) return 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  return end && *end == '\0' && v > 0 ? v : 0;
}

// The smaller of two limits where 0 means none.
template <typename T>
T smaller_limit(T a, T b) {
  return a <= 0 ? b : b <= 0 ? a : std::min(a, b);
}

}  // namespace

int64_t cgroup_memory_limit(const CgroupFiles& files) {
  int64_t limit = 0;
  for (const auto& dir : cgroup_dirs(files, ""))
    limit = smaller_limit(limit, positive(first_word(dir + "/memory.max")));
  for (const auto& dir : cgroup_dirs(files, "memory")) {
    const int64_t v = positive(first_word(dir + "/memory.limit_in_bytes"));
    // v1 says "no limit" with a huge number (the largest page multiple below 2^63).
    if (v < (int64_t(1) << 60)) limit = smaller_limit(limit, v);
  }
  return limit;
}

double cgroup_cpu_limit(const CgroupFiles& files) {
  double cpus = 0;
  for (const auto& dir : cgroup_dirs(files, "")) {
    std::string period;
    const int64_t quota = positive(first_word(dir + "/cpu.max", &period));
    if (quota > 0 && positive(period) > 0)
      cpus = smaller_limit(cpus, static_cast<double>(quota) / positive(period));
  }
  for (const auto& dir : cgroup_dirs(files, "cpu")) {
    const int64_t quota = positive(first_word(dir + "/cpu.cfs_quota_us"));
    const int64_t period = positive(first_word(dir + "/cpu.cfs_period_us"));
    if (quota > 0 && period > 0) cpus = smaller_limit(cpus, static_cast<double>(quota) / period);
  }
  return cpus;
}

}  // namespace edgepipe
