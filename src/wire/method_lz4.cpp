#include "method_lz4.h"

#include <lz4.h>

#include <algorithm>

#include "edgepipe/base/error.h"
#include "method.h"

namespace edgepipe {

bool lz4_fits(size_t n) { return n <= static_cast<size_t>(LZ4_MAX_INPUT_SIZE); }

size_t lz4_into(const char* src, size_t n, char* dst, size_t capacity) {
  if (n == 0 || !lz4_fits(n) || capacity == 0) return 0;
  int cap = static_cast<int>(std::min(capacity, n) - 1);
  if (cap <= 0) return 0;
  int r = LZ4_compress_default(src, dst, static_cast<int>(n), cap);
  return r > 0 ? static_cast<size_t>(r) : 0;
}

void lz4_decode_exact(const char* src, uint64_t encoded, char* dst, uint64_t bytes, uint32_t tensor,
                      const char* over) {
  // The descriptor's checks keep both counts within lz4's int sizes.
  const int r = LZ4_decompress_safe(src, dst, static_cast<int>(encoded), static_cast<int>(bytes));
  const bool ok = r >= 0 && static_cast<uint64_t>(r) == bytes;
  if (over)
    EP_CHECK_AS(FrameError, ok, "frame tensor ", tensor, ": its lz4 data (over ", over,
                ") is corrupt");
  else
    EP_CHECK_AS(FrameError, ok, "frame tensor ", tensor, ": its lz4 data is corrupt");
}

// Undoes lz4 over a tensor's stream: into `joined`, grown to the stream's size and reused.
const char* DecodeJob::stream() const {
  if (!lz4) return payload;
  std::vector<char>& joined = buffers.joined;
  if (joined.size() < desc.stream_bytes) joined.resize(desc.stream_bytes);
  lz4_decode_exact(payload, desc.encoded_bytes, joined.data(), desc.stream_bytes, tensor, name);
  return joined.data();
}

void check_stream_counts(const DescCheck& c, const char* name) {
  const TensorDesc& d = c.desc;
  EP_CHECK_AS(FrameError,
              d.encoded_bytes > 0 && d.encoded_bytes < d.raw_bytes &&
                  (c.lz4 ? d.encoded_bytes < d.stream_bytes && lz4_fits(d.stream_bytes)
                         : d.stream_bytes == d.encoded_bytes),
              "frame tensor ", c.tensor, ": inconsistent ", name, " byte counts (", d.encoded_bytes,
              " encoded, ", d.stream_bytes, " ", name, ", ", d.raw_bytes, " raw)");
}

}  // namespace edgepipe
