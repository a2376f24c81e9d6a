#include "edgepipe/wire/mpi.h"

#include <cstdio>
#include <cstdlib>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {
const char* thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
    default:
      return "an unknown thread level";
  }
}
}  // namespace

void check_mpi_thread_level(int provided, int required) {
  EP_CHECK(provided >= required, "the MPI library provides ", thread_level_name(provided),
           " but edgepipe needs ", thread_level_name(required),
           " (LibTorch's threads run beside the thread that calls MPI): use an MPI built with "
           "thread support");
}

void default_mpi_progress_thread() {
  // Over TCP, Open MPI moves a large message only inside MPI calls, so a transfer waits while a
  // stage computes. The TCP BTL's progress thread moves it meanwhile (tools/bench_progress;
  // docs/performance.md). The last argument 0 keeps a user's own setting; other BTLs ignore it.
  setenv("OMPI_MCA_btl_tcp_progress_thread", "1", 0);
}

MpiEnvironment::MpiEnvironment(int* argc, char*** argv, int required) {
  default_mpi_progress_thread();
  int provided = MPI_THREAD_SINGLE;
  mpi_check(MPI_Init_thread(argc, argv, required, &provided), "MPI_Init_thread");
  try {
    check_mpi_thread_level(provided, required);
  } catch (...) {
    MPI_Finalize();  // the destructor does not run for a constructor that throws
    throw;
  }
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

MpiComm::MpiComm(MPI_Comm parent) {
  mpi_check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup");
  mpi_check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

MpiComm::~MpiComm() {
  if (comm_ != MPI_COMM_NULL && MPI_Comm_free(&comm_) != MPI_SUCCESS)
    std::fprintf(stderr, "edgepipe: warning: MPI_Comm_free failed\n");
}

void mpi_check(int rc, const char* call, int peer, int tag) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  std::string where = peer >= 0 ? detail::concat(" with rank ", peer, " (tag ", tag, ")") : "";
  EP_FAIL(call, where, " failed: ", text);
}

}  // namespace edgepipe
