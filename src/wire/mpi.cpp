#include "edgepipe/wire/mpi.h"

#include <cstdio>

#include "edgepipe/base/error.h"

namespace edgepipe {

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int provided = 0;
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
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
