// Reading a run log back for edgepipe report (runlog.h: RunLogFile).
#include <cstring>
#include <filesystem>

#include "edgepipe/base/error.h"
#include "edgepipe/io/h5_attributes.h"
#include "edgepipe/records/runlog.h"
#include "edgepipe/records/runlog_tables.h"

namespace edgepipe {

namespace {

// /ranks/<r>/totals of every rank group, with the group's rank and stage added (groups are
// named by the job's rank; ranks the plan left idle have none).
void read_rank_totals(hid_t file, const std::string& path, RunLogFile& out) {
  H5Id ranks = h5_open_group(file, "ranks", path);
  H5G_info_t info;
  h5_check(H5Gget_info(ranks.get(), &info), "reading /ranks");
  for (int r = 0, found = 0; found < static_cast<int>(info.nlinks) && r < (1 << 20); ++r) {
    const std::string name = std::to_string(r);
    if (!h5_exists(ranks.get(), name)) continue;
    ++found;
    H5Id g = h5_open_group(ranks.get(), name + "/totals", path);
    out.totals.emplace_back();
    out.totals_text.emplace_back();
    h5_read_attrs(g.get(), "/ranks/" + name + "/totals", &out.totals.back(),
                  &out.totals_text.back());
    H5Id rg = h5_open_group(ranks.get(), name, path);
    std::map<std::string, double> n;
    h5_read_attrs(rg.get(), "/ranks/" + name, &n, &out.totals_text.back());
    out.totals.back()["stage"] = n["stage"];
    out.totals.back()["rank"] = r;
  }
}

void read_links(hid_t file, RunLogFile& out) {
  if (!h5_exists(file, "links")) return;
  for (const LinkRow& row : h5_read_table<LinkRow>(file, "links", link_row_type())) {
    LinkCounters c;
    std::memcpy(c.codec, row.codec, sizeof c.codec);
    c.codec[sizeof c.codec - 1] = '\0';
    c.frames = row.frames;
    c.bytes_raw = row.bytes_raw;
    c.bytes_encoded = row.bytes_encoded;
    c.bytes_frames = row.bytes_frames;
    c.time_encode = row.time_encode;
    c.time_decode = row.time_decode;
    c.time_error = row.time_error;
    c.error_max_rel = row.error_max_rel;
    out.links.push_back(c);
  }
}

}  // namespace

RunLogFile read_run_log(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  EP_CHECK(std::filesystem::exists(path), "run log '", path, "' does not exist");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
            "cannot open run log '" + path + "' as HDF5");
  RunLogFile out;
  {
    H5Id g = h5_open_group(file.get(), "run", path);
    h5_read_attrs(g.get(), "/run", &out.run, &out.run_text);
  }
  {
    H5Id g = h5_open_group(file.get(), "summary", path);
    h5_read_attrs(g.get(), "/summary", &out.summary, &out.summary_text);
  }
  read_rank_totals(file.get(), path, out);
  read_links(file.get(), out);
  return out;
}

}  // namespace edgepipe
