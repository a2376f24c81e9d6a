// version: edgepipe's version, from CMake's project(... VERSION ...) and nowhere else.
#pragma once

namespace edgepipe {

// "0.2.0"
const char* version();

}  // namespace edgepipe
