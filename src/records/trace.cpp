#include "edgepipe/records/trace.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/memory.h"
#include "edgepipe/records/metrics.h"

namespace edgepipe {

BatchTrace::BatchTrace(bool enabled, size_t capacity) : enabled_(enabled) {
  if (enabled_) records_.reserve(capacity);
}

void process_cpu_seconds(double* user, double* system) {
  rusage u{};
  EP_CHECK(getrusage(RUSAGE_SELF, &u) == 0, "getrusage failed: ", std::strerror(errno));
  *user = u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec;
  *system = u.ru_stime.tv_sec + 1e-6 * u.ru_stime.tv_usec;
}

namespace {

// "0-3,6" from the affinity mask.
std::string cpu_list() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "unknown";
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int e = c;
    while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set)) ++e;
    out += (out.empty() ? "" : ",") + std::to_string(c) + (e > c ? "-" + std::to_string(e) : "");
    c = e;
  }
  return out;
}

int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  return 0;
}

void copy_text(char* dst, size_t n, const std::string& s) {
  std::strncpy(dst, s.c_str(), n - 1);
  dst[n - 1] = '\0';
}

}  // namespace

void sample_rank_facts(RankFacts* f) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown");
  copy_text(f->host, sizeof f->host, host);
  copy_text(f->cpus, sizeof f->cpus, cpu_list());
  f->threads = thread_count();
  f->intra_op_threads = at::get_num_threads();
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) == 0) f->peak_rss_bytes = 1024.0 * u.ru_maxrss;  // KiB on Linux
}

namespace {

// Resets VmHWM; clears m->peaks_per_phase for good when a reset fails.
void start_phase(RankMemory* m) {
  if (!reset_peak_rss()) m->peaks_per_phase = 0;
}

}  // namespace

void memory_start(RankMemory* m) {
  // What every stage pays before its own work: a small convolution and product start LibTorch's
  // intra-op pool and its kernels' one-time set-up (at::parallel_for, oneDNN/MKL where used).
  const at::Tensor x = at::ones({1, 4, 16, 16});
  const at::Tensor y = at::conv2d(x, at::ones({4, 4, 3, 3})).flatten(1);
  (void)y.matmul(y.t()).sum().item<float>();
  const ProcMemory now = read_proc_memory();
  m->rss_baseline = static_cast<double>(now.rss_bytes);
  m->peaks_per_phase = 1;
  start_phase(m);
}

void memory_end_phase(RankMemory* m, double* peak, double* rss, double* trimmed) {
  const ProcMemory now = read_proc_memory();
  *peak = static_cast<double>(now.hwm_bytes);
  *rss = static_cast<double>(now.rss_bytes);
  if (trimmed) {
    release_free_memory();
    *trimmed = static_cast<double>(read_proc_memory().rss_bytes);
  }
  start_phase(m);
}

BatchRecord make_batch_record(int64_t seq, double t_begin, double t_end, const StageCounters& now,
                              const StageCounters& before) {
  BatchRecord r;
  r.seq = seq;
  r.t_begin = t_begin;
  r.t_end = t_end;
  r.time_recv_wait = now.time_recv_wait - before.time_recv_wait;
  r.time_decode = now.time_decode - before.time_decode;
  r.time_compute = now.time_compute - before.time_compute;
  r.time_send_wait = now.time_send_wait - before.time_send_wait;
  r.time_encode = now.time_encode - before.time_encode;
  r.time_compute_wait = now.time_compute_wait - before.time_compute_wait;
  r.time_probe = now.time_probe - before.time_probe;
  r.time_other =
      (t_end - t_begin) - (r.time_recv_wait + r.time_decode + (now.overlap ? 0.0 : r.time_compute) +
                           r.time_compute_wait + r.time_send_wait + r.time_encode + r.time_probe);
  r.bytes_in = now.bytes_in - before.bytes_in;
  r.bytes_out = now.bytes_out - before.bytes_out;
  return r;
}

}  // namespace edgepipe
