// What per-batch records add to a stage's hot loop, measured directly: the work the worker does
// per batch only when tracing (a copy of the counters, one clock reading, filling a record,
// storing it in the reserved trace), timed over many iterations. tools/bench_runlog divides it
// by the batch period measured in the same session.
#include <cstdio>
#include <cstdlib>

#include "edgepipe/metrics.h"
#include "edgepipe/trace.h"

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
    BatchRecord r;
    r.seq = i;
    r.t_begin = t_mark;
    r.t_end = t_mark = now_seconds();
    r.time_recv_wait = c.time_recv_wait - before.time_recv_wait;
    r.time_decode = c.time_decode - before.time_decode;
    r.time_compute = c.time_compute - before.time_compute;
    r.time_send_wait = c.time_send_wait - before.time_send_wait;
    r.time_encode = c.time_encode - before.time_encode;
    r.time_other = (r.t_end - r.t_begin) - (r.time_recv_wait + r.time_decode + r.time_compute +
                                            r.time_send_wait + r.time_encode);
    r.bytes_in = c.bytes_in - before.bytes_in;
    r.bytes_out = c.bytes_out - before.bytes_out;
    trace.add(r);
  }
  const double per = (now_seconds() - t0) / n;
  for (const auto& r : trace.records()) sink += r.time_other;
  std::printf("per_batch_record_ns %.1f\n", 1e9 * per);
  std::printf("records %zu (checksum %g)\n", trace.records().size(), sink);
  return 0;
}
