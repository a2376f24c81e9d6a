// channel: moving byte messages between ranks without blocking. One interface, two transports:
// MPI (the real one) and in-process (ranks as threads, so pipeline logic can be tested without
// mpiexec). Waiting is done by wait_for(): test, then sleep briefly, with a timeout. The
// messages themselves and their tags are in protocol.h.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/wire/mpi.h"

namespace edgepipe {

class Channel {
 public:
  using Handle = int;
  virtual ~Channel() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Starts sending n bytes; `data` must stay valid and unchanged until test() says done.
  virtual Handle isend(int dest, int tag, const char* data, size_t n) = 0;
  // Starts receiving at most `capacity` bytes from src with tag into `data`.
  virtual Handle irecv(int src, int tag, char* data, size_t capacity) = 0;
  // True when the operation is complete (the handle is then released); for a receive, *bytes
  // is set to the message's size.
  virtual bool test(Handle h, size_t* bytes = nullptr) = 0;
  // Cancels a pending receive and releases its handle.
  virtual void cancel(Handle h) = 0;
  // If a message from src with tag has arrived, sets *bytes to its size and returns true.
  virtual bool probe(int src, int tag, size_t* bytes) = 0;
  // Ends the whole job now (all ranks) with this exit code.
  [[noreturn]] virtual void abort(int code) = 0;
};

// Polls done() and sleeps between polls (10 us, doubling up to 500 us), so that a waiting rank
// costs almost no CPU even with more ranks than cores. Throws TimeoutError "timed out after T s
// waiting for <what>" when done() has not become true within timeout_s.
template <typename Done>
void wait_for(Done done, double timeout_s, const std::string& what) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::microseconds(10);
  while (!done()) {
    EP_CHECK_AS(TimeoutError, clock::now() < deadline, "timed out after ", timeout_s,
                " s waiting for ", what);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(500));
  }
}

// Waits (as wait_for) until a message from src with one of the tags has arrived; returns its
// tag (the first of them, if several have).
int wait_for_tag(Channel& ch, int src, const std::vector<int>& tags, double timeout_s,
                 const std::string& what);

// Blocking conveniences built on the above.
void send_bytes(Channel& ch, int dest, int tag, const std::string& bytes, double timeout_s);
std::string recv_bytes(Channel& ch, int src, int tag, double timeout_s, const std::string& what);

// The MPI transport over a communicator (which must outlive it).
class MpiChannel : public Channel {
 public:
  explicit MpiChannel(const MpiComm& comm) : comm_(comm) {}
  ~MpiChannel() override;
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  Handle isend(int dest, int tag, const char* data, size_t n) override;
  Handle irecv(int src, int tag, char* data, size_t capacity) override;
  bool test(Handle h, size_t* bytes = nullptr) override;
  void cancel(Handle h) override;
  bool probe(int src, int tag, size_t* bytes) override;
  [[noreturn]] void abort(int code) override;

 private:
  struct Pending {
    MPI_Request request = MPI_REQUEST_NULL;
    int peer = -1;
    int tag = -1;
    bool is_send = false;
  };
  Handle add(const Pending& p);
  const MpiComm& comm_;
  std::vector<Pending> pending_;  // slots reused: a handle is an index
  std::vector<Handle> free_;
};

// The ranks of another channel, renumbered: rank i here is members[i] there. A run uses it once
// the plan is made, so that stage s is rank s + 1 whichever rank the planner put it on, and ranks
// the plan leaves idle are not in it.
class RemappedChannel : public Channel {
 public:
  RemappedChannel(Channel& base, std::vector<int> members);
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  int base_rank(int rank) const { return members_.at(rank); }
  Handle isend(int dest, int tag, const char* data, size_t n) override {
    return base_.isend(members_.at(dest), tag, data, n);
  }
  Handle irecv(int src, int tag, char* data, size_t capacity) override {
    return base_.irecv(members_.at(src), tag, data, capacity);
  }
  bool test(Handle h, size_t* bytes = nullptr) override { return base_.test(h, bytes); }
  void cancel(Handle h) override { base_.cancel(h); }
  bool probe(int src, int tag, size_t* bytes) override {
    return base_.probe(members_.at(src), tag, bytes);
  }
  [[noreturn]] void abort(int code) override {
    base_.abort(code);
    std::terminate();  // not reached: the base's abort does not return either
  }

 private:
  Channel& base_;
  std::vector<int> members_;
  int rank_ = -1;
};

// In-process transport: one LocalHub shared by N threads, one LocalChannel per thread.
class LocalHub {
 public:
  explicit LocalHub(int size) : size_(size), boxes_(size) {}
  int size() const { return size_; }

 private:
  friend class LocalChannel;
  struct Message {
    int src;
    int tag;
    std::vector<char> bytes;
  };
  int size_;
  std::mutex mutex_;
  std::vector<std::deque<Message>> boxes_;  // by destination, in arrival order
  bool aborted_ = false;
};

class LocalChannel : public Channel {
 public:
  LocalChannel(LocalHub& hub, int rank) : hub_(hub), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return hub_.size(); }
  Handle isend(int dest, int tag, const char* data, size_t n) override;
  Handle irecv(int src, int tag, char* data, size_t capacity) override;
  bool test(Handle h, size_t* bytes = nullptr) override;
  void cancel(Handle h) override;
  bool probe(int src, int tag, size_t* bytes) override;
  [[noreturn]] void abort(int code) override;

 private:
  struct Pending {
    bool active = false;
    bool is_send = false;
    int src = -1;
    int tag = -1;
    char* data = nullptr;
    size_t capacity = 0;
  };
  Handle add(const Pending& p);
  LocalHub& hub_;
  int rank_;
  std::vector<Pending> pending_;
};

}  // namespace edgepipe
