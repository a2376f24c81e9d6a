// units: quantities with units, as cluster files and the command line write them, and back.
// Pure: no Torch, no MPI.
#pragma once
#include <string>

namespace edgepipe {

// Parse; throw edgepipe::ConfigError naming the value and what is wrong with it.
double parse_bytes(const std::string& text);      // "512MiB", "1.5 GB", "4096" -> bytes
double parse_bandwidth(const std::string& text);  // "100Mbit/s", "12.5MB/s" -> bytes per second
double parse_duration(const std::string& text);   // "1ms", "250us", "2s" -> seconds

// "12.5 MiB" -> 12.5, and *unit = "MiB". Throws if there is no number, or it is negative or
// not finite.
double split_number(const std::string& text, std::string& unit);

std::string format_bytes(double bytes);            // "97.5 MiB"
std::string format_bandwidth(double bytes_per_s);  // "100 Mbit/s"
std::string format_duration(double seconds);       // "1.25 ms"

}  // namespace edgepipe
