// chunked: one logical message of any size as several MPI messages, each at most a bound (MPI
// counts are ints: one message holds at most INT_MAX bytes). Used for the large start-up messages
// (a stage's bytes, the blocks to profile). On the wire: an 8-byte little-endian total size, then
// the bytes in order in pieces of at most max_chunk bytes, all with the same tag (MPI keeps the
// order of messages between two ranks with one tag).
#pragma once
#include <cstddef>
#include <string>

#include "edgepipe/wire/channel.h"

namespace edgepipe {

// The default bound per message: 1 GiB, well under INT_MAX.
constexpr size_t kDefaultMaxChunk = size_t{1} << 30;

// Sends `bytes` to dest as a size header and ceil(size / max_chunk) pieces, waiting (as wait_for,
// timeout_s for each message) for each to complete before the next starts.
void send_chunked(Channel& ch, int dest, int tag, const std::string& bytes, double timeout_s,
                  size_t max_chunk = kDefaultMaxChunk);

// Receives what send_chunked sent (with any max_chunk). Throws edgepipe::Error naming `what` on a
// malformed header or a piece larger than what remains.
std::string recv_chunked(Channel& ch, int src, int tag, double timeout_s, const std::string& what);

}  // namespace edgepipe
