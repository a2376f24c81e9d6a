// memory_check: whether any split of the model fits the ranks' memory at all, and the error that
// says how much is missing when none does (private to src/plan/; docs/planner.md, "Memory").
#pragma once
#include <cstddef>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "typed_problem.h"

namespace edgepipe {

// Whether some split into at most `max_stages` stages (the combos' layers), and at least
// `min_stages`, fits in memory (with `extra` bytes more on every rank). Time and links do not
// matter here, so the order of the stages' types is free.
bool memory_feasible(const ModelCosts& m, const TypedInstance& t, const ComboSpace& s, double extra,
                     size_t min_stages = 1);

// Throws edgepipe::Error: the model does not fit, why, and how much more memory on every rank
// would make it fit.
[[noreturn]] void fail_memory(const ModelCosts& m, const Cluster& c, const TypedInstance& t,
                              const ComboSpace& s, size_t min_stages, size_t max_stages);

}  // namespace edgepipe
