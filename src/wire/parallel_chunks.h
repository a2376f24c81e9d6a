// parallel_chunks: runs the independent pieces of a tensor's coding (zfp chunks, q8 blocks,
// checksum pieces) on LibTorch's intra-op threads.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace edgepipe {

// Runs fn(k) for every chunk k < count on LibTorch's intra-op threads (at::parallel_for; as many
// as at::set_num_threads allows), each thread taking the next chunk when it finishes one: a
// thread that the OS preempts (a shared machine, more ranks than cores) holds up at most the
// chunk it is on, not a fixed share of them. With one thread, or inside a parallel region, the
// chunks run in order on the calling thread. (The frame sources are compiled with OpenMP,
// LibTorch's parallel backend here: without it, at::parallel_for's inline OpenMP code runs
// serially; see src/wire/frame_sources.cmake.)
template <typename F>
void parallel_chunks(uint32_t count, const F& fn) {
  const int64_t threads = std::min<int64_t>(count, at::get_num_threads());
  if (threads <= 1 || at::in_parallel_region()) {
    for (uint32_t k = 0; k < count; ++k) fn(k);
    return;
  }
  std::atomic<uint32_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (uint32_t k = next++; k < count; k = next++) fn(k);
  });
}

}  // namespace edgepipe
