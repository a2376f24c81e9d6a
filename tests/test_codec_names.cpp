// Codec names: --codec parsing, canonical names, typo suggestions, per-link codecs.
#include <gtest/gtest.h>

#include <string>

#include "codec_test_util.h"

using namespace edgepipe;
using namespace codec_test;

TEST(CodecSpec, ParsesEveryNameAndReadsBackItsName) {
  for (const char* name : kAllCodecs) {
    CodecSpec c = parse_codec(name);
    EXPECT_EQ(parse_codec(c.name()), c) << name;
  }
  EXPECT_EQ(parse_codec("zfp-rate:8").name(), "zfp-rate:8");
  EXPECT_EQ(parse_codec(" ZFP-Accuracy:0.001+LZ4 ").name(), "zfp-accuracy:0.001+lz4");
  EXPECT_EQ(parse_codec("zfp-relacc:1e-3").name(), "zfp-relacc:0.001");
  EXPECT_TRUE(parse_codec("zfp-rate:8").lossy());
  EXPECT_FALSE(parse_codec("zfp-reversible+lz4").lossy());
  EXPECT_FALSE(parse_codec("lz4").is_zfp());
  EXPECT_EQ(parse_codec("Q8+LZ4").name(), "q8+lz4");
  EXPECT_EQ(parse_codec("q8").kind, CodecKind::q8);
  EXPECT_TRUE(parse_codec("q8").lossy());
  EXPECT_TRUE(parse_codec("q8+lz4").lossy());
  EXPECT_FALSE(parse_codec("q8").is_zfp());
  EXPECT_FALSE(parse_codec("q8+lz4").is_zfp());
  EXPECT_TRUE(parse_codec("zfp-relacc:1e-2").is_zfp());
  EXPECT_EQ(parse_codec("Q4+LZ4").name(), "q4+lz4");
  EXPECT_EQ(parse_codec("q4").kind, CodecKind::q4);
  EXPECT_EQ(parse_codec("q2+lz4").kind, CodecKind::q2);
  EXPECT_TRUE(parse_codec("q2+lz4").lz4);
  for (const char* q : {"q8", "q4", "q2"}) {
    EXPECT_TRUE(parse_codec(q).lossy()) << q;
    EXPECT_TRUE(parse_codec(q).is_quant()) << q;
    EXPECT_FALSE(parse_codec(q).is_zfp()) << q;
  }
  EXPECT_EQ(parse_codec("q8").quant_bits(), 8u);
  EXPECT_EQ(parse_codec("q4+lz4").quant_bits(), 4u);
  EXPECT_EQ(parse_codec("q2").quant_bits(), 2u);
  EXPECT_EQ(parse_codec("zfp-rate:4").quant_bits(), 0u);
  EXPECT_FALSE(parse_codec("zfp-rate:4").is_quant());
}

TEST(CodecSpec, TyposGetTheNearestName) {
  auto message = [](const std::string& text) {
    try {
      parse_codec(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("zfp-rat:8").find("did you mean 'zfp-rate:R'"), std::string::npos)
      << message("zfp-rat:8");
  EXPECT_NE(message("lz5").find("did you mean 'lz4'"), std::string::npos);
  EXPECT_NE(message("zfp-reversable").find("did you mean 'zfp-reversible'"), std::string::npos);
  EXPECT_NE(message("zfp-relac:1e-3").find("did you mean 'zfp-relacc:E'"), std::string::npos);
  EXPECT_NE(message("zfp-acuracy:1e-3").find("did you mean 'zfp-accuracy:E'"), std::string::npos);
  EXPECT_NE(message("gzip").find("codecs are raw, lz4"), std::string::npos);
  EXPECT_NE(message("zfp-rate").find("needs a number"), std::string::npos);
  EXPECT_NE(message("zfp-rate:abc").find("needs a number"), std::string::npos);
  EXPECT_NE(message("zfp-rate:0").find("(0, 64]"), std::string::npos);
  EXPECT_NE(message("zfp-precision:7.5").find("whole number"), std::string::npos);
  EXPECT_NE(message("zfp-accuracy:-1").find("positive"), std::string::npos);
  EXPECT_NE(message("zfp-relacc:2").find("(0, 1]"), std::string::npos);
  EXPECT_NE(message("lz4+lz4").find("can only follow a zfp mode, q8, q4 or q2"), std::string::npos);
  EXPECT_NE(message("q9").find("did you mean 'q8'"), std::string::npos) << message("q9");
  EXPECT_NE(message("q8:4").find("q8 takes no parameter"), std::string::npos);
  EXPECT_NE(message("q8+lz4+lz4").find("unknown codec"), std::string::npos);
  EXPECT_NE(message("q4:2").find("q4 takes no parameter"), std::string::npos);
  EXPECT_NE(message("q2+lz4+lz4").find("unknown codec"), std::string::npos);
  EXPECT_NE(message("q3").find("did you mean 'q"), std::string::npos) << message("q3");
  EXPECT_NE(message("gzip").find("q8, q4, q2, and any zfp mode, q8, q4 or q2 followed by +lz4"),
            std::string::npos)
      << message("gzip");
  EXPECT_NE(message("raw+lz4").find("use 'lz4'"), std::string::npos);
  EXPECT_NE(message("lz4:3").find("takes no parameter"), std::string::npos);
  EXPECT_NE(message("zfp-rate:8+zstd").find("unknown codec"), std::string::npos);
}

TEST(CodecSpec, PerLinkCodecs) {
  LinkCodecs lc = parse_link_codecs("1=zfp-rate:8, 2=lz4");
  EXPECT_EQ(lc.for_link(1), parse_codec("zfp-rate:8"));
  EXPECT_EQ(lc.for_link(2), parse_codec("lz4"));
  EXPECT_EQ(lc.for_link(3), CodecSpec{});
  EXPECT_EQ(lc.text(), "1=zfp-rate:8,2=lz4");
  lc.check_links(4);
  EXPECT_THROW(lc.check_links(1), Error);

  lc = parse_link_codecs("zfp-rate:8+lz4,4=raw");
  EXPECT_EQ(lc.for_link(2), parse_codec("zfp-rate:8+lz4"));
  EXPECT_EQ(lc.for_link(4), CodecSpec{});
  EXPECT_EQ(parse_link_codecs(lc.text()).text(), lc.text());

  EXPECT_EQ(parse_link_codecs("lz4").text(), "lz4");
  EXPECT_THROW(parse_link_codecs(""), Error);
  EXPECT_THROW(parse_link_codecs("lz4,raw"), Error);      // two defaults
  EXPECT_THROW(parse_link_codecs("1=lz4,1=raw"), Error);  // link named twice
  EXPECT_THROW(parse_link_codecs("0=lz4"), Error);
  EXPECT_THROW(parse_link_codecs("x=lz4"), Error);
  EXPECT_THROW(parse_link_codecs("2=lzz4"), Error);
  try {
    parse_link_codecs("1=zfp-rate:8,7=lz4").check_links(4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("links 1..4"), std::string::npos) << e.what();
  }
}
