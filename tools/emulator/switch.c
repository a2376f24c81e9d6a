/* edgepipe-switch: the data path of tools/emulate. A user-space Ethernet switch over tap devices,
 * one port per emulated node, that shapes every ordered pair of ports as its own link: frames from
 * port A to port B leave a FIFO at B's link rate (bandwidth of the pair A->B) and are delivered to
 * B's tap at their due time, one-way latency (of the pair) after they have been serialised.
 * (Linux 6.18 here has no netem; tbf/htb give rate but no delay.)
 *
 *   due(frame) = max(arrival, busy_until[A][B]) + bytes / bandwidth[A][B] + latency[A][B]
 *   busy_until[A][B] = due(frame) - latency[A][B]
 *
 * so a pair is a point-to-point link of its own, as the planner's cost model sees links
 * (docs/planner.md: links do not share bandwidth). Optional loss drops a frame with the
 * probability that at least one of its 1500-byte pieces would be lost: 1 - (1 -
 * loss)^ceil(len/1500). Each pair's queue holds at most `queue` bytes (tail drop beyond).
 *
 * Usage: edgepipe-switch CONFIG
 *   CONFIG lines (written by tools/emulate):
 *     port I NETNS_PATH TAPNAME MAC     tap TAPNAME (persistent, made beforehand) in that netns
 *     pair A B BANDWIDTH_BPS LATENCY_S LOSS
 *     queue BYTES                        per-pair queue limit
 *     seed N                             loss draws
 *     stats PATH                         written on SIGUSR1 and at exit
 *     ready PATH                         created once every tap is attached
 * SIGTERM/SIGINT: write the stats and exit 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64
#define MAX_FRAME 65536 + 64

typedef struct Frame {
  struct Frame* next;
  int64_t due_ns;
  uint32_t len;
  unsigned char data[];
} Frame;

typedef struct {
  double bw; /* bytes per second */
  int64_t lat_ns;
  double loss;
  int64_t busy_until_ns;
  Frame *head, *tail;
  uint64_t queued_bytes;
  uint64_t frames, bytes, drops_queue, drops_loss, max_queued;
  double max_wait_s; /* longest queueing delay before serialisation */
} Pair;

static int nports;
static int tapfd[MAX_PORTS];
static unsigned char mac[MAX_PORTS][6];
static char tapname[MAX_PORTS][IFNAMSIZ];
static char nspath[MAX_PORTS][4096];
static Pair pairs[MAX_PORTS][MAX_PORTS];
static uint64_t queue_limit = 8u << 20;
static uint64_t total_limit = 512u << 20, total_queued;
static uint64_t rx_frames[MAX_PORTS], rx_unknown, drops_total_limit, write_errors;
static char stats_path[4096], ready_path[4096];
static volatile sig_atomic_t stop_flag, stats_flag;
static uint64_t rng_state = 88172645463325252ull;

static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "edgepipe-switch: error: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double uniform01(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int parse_mac(const char* s, unsigned char out[6]) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; ++i) {
    if (v[i] > 255) return -1;
    out[i] = (unsigned char)v[i];
  }
  return 0;
}

