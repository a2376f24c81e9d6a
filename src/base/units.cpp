#include "edgepipe/base/units.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"

namespace edgepipe {

namespace {

struct UnitFactor {
  const char* unit;
  double factor;
};

double with_unit(const std::string& text, const UnitFactor* units, size_t n_units, bool unit_needed,
                 const char* what, const char* examples) {
  std::string unit;
  double v = split_number(text, unit);
  if (unit.empty() && !unit_needed) return v;
  EP_CHECK_AS(ConfigError, !unit.empty(), "'", trim(text), "' needs a unit, e.g. ", examples);
  for (size_t i = 0; i < n_units; ++i)
    if (unit == units[i].unit) return v * units[i].factor;
  std::string known;
  for (size_t i = 0; i < n_units; ++i) known += (i ? ", " : "") + std::string(units[i].unit);
  EP_FAIL_AS(ConfigError, "'", trim(text), "': unknown ", what, " unit '", unit,
             "' (known: ", known, ")");
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

}  // namespace

double split_number(const std::string& text, std::string& unit) {
  const std::string t = trim(text);
  EP_CHECK_AS(ConfigError, !t.empty(), "empty value");
  const char* begin = t.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  EP_CHECK_AS(ConfigError, end != begin, "'", t, "' does not start with a number");
  EP_CHECK_AS(ConfigError, errno == 0 && std::isfinite(v), "'", t, "' is out of range");
  EP_CHECK_AS(ConfigError, v >= 0, "'", t, "' is negative");
  unit = trim(std::string(end));
  return v;
}

double parse_bytes(const std::string& text) {
  return with_unit(text, kByteUnits, std::size(kByteUnits), false, "size", "512MiB or 2GB");
}

double parse_bandwidth(const std::string& text) {
  double v = with_unit(text, kBandwidthUnits, std::size(kBandwidthUnits), true, "bandwidth",
                       "100Mbit/s or 12.5MB/s");
  EP_CHECK_AS(ConfigError, v > 0, "a bandwidth must be above 0, got '", trim(text), "'");
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

}  // namespace edgepipe
