# The frame engine and its tensor methods (include/edgepipe/wire/frame.h), listed once for the
# main build (src/CMakeLists.txt) and the fuzz target's own clang build (tests/fuzz/).
# EDGEPIPE_FRAME_SOURCES: absolute paths.
set(EDGEPIPE_FRAME_SOURCES
  checksum.cpp
  frame_decoder.cpp
  frame_encoder.cpp
  frame_layout.cpp
  method_lz4.cpp
  method_quant.cpp
  method_raw.cpp
  method_table.cpp
  method_zfp.cpp
  zfp_field.cpp
  zfp_stream.cpp
)
list(TRANSFORM EDGEPIPE_FRAME_SOURCES PREPEND ${CMAKE_CURRENT_LIST_DIR}/)
