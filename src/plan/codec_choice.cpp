#include "edgepipe/plan/codec_choice.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/text.h"

namespace edgepipe {

std::vector<size_t> link_cuts(const std::vector<Stage>& stages) {
  std::vector<size_t> cuts;
  for (const Stage& s : stages) cuts.push_back(s.first);
  if (!stages.empty()) cuts.push_back(stages.back().end);
  return cuts;
}

ModelCosts with_link_codecs(const ModelCosts& model, const std::vector<Stage>& stages,
                            const std::vector<std::vector<CodecOption>>& links,
                            const std::vector<size_t>& option) {
  const std::vector<size_t> cuts = link_cuts(stages);
  EP_CHECK(links.size() == cuts.size() && option.size() == cuts.size(), "a plan of ", stages.size(),
           " stages has ", cuts.size(), " links; got options for ", links.size(),
           " and a choice for ", option.size());
  ModelCosts m = model;
  const size_t n = m.num_blocks();
  if (m.cut_encode_ms.empty()) m.cut_encode_ms.assign(n + 1, 0.0);
  if (m.cut_decode_ms.empty()) m.cut_decode_ms.assign(n + 1, 0.0);
  for (size_t l = 0; l < cuts.size(); ++l) {
    EP_CHECK(option[l] < links[l].size(), "link ", l + 1, " has ", links[l].size(),
             " codecs; option ", option[l], " asked");
    const CodecOption& o = links[l][option[l]];
    m.cut_bytes.at(cuts[l]) = o.bytes;
    m.cut_encode_ms.at(cuts[l]) = o.encode_ms;
    m.cut_decode_ms.at(cuts[l]) = o.decode_ms;
  }
  return m;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The period's terms by the options of the links they depend on: stage s's by (link s, link
// s + 1), rank 0's by (link 0, link k).
struct Terms {
  std::vector<std::vector<std::vector<double>>> stage;  // [s][a][b]
  std::vector<std::vector<double>> dispatcher;          // [a][b]
};

Terms terms_of(const ModelCosts& model, const Cluster& cluster, const std::vector<Stage>& stages,
               const std::vector<std::vector<CodecOption>>& links) {
  const size_t k = stages.size();
  Terms t;
  std::vector<size_t> option(k + 1, 0);
  t.stage.resize(k);
  for (size_t s = 0; s < k; ++s) {
    t.stage[s].assign(links[s].size(), std::vector<double>(links[s + 1].size(), kInf));
    for (size_t a = 0; a < links[s].size(); ++a)
      for (size_t b = 0; b < links[s + 1].size(); ++b) {
        std::fill(option.begin(), option.end(), 0);
        option[s] = a;
        option[s + 1] = b;
        const PlanCost pc =
            evaluate_plan(with_link_codecs(model, stages, links, option), cluster, stages);
        t.stage[s][a][b] = pc.stages[s].period_s();
      }
  }
  t.dispatcher.assign(links[0].size(), std::vector<double>(links[k].size(), kInf));
  for (size_t a = 0; a < links[0].size(); ++a)
    for (size_t b = 0; b < links[k].size(); ++b) {
      std::fill(option.begin(), option.end(), 0);
      option[0] = a;
      option[k] = b;
      const PlanCost pc =
          evaluate_plan(with_link_codecs(model, stages, links, option), cluster, stages);
      t.dispatcher[a][b] = std::max({pc.dispatcher_s, pc.dispatcher_send_s, pc.dispatcher_recv_s});
    }
  return t;
}

// The least error sum of a choice whose every term is at most `period`, and the choice
// (empty when none is).
std::vector<size_t> least_error_within(const Terms& t,
                                       const std::vector<std::vector<CodecOption>>& links,
                                       double period, double* error_sum) {
  const size_t k = t.stage.size();
  double best = kInf;
  std::vector<size_t> choice;
  for (size_t first = 0; first < links[0].size(); ++first) {
    // err[l][o]: least error of links 0..l with link l on o; from[l][o]: link l - 1's option.
    std::vector<std::vector<double>> err(k + 1);
    std::vector<std::vector<size_t>> from(k + 1);
    err[0].assign(links[0].size(), kInf);
    err[0][first] = links[0][first].error;
    for (size_t l = 1; l <= k; ++l) {
      err[l].assign(links[l].size(), kInf);
      from[l].assign(links[l].size(), 0);
      for (size_t b = 0; b < links[l].size(); ++b)
        for (size_t a = 0; a < links[l - 1].size(); ++a) {
          if (err[l - 1][a] == kInf || t.stage[l - 1][a][b] > period) continue;
          const double e = err[l - 1][a] + links[l][b].error;
          if (e < err[l][b]) {
            err[l][b] = e;
            from[l][b] = a;
          }
        }
    }
    for (size_t last = 0; last < links[k].size(); ++last) {
      if (err[k][last] >= best || t.dispatcher[first][last] > period) continue;
      best = err[k][last];
      choice.assign(k + 1, 0);
      choice[k] = last;
      for (size_t l = k; l > 0; --l) choice[l - 1] = from[l][choice[l]];
    }
  }
  *error_sum = best;
  return choice;
}

}  // namespace

CodecChoice choose_codecs(const ModelCosts& model, const Cluster& cluster,
                          const std::vector<Stage>& stages,
                          const std::vector<std::vector<CodecOption>>& links, double budget) {
  EP_CHECK(std::isfinite(budget) && budget >= 0, "the error budget must be a number >= 0, not ",
           budget);
  EP_CHECK(!stages.empty(), "a plan needs at least one stage");
  EP_CHECK(links.size() == stages.size() + 1, "a plan of ", stages.size(), " stages has ",
           stages.size() + 1, " links; got options for ", links.size());
  for (size_t l = 0; l < links.size(); ++l) {
    EP_CHECK(!links[l].empty(), "link ", l + 1, " has no codec to choose from");
    EP_CHECK(std::any_of(links[l].begin(), links[l].end(),
                         [](const CodecOption& o) { return o.error == 0; }),
             "link ", l + 1, " has no lossless codec (raw) to fall back on");
    for (const CodecOption& o : links[l])
      EP_CHECK(std::isfinite(o.error) && o.error >= 0 && std::isfinite(o.bytes) && o.bytes >= 0,
               "link ", l + 1, ": codec ", o.codec, " has a bad measurement (", o.bytes,
               " bytes, error ", o.error, ")");
  }
  const Terms t = terms_of(model, cluster, stages, links);
  std::vector<double> periods;
  for (const auto& s : t.stage)
    for (const auto& row : s) periods.insert(periods.end(), row.begin(), row.end());
  for (const auto& row : t.dispatcher) periods.insert(periods.end(), row.begin(), row.end());
  std::sort(periods.begin(), periods.end());
  periods.erase(std::unique(periods.begin(), periods.end()), periods.end());
  // The smallest candidate period whose least error sum is within the budget: feasibility only
  // grows with the period, and the largest is feasible with every link lossless.
  const double slack = budget * 1e-12;
  size_t lo = 0, hi = periods.size() - 1;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    double e = 0;
    if (!least_error_within(t, links, periods[mid], &e).empty() && e <= budget + slack)
      hi = mid;
    else
      lo = mid + 1;
  }
  CodecChoice c;
  c.option = least_error_within(t, links, periods[lo], &c.error_sum);
  EP_CHECK(!c.option.empty() && c.error_sum <= budget + slack,
           "no codec choice fits the error budget (a bug: every link has a lossless codec)");
  c.period_s =
      evaluate_plan(with_link_codecs(model, stages, links, c.option), cluster, stages).period_s;
  return c;
}

}  // namespace edgepipe

