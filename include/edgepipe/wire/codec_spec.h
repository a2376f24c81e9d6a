// codec_spec: which codec each link of the pipeline uses, as named by --codec. Pure (no Torch,
// no MPI), so that the config parser and the planner can use it.
//
// Names: raw | lz4 | zfp-reversible | zfp-rate:R | zfp-precision:P | zfp-accuracy:E |
// zfp-relacc:E | q8 | q4 | q2, and any zfp mode or quantiser followed by "+lz4" (lz4 over the
// zfp or quantised stream).
//
// Links: a job of K ranks has K links, numbered by the rank they carry data into: link i
// (1 <= i < K) carries into rank i (link 1: rank 0's inputs to the first stage; link i: stage
// i-2 on rank i-1 to stage i-1 on rank i), and link K carries the last stage's results back to
// rank 0. `--codec 1=zfp-rate:8,2=lz4` sets links 1 and 2; a name without "N=" sets every link
// not named (`--codec zfp-rate:8,4=raw`).
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace edgepipe {

enum class CodecKind : uint8_t {
  raw = 0,
  lz4 = 1,
  zfp_reversible = 2,
  zfp_rate = 3,       // param: bits per value (fixed size)
  zfp_precision = 4,  // param: bit planes kept
  zfp_accuracy = 5,   // param: absolute error bound
  zfp_relacc = 6,     // param: error bound relative to the tensor's largest magnitude
  q8 = 7,             // 8-bit affine quantisation per block of values (quant.h), no param
  q4 = 8,             // 4-bit, each block's range clipped where that lowers the error (quant.h)
  q2 = 9,             // 2-bit, likewise
};
// The largest CodecKind: frames and stage set-up messages naming a larger one are refused.
constexpr CodecKind kLastCodecKind = CodecKind::q2;

// One codec with its parameter, e.g. zfp-rate:8+lz4.
struct CodecSpec {
  CodecKind kind = CodecKind::raw;
  double param = 0;  // see CodecKind; 0 for raw, lz4, zfp-reversible and the quantisers
  bool lz4 = false;  // lz4 over the zfp or quantised stream (zfp kinds and quantisers only)

  bool is_zfp() const { return kind >= CodecKind::zfp_reversible && kind <= CodecKind::zfp_relacc; }
  bool is_quant() const { return kind >= CodecKind::q8 && kind <= CodecKind::q2; }
  // Bits per value of a quantiser (8, 4, 2), 0 for the others.
  unsigned quant_bits() const {
    return kind == CodecKind::q8 ? 8 : kind == CodecKind::q4 ? 4 : kind == CodecKind::q2 ? 2 : 0;
  }
  bool lossy() const { return kind >= CodecKind::zfp_rate; }
  // The canonical name, which parse_codec reads back: "zfp-rate:8+lz4".
  std::string name() const;
  bool operator==(const CodecSpec& o) const {
    return kind == o.kind && param == o.param && lz4 == o.lz4;
  }
  bool operator!=(const CodecSpec& o) const { return !(*this == o); }
};

// Parses one codec name. Throws edgepipe::Error naming what is wrong; a misspelt name gets the
// nearest valid one suggested ("unknown codec 'zfp-rat:8': did you mean 'zfp-rate:R'?").
CodecSpec parse_codec(const std::string& text);

// The codecs of all links: a default and per-link exceptions.
struct LinkCodecs {
  CodecSpec all;                      // links not named
  std::map<int, CodecSpec> per_link;  // link number (see above) -> codec

  const CodecSpec& for_link(int link) const;
  // Throws if a named link does not exist in a job of `ranks` ranks (links 1..ranks).
  void check_links(int ranks) const;
  // The canonical text, which parse_link_codecs reads back.
  std::string text() const;
};

// Parses --codec: "lz4", "1=zfp-rate:8,2=lz4", "zfp-rate:8,3=raw". Throws edgepipe::Error.
LinkCodecs parse_link_codecs(const std::string& text);

}  // namespace edgepipe
