#include "edgepipe/plan/rank_types.h"

#include <algorithm>
#include <cmath>

#include "stage_rule.h"

namespace edgepipe {

namespace {

// Comparisons of ranks and links within the grouping tolerance.
struct Likeness {
  const ModelCosts& m;
  const Cluster& c;
  double tol;

  bool close(double a, double b) const {
    return a == b || std::abs(a - b) <= tol * std::max(std::abs(a), std::abs(b));
  }
  bool close_link(const Link& a, const Link& b) const {
    return close(a.latency_s, b.latency_s) && close(a.bandwidth_Bps, b.bandwidth_Bps);
  }
  // Ranks alike on their own: memory, links to and from rank 0, every block's time.
  bool alike(size_t a, size_t b) const {
    if (!close(c.ranks[a].memory_bytes, c.ranks[b].memory_bytes)) return false;
    if (!close_link(c.link(0, a), c.link(0, b)) || !close_link(c.link(a, 0), c.link(b, 0)))
      return false;
    for (size_t blk = 0; blk < m.num_blocks(); ++blk)
      if (!close(block_s(m, c.ranks[a], blk), block_s(m, c.ranks[b], blk))) return false;
    return true;
  }
  // Whether x sees a and b alike (both directions).
  bool seen_alike(size_t x, size_t a, size_t b) const {
    return close_link(c.link(a, x), c.link(b, x)) && close_link(c.link(x, a), c.link(x, b));
  }
};

using Classes = std::vector<std::vector<size_t>>;

// 1. Classes of ranks alike on their own (block times, memory, links to and from rank 0).
Classes alike_classes(const Likeness& like, size_t R) {
  Classes classes;
  for (size_t r = 1; r <= R; ++r) {
    size_t cl = 0;
    while (cl < classes.size() && !like.alike(r, classes[cl][0])) ++cl;
    if (cl == classes.size()) classes.emplace_back();
    classes[cl].push_back(r);
  }
  return classes;
}

// Splits class p by how rank x sees its members (x itself joins the first group). Returns whether
// it split.
bool split_by_pivot(const Likeness& like, size_t x, size_t p, Classes& classes) {
  Classes groups;
  bool has_x = false;
  for (size_t a : classes[p]) {
    if (a == x) {
      has_x = true;
      continue;
    }
    size_t g = 0;
    while (g < groups.size() && !like.seen_alike(x, a, groups[g][0])) ++g;
    if (g == groups.size()) groups.emplace_back();
    groups[g].push_back(a);
  }
  if (groups.size() <= 1) return false;
  if (has_x) groups[0].push_back(x);
  classes[p] = groups[0];
  for (size_t g = 1; g < groups.size(); ++g) classes.push_back(groups[g]);
  return true;
}

// Splits every two-rank class whose ranks are linked differently each way. Returns whether any.
bool split_asymmetric_pairs(const Likeness& like, Classes& classes) {
  bool changed = false;
  for (size_t p = 0; p < classes.size(); ++p) {
    if (classes[p].size() != 2) continue;
    const size_t a = classes[p][0], b = classes[p][1];
    if (like.close_link(like.c.link(a, b), like.c.link(b, a))) continue;
    classes[p] = {a};
    classes.push_back({b});
    changed = true;
  }
  return changed;
}

}  // namespace

RankTypes group_ranks(const ModelCosts& m, const Cluster& c, double tol) {
  const size_t R = c.num_stage_ranks();
  RankTypes rt;
  rt.type_of_rank.assign(R + 1, 0);
  if (tol < 0) {  // no grouping: every rank is its own type
    for (size_t r = 1; r <= R; ++r) {
      rt.type_of_rank[r] = r - 1;
      rt.members.push_back({r});
    }
    return rt;
  }
  const Likeness like{m, c, tol};
  Classes classes = alike_classes(like, R);
  // 2. Refine until, for every rank x and class P, all ranks of P other than x have the same links
  // to and from x, and every two-rank class is linked alike both ways. Then the link between two
  // distinct ranks depends only on their classes (docs/planner.md gives the argument). Classes are
  // only ever split, so this ends after at most R splits.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t x = 1; x <= R; ++x)
      for (size_t p = 0; p < classes.size(); ++p)
        changed = split_by_pivot(like, x, p, classes) || changed;
    changed = split_asymmetric_pairs(like, classes) || changed;
  }
  for (auto& cl : classes) std::sort(cl.begin(), cl.end());
  std::sort(classes.begin(), classes.end());
  rt.members = classes;
  for (size_t ty = 0; ty < classes.size(); ++ty)
    for (size_t r : classes[ty]) rt.type_of_rank[r] = ty;
  return rt;
}

}  // namespace edgepipe
