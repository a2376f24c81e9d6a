// test_hooks: points where a test makes the process fail as a machine or a disk would, so that
// the outputs file's ordering guarantees (README, "Nothing lost") can be tested between their
// steps. Chosen by the environment variable EDGEPIPE_TEST_CRASH=POINT[:N] (read once; N: the
// N-th time the point is reached, counted by the caller, default 1). Unset in normal runs.
#pragma once
#include <cstdint>

namespace edgepipe {

// The exit status of a test crash (distinct from any status edgepipe gives on its own).
constexpr int kTestCrashStatus = 86;

// True when EDGEPIPE_TEST_CRASH names `point` and `count` (1 for the first time it is reached).
bool test_hook_armed(const char* point, int64_t count = 1);

// If armed: prints "edgepipe: test crash at POINT" and ends the process at once with
// kTestCrashStatus (_exit: no destructors, no atexit handlers, no HDF5 close), as a kill -9 would.
void test_crash_point(const char* point, int64_t count = 1);

}  // namespace edgepipe

// Besides crash points, EDGEPIPE_TEST_CRASH names phases a test makes last, to stop or watch them
// (test_hook_armed): slow_calibration (rank 0 repeats each calibration timing), slow_warmup (a
// stage rank warms its stage up a million times), compute_hang:N (batch N - 1 never ends on the
// compute lane: a model that hangs), slow_links (--error-budget chooses the codecs as if every
// link were 1000x slower: a lossy choice on a machine whose links are shared memory).
