// bytes: a little binary writer and reader for the start-up messages between ranks (set-up,
// profiles). All ranks run the same build on the same architecture, so values go as they are
// in memory; the reader checks every length against what is left.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"

namespace edgepipe {

struct ByteWriter {
  std::string out;
  template <typename T>
  void put(const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out += s;
  }
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    put<uint64_t>(v.size());
    for (const T& x : v) put<T>(x);
  }
};

struct ByteReader {
  const std::string& in;
  const char* what;  // names the message in errors
  size_t pos = 0;
  template <typename T>
  T get() {
    EP_CHECK(pos + sizeof(T) <= in.size(), what, " is truncated");
    T v;
    std::memcpy(&v, in.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string get_string() {
    auto n = get<uint64_t>();
    EP_CHECK(n <= in.size() - pos, what, " is truncated");
    std::string s = in.substr(pos, n);
    pos += n;
    return s;
  }
  template <typename T>
  std::vector<T> get_vector() {
    auto n = get<uint64_t>();
    EP_CHECK(n <= (in.size() - pos) / sizeof(T), what, " is truncated");
    std::vector<T> v;
    for (uint64_t i = 0; i < n; ++i) v.push_back(get<T>());
    return v;
  }
};

}  // namespace edgepipe
