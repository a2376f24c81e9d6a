// SHA-256 as lowercase hex (OpenSSL's EVP digest): of a file (one that cannot be read to its end,
// a directory, a read error, is an error naming the file and the system's reason), or of bytes in
// memory (a stage's archive: the stage cache's key, pipeline/stage_cache.h).
#pragma once
#include <string>

namespace edgepipe {
std::string sha256_file(const std::string& path);
std::string sha256_bytes(const std::string& bytes);
}  // namespace edgepipe
