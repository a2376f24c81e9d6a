// frame_engine: what the frame encoder (frame_encoder.cpp) and decoder (frame_decoder.cpp) share.
#pragma once
#include <cstddef>
#include <cstdint>

#include "edgepipe/wire/frame_layout.h"

namespace edgepipe {

// The dtypes a frame may carry.
bool known_dtype(uint8_t d);

// The checksum of a frame whose header and descriptors take its first `head` bytes
// (frame_checksum), computed in parallel for large frames.
uint32_t frame_crc(const char* frame, size_t size, size_t head);

}  // namespace edgepipe
