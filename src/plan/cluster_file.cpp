#include "edgepipe/plan/cluster_file.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"
#include "edgepipe/base/units.h"

namespace edgepipe {

namespace {

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
      EP_CHECK_AS(ConfigError, line.back() == ']', source, ":", line_no,
                  ": a section header needs a closing ']': ", line);
      std::string name = trim(line.substr(1, line.size() - 2));
      EP_CHECK_AS(ConfigError, !name.empty(), source, ":", line_no, ": empty section name");
      for (const IniSection& s : sections)
        EP_CHECK_AS(ConfigError, s.name != name, source, ":", line_no, ": section [", name,
                    "] appears twice (first on line ", s.line, ")");
      sections.push_back({name, line_no, {}});
      continue;
    }
    size_t eq = line.find('=');
    EP_CHECK_AS(ConfigError, eq != std::string::npos, source, ":", line_no,
                ": expected 'key = value' or [section], got: ", line);
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    EP_CHECK_AS(ConfigError, !key.empty(), source, ":", line_no, ": missing key before '='");
    EP_CHECK_AS(ConfigError, !sections.empty(), source, ":", line_no, ": '", key,
                "' is outside any section (start with e.g. [link] or [rank.1])");
    IniSection& sec = sections.back();
    EP_CHECK_AS(ConfigError, !value.empty(), source, ":", line_no, ": [", sec.name, "] ", key,
                ": missing value");
    for (const IniEntry& e : sec.entries)
      EP_CHECK_AS(ConfigError, e.key != key, source, ":", line_no, ": [", sec.name, "] ", key,
                  " is set twice (first on line ", e.line, ")");
    sec.entries.push_back({line_no, key, value});
  }
  return sections;
}

// Parses a whole number >= 0, e.g. a rank id or a count.
size_t parse_index(const std::string& text) {
  const std::string t = trim(text);
  EP_CHECK_AS(ConfigError,
              !t.empty() && t.size() <= 9 &&
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
      EP_CHECK_AS(ConfigError, a <= b, "'", trim(item), "' is an empty range");
      for (size_t r = a; r <= b; ++r) out.push_back(r);
    }
  }
  EP_CHECK_AS(ConfigError, !out.empty(), "no ranks in '", text, "'");
  return out;
}

std::vector<double> parse_number_list(const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::string unit;
    double v = split_number(item, unit);
    EP_CHECK_AS(ConfigError, unit.empty(), "'", trim(item),
                "' is not a plain number (write times in ms)");
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
  double nic_bandwidth = -1, nic_latency = -1, nic_loss = -1;  // -1: not set
};

struct LinkSection {
  std::vector<size_t> from, to;
  bool both_ways = true;
  double bandwidth = -1, latency = -1, loss = -1;
  size_t line = 0;
  std::string section;
};

// "0.5%" or 0.005 -> 0.005: a fraction of packets lost, in [0, 1).
double parse_loss(const std::string& text) {
  std::string unit;
  double v = split_number(text, unit);
  EP_CHECK_AS(ConfigError, unit.empty() || unit == "%", "'", trim(text),
              "' is not a fraction or a percentage (e.g. 0.5% or 0.005)");
  if (unit == "%") v /= 100;
  EP_CHECK_AS(ConfigError, v < 1, "a loss must be below 100%, got '", trim(text), "'");
  return v;
}

// "0.25" -> 0.25 cores: a node's CPU share (a cgroup quota on emulated nodes).
double parse_cpu(const std::string& text) {
  std::string unit;
  double v = split_number(text, unit);
  EP_CHECK_AS(ConfigError, unit.empty(), "'", trim(text),
              "' is not a plain number of cores (e.g. 0.25 for a quarter of a core)");
  EP_CHECK_AS(ConfigError, v > 0, "a CPU share must be above 0");
  return v;
}

// ---------------------------------------------------------------------------------------------
// The sections, read one at a time. Every error names the file, the line, the section and the key.

