#include "edgepipe/wire/codec_spec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"

namespace edgepipe {

namespace {

struct NameInfo {
  const char* name;
  CodecKind kind;
  const char* param;  // placeholder for the help text, nullptr: takes no parameter
};

const NameInfo kNames[] = {
    {"raw", CodecKind::raw, nullptr},
    {"lz4", CodecKind::lz4, nullptr},
    {"zfp-reversible", CodecKind::zfp_reversible, nullptr},
    {"zfp-rate", CodecKind::zfp_rate, "R"},
    {"zfp-precision", CodecKind::zfp_precision, "P"},
    {"zfp-accuracy", CodecKind::zfp_accuracy, "E"},
    {"zfp-relacc", CodecKind::zfp_relacc, "E"},
    {"q8", CodecKind::q8, nullptr},
    {"q4", CodecKind::q4, nullptr},
    {"q2", CodecKind::q2, nullptr},
};

std::string usage_of(const NameInfo& n) {
  return n.param ? std::string(n.name) + ":" + n.param : std::string(n.name);
}

std::string all_names() {
  std::string s;
  for (const auto& n : kNames) s += (s.empty() ? "" : ", ") + usage_of(n);
  return s + ", and any zfp mode, q8, q4 or q2 followed by +lz4";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool parse_number(const std::string& s, double* v) {
  if (s.empty()) return false;
  size_t used = 0;
  try {
    *v = std::stod(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size() && std::isfinite(*v);
}

// The shortest decimal that reads back as exactly v.
std::string shortest(double v) {
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::stod(buf) == v) break;
  }
  return buf;
}

}  // namespace

std::string CodecSpec::name() const {
  for (const auto& n : kNames) {
    if (n.kind != kind) continue;
    std::string s = n.name;
    if (n.param) s += ":" + shortest(param);
    if (lz4) s += "+lz4";
    return s;
  }
  return "unknown";
}

CodecSpec parse_codec(const std::string& text_in) {
  const std::string text = lower(trim(text_in));
  CodecSpec spec;
  std::string base = text;
  const std::string suffix = "+lz4";
  if (base.size() > suffix.size() &&
      base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
    spec.lz4 = true;
    base.resize(base.size() - suffix.size());
  }
  const size_t colon = base.find(':');
  const std::string name = base.substr(0, colon);
  const std::string param = colon == std::string::npos ? "" : base.substr(colon + 1);
  const NameInfo* info = nullptr;
  for (const auto& n : kNames)
    if (name == n.name) info = &n;
  if (!info || base.find('+') != std::string::npos) {
    // Suggest the nearest name, compared with and without the parameter.
    const NameInfo* best = nullptr;
    size_t best_d = ~size_t(0);
    for (const auto& n : kNames) {
      size_t d = std::min(edit_distance(name, n.name), edit_distance(text, usage_of(n)));
      if (d < best_d) best_d = d, best = &n;
    }
    std::string hint = best && best_d <= std::max<size_t>(2, name.size() / 3)
                           ? "did you mean '" + usage_of(*best) + "'? "
                           : std::string();
    EP_FAIL_AS(ConfigError, "unknown codec '", text_in, "': ", hint, "codecs are ", all_names());
  }
  spec.kind = info->kind;
  if (spec.lz4)
    EP_CHECK_AS(ConfigError, spec.is_zfp() || spec.is_quant(), "codec '", text_in,
                "': '+lz4' can only follow a zfp mode, q8, q4 or q2 (",
                name == "raw" ? "use 'lz4'" : "lz4 is applied once", ")");
  if (!info->param) {
    EP_CHECK_AS(ConfigError, colon == std::string::npos, "codec '", text_in, "': ", info->name,
                " takes no parameter");
    return spec;
  }
  double v = 0;
  EP_CHECK_AS(ConfigError, colon != std::string::npos && parse_number(param, &v), "codec '",
              text_in, "': ", info->name, " needs a number: ", usage_of(*info), ", e.g. ",
              spec.kind == CodecKind::zfp_rate        ? "zfp-rate:8 (bits per value)"
              : spec.kind == CodecKind::zfp_precision ? "zfp-precision:16 (bit planes)"
              : spec.kind == CodecKind::zfp_accuracy
                  ? "zfp-accuracy:1e-3 (absolute error)"
                  : "zfp-relacc:1e-3 (error / largest magnitude)");
  switch (spec.kind) {
    case CodecKind::zfp_rate:
      EP_CHECK_AS(ConfigError, v > 0 && v <= 64, "codec '", text_in,
                  "': the rate is bits per value and must be in (0, 64]");
      break;
    case CodecKind::zfp_precision:
      EP_CHECK_AS(ConfigError, v >= 1 && v <= 64 && v == std::floor(v), "codec '", text_in,
                  "': the precision is a whole number of bit planes in [1, 64]");
      break;
    case CodecKind::zfp_accuracy:
      EP_CHECK_AS(ConfigError, v > 0, "codec '", text_in, "': the error bound must be positive");
      break;
    case CodecKind::zfp_relacc:
      EP_CHECK_AS(ConfigError, v > 0 && v <= 1, "codec '", text_in,
                  "': the relative error bound must be in (0, 1]");
      break;
    default:
      break;
  }
  spec.param = v;
  return spec;
}

const CodecSpec& LinkCodecs::for_link(int link) const {
  auto it = per_link.find(link);
  return it == per_link.end() ? all : it->second;
}

void LinkCodecs::check_links(int ranks) const {
  for (const auto& [link, spec] : per_link) {
    (void)spec;
    EP_CHECK_AS(ConfigError, link >= 1 && link <= ranks, "--codec names link ", link,
                ", but a job of ", ranks, " ranks has links 1..", ranks,
                " (link i carries data into rank i; link ", ranks,
                " carries the last stage's results back to rank 0)");
  }
}

std::string LinkCodecs::text() const {
  std::string s = per_link.empty() || all != CodecSpec{} ? all.name() : std::string();
  for (const auto& [link, spec] : per_link)
    s += (s.empty() ? "" : ",") + std::to_string(link) + "=" + spec.name();
  return s;
}

LinkCodecs parse_link_codecs(const std::string& text) {
  LinkCodecs lc;
  bool have_default = false;
  std::stringstream in(text);
  std::string item;
  int items = 0;
  while (std::getline(in, item, ',')) {
    ++items;
    item = trim(item);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      EP_CHECK_AS(ConfigError, !have_default, "--codec '", text,
                  "' gives two codecs for all links ('", lc.all.name(), "' and '", item,
                  "'); name the link of one: N=CODEC");
      lc.all = parse_codec(item);
      have_default = true;
      continue;
    }
    const std::string num = trim(item.substr(0, eq));
    size_t used = 0;
    long link = 0;
    try {
      link = std::stol(num, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    EP_CHECK_AS(ConfigError, used == num.size() && !num.empty() && link >= 1 && link <= 1 << 20,
                "--codec '", text, "': '", num,
                "' is not a link number (links are 1, 2, ...: link i carries ",
                "data into rank i)");
    EP_CHECK_AS(ConfigError, !lc.per_link.count(static_cast<int>(link)), "--codec '", text,
                "' names link ", link, " twice");
    lc.per_link[static_cast<int>(link)] = parse_codec(item.substr(eq + 1));
  }
  EP_CHECK_AS(ConfigError, items > 0,
              "--codec is empty: give a codec name such as raw, lz4 or zfp-rate:8");
  return lc;
}

}  // namespace edgepipe