namespace edgepipe {

std::string ErrorBudgetReport::text() const {
  std::ostringstream s;
  s << strprintf(
      "error budget %g: each link's codec chosen from %zu, errors measured on %lld "
      "input rows\n",
      budget, candidates, static_cast<long long>(calibration_rows));
  s << "  link  cut  codec              ratio   encode ms  decode ms  error alone\n";
  for (size_t l = 0; l < links.size(); ++l) {
    const BudgetedLink& b = links[l];
    s << strprintf("  %4zu  %3zu  %-17s  %6.2fx  %9.2f  %9.2f  %11.3g\n", l + 1, b.cut,
                   b.codec.c_str(), b.bytes > 0 ? b.raw_bytes / b.bytes : 0.0, b.encode_ms,
                   b.decode_ms, b.error);
  }
  for (const std::string& t : tightened) s << "  tightened: " << t << "\n";
  s << strprintf(
      "  outputs' error with every link coded: %.3g measured (bound %.3g, budget %g); "
      "predicted period %.2f ms, %.2fx faster than with every link raw (%.2f ms)\n",
      measured_error, error_sum, budget, 1e3 * period_s,
      period_s > 0 ? period_raw_s / period_s : 0.0, 1e3 * period_raw_s);
  return s.str();
}

}  // namespace edgepipe
