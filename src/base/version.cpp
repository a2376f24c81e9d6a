#include "edgepipe/base/version.h"

// EDGEPIPE_VERSION is defined for this file only, by src/CMakeLists.txt, from the project's
// version: a new version recompiles one file.
namespace edgepipe {

const char* version() { return EDGEPIPE_VERSION; }

}  // namespace edgepipe
