// frame_engine: what the frame encoder (frame_encoder.cpp) and decoder (frame_decoder.cpp) share.
#pragma once
#include <cstddef>
#include <cstdint>

#include "edgepipe/wire/frame_layout.h"

namespace edgepipe {

// The dtypes a frame may carry.
bool known_dtype(uint8_t d);

}  // namespace edgepipe
