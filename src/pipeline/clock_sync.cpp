#include "edgepipe/pipeline/clock_sync.h"

#include <string>

#include "edgepipe/records/metrics.h"
#include "edgepipe/wire/protocol.h"

namespace edgepipe {

ClockSync sync_clocks_root(Channel& ch, int64_t batches, double timeout_s) {
  ClockSync s;
  s.offset_s.assign(ch.size(), 0.0);
  s.rtt_s.assign(ch.size(), 0.0);
  for (int rank = 1; rank < ch.size(); ++rank) {
    double best = 1e30;
    for (int i = 0; i < kClockRounds; ++i) {
      const ClockPing ping{now_seconds(), batches};
      send_bytes(ch, rank, kTagClock, clock_ping_to_bytes(ping), timeout_s);
      const double t_rank = clock_answer_from_bytes(
          recv_bytes(ch, rank, kTagClock, timeout_s, "rank " + std::to_string(rank) + "'s clock"));
      const double t2 = now_seconds();
      if (t2 - ping.t_root < best) {
        best = t2 - ping.t_root;
        s.rtt_s[rank] = best;
        s.offset_s[rank] = t_rank - 0.5 * (ping.t_root + t2);
      }
    }
  }
  return s;
}

int64_t sync_clocks_worker(Channel& ch, double timeout_s) {
  int64_t batches = 0;
  for (int i = 0; i < kClockRounds; ++i) {
    const ClockPing ping =
        clock_ping_from_bytes(recv_bytes(ch, 0, kTagClock, timeout_s, "rank 0's clock"));
    const double t = now_seconds();
    batches = ping.batches;
    send_bytes(ch, 0, kTagClock, clock_answer_to_bytes(t), timeout_s);
  }
  return batches;
}

}  // namespace edgepipe
