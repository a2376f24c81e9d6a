/* An MPI ping-pong independent of edgepipe, for tools/emulate's tests: rank 0 exchanges messages
 * with every other rank in turn and prints, per rank, the one-way latency of a small message
 * (half the median round trip) and the bandwidth of a large one:
 *
 *   bandwidth = bytes / (round trip of the large message / 2 - one-way latency of a small one)
 *
 * so that the link's latency is not counted against its rate.
 *
 * Usage: pingpong [--poll-sleep-us US] [SMALL_REPS [LARGE_BYTES [LARGE_REPS]]]   (20, 4 MiB, 3)
 *   --poll-sleep-us US: wait for each message with MPI_Test and a sleep of US microseconds
 *   between tests (as edgepipe waits) instead of a blocking (spinning) MPI_Recv. On a node with
 *   a CPU quota a spinning wait uses up the quota, and the node is then throttled until the end
 *   of the quota's period: a message that arrives then waits (tools/emulate, docs/performance.md).
 * Output, one line per rank r >= 1 (and the host names, to show where each rank ran):
 *   pingpong rank=R host=H latency_s=X bandwidth_Bps=Y
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long poll_sleep_us;

/* Blocking, or MPI_Test + nanosleep. */
static void xfer(int send_first, char* buf, long n, int other, int tag) {
  for (int step = 0; step < 2; ++step) {
    MPI_Request req;
    if ((step == 0) == (send_first != 0))
      MPI_Isend(buf, (int)n, MPI_CHAR, other, tag, MPI_COMM_WORLD, &req);
    else
      MPI_Irecv(buf, (int)n, MPI_CHAR, other, tag, MPI_COMM_WORLD, &req);
    if (!poll_sleep_us) {
      MPI_Wait(&req, MPI_STATUS_IGNORE);
      continue;
    }
    int done = 0;
    struct timespec ts = {0, poll_sleep_us * 1000};
    for (;;) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (done) break;
      nanosleep(&ts, NULL);
    }
  }
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int a = 1;
  if (argc > 2 && !strcmp(argv[1], "--poll-sleep-us")) {
    poll_sleep_us = atol(argv[2]);
    a = 3;
  }
  int small_reps = argc > a ? atoi(argv[a]) : 20;
  long large = argc > a + 1 ? atol(argv[a + 1]) : 4L << 20;
  int large_reps = argc > a + 2 ? atoi(argv[a + 2]) : 3;
  if (small_reps < 1 || large < 1 || large_reps < 1) {
    if (rank == 0)
      fprintf(stderr,
              "usage: pingpong [--poll-sleep-us US] [SMALL_REPS [LARGE_BYTES [LARGE_REPS]]]\n");
    MPI_Finalize();
    return 2;
  }
  if (size > 64) {
    if (rank == 0) fprintf(stderr, "pingpong: at most 64 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  char host[MPI_MAX_PROCESSOR_NAME];
  int len;
  MPI_Get_processor_name(host, &len);
  char* buf = calloc(1, (size_t)large);
  double* t = malloc(sizeof(double) * (small_reps > large_reps ? small_reps : large_reps));
  if (!buf || !t) MPI_Abort(MPI_COMM_WORLD, 1);
  char hosts[64][MPI_MAX_PROCESSOR_NAME];
  MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
             MPI_COMM_WORLD);
  for (int peer = 1; peer < size; ++peer) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank != 0 && rank != peer) continue;
    int other = rank == 0 ? peer : 0;
    /* one warm-up exchange of each size: connections are opened lazily */
    for (int warm = 0; warm < 2; ++warm) {
      long n = warm ? large : 1;
      xfer(rank == 0, buf, n, other, 0);
    }
    double lat = 0, bw = 0;
    for (int phase = 0; phase < 2; ++phase) {
      long n = phase ? large : 1;
      int reps = phase ? large_reps : small_reps;
      for (int i = 0; i < reps; ++i) {
        double t0 = MPI_Wtime();
        xfer(rank == 0, buf, n, other, 1);
        t[i] = MPI_Wtime() - t0;
      }
      if (rank == 0) {
        double rtt = median(t, reps);
        if (phase == 0)
          lat = rtt / 2;
        else
          bw = n / (rtt / 2 - lat);
      }
    }
    if (rank == 0)
      printf("pingpong rank=%d host=%s latency_s=%.6f bandwidth_Bps=%.0f\n", peer, hosts[peer], lat,
             bw);
    fflush(stdout);
  }
  if (rank == 0) printf("pingpong rank=0 host=%s\n", host);
  free(buf);
  free(t);
  MPI_Finalize();
  return 0;
}