// What the sections say, before ranks and links are built from it.
struct ClusterSections {
  double default_bandwidth = -1, default_latency = -1, default_loss = -1;  // [link]; -1: not set
  RankSection dispatcher;
  std::vector<RankSection> ranks;
  std::vector<LinkSection> links;
};

// One section being read: where its errors point, and its values parsed with their place.
struct SectionReader {
  const std::string& source;
  const IniSection& sec;

  std::string where_sec() const {
    return source + ":" + std::to_string(sec.line) + ": [" + sec.name + "]";
  }
  std::string where(const IniEntry& e) const {
    return source + ":" + std::to_string(e.line) + ": [" + sec.name + "] " + e.key;
  }
  template <typename Parse>
  auto value_of(const IniEntry& e, Parse parse) const {
    try {
      return parse(e.value);
    } catch (const Error& err) {
      EP_FAIL_AS(ConfigError, where(e), ": ", err.what());
    }
  }
  [[noreturn]] void unknown(const IniEntry& e, const char* known) const {
    EP_FAIL_AS(ConfigError, where(e), ": unknown key (known here: ", known, ")");
  }
  // bandwidth, latency, loss: the keys of [link] and [link.A-B]. Returns whether `e` is one.
  bool link_key(const IniEntry& e, double& bandwidth, double& latency, double& loss) const {
    if (e.key == "bandwidth")
      bandwidth = value_of(e, parse_bandwidth);
    else if (e.key == "latency")
      latency = value_of(e, parse_duration);
    else if (e.key == "loss")
      loss = value_of(e, parse_loss);
    else
      return false;
    return true;
  }
};

void read_link_defaults(const SectionReader& in, ClusterSections& out) {
  for (const IniEntry& e : in.sec.entries)
    if (!in.link_key(e, out.default_bandwidth, out.default_latency, out.default_loss))
      in.unknown(e, "bandwidth, latency, loss");
}

// [link.A-B] (both ways) or [link.A>B] (one way).
LinkSection read_link_section(const SectionReader& in) {
  LinkSection ls;
  ls.line = in.sec.line;
  ls.section = in.sec.name;
  const std::string pair = in.sec.name.substr(5);
  size_t sep = pair.find('>');
  if (sep != std::string::npos) {
    ls.both_ways = false;
  } else {
    sep = pair.find('-');
  }
  EP_CHECK_AS(ConfigError, sep != std::string::npos, in.where_sec(),
              ": a link section names two rank sets, e.g. [link.1-2] (both ways), [link.1>2] (one "
              "way) or [link.1..4-5..8]");
  try {
    ls.from = parse_rank_set(pair.substr(0, sep));
    ls.to = parse_rank_set(pair.substr(sep + 1));
  } catch (const Error& err) {
    EP_FAIL_AS(ConfigError, in.where_sec(), ": ", err.what());
  }
  for (const IniEntry& e : in.sec.entries)
    if (!in.link_key(e, ls.bandwidth, ls.latency, ls.loss))
      in.unknown(e, "bandwidth, latency, loss");
  EP_CHECK_AS(ConfigError, ls.bandwidth >= 0 || ls.latency >= 0 || ls.loss >= 0, in.where_sec(),
              ": set bandwidth, latency and/or loss");
  return ls;
}

double parse_speed(const std::string& v) {
  std::string unit;
  double s = split_number(v, unit);
  EP_CHECK_AS(ConfigError, unit.empty(), "'", v,
              "' is not a plain number (speed is relative: 1.0 = the "
              "reference)");
  EP_CHECK_AS(ConfigError, s > 0, "speed must be above 0");
  return s;
}

