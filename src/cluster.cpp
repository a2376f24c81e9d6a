#include "edgepipe/cluster.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "edgepipe/error.h"

namespace edgepipe {

namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

struct UnitFactor {
  const char* unit;
  double factor;
};

// "12.5 MiB" -> 12.5 and "MiB". Throws if there is no number, or it is negative or not finite.
double split_number(const std::string& text, std::string& unit) {
  const std::string t = trim(text);
  EP_CHECK(!t.empty(), "empty value");
  const char* begin = t.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  EP_CHECK(end != begin, "'", t, "' does not start with a number");
  EP_CHECK(errno == 0 && std::isfinite(v), "'", t, "' is out of range");
  EP_CHECK(v >= 0, "'", t, "' is negative");
  unit = trim(std::string(end));
  return v;
}

double with_unit(const std::string& text, const UnitFactor* units, size_t n_units, bool unit_needed,
                 const char* what, const char* examples) {
  std::string unit;
  double v = split_number(text, unit);
  if (unit.empty() && !unit_needed) return v;
  EP_CHECK(!unit.empty(), "'", trim(text), "' needs a unit, e.g. ", examples);
  for (size_t i = 0; i < n_units; ++i)
    if (unit == units[i].unit) return v * units[i].factor;
  std::string known;
  for (size_t i = 0; i < n_units; ++i) known += (i ? ", " : "") + std::string(units[i].unit);
  EP_FAIL("'", trim(text), "': unknown ", what, " unit '", unit, "' (known: ", known, ")");
}

constexpr double kKi = 1024.0, kMi = kKi * 1024, kGi = kMi * 1024, kTi = kGi * 1024;

const UnitFactor kByteUnits[] = {
    {"B", 1},     {"kB", 1e3},  {"KB", 1e3},  {"MB", 1e6},  {"GB", 1e9},
    {"TB", 1e12}, {"KiB", kKi}, {"MiB", kMi}, {"GiB", kGi}, {"TiB", kTi},
};
const UnitFactor kBandwidthUnits[] = {
    {"bit/s", 1 / 8.0}, {"kbit/s", 1e3 / 8}, {"Mbit/s", 1e6 / 8}, {"Gbit/s", 1e9 / 8},
    {"bps", 1 / 8.0},   {"kbps", 1e3 / 8},   {"Mbps", 1e6 / 8},   {"Gbps", 1e9 / 8},
    {"B/s", 1},         {"kB/s", 1e3},       {"KB/s", 1e3},       {"MB/s", 1e6},
    {"GB/s", 1e9},      {"KiB/s", kKi},      {"MiB/s", kMi},      {"GiB/s", kGi},
};
const UnitFactor kTimeUnits[] = {{"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};

// ---------------------------------------------------------------------------------------------
// The ini reader. Boost's ini parsers (property_tree, program_options) do not keep the line of each
// value, and an error here must name it, so this is a small reader of our own.

struct IniEntry {
  size_t line;
  std::string key, value;
};

struct IniSection {
  std::string name;
  size_t line;
  std::vector<IniEntry> entries;
};

std::vector<IniSection> read_ini(const std::string& text, const std::string& source) {
  std::vector<IniSection> sections;
  std::istringstream in(text);
  std::string raw;
  size_t line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    // A comment starts with # or ; at the start of a line or after a blank.
    std::string line;
    for (size_t i = 0; i < raw.size(); ++i) {
      if ((raw[i] == '#' || raw[i] == ';') &&
          (i == 0 || std::isspace(static_cast<unsigned char>(raw[i - 1]))))
        break;
      line += raw[i];
    }
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      EP_CHECK(line.back() == ']', source, ":", line_no,
               ": a section header needs a closing ']': ", line);
      std::string name = trim(line.substr(1, line.size() - 2));
      EP_CHECK(!name.empty(), source, ":", line_no, ": empty section name");
      for (const IniSection& s : sections)
        EP_CHECK(s.name != name, source, ":", line_no, ": section [", name,
                 "] appears twice (first on line ", s.line, ")");
      sections.push_back({name, line_no, {}});
      continue;
    }
    size_t eq = line.find('=');
    EP_CHECK(eq != std::string::npos, source, ":", line_no,
             ": expected 'key = value' or [section], got: ", line);
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    EP_CHECK(!key.empty(), source, ":", line_no, ": missing key before '='");
    EP_CHECK(!sections.empty(), source, ":", line_no, ": '", key,
             "' is outside any section (start with e.g. [link] or [rank.1])");
    IniSection& sec = sections.back();
    EP_CHECK(!value.empty(), source, ":", line_no, ": [", sec.name, "] ", key, ": missing value");
    for (const IniEntry& e : sec.entries)
      EP_CHECK(e.key != key, source, ":", line_no, ": [", sec.name, "] ", key,
               " is set twice (first on line ", e.line, ")");
    sec.entries.push_back({line_no, key, value});
  }
  return sections;
}

// Parses a whole number >= 0, e.g. a rank id or a count.
size_t parse_index(const std::string& text) {
  const std::string t = trim(text);
  EP_CHECK(!t.empty() && t.size() <= 9 &&
               std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }),
           "'", t, "' is not a whole number");
  return static_cast<size_t>(std::stoul(t));
}

