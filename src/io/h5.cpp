#include "edgepipe/io/h5.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "edgepipe/base/error.h"

namespace edgepipe {

namespace {

herr_t collect_error(unsigned n, const H5E_error2_t* e, void* client) {
  auto* out = static_cast<std::string*>(client);
  if (n < 3 && e->desc && *e->desc) *out += std::string(out->empty() ? "" : "; ") + e->desc;
  return 0;
}

std::string error_stack() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? "unknown HDF5 error" : text;
}

void quiet_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

}  // namespace

H5Id::H5Id(hid_t id, Closer closer, const std::string& what) : id_(id), closer_(closer) {
  if (id < 0) EP_FAIL(what, ": ", error_stack());
}

H5Id& H5Id::operator=(H5Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

void H5Id::reset() {
  if (id_ >= 0 && closer_ && closer_(id_) < 0)
    std::fprintf(stderr, "edgepipe: warning: closing an HDF5 object failed\n");
  id_ = -1;
}

void h5_check(herr_t rc, const std::string& what) {
  if (rc < 0) EP_FAIL(what, ": ", error_stack());
}

H5InputDataset::H5InputDataset(const std::string& file, const std::string& dataset)
    : name_(file + ":" + dataset) {
  quiet_hdf5();
  EP_CHECK(std::filesystem::exists(file), "input file '", file, "' does not exist");
  file_ = H5Id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
               "cannot open input file '" + file + "' as HDF5");
  EP_CHECK(H5Lexists(file_.get(), dataset.c_str(), H5P_DEFAULT) > 0, "input file '", file,
           "' has no dataset '", dataset, "'");
  dataset_ = H5Id(H5Dopen2(file_.get(), dataset.c_str(), H5P_DEFAULT), H5Dclose,
                  "cannot open dataset " + name_);
  H5Id type(H5Dget_type(dataset_.get()), H5Tclose, "type of " + name_);
  H5T_class_t cls = H5Tget_class(type.get());
  EP_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, "input dataset ", name_,
           " is not numeric (expected float or integer samples)");
  H5Id space(H5Dget_space(dataset_.get()), H5Sclose, "dataspace of " + name_);
  int rank = H5Sget_simple_extent_ndims(space.get());
  EP_CHECK(rank >= 1, "input dataset ", name_, " is a scalar; expected rows of samples");
  std::vector<hsize_t> d(rank);
  H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
  dims_.assign(d.begin(), d.end());
}

void H5InputDataset::read_rows(int64_t first, int64_t count, float* out) const {
  EP_CHECK(first >= 0 && count >= 0 && first + count <= dims_[0], "rows [", first, ", ",
           first + count, ") are outside ", name_, " (", dims_[0], " rows)");
  H5Id file_space(H5Dget_space(dataset_.get()), H5Sclose, "dataspace of " + name_);
  std::vector<hsize_t> start(dims_.size(), 0), size(dims_.begin(), dims_.end());
  start[0] = static_cast<hsize_t>(first);
  size[0] = static_cast<hsize_t>(count);
  h5_check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, size.data(),
                               nullptr),
           "selecting rows of " + name_);
  H5Id mem_space(H5Screate_simple(static_cast<int>(size.size()), size.data(), nullptr), H5Sclose,
                 "memory dataspace");
  h5_check(H5Dread(dataset_.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), H5P_DEFAULT,
                   out),
           "reading rows of " + name_);
}

void H5OutputFile::preflight(const std::string& path, OutputMode mode) {
  namespace fs = std::filesystem;
  const std::string partial = path + ".partial";
  auto dir = fs::path(path).parent_path();
  EP_CHECK(dir.empty() || fs::is_directory(dir), "the folder of output file '", path,
           "' does not exist");
  switch (mode) {
    case OutputMode::create:
      EP_CHECK(!fs::exists(path), "output file '", path,
               "' exists; pass --overwrite to replace it");
      EP_CHECK(!fs::exists(partial), "'", partial,
               "' holds the outputs of an unfinished run: pass "
               "--resume to continue it, or --overwrite to start again");
      break;
    case OutputMode::overwrite:
      break;
    case OutputMode::resume:
      EP_CHECK(fs::exists(partial) || fs::exists(path), "--resume: there is no '", partial,
               "' from an earlier run to continue");
      break;
  }
}

bool H5OutputFile::already_complete(const std::string& path) {
  return std::filesystem::exists(path) && !std::filesystem::exists(path + ".partial");
}

