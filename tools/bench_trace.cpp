// What per-batch records add to a stage's hot loop, measured directly: the work the worker does
// per batch only when tracing (a copy of the counters, one clock reading, filling a record,
// storing it in the reserved trace), timed over many iterations. tools/bench_runlog divides it
// by the batch period measured in the same session.
#include <cstdio>
#include <cstdlib>

#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"

using namespace edgepipe;

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000000;
  StageCounters c;
  BatchTrace trace(true, static_cast<size_t>(n));
  double t_mark = now_seconds();
  double sink = 0;
  const double t0 = now_seconds();
  for (int i = 0; i < n; ++i) {
    const StageCounters before = c;  // as in worker.cpp's loop
    c.time_compute += 1e-3;          // stands for the batch's work (the counters' growth)
    c.batches += 1;
    const double t_begin = t_mark;
    t_mark = now_seconds();
    trace.add(make_batch_record(i, t_begin, t_mark, c, before));  // the worker's own code
  }
  const double per = (now_seconds() - t0) / n;
  for (const auto& r : trace.records()) sink += r.time_other;
  std::printf("per_batch_record_ns %.1f\n", 1e9 * per);
  std::printf("records %zu (checksum %g)\n", trace.records().size(), sink);
  return 0;
}
