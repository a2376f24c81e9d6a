// memory: this process's resident memory as Linux reports it (/proc/self/status: VmRSS now,
// VmHWM the peak), resetting that peak (/proc/self/clear_refs, Linux >= 4.0) so that each phase
// of a rank's life has its own, and giving glibc's freed memory back to the system
// (malloc_trim). Pure (no Torch, no MPI): what the run log's per-rank memory figures are made of.
#pragma once
#include <cstdint>
#include <string>

namespace edgepipe {

struct ProcMemory {
  int64_t rss_bytes = -1;  // VmRSS: resident now (-1: not reported)
  int64_t hwm_bytes = -1;  // VmHWM: peak resident since start or since the last reset
};

// VmRSS and VmHWM of a /proc/<pid>/status text ("VmRSS:\t  12345 kB" lines); -1 for a line that
// is missing or unreadable.
ProcMemory parse_proc_status(const std::string& status);

// This process's, from /proc/self/status (-1 each where it cannot be read: not Linux).
ProcMemory read_proc_memory();

// Resets VmHWM to the current VmRSS (writes "5" to /proc/self/clear_refs). False when the
// kernel refuses (before Linux 4.0, no /proc): VmHWM then stays the peak since start.
bool reset_peak_rss(const std::string& clear_refs = "/proc/self/clear_refs");

// Gives the memory glibc's allocator holds free back to the system (malloc_trim(0): the tops of
// its heaps and the free pages inside every arena). Returns whether any was released.
bool release_free_memory();

}  // namespace edgepipe