// "3", "1..4", "1,3,5..6" -> rank ids.
std::vector<size_t> parse_rank_set(const std::string& text) {
  std::vector<size_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t dots = item.find("..");
    if (dots == std::string::npos) {
      out.push_back(parse_index(item));
    } else {
      size_t a = parse_index(item.substr(0, dots)), b = parse_index(item.substr(dots + 2));
      EP_CHECK(a <= b, "'", trim(item), "' is an empty range");
      for (size_t r = a; r <= b; ++r) out.push_back(r);
    }
  }
  EP_CHECK(!out.empty(), "no ranks in '", text, "'");
  return out;
}

std::vector<double> parse_number_list(const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::string unit;
    double v = split_number(item, unit);
    EP_CHECK(unit.empty(), "'", trim(item), "' is not a plain number (write times in ms)");
    out.push_back(v);
  }
  return out;
}

// What a [rank.N] or [dispatcher] section says; the NIC values shape the links (see
// docs/planner.md).
struct RankSection {
  size_t first = 0, count = 1, line = 0;
  std::string section;
  RankInfo info;
  bool has_memory = false;
  double nic_bandwidth = -1, nic_latency = -1;  // -1: not set
};

struct LinkSection {
  std::vector<size_t> from, to;
  bool both_ways = true;
  double bandwidth = -1, latency = -1;
  size_t line = 0;
  std::string section;
};

}  // namespace

double parse_bytes(const std::string& text) {
  return with_unit(text, kByteUnits, std::size(kByteUnits), false, "size", "512MiB or 2GB");
}

double parse_bandwidth(const std::string& text) {
  double v = with_unit(text, kBandwidthUnits, std::size(kBandwidthUnits), true, "bandwidth",
                       "100Mbit/s or 12.5MB/s");
  EP_CHECK(v > 0, "a bandwidth must be above 0, got '", trim(text), "'");
  return v;
}

double parse_duration(const std::string& text) {
  return with_unit(text, kTimeUnits, std::size(kTimeUnits), true, "time", "1ms or 250us");
}

std::string format_bytes(double bytes) {
  char buf[64];
  if (bytes >= kGi)
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / kGi);
  else if (bytes >= kMi)
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / kMi);
  else if (bytes >= kKi)
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / kKi);
  else
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  return buf;
}