// One key of [rank.N] or [dispatcher]; `has_speed` records whether speed was set.
void read_rank_key(const SectionReader& in, const IniEntry& e, bool is_dispatcher, RankSection& rs,
                   bool& has_speed) {
  if (in.link_key(e, rs.nic_bandwidth, rs.nic_latency, rs.nic_loss)) return;
  if (e.key == "name") {
    rs.info.name = e.value;
  } else if (e.key == "cpu") {
    rs.info.cpu_cores = in.value_of(e, parse_cpu);
  } else if (is_dispatcher) {
    in.unknown(e, "name, bandwidth, latency, loss, cpu; the dispatcher runs no stage");
  } else if (e.key == "count") {
    rs.count = in.value_of(e, parse_index);
    EP_CHECK_AS(ConfigError, rs.count >= 1, in.where(e), ": must be at least 1");
  } else if (e.key == "speed") {
    rs.info.speed = in.value_of(e, parse_speed);
    has_speed = true;
  } else if (e.key == "memory") {
    rs.info.memory_bytes = in.value_of(e, parse_bytes);
    rs.has_memory = true;
  } else if (e.key == "block_ms") {
    rs.info.block_ms = in.value_of(e, parse_number_list);
  } else {
    in.unknown(e, "count, name, speed, block_ms, memory, bandwidth, latency, loss, cpu");
  }
}

// [rank.N] or [dispatcher].
RankSection read_rank_section(const SectionReader& in, bool is_dispatcher) {
  RankSection rs;
  rs.line = in.sec.line;
  rs.section = in.sec.name;
  if (!is_dispatcher) {
    try {
      rs.first = parse_index(in.sec.name.substr(5));
    } catch (const Error& err) {
      EP_FAIL_AS(ConfigError, in.where_sec(), ": ", err.what(),
                 " (rank sections are [rank.1], [rank.2], ...)");
    }
    EP_CHECK_AS(ConfigError, rs.first >= 1, in.where_sec(),
                ": rank 0 is the dispatcher: describe its links in [dispatcher]");
  }
  bool has_speed = false;
  for (const IniEntry& e : in.sec.entries) read_rank_key(in, e, is_dispatcher, rs, has_speed);
  EP_CHECK_AS(ConfigError, !(has_speed && !rs.info.block_ms.empty()), in.where_sec(),
              ": set speed or block_ms, not both (block_ms overrides speed)");
  EP_CHECK_AS(ConfigError, is_dispatcher || rs.has_memory, in.where_sec(),
              ": memory is missing (what one stage may use on this rank, e.g. memory = 512MiB)");
  return rs;
}

