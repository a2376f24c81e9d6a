// method_lz4: lz4 over a method's stream (TensorMethod lz4 is lz4 over raw's: the tensor's
// bytes), on both sides of a frame.
#pragma once
#include <cstddef>
#include <cstdint>

namespace edgepipe {

// lz4 takes int sizes.
bool lz4_fits(size_t n);

// lz4-compresses n bytes into dst if the result is smaller than `capacity`; 0 if it is not.
size_t lz4_into(const char* src, size_t n, char* dst, size_t capacity);

// Decodes `encoded` bytes of lz4 into exactly `bytes` at dst; throws FrameError if they do not
// make exactly that ("frame tensor T: its lz4 data is corrupt", or "... (over NAME) is corrupt"
// when `over` names the method whose stream it is).
void lz4_decode_exact(const char* src, uint64_t encoded, char* dst, uint64_t bytes, uint32_t tensor,
                      const char* over);

}  // namespace edgepipe
