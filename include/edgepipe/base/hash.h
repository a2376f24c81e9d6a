// SHA-256 of a file, as lowercase hex (OpenSSL's EVP digest). A file that cannot be read to its
// end (a directory, a read error) is an error naming the file and the system's reason.
#pragma once
#include <string>

namespace edgepipe {
std::string sha256_file(const std::string& path);
}
