#include "edgepipe/wire/chunked.h"

#include <algorithm>
#include <cstdint>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {
std::string size_header(uint64_t n) {
  std::string h(8, '\0');
  for (int i = 0; i < 8; ++i) h[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return h;
}

uint64_t parse_size_header(const std::string& h, const std::string& what) {
  EP_CHECK(h.size() == 8, "malformed size header (", h.size(), " bytes, not 8) in ", what);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(h[i])) << (8 * i);
  return n;
}

void wait_send(Channel& ch, int dest, int tag, const char* data, size_t n, double timeout_s) {
  auto h = ch.isend(dest, tag, data, n);
  wait_for(
      [&] { return ch.test(h); }, timeout_s,
      detail::concat("a send of ", n, " bytes to rank ", dest, " (tag ", tag, ") to complete"));
}
}  // namespace

void send_chunked(Channel& ch, int dest, int tag, const std::string& bytes, double timeout_s,
                  size_t max_chunk) {
  EP_CHECK(max_chunk > 0, "a chunk bound of 0 bytes");
  const std::string header = size_header(bytes.size());
  wait_send(ch, dest, tag, header.data(), header.size(), timeout_s);
  for (size_t at = 0; at < bytes.size(); at += max_chunk)
    wait_send(ch, dest, tag, bytes.data() + at, std::min(max_chunk, bytes.size() - at), timeout_s);
}

std::string recv_chunked(Channel& ch, int src, int tag, double timeout_s, const std::string& what) {
  const uint64_t total = parse_size_header(recv_bytes(ch, src, tag, timeout_s, what), what);
  std::string bytes(total, '\0');
  size_t at = 0;
  while (at < total) {
    size_t n = 0;
    wait_for([&] { return ch.probe(src, tag, &n); }, timeout_s, what);
    EP_CHECK(n > 0 && n <= total - at, "a piece of ", n, " bytes where ", total - at, " remain in ",
             what);
    auto h = ch.irecv(src, tag, bytes.data() + at, n);
    size_t got = 0;
    wait_for([&] { return ch.test(h, &got); }, timeout_s, what);
    at += got;
  }
  return bytes;
}

}  // namespace edgepipe
