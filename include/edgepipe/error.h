// Errors: one exception type for everything a user can cause, raised through EP_CHECK.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace edgepipe {

// An error that names its cause; main() prints it with the rank and exits non-zero.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
#define EP_CHECK(cond, ...) \
  do {                      \
    if (!(cond)) throw ::edgepipe::Error(::edgepipe::detail::concat(__VA_ARGS__)); \
  } while (0)

// EP_FAIL("what", value, ...): throws unconditionally.
#define EP_FAIL(...) throw ::edgepipe::Error(::edgepipe::detail::concat(__VA_ARGS__))
