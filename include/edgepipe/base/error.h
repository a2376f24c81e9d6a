// Errors: everything a user can cause is an edgepipe::Error raised through EP_CHECK, with a
// message that names the cause. Kinds that a caller may want to handle apart derive from it
// (a bad frame, a bad configuration, a timeout); each error also records the file and line that
// raised it, for developers (printed with EDGEPIPE_DEBUG=1; users read the message).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace edgepipe {

// An error that names its cause; main() prints it with the rank and exits non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, const char* file = nullptr, int line = 0)
      : std::runtime_error(what), file_(file), line_(line) {}
  const char* file() const { return file_ ? file_ : ""; }
  int line() const { return line_; }
  // "src/wire/frame.cpp:120", or "" when not raised through EP_CHECK / EP_FAIL.
  std::string where() const {
    return file_ ? std::string(file_) + ":" + std::to_string(line_) : std::string();
  }

 private:
  const char* file_;
  int line_;
};

// Options, config files and cluster files that say something wrong or impossible.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A frame that is truncated, corrupt or not an edgepipe frame (the decoder's only error).
class FrameError : public Error {
 public:
  using Error::Error;
};

// A wait that did not end in time; the message names what was waited for.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}
}  // namespace detail

}  // namespace edgepipe

// EP_CHECK(cond, "what", value, ...): throws edgepipe::Error with the concatenated message.
#define EP_CHECK(cond, ...) EP_CHECK_AS(::edgepipe::Error, cond, __VA_ARGS__)

// EP_CHECK_AS(edgepipe::FrameError, cond, "what", ...): the same, as an error of that kind.
#define EP_CHECK_AS(kind, cond, ...)                                                      \
  do {                                                                                    \
    if (!(cond)) throw kind(::edgepipe::detail::concat(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

// EP_FAIL("what", value, ...) and EP_FAIL_AS(kind, "what", ...): throw unconditionally.
#define EP_FAIL(...) EP_FAIL_AS(::edgepipe::Error, __VA_ARGS__)
#define EP_FAIL_AS(kind, ...) \
  throw kind(::edgepipe::detail::concat(__VA_ARGS__), __FILE__, __LINE__)
