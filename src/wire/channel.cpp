#include "edgepipe/wire/channel.h"

#include <climits>
#include <cstring>

namespace edgepipe {

int wait_for_tag(Channel& ch, int src, const std::vector<int>& tags, double timeout_s,
                 const std::string& what) {
  int found = -1;
  wait_for(
      [&] {
        size_t n = 0;
        for (int tag : tags)
          if (ch.probe(src, tag, &n)) return found = tag, true;
        return false;
      },
      timeout_s, what);
  return found;
}

RemappedChannel::RemappedChannel(Channel& base, std::vector<int> members)
    : base_(base), members_(std::move(members)) {
  for (size_t i = 0; i < members_.size(); ++i) {
    EP_CHECK(members_[i] >= 0 && members_[i] < base.size(), "rank ", members_[i],
             " is not in the job");
    if (members_[i] == base.rank()) rank_ = static_cast<int>(i);
  }
  EP_CHECK(rank_ >= 0, "rank ", base.rank(), " is not among the ranks of the plan");
}

void send_bytes(Channel& ch, int dest, int tag, const std::string& bytes, double timeout_s) {
  auto h = ch.isend(dest, tag, bytes.data(), bytes.size());
  wait_for([&] { return ch.test(h); }, timeout_s,
           detail::concat("a send of ", bytes.size(), " bytes to rank ", dest, " (tag ", tag,
                          ") to complete"));
}

std::string recv_bytes(Channel& ch, int src, int tag, double timeout_s, const std::string& what) {
  size_t n = 0;
  wait_for([&] { return ch.probe(src, tag, &n); }, timeout_s, what);
  std::string bytes(n, '\0');
  auto h = ch.irecv(src, tag, bytes.data(), n);
  size_t got = 0;
  wait_for([&] { return ch.test(h, &got); }, timeout_s, what);
  bytes.resize(got);
  return bytes;
}

// ---- MPI ----

MpiChannel::~MpiChannel() {
  for (auto& p : pending_) {
    if (p.request == MPI_REQUEST_NULL) continue;
    if (!p.is_send) MPI_Cancel(&p.request);
    MPI_Request_free(&p.request);
  }
}

Channel::Handle MpiChannel::add(const Pending& p) {
  if (free_.empty()) {
    pending_.push_back(p);
    return static_cast<Handle>(pending_.size() - 1);
  }
  Handle h = free_.back();
  free_.pop_back();
  pending_[h] = p;
  return h;
}

Channel::Handle MpiChannel::isend(int dest, int tag, const char* data, size_t n) {
  EP_CHECK(n <= static_cast<size_t>(INT_MAX), "message of ", n, " bytes is too large for MPI");
  Pending p{MPI_REQUEST_NULL, dest, tag, true};
  mpi_check(MPI_Isend(data, static_cast<int>(n), MPI_BYTE, dest, tag, comm_.get(), &p.request),
            "MPI_Isend", dest, tag);
  return add(p);
}

Channel::Handle MpiChannel::irecv(int src, int tag, char* data, size_t capacity) {
  int count = static_cast<int>(std::min(capacity, static_cast<size_t>(INT_MAX)));
  Pending p{MPI_REQUEST_NULL, src, tag, false};
  mpi_check(MPI_Irecv(data, count, MPI_BYTE, src, tag, comm_.get(), &p.request), "MPI_Irecv", src,
            tag);
  return add(p);
}

bool MpiChannel::test(Handle h, size_t* bytes) {
  Pending& p = pending_.at(h);
  int done = 0;
  MPI_Status status;
  mpi_check(MPI_Test(&p.request, &done, &status),
            p.is_send ? "MPI_Test (send)" : "MPI_Test (receive)", p.peer, p.tag);
  if (!done) return false;
  if (!p.is_send) {
    int count = 0;
    mpi_check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count", p.peer, p.tag);
    if (bytes) *bytes = static_cast<size_t>(count);
  }
  p.request = MPI_REQUEST_NULL;
  free_.push_back(h);
  return true;
}

void MpiChannel::cancel(Handle h) {
  Pending& p = pending_.at(h);
  if (p.request != MPI_REQUEST_NULL) {
    mpi_check(MPI_Cancel(&p.request), "MPI_Cancel", p.peer, p.tag);
    int done = 0;
    MPI_Status status;
    wait_for([&] { return MPI_Test(&p.request, &done, &status) != MPI_SUCCESS || done; }, 10.0,
             "a cancelled receive to finish");
  }
  p.request = MPI_REQUEST_NULL;
  free_.push_back(h);
}

bool MpiChannel::probe(int src, int tag, size_t* bytes) {
  int flag = 0;
  MPI_Status status;
  mpi_check(MPI_Iprobe(src, tag, comm_.get(), &flag, &status), "MPI_Iprobe", src, tag);
  if (!flag) return false;
  int count = 0;
  mpi_check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count", src, tag);
  *bytes = static_cast<size_t>(count);
  return true;
}

void MpiChannel::abort(int code) {
  MPI_Abort(comm_.get(), code);
  std::_Exit(code);
}

// ---- in-process ----

Channel::Handle LocalChannel::isend(int dest, int tag, const char* data, size_t n) {
  EP_CHECK(dest >= 0 && dest < hub_.size(), "send to rank ", dest, " of ", hub_.size());
  {
    std::lock_guard<std::mutex> lock(hub_.mutex_);
    hub_.boxes_[dest].push_back({rank_, tag, std::vector<char>(data, data + n)});
  }
  return add({true, true, dest, tag, nullptr, 0});
}

Channel::Handle LocalChannel::add(const Pending& p) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (!pending_[i].active) {
      pending_[i] = p;
      return static_cast<Handle>(i);
    }
  }
  pending_.push_back(p);
  return static_cast<Handle>(pending_.size() - 1);
}

Channel::Handle LocalChannel::irecv(int src, int tag, char* data, size_t capacity) {
  return add({true, false, src, tag, data, capacity});
}

bool LocalChannel::test(Handle h, size_t* bytes) {
  Pending& p = pending_.at(h);
  std::lock_guard<std::mutex> lock(hub_.mutex_);
  EP_CHECK(!hub_.aborted_, "another rank aborted the run");
  if (p.is_send) {
    p.active = false;
    return true;
  }
  auto& box = hub_.boxes_[rank_];
  for (auto it = box.begin(); it != box.end(); ++it) {
    if (it->src != p.src || it->tag != p.tag) continue;
    EP_CHECK(it->bytes.size() <= p.capacity, "message of ", it->bytes.size(), " bytes from rank ",
             p.src, " is larger than the receive buffer (", p.capacity, ")");
    std::memcpy(p.data, it->bytes.data(), it->bytes.size());
    if (bytes) *bytes = it->bytes.size();
    box.erase(it);
    p.active = false;
    return true;
  }
  return false;
}

void LocalChannel::cancel(Handle h) { pending_.at(h).active = false; }

bool LocalChannel::probe(int src, int tag, size_t* bytes) {
  std::lock_guard<std::mutex> lock(hub_.mutex_);
  EP_CHECK(!hub_.aborted_, "another rank aborted the run");
  for (const auto& m : hub_.boxes_[rank_]) {
    if (m.src == src && m.tag == tag) {
      *bytes = m.bytes.size();
      return true;
    }
  }
  return false;
}

void LocalChannel::abort(int code) {
  {
    std::lock_guard<std::mutex> lock(hub_.mutex_);
    hub_.aborted_ = true;
  }
  throw Error(detail::concat("rank ", rank_, " aborted the run (code ", code, ")"));
}

}  // namespace edgepipe