H5OutputFile::H5OutputFile(const std::string& path, OutputMode mode)
    : path_(path), partial_(path + ".partial") {
  quiet_hdf5();
  preflight(path, mode);
  if (mode == OutputMode::resume) {
    file_ = H5Id(H5Fopen(partial_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose,
                 "cannot open '" + partial_ + "' to resume it");
  } else {
    file_ = H5Id(H5Fcreate(partial_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                 "cannot create output file '" + partial_ + "'");
  }
}

H5OutputFile::~H5OutputFile() {
  if (committed_) return;
  if (file_.get() >= 0 && H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0)
    std::fprintf(stderr, "edgepipe: warning: flushing '%s' failed\n", partial_.c_str());
  file_.reset();
  if (discard_) {
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
  }
}

bool H5OutputFile::has_dataset(const std::string& name) const {
  return H5Lexists(file_.get(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<int64_t> H5OutputFile::dataset_dims(const std::string& name) const {
  H5Id dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose, "dataset " + name);
  H5Id space(H5Dget_space(dset.get()), H5Sclose, "dataspace of " + name);
  hsize_t dims[2] = {0, 0};
  EP_CHECK(H5Sget_simple_extent_ndims(space.get()) == 2, "dataset ", name, " is not 2-D");
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  return {static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])};
}

bool H5OutputFile::has_attribute(const std::string& name) const {
  return H5Aexists(file_.get(), name.c_str()) > 0;
}

void H5OutputFile::delete_attribute_if_any(const std::string& name) {
  if (has_attribute(name)) h5_check(H5Adelete(file_.get(), name.c_str()), "replacing " + name);
}

std::string H5OutputFile::string_attribute(const std::string& name) const {
  H5Id attr(H5Aopen(file_.get(), name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
  H5Id type(H5Aget_type(attr.get()), H5Tclose, "type of attribute " + name);
  EP_CHECK(H5Tget_class(type.get()) == H5T_STRING, "attribute ", name, " is not a string");
  std::string value(H5Tget_size(type.get()), '\0');
  h5_check(H5Aread(attr.get(), type.get(), value.data()), "reading attribute " + name);
  return value.substr(0, value.find('\0'));
}

std::vector<int64_t> H5OutputFile::int_attribute(const std::string& name) const {
  H5Id attr(H5Aopen(file_.get(), name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
  H5Id space(H5Aget_space(attr.get()), H5Sclose, "dataspace of attribute " + name);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<int64_t> value(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  if (!value.empty())
    h5_check(H5Aread(attr.get(), H5T_NATIVE_INT64, value.data()), "reading attribute " + name);
  return value;
}

void H5OutputFile::flush() {
  h5_check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flushing " + partial_);
}

void H5OutputFile::create_dataset(const std::string& name, int64_t rows,
                                  const std::vector<int64_t>& row_shape) {
  hsize_t cols = 1;
  for (int64_t d : row_shape) cols *= static_cast<hsize_t>(d);
  hsize_t dims[2] = {static_cast<hsize_t>(rows), cols};
  H5Id space(H5Screate_simple(2, dims, nullptr), H5Sclose, "dataspace for " + name);
  // Contiguous, allocated now, never filled: writing rows later changes no metadata.
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
  h5_check(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), "contiguous layout");
  h5_check(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), "early allocation");
  h5_check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), "no fill");
  H5Id dset(H5Dcreate2(file_.get(), name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                       dcpl.get(), H5P_DEFAULT),
            H5Dclose, "cannot create dataset " + name + " in " + partial_);
  hsize_t n = row_shape.size();
  H5Id aspace(H5Screate_simple(1, &n, nullptr), H5Sclose, "attribute dataspace");
  H5Id attr(
      H5Acreate2(dset.get(), "row_shape", H5T_STD_I64LE, aspace.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose, "attribute row_shape");
  if (n) h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, row_shape.data()), "writing row_shape");
}

void H5OutputFile::write_rows(const std::string& name, int64_t first, int64_t count,
                              const float* data) {
  H5Id dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose, "dataset " + name);
  H5Id space(H5Dget_space(dset.get()), H5Sclose, "dataspace of " + name);
  hsize_t dims[2];
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  hsize_t start[2] = {static_cast<hsize_t>(first), 0};
  hsize_t size[2] = {static_cast<hsize_t>(count), dims[1]};
  EP_CHECK(first >= 0 && start[0] + size[0] <= dims[0], "rows [", first, ", ", first + count,
           ") are outside ", name);
  h5_check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, size, nullptr),
           "selecting rows of " + name);
  H5Id mem(H5Screate_simple(2, size, nullptr), H5Sclose, "memory dataspace");
  h5_check(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, mem.get(), space.get(), H5P_DEFAULT, data),
           "writing rows of " + name + " to " + partial_);
}

void H5OutputFile::set_attribute(const std::string& name, const std::string& value) {
  delete_attribute_if_any(name);
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  h5_check(H5Tset_size(type.get(), std::max<size_t>(value.size(), 1)), "string size");
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace");
  H5Id attr(
      H5Acreate2(file_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose, "attribute " + name);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  h5_check(H5Awrite(attr.get(), type.get(), padded.data()), "writing attribute " + name);
}

void H5OutputFile::set_attribute(const std::string& name, const std::vector<int64_t>& value) {
  // Same size: written in place (progress marks change no object layout).
  if (has_attribute(name) && int_attribute(name).size() == value.size() && !value.empty()) {
    H5Id attr(H5Aopen(file_.get(), name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
    h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, value.data()), "writing " + name);
    return;
  }
  delete_attribute_if_any(name);
  hsize_t n = value.size();
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, "attribute dataspace");
  H5Id attr(
      H5Acreate2(file_.get(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose, "attribute " + name);
  if (n) h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, value.data()), "writing " + name);
}

void H5OutputFile::set_attribute(const std::string& name, double value) {
  delete_attribute_if_any(name);
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace");
  H5Id attr(
      H5Acreate2(file_.get(), name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose, "attribute " + name);
  h5_check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value), "writing " + name);
}

void H5OutputFile::commit() {
  h5_check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flushing " + partial_);
  file_.reset();
  std::error_code ec;
  std::filesystem::rename(partial_, path_, ec);
  EP_CHECK(!ec, "cannot rename '", partial_, "' to '", path_, "': ", ec.message());
  committed_ = true;
}

}  // namespace edgepipe