ClusterSections read_sections(const std::vector<IniSection>& sections, const std::string& source) {
  ClusterSections out;
  out.dispatcher.section = "dispatcher";
  for (const IniSection& sec : sections) {
    const SectionReader in{source, sec};
    if (sec.name == "link") {
      read_link_defaults(in, out);
    } else if (sec.name.rfind("link.", 0) == 0) {
      out.links.push_back(read_link_section(in));
    } else if (sec.name == "dispatcher") {
      out.dispatcher = read_rank_section(in, true);
    } else if (sec.name.rfind("rank.", 0) == 0) {
      out.ranks.push_back(read_rank_section(in, false));
    } else {
      EP_FAIL_AS(ConfigError, in.where_sec(),
                 ": unknown section (known: [link], [link.A-B], [link.A>B], [dispatcher], "
                 "[rank.N])");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ranks and links from the sections.

// owner[r]: the section that describes rank r (the dispatcher's for 0); ranks 1..R, each once.
std::vector<const RankSection*> rank_owners(const ClusterSections& cs, const std::string& source) {
  EP_CHECK_AS(ConfigError, !cs.ranks.empty(), source,
              ": no stage ranks: add e.g. [rank.1] with count, speed "
              "and memory");
  size_t R = 0;
  for (const RankSection& rs : cs.ranks) R = std::max(R, rs.first + rs.count - 1);
  EP_CHECK_AS(ConfigError, R <= 100000, source, ": too many ranks (", R, ")");
  std::vector<const RankSection*> owner(R + 1, nullptr);
  owner[0] = &cs.dispatcher;
  for (const RankSection& rs : cs.ranks) {
    for (size_t r = rs.first; r < rs.first + rs.count; ++r) {
      EP_CHECK_AS(ConfigError, owner[r] == nullptr, source, ":", rs.line, ": [", rs.section,
                  "]: rank ", r, " is already described by [", owner[r]->section, "] on line ",
                  owner[r]->line);
      owner[r] = &rs;
    }
  }
  for (size_t r = 1; r <= R; ++r)
    EP_CHECK_AS(ConfigError, owner[r] != nullptr, source, ": rank ", r,
                " is not described (ranks are numbered 1..", R,
                " without gaps; use count = N to repeat a rank)");
  return owner;
}

// The link from a to b by their interfaces: the smaller bandwidth and the larger latency of the
// two ends (a rank's own values, else [link]'s); losses at the two ends are independent.
Link interface_link(const ClusterSections& cs, const RankSection& a, const RankSection& b) {
  auto nic = [](double own, double dflt) { return own >= 0 ? own : dflt; };
  const double bw_a = nic(a.nic_bandwidth, cs.default_bandwidth);
  const double bw_b = nic(b.nic_bandwidth, cs.default_bandwidth);
  const double lat_a = nic(a.nic_latency, cs.default_latency);
  const double lat_b = nic(b.nic_latency, cs.default_latency);
  Link l;
  l.bandwidth_Bps = (bw_a >= 0 && bw_b >= 0) ? std::min(bw_a, bw_b) : -1;
  l.latency_s = std::max({lat_a, lat_b, 0.0});
  // The larger of the two ends' losses, as for latency (tools/emulate drops that share).
  l.loss = std::max({nic(a.nic_loss, cs.default_loss), nic(b.nic_loss, cs.default_loss), 0.0});
  return l;
}

// [link.A-B] sections over the interface links, in file order.
void apply_link_sections(const ClusterSections& cs, const std::string& source, Cluster& c) {
  const size_t R = c.num_stage_ranks();
  for (const LinkSection& ls : cs.links) {
    for (size_t a : ls.from) {
      for (size_t b : ls.to) {
        EP_CHECK_AS(ConfigError, a <= R && b <= R, source, ":", ls.line, ": [", ls.section,
                    "]: rank ", std::max(a, b), " does not exist (ranks are 0..", R,
                    ", 0 = the dispatcher)");
        if (a == b) continue;
        for (int dir = 0; dir < (ls.both_ways ? 2 : 1); ++dir) {
          Link& l = dir == 0 ? c.links[a][b] : c.links[b][a];
          if (ls.bandwidth >= 0) l.bandwidth_Bps = ls.bandwidth;
          if (ls.latency >= 0) l.latency_s = ls.latency;
          if (ls.loss >= 0) l.loss = ls.loss;
        }
      }
    }
  }
}

void check_bandwidths(const Cluster& c, const std::string& source) {
  const size_t R = c.num_stage_ranks();
  for (size_t a = 0; a <= R; ++a)
    for (size_t b = 0; b <= R; ++b)
      EP_CHECK_AS(ConfigError, a == b || c.links[a][b].bandwidth_Bps > 0, source,
                  ": no bandwidth for the link from "
                  "rank ",
                  a, " to rank ", b,
                  ": set bandwidth in [link] (the default), in the ranks' "
                  "sections, or in a [link.",
                  a, "-", b, "] section");
}

}  // namespace

Cluster load_cluster(const std::string& path) {
  std::ifstream in(path);
  EP_CHECK_AS(ConfigError, in, "cannot read the cluster description ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cluster(text.str(), path);
}

Cluster parse_cluster(const std::string& text, const std::string& source) {
  const ClusterSections cs = read_sections(read_ini(text, source), source);
  const std::vector<const RankSection*> owner = rank_owners(cs, source);
  const size_t R = owner.size() - 1;
  Cluster c;
  c.ranks.resize(R + 1);
  for (size_t r = 0; r <= R; ++r) c.ranks[r] = owner[r]->info;
  c.links.assign(R + 1, std::vector<Link>(R + 1));
  for (size_t a = 0; a <= R; ++a)
    for (size_t b = 0; b <= R; ++b)
      if (a != b) c.links[a][b] = interface_link(cs, *owner[a], *owner[b]);
  apply_link_sections(cs, source, c);
  check_bandwidths(c, source);
  return c;
}

}  // namespace edgepipe