static void read_config(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) die("cannot read %s: %s", path, strerror(errno));
  char line[8192];
  int lineno = 0;
  for (int a = 0; a < MAX_PORTS; ++a)
    for (int b = 0; b < MAX_PORTS; ++b) pairs[a][b].bw = -1;
  while (fgets(line, sizeof line, f)) {
    ++lineno;
    char kw[32];
    if (sscanf(line, "%31s", kw) != 1 || kw[0] == '#') continue;
    if (!strcmp(kw, "port")) {
      int i;
      char ns[4096], tap[64], m[64];
      if (sscanf(line, "port %d %4095s %63s %63s", &i, ns, tap, m) != 4 || i != nports ||
          i >= MAX_PORTS || strlen(tap) >= IFNAMSIZ || parse_mac(m, mac[i]))
        die("%s:%d: bad port line (ports numbered 0.. in order, at most %d)", path, lineno,
            MAX_PORTS);
      snprintf(nspath[i], sizeof nspath[i], "%s", ns);
      snprintf(tapname[i], sizeof tapname[i], "%s", tap);
      ++nports;
    } else if (!strcmp(kw, "pair")) {
      int a, b;
      double bw, lat, loss;
      if (sscanf(line, "pair %d %d %lf %lf %lf", &a, &b, &bw, &lat, &loss) != 5 || a < 0 || b < 0 ||
          a >= nports || b >= nports || a == b || !(bw > 0) || !(lat >= 0) ||
          !(loss >= 0 && loss < 1))
        die("%s:%d: bad pair line", path, lineno);
      pairs[a][b].bw = bw;
      pairs[a][b].lat_ns = (int64_t)llround(lat * 1e9);
      pairs[a][b].loss = loss;
    } else if (!strcmp(kw, "queue")) {
      unsigned long long q;
      if (sscanf(line, "queue %llu", &q) != 1 || q < 65536)
        die("%s:%d: bad queue line", path, lineno);
      queue_limit = q;
    } else if (!strcmp(kw, "seed")) {
      unsigned long long s;
      if (sscanf(line, "seed %llu", &s) != 1) die("%s:%d: bad seed line", path, lineno);
      rng_state = s * 2654435761ull + 88172645463325252ull;
      if (!rng_state) rng_state = 1;
    } else if (!strcmp(kw, "stats")) {
      if (sscanf(line, "stats %4095s", stats_path) != 1) die("%s:%d: bad stats line", path, lineno);
    } else if (!strcmp(kw, "ready")) {
      if (sscanf(line, "ready %4095s", ready_path) != 1) die("%s:%d: bad ready line", path, lineno);
    } else {
      die("%s:%d: unknown keyword '%s'", path, lineno, kw);
    }
  }
  fclose(f);
  if (nports < 2) die("%s: needs at least 2 ports", path);
  for (int a = 0; a < nports; ++a)
    for (int b = 0; b < nports; ++b)
      if (a != b && pairs[a][b].bw <= 0) die("%s: no pair line for ports %d -> %d", path, a, b);
}

