// zfp_stream: one zfp stream and field over a scratch buffer, with zfp 1.0's handles owned, and
// how a link's codec and a frame's descriptor name zfp's modes.
#pragma once
#include <c10/core/ScalarType.h>
#include <zfp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "edgepipe/wire/codec_spec.h"
#include "edgepipe/wire/frame_layout.h"
#include "edgepipe/wire/zfp_field.h"

namespace edgepipe {

// zfp's type for a tensor dtype: float and double, zfp_type_none for any other.
zfp_type zfp_type_of(c10::ScalarType t);

// The zfp mode a link's codec uses (none for codecs that are not zfp).
ZfpMode zfp_mode_of(CodecKind k);

// Whether a frame's zfp mode and parameter are ones an encoder writes.
bool zfp_param_ok(ZfpMode mode, double p);

// One zfp stream and field, configured per tensor chunk, over a scratch buffer that the bit
// stream writes to (encoding) or reads from (decoding). The buffer only grows, so once warm
// nothing is allocated.
class ZfpStream {
 public:
  ZfpStream();

  // Configures stream and field for a chunk and returns the most bytes a stream of this field
  // and mode can hold: every block is capped at the bits zfp can ever need for it, so neither
  // the encoder nor the decoder (even of a corrupt stream) touches more.
  size_t configure(zfp_type type, const ZfpField& f, ZfpMode mode, double param, void* data);
  // Makes the scratch buffer hold at least `bytes` plus a word of slack for zfp's read-ahead.
  void reserve(size_t bytes);
  char* scratch() { return reinterpret_cast<char*>(scratch_.data()); }
  // Compresses the configured field into the scratch buffer; returns the stream's bytes.
  size_t compress();
  // Decompresses the scratch buffer into out; returns the bytes of stream consumed (rounded up
  // to words), 0 on failure.
  size_t decompress(void* out);

 private:
  // zfp's stream, field and bit stream each need their own owner: closing a zfp_stream does not
  // close its bit stream.
  struct StreamCloser {
    void operator()(zfp_stream* z) const { zfp_stream_close(z); }
  };
  struct FieldFreer {
    void operator()(zfp_field* f) const { zfp_field_free(f); }
  };
  struct BitStreamCloser {
    void operator()(bitstream* b) const { stream_close(b); }
  };
  std::unique_ptr<zfp_stream, StreamCloser> zfp_;
  std::unique_ptr<zfp_field, FieldFreer> field_;
  std::unique_ptr<bitstream, BitStreamCloser> bits_;
  std::vector<uint64_t> scratch_;  // words: zfp reads and writes 64-bit words
};

}  // namespace edgepipe
