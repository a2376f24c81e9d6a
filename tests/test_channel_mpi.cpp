// The MPI channel under mpiexec: a ring of messages, probing, cancelling, timeouts, messages in
// pieces (chunked.h) and the TCP progress thread edgepipe turns on.
// Its own main(): initialise MPI, run the tests, reduce the result so every rank exits alike.
#include <gtest/gtest.h>

#include <cstdlib>

#include "edgepipe/wire/channel.h"
#include "edgepipe/wire/chunked.h"
#include "edgepipe/wire/mpi.h"
#include "edgepipe/wire/protocol.h"

using namespace edgepipe;

namespace {
MpiComm* g_comm = nullptr;  // set by main for the tests of this file only
}

TEST(MpiChannel, RingPassesMessagesOfManySizes) {
  MpiChannel ch(*g_comm);
  const int r = ch.rank(), n = ch.size();
  for (size_t size : {size_t(0), size_t(8), size_t(5000), size_t(3 << 20)}) {
    std::string msg(size, static_cast<char>('a' + r));
    std::string got(size + 16, '\0');
    auto recv = ch.irecv((r + n - 1) % n, kTagData, got.data(), got.size());
    auto send = ch.isend((r + 1) % n, kTagData, msg.data(), msg.size());
    size_t bytes = 0;
    wait_for([&] { return ch.test(recv, &bytes); }, 30, "ring receive");
    wait_for([&] { return ch.test(send); }, 30, "ring send");
    ASSERT_EQ(bytes, size);
    for (size_t i = 0; i < size; ++i)
      ASSERT_EQ(got[i], static_cast<char>('a' + (r + n - 1) % n)) << "byte " << i;
  }
}

TEST(MpiChannel, ProbeThenReceiveUnknownSize) {
  MpiChannel ch(*g_comm);
  if (ch.rank() == 0) {
    for (int dest = 1; dest < ch.size(); ++dest)
      send_bytes(ch, dest, kTagSetup, std::string(1000 * dest, 'x'), 30);
  } else {
    std::string got = recv_bytes(ch, 0, kTagSetup, 30, "set-up");
    EXPECT_EQ(got.size(), 1000u * ch.rank());
  }
}

// Sizes around a small forced bound (the real one is 1 GiB): none, under, exactly, over, many.
TEST(MpiChannel, ChunkedMessagesArriveWhole) {
  MpiChannel ch(*g_comm);
  const size_t bound = 777;
  for (size_t size : {size_t(0), size_t(5), size_t(777), size_t(778), size_t(100000)}) {
    if (ch.rank() == 0) {
      for (int dest = 1; dest < ch.size(); ++dest) {
        std::string msg(size, '\0');
        for (size_t i = 0; i < size; ++i) msg[i] = static_cast<char>((i * 31 + dest) & 0xff);
        send_chunked(ch, dest, kTagSetup, msg, 30, bound);
      }
    } else {
      std::string got = recv_chunked(ch, 0, kTagSetup, 30, "a chunked stage");
      ASSERT_EQ(got.size(), size);
      for (size_t i = 0; i < size; ++i)
        ASSERT_EQ(got[i], static_cast<char>((i * 31 + ch.rank()) & 0xff)) << "byte " << i;
    }
  }
}

// MpiEnvironment turns on Open MPI's TCP progress thread unless the user chose (ctest does not).
TEST(MpiEnvironment, TcpProgressThreadOnByDefault) {
  const char* v = std::getenv("OMPI_MCA_btl_tcp_progress_thread");
  ASSERT_NE(v, nullptr);
  EXPECT_STREQ(v, "1");
}

TEST(MpiChannel, CancelledReceiveAndTimeout) {
  MpiChannel ch(*g_comm);
  char buf[16];
  auto h = ch.irecv(MPI_ANY_SOURCE, kTagStats, buf, sizeof buf);
  EXPECT_FALSE(ch.test(h));
  ch.cancel(h);
  try {
    size_t n = 0;
    wait_for([&] { return ch.probe(0, kTagStats, &n); }, 0.05, "a message that never comes");
    FAIL() << "no timeout";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("timed out after 0.05 s waiting for a message that never"),
              std::string::npos)
        << e.what();
  }
}

int main(int argc, char** argv) {
  MpiEnvironment env(&argc, &argv);
  int failed = 0;
  {
    MpiComm comm(MPI_COMM_WORLD);
    g_comm = &comm;
    ::testing::InitGoogleTest(&argc, argv);
    if (comm.rank() != 0) {
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
    }
    int local = RUN_ALL_TESTS();
    MPI_Allreduce(&local, &failed, 1, MPI_INT, MPI_MAX, comm.get());
    g_comm = nullptr;
  }
  return failed;
}