std::string format_bandwidth(double bytes_per_s) {
  char buf[64];
  double bits = bytes_per_s * 8;
  if (bits >= 1e9)
    std::snprintf(buf, sizeof buf, "%.3g Gbit/s", bits / 1e9);
  else if (bits >= 1e6)
    std::snprintf(buf, sizeof buf, "%.3g Mbit/s", bits / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.3g kbit/s", bits / 1e3);
  return buf;
}

std::string format_duration(double seconds) {
  char buf[64];
  if (seconds >= 1)
    std::snprintf(buf, sizeof buf, "%.3g s", seconds);
  else if (seconds >= 1e-3)
    std::snprintf(buf, sizeof buf, "%.3g ms", seconds * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3g us", seconds * 1e6);
  return buf;
}

Cluster uniform_cluster(size_t stage_ranks, double speed, double memory_bytes, const Link& link) {
  Cluster c;
  c.ranks.resize(stage_ranks + 1);
  for (size_t r = 1; r <= stage_ranks; ++r) {
    c.ranks[r].speed = speed;
    c.ranks[r].memory_bytes = memory_bytes;
  }
  c.links.assign(stage_ranks + 1, std::vector<Link>(stage_ranks + 1, link));
  return c;
}

Cluster load_cluster(const std::string& path) {
  std::ifstream in(path);
  EP_CHECK(in, "cannot read the cluster description ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cluster(text.str(), path);
}

Cluster parse_cluster(const std::string& text, const std::string& source) {
  const std::vector<IniSection> sections = read_ini(text, source);

  double default_bandwidth = -1, default_latency = -1;
  RankSection dispatcher;
  dispatcher.section = "dispatcher";
  std::vector<RankSection> rank_sections;
  std::vector<LinkSection> link_sections;

  for (const IniSection& sec : sections) {
    // Every error below names the file, the line, the section and the key.
    const std::string where_sec = source + ":" + std::to_string(sec.line) + ": [" + sec.name + "]";
    auto where = [&](const IniEntry& e) {
      return source + ":" + std::to_string(e.line) + ": [" + sec.name + "] " + e.key;
    };
    auto value_of = [&](const IniEntry& e, auto parse) {
      try {
        return parse(e.value);
      } catch (const Error& err) {
        EP_FAIL(where(e), ": ", err.what());
      }
    };
    auto unknown = [&](const IniEntry& e, const char* known) {
      EP_FAIL(where(e), ": unknown key (known here: ", known, ")");
    };

    if (sec.name == "link") {
      for (const IniEntry& e : sec.entries) {
        if (e.key == "bandwidth")
          default_bandwidth = value_of(e, parse_bandwidth);
        else if (e.key == "latency")
          default_latency = value_of(e, parse_duration);
        else
          unknown(e, "bandwidth, latency");
      }
    } else if (sec.name.rfind("link.", 0) == 0) {
      LinkSection ls;
      ls.line = sec.line;
      ls.section = sec.name;
      std::string pair = sec.name.substr(5);
      size_t sep = pair.find('>');
      if (sep != std::string::npos) {
        ls.both_ways = false;
      } else {
        sep = pair.find('-');
      }
      EP_CHECK(sep != std::string::npos, where_sec,
               ": a link section names two rank sets, e.g. [link.1-2] (both ways), [link.1>2] (one "
               "way) or [link.1..4-5..8]");
      try {
        ls.from = parse_rank_set(pair.substr(0, sep));
        ls.to = parse_rank_set(pair.substr(sep + 1));
      } catch (const Error& err) {
        EP_FAIL(where_sec, ": ", err.what());
      }
      for (const IniEntry& e : sec.entries) {
        if (e.key == "bandwidth")
          ls.bandwidth = value_of(e, parse_bandwidth);
        else if (e.key == "latency")
          ls.latency = value_of(e, parse_duration);
        else
          unknown(e, "bandwidth, latency");
      }
      EP_CHECK(ls.bandwidth >= 0 || ls.latency >= 0, where_sec, ": set bandwidth and/or latency");
      link_sections.push_back(ls);
    } else if (sec.name == "dispatcher" || sec.name.rfind("rank.", 0) == 0) {
      const bool is_dispatcher = sec.name == "dispatcher";
      RankSection rs;
      rs.line = sec.line;
      rs.section = sec.name;
      if (!is_dispatcher) {
        try {
          rs.first = parse_index(sec.name.substr(5));
        } catch (const Error& err) {
          EP_FAIL(where_sec, ": ", err.what(), " (rank sections are [rank.1], [rank.2], ...)");
        }
        EP_CHECK(rs.first >= 1, where_sec,
                 ": rank 0 is the dispatcher: describe its links in [dispatcher]");
      }
      bool has_speed = false;
      for (const IniEntry& e : sec.entries) {
        if (e.key == "name") {
          rs.info.name = e.value;
        } else if (e.key == "bandwidth") {
          rs.nic_bandwidth = value_of(e, parse_bandwidth);
        } else if (e.key == "latency") {
          rs.nic_latency = value_of(e, parse_duration);
        } else if (is_dispatcher) {
          unknown(e, "name, bandwidth, latency; the dispatcher runs no stage");
        } else if (e.key == "count") {
          rs.count = value_of(e, parse_index);
          EP_CHECK(rs.count >= 1, where(e), ": must be at least 1");
        } else if (e.key == "speed") {
          rs.info.speed = value_of(e, [](const std::string& v) {
            std::string unit;
            double s = split_number(v, unit);
            EP_CHECK(unit.empty(), "'", v,
                     "' is not a plain number (speed is relative: 1.0 = the "
                     "reference)");
            EP_CHECK(s > 0, "speed must be above 0");
            return s;
          });
          has_speed = true;
        } else if (e.key == "memory") {
          rs.info.memory_bytes = value_of(e, parse_bytes);
          rs.has_memory = true;
        } else if (e.key == "block_ms") {
          rs.info.block_ms = value_of(e, parse_number_list);
        } else {
          unknown(e, "count, name, speed, block_ms, memory, bandwidth, latency");
        }
      }
      EP_CHECK(!(has_speed && !rs.info.block_ms.empty()), where_sec,
               ": set speed or block_ms, not both (block_ms overrides speed)");
      if (is_dispatcher) {
        dispatcher = rs;
      } else {
        EP_CHECK(rs.has_memory, where_sec,
                 ": memory is missing (what one stage may use on this rank, e.g. memory = 512MiB)");
        rank_sections.push_back(rs);
      }
    } else {
      EP_FAIL(where_sec,
              ": unknown section (known: [link], [link.A-B], [link.A>B], [dispatcher], "
              "[rank.N])");
    }
  }

  // Ranks 1..R, each described once.
  EP_CHECK(!rank_sections.empty(), source,
           ": no stage ranks: add e.g. [rank.1] with count, speed "
           "and memory");
  size_t num_stage_ranks = 0;
  for (const RankSection& rs : rank_sections)
    num_stage_ranks = std::max(num_stage_ranks, rs.first + rs.count - 1);
  EP_CHECK(num_stage_ranks <= 100000, source, ": too many ranks (", num_stage_ranks, ")");
  std::vector<const RankSection*> owner(num_stage_ranks + 1, nullptr);
  owner[0] = &dispatcher;
  for (const RankSection& rs : rank_sections) {
    for (size_t r = rs.first; r < rs.first + rs.count; ++r) {
      EP_CHECK(owner[r] == nullptr, source, ":", rs.line, ": [", rs.section, "]: rank ", r,
               " is already described by [", owner[r]->section, "] on line ", owner[r]->line);
      owner[r] = &rs;
    }
  }
  for (size_t r = 1; r <= num_stage_ranks; ++r)
    EP_CHECK(owner[r] != nullptr, source, ": rank ", r, " is not described (ranks are numbered 1..",
             num_stage_ranks, " without gaps; use count = N to repeat a rank)");

  Cluster c;
  c.ranks.resize(num_stage_ranks + 1);
  for (size_t r = 0; r <= num_stage_ranks; ++r) c.ranks[r] = owner[r]->info;

  // Links: min of the two ends' bandwidths and max of their latencies (a rank's own values, else
  // [link]'s), then [link.A-B] sections in file order.
  c.links.assign(num_stage_ranks + 1, std::vector<Link>(num_stage_ranks + 1));
  for (size_t a = 0; a <= num_stage_ranks; ++a) {
    for (size_t b = 0; b <= num_stage_ranks; ++b) {
      if (a == b) continue;
      auto nic = [&](double own, double dflt) { return own >= 0 ? own : dflt; };
      double bw_a = nic(owner[a]->nic_bandwidth, default_bandwidth);
      double bw_b = nic(owner[b]->nic_bandwidth, default_bandwidth);
      double lat_a = nic(owner[a]->nic_latency, default_latency);
      double lat_b = nic(owner[b]->nic_latency, default_latency);
      Link& l = c.links[a][b];
      l.bandwidth_Bps = (bw_a >= 0 && bw_b >= 0) ? std::min(bw_a, bw_b) : -1;
      l.latency_s = std::max({lat_a, lat_b, 0.0});
    }
  }
  for (const LinkSection& ls : link_sections) {
    for (size_t a : ls.from) {
      for (size_t b : ls.to) {
        EP_CHECK(a <= num_stage_ranks && b <= num_stage_ranks, source, ":", ls.line, ": [",
                 ls.section, "]: rank ", std::max(a, b), " does not exist (ranks are 0..",
                 num_stage_ranks, ", 0 = the dispatcher)");
        if (a == b) continue;
        for (int dir = 0; dir < (ls.both_ways ? 2 : 1); ++dir) {
          Link& l = dir == 0 ? c.links[a][b] : c.links[b][a];
          if (ls.bandwidth >= 0) l.bandwidth_Bps = ls.bandwidth;
          if (ls.latency >= 0) l.latency_s = ls.latency;
        }
      }
    }
  }
  for (size_t a = 0; a <= num_stage_ranks; ++a)
    for (size_t b = 0; b <= num_stage_ranks; ++b)
      EP_CHECK(a == b || c.links[a][b].bandwidth_Bps > 0, source,
               ": no bandwidth for the link from "
               "rank ",
               a, " to rank ", b,
               ": set bandwidth in [link] (the default), in the ranks' "
               "sections, or in a [link.",
               a, "-", b, "] section");
  return c;
}

}  // namespace edgepipe
