// SHA-256 of a file, as lowercase hex (OpenSSL's EVP digest).
#pragma once
#include <string>

namespace edgepipe {
std::string sha256_file(const std::string& path);
}
