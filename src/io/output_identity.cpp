#include "edgepipe/io/output_identity.h"

#include <filesystem>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/io/data.h"

namespace edgepipe {

std::string output_settings(const RunConfig& cfg, bool pipeline) {
  bool lossy = pipeline && cfg.codecs.all.lossy();
  for (const auto& link : cfg.codecs.per_link) lossy = lossy || (pipeline && link.second.lossy());
  return std::string("codec ") + (lossy ? cfg.codecs.text() : "lossless") + ", optimize " +
         (cfg.optimize ? "on" : "off");
}

OutputIdentity output_identity(const RunConfig& cfg, const InputSource& in, bool pipeline) {
  return {sha256_file(cfg.model), in.identity(), in.count(), output_settings(cfg, pipeline)};
}

void record_identity(H5OutputFile& file, const OutputIdentity& id) {
  file.set_attribute("model_sha256", id.model_sha256);
  file.set_attribute("input_identity", id.input);
  file.set_attribute("rows_total", std::vector<int64_t>{id.rows});
  file.set_attribute("output_settings", id.settings);
}

void check_identity(const H5AttributeReader& file, const OutputIdentity& id,
                    const std::string& name) {
  EP_CHECK(file.has("rows_done") && file.has("model_sha256") && file.has("input_identity") &&
               file.has("rows_total"),
           "'", name, "' is not an edgepipe outputs file (no progress record): cannot resume it");
  const std::string model = file.text("model_sha256");
  EP_CHECK(model == id.model_sha256, "cannot resume '", name,
           "': it holds the outputs of another model (SHA-256 ", model.substr(0, 12),
           "..., this model's is ", id.model_sha256.substr(0, 12),
           "...); pass --overwrite to start again");
  EP_CHECK(file.text("input_identity") == id.input, "cannot resume '", name,
           "': it was made from other inputs (", file.text("input_identity"), "; now ", id.input,
           "); pass --overwrite to start again");
  const auto rows = file.ints("rows_total");
  EP_CHECK(rows == std::vector<int64_t>{id.rows}, "cannot resume '", name, "': it expects ",
           rows.empty() ? 0 : rows[0], " rows, the inputs have ", id.rows);
  const std::string settings = file.has("output_settings") ? file.text("output_settings") : "";
  EP_CHECK(settings == id.settings, "cannot resume '", name,
           "': its rows were computed with other settings (",
           settings.empty() ? "not recorded" : settings, "; now ", id.settings,
           "), and one file must not mix them: use the same --codec and --optimize, or pass "
           "--overwrite to start again");
}

bool resume_finds_complete(const std::string& output, const OutputIdentity& id) {
  namespace fs = std::filesystem;
  if (!fs::exists(output) || fs::exists(output + ".partial")) return false;
  H5Id file = h5_open_read_only(output, "cannot open '" + output + "' to check it");
  H5AttributeReader a(file.get());
  check_identity(a, id, output);
  EP_CHECK(a.has("complete") && a.ints("complete") == std::vector<int64_t>{1} &&
               a.ints("rows_done") == std::vector<int64_t>{id.rows},
           "'", output, "' is not marked complete: pass --overwrite to start again");
  return true;
}

}  // namespace edgepipe
