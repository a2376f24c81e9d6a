// The table of tensor methods (method.h): one entry per method.
#include "edgepipe/base/error.h"
#include "method.h"

namespace edgepipe {

namespace {

size_t no_table(const TensorMeta&) { return 0; }

}  // namespace

const MethodEntry kMethods[] = {
    {"raw", TensorMethod::raw, TensorMethod::lz4, false, nullptr, no_table, make_raw_coder},
    {"zfp", TensorMethod::zfp, TensorMethod::zfp_lz4, true, zfp_serves, zfp_table_bound,
     make_zfp_coder},
    {"q8", TensorMethod::q8, TensorMethod::q8_lz4, false, q8_serves, no_table, make_q8_coder},
    {"q4", TensorMethod::q4, TensorMethod::q4_lz4, false, q4_serves, no_table, make_q4_coder},
    {"q2", TensorMethod::q2, TensorMethod::q2_lz4, false, q2_serves, no_table, make_q2_coder},
};
const size_t kMethodCount = sizeof kMethods / sizeof kMethods[0];

const MethodEntry* method_of(uint8_t method) {
  for (const MethodEntry& e : kMethods)
    if (method == static_cast<uint8_t>(e.plain) || method == static_cast<uint8_t>(e.over_lz4))
      return &e;
  return nullptr;
}

std::vector<std::unique_ptr<TensorCoder>> make_coders(const MethodOptions& options) {
  std::vector<std::unique_ptr<TensorCoder>> coders;
  for (const MethodEntry& e : kMethods) coders.push_back(e.make(options));
  return coders;
}

bool is_float_type(c10::ScalarType t) {
  return t == c10::ScalarType::Float || t == c10::ScalarType::Double;
}

void check_float_dtype(const DescCheck& c, const char* name) {
  EP_CHECK_AS(FrameError, is_float_type(c.meta.dtype), "frame tensor ", c.tensor, " of dtype ",
              c10::toString(c.meta.dtype), " claims to be ", name, "-encoded");
}

}  // namespace edgepipe
