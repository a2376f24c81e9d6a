// Does a large message move while the receiver computes? Rank 0 sends BYTES (MPI_Isend) to rank 1,
// which has posted its MPI_Irecv and then computes for about COMPUTE_MS without any MPI call, then
// waits for the message. Prints, per round, the wait left after the compute (0 when the transfer
// moved meanwhile), the compute's wall time and the process's CPU time (what a progress thread
// costs). Run by tools/bench_progress with and without OMPI_MCA_btl_tcp_progress_thread=1.
// A fixed amount of work (MEGA_ITERATIONS), so that a thread competing for the core shows as a
// longer compute; then an idle second with nothing to receive, whose CPU time is the thread's.
// Usage: mpirun -n 2 --mca btl tcp,self bench_progress [BYTES] [MEGA_ITERATIONS] [ROUNDS]
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {
double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

volatile double g_sink = 0;
void work(long iterations) {
  double x = 1.0;
  for (long i = 0; i < iterations; ++i) x = x * 1.0000001 + 1e-9;
  g_sink = x;
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  long bytes = argc > 1 ? std::atol(argv[1]) : 4L << 20;
  long iterations = static_cast<long>(1e6 * (argc > 2 ? std::atof(argv[2]) : 200));
  int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<char> buf(static_cast<size_t>(bytes), 1);
  double sum_wait = 0, sum_compute = 0, sum_cpu = 0;
  for (int r = 0; r < rounds; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Request req;
    if (rank == 0) {
      MPI_Isend(buf.data(), static_cast<int>(bytes), MPI_BYTE, 1, 7, MPI_COMM_WORLD, &req);
      MPI_Wait(&req, MPI_STATUS_IGNORE);
      continue;
    }
    MPI_Irecv(buf.data(), static_cast<int>(bytes), MPI_BYTE, 0, 7, MPI_COMM_WORLD, &req);
    double c0 = cpu_s(), t0 = now();
    work(iterations);
    double t1 = now();
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    double t2 = now();
    sum_compute += t1 - t0;
    sum_wait += t2 - t1;
    sum_cpu += cpu_s() - c0;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  double idle0 = cpu_s();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double idle_cpu = cpu_s() - idle0;
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 1) {
    const char* pt = std::getenv("OMPI_MCA_btl_tcp_progress_thread");
    std::printf(
        "progress_thread=%s bytes=%ld compute_ms=%.1f wait_after_ms=%.2f cpu_ms=%.1f "
        "idle_cpu_ms_per_s=%.2f\n",
        pt ? pt : "unset", bytes, 1e3 * sum_compute / rounds, 1e3 * sum_wait / rounds,
        1e3 * sum_cpu / rounds, 1e3 * idle_cpu);
  }
  MPI_Finalize();
  return 0;
}
