// mpi: RAII over MPI's environment and communicator, and checked calls whose errors name the call.
#pragma once
#include <mpi.h>

#include <string>

namespace edgepipe {

// Initialises MPI for the lifetime of the object, with at least the thread level `required`
// (throws, naming both levels, if the library provides less).
class MpiEnvironment {
 public:
  MpiEnvironment(int* argc, char*** argv, int required = MPI_THREAD_FUNNELED);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
};

// A duplicate of the communicator it is given, with errors returned (not fatal), freed on exit.
class MpiComm {
 public:
  explicit MpiComm(MPI_Comm parent);
  ~MpiComm();
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 0;
};

// Throws edgepipe::Error naming both levels unless `provided` (MPI_Init_thread's) is at least
// `required`.
void check_mpi_thread_level(int provided, int required);

// Turns on Open MPI's TCP progress thread (OMPI_MCA_btl_tcp_progress_thread=1) unless the user set
// it: large messages then move while a stage computes. Called before MPI_Init_thread.
void default_mpi_progress_thread();

// Throws edgepipe::Error "MPI_Isend to rank 2 (tag 3) failed: <MPI's error string>" unless rc is
// MPI_SUCCESS. peer < 0 leaves the peer out.
void mpi_check(int rc, const char* call, int peer = -1, int tag = -1);

}  // namespace edgepipe