/* Attaches to the persistent tap `name` inside the network namespace at `ns`. */
static int open_tap(const char* ns, const char* name) {
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = open(ns, O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0) die("cannot open network namespace %s: %s", ns, strerror(errno));
  if (setns(target, CLONE_NEWNET)) die("setns %s: %s", ns, strerror(errno));
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("/dev/net/tun: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr)) die("TUNSETIFF %s in %s: %s", name, ns, strerror(errno));
  if (setns(self, CLONE_NEWNET)) die("setns back: %s", strerror(errno));
  close(self);
  close(target);
  return fd;
}

static void write_stats(void) {
  if (!stats_path[0]) return;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
  FILE* f = fopen(tmp, "w");
  if (!f) return;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  fprintf(f, "cpu_user_s %.6f\ncpu_system_s %.6f\nmonotonic_s %.6f\n",
          ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
          ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, ts.tv_sec + ts.tv_nsec * 1e-9);
  fprintf(f, "rx_unknown %llu\ndrops_total_limit %llu\nwrite_errors %llu\n",
          (unsigned long long)rx_unknown, (unsigned long long)drops_total_limit,
          (unsigned long long)write_errors);
  for (int a = 0; a < nports; ++a) fprintf(f, "rx %d %llu\n", a, (unsigned long long)rx_frames[a]);
  for (int a = 0; a < nports; ++a)
    for (int b = 0; b < nports; ++b) {
      Pair* p = &pairs[a][b];
      if (a == b || !p->frames) continue;
      fprintf(f,
              "pair %d %d frames %llu bytes %llu drops_queue %llu drops_loss %llu max_queued %llu "
              "max_wait_s %.6f\n",
              a, b, (unsigned long long)p->frames, (unsigned long long)p->bytes,
              (unsigned long long)p->drops_queue, (unsigned long long)p->drops_loss,
              (unsigned long long)p->max_queued, p->max_wait_s);
    }
  fclose(f);
  rename(tmp, stats_path);
}

static void on_stop(int sig) {
  (void)sig;
  stop_flag = 1;
}
static void on_usr1(int sig) {
  (void)sig;
  stats_flag = 1;
}

static void enqueue(int a, int b, const unsigned char* data, uint32_t len, int64_t now) {
  Pair* p = &pairs[a][b];
  if (p->loss > 0) {
    double pieces = ceil(len / 1500.0);
    if (uniform01() < 1.0 - pow(1.0 - p->loss, pieces)) {
      ++p->drops_loss;
      return;
    }
  }
  if (p->queued_bytes + len > queue_limit) {
    ++p->drops_queue;
    return;
  }
  if (total_queued + len > total_limit) {
    ++drops_total_limit;
    return;
  }
  Frame* fr = malloc(sizeof(Frame) + len);
  if (!fr) {
    ++drops_total_limit;
    return;
  }
  memcpy(fr->data, data, len);
  fr->len = len;
  fr->next = NULL;
  int64_t start = p->busy_until_ns > now ? p->busy_until_ns : now;
  double wait = (start - now) * 1e-9;
  if (wait > p->max_wait_s) p->max_wait_s = wait;
  int64_t end = start + (int64_t)llround(len / p->bw * 1e9);
  p->busy_until_ns = end;
  fr->due_ns = end + p->lat_ns;
  if (p->tail)
    p->tail->next = fr;
  else
    p->head = fr;
  p->tail = fr;
  p->queued_bytes += len;
  total_queued += len;
  if (p->queued_bytes > p->max_queued) p->max_queued = p->queued_bytes;
  ++p->frames;
  p->bytes += len;
}

static int port_of_mac(const unsigned char* m) {
  for (int i = 0; i < nports; ++i)
    if (!memcmp(mac[i], m, 6)) return i;
  return -1;
}

static void handle_frame(int a, const unsigned char* buf, uint32_t len, int64_t now) {
  if (len < 14) return;
  ++rx_frames[a];
  const unsigned char* dst = buf;
  if (dst[0] & 1) { /* broadcast / multicast: every other port, each over its own pair */
    for (int b = 0; b < nports; ++b)
      if (b != a) enqueue(a, b, buf, len, now);
    return;
  }
  int b = port_of_mac(dst);
  if (b < 0) {
    ++rx_unknown;
    return;
  }
  if (b != a) enqueue(a, b, buf, len, now);
}

/* Delivers every frame that is due; returns the earliest due time still queued (or -1). */
static int64_t deliver(int64_t now) {
  int64_t next = -1;
  for (int a = 0; a < nports; ++a)
    for (int b = 0; b < nports; ++b) {
      if (a == b) continue;
      Pair* p = &pairs[a][b];
      while (p->head && p->head->due_ns <= now) {
        Frame* fr = p->head;
        ssize_t w = write(tapfd[b], fr->data, fr->len);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) break; /* retry on the next pass */
        if (w != (ssize_t)fr->len) ++write_errors;
        p->head = fr->next;
        if (!p->head) p->tail = NULL;
        p->queued_bytes -= fr->len;
        total_queued -= fr->len;
        free(fr);
      }
      if (p->head && (next < 0 || p->head->due_ns < next)) next = p->head->due_ns;
    }
  return next;
}

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s CONFIG   (written by tools/emulate; see the comment in switch.c)\n",
            argv[0]);
    return 2;
  }
  read_config(argv[1]);
  for (int i = 0; i < nports; ++i) tapfd[i] = open_tap(nspath[i], tapname[i]);
  prctl(PR_SET_TIMERSLACK, 1UL); /* wake-ups on time, not up to 50 us late */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (ready_path[0]) {
    int fd = open(ready_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot create %s: %s", ready_path, strerror(errno));
    dprintf(fd, "%d\n", (int)getpid());
    close(fd);
  }
  static unsigned char buf[MAX_FRAME];
  struct pollfd pfd[MAX_PORTS];
  for (int i = 0; i < nports; ++i) {
    pfd[i].fd = tapfd[i];
    pfd[i].events = POLLIN;
  }
  while (!stop_flag) {
    if (stats_flag) {
      stats_flag = 0;
      write_stats();
    }
    int64_t now = now_ns();
    int64_t next = deliver(now);
    struct timespec ts, *tsp = NULL;
    if (next >= 0) {
      int64_t wait = next - now_ns();
      if (wait < 0) wait = 0;
      ts.tv_sec = wait / 1000000000;
      ts.tv_nsec = wait % 1000000000;
      tsp = &ts;
    }
    int n = ppoll(pfd, nports, tsp, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("ppoll: %s", strerror(errno));
    }
    if (n == 0) continue;
    now = now_ns();
    for (int i = 0; i < nports; ++i) {
      if (!(pfd[i].revents & POLLIN)) continue;
      for (int k = 0; k < 64; ++k) { /* at most 64 frames per port per pass: fairness */
        ssize_t r = read(tapfd[i], buf, sizeof buf);
        if (r < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          die("read from %s: %s", tapname[i], strerror(errno));
        }
        handle_frame(i, buf, (uint32_t)r, now);
      }
    }
  }
  write_stats();
  return 0;
}
