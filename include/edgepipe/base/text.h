// text: small string helpers shared by the parsers and the tables.
#pragma once
#include <cstddef>
#include <string>

namespace edgepipe {

// printf into a std::string (for table lines); at most 1023 characters.
std::string strprintf(const char* format, ...) __attribute__((format(printf, 1, 2)));

// `s` without leading and trailing white space.
std::string trim(const std::string& s);

// Levenshtein distance: suggests the nearest valid name for a typo.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace edgepipe
