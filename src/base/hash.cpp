#include "edgepipe/base/hash.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {
// A file descriptor closed on every path.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0 && close(fd) != 0)
      std::fprintf(stderr, "edgepipe: warning: closing a file failed: %s\n", std::strerror(errno));
  }
};

// Lowercase hex of a digest.
std::string hex_of(const unsigned char* digest, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}
}  // namespace

std::string sha256_bytes(const std::string& bytes) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EP_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "SHA-256 init failed");
  EP_CHECK(EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) == 1, "SHA-256 update failed");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EP_CHECK(EVP_DigestFinal_ex(ctx.get(), digest, &len) == 1, "SHA-256 final failed");
  return hex_of(digest, len);
}

std::string sha256_file(const std::string& path) {
  FileDescriptor in{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  EP_CHECK(in.fd >= 0, "cannot read '", path, "' to hash it: ", std::strerror(errno));
  struct stat st;
  EP_CHECK(fstat(in.fd, &st) == 0, "cannot stat '", path, "': ", std::strerror(errno));
  EP_CHECK(!S_ISDIR(st.st_mode), "cannot hash '", path, "': it is a directory");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EP_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "SHA-256 init failed");
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = read(in.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    // A read error is not the end of the file: a hash of part of it would identify nothing.
    EP_CHECK(n >= 0, "reading '", path, "' to hash it failed: ", std::strerror(errno));
    if (n == 0) break;
    EP_CHECK(EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)) == 1,
             "SHA-256 update failed");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EP_CHECK(EVP_DigestFinal_ex(ctx.get(), digest, &len) == 1, "SHA-256 final failed");
  return hex_of(digest, len);
}

}  // namespace edgepipe
