#include "edgepipe/io/h5.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "edgepipe/base/error.h"
#include "edgepipe/io/h5_attributes.h"
#include "edgepipe/io/output_paths.h"

namespace edgepipe {

namespace {

// Room reserved past the datasets for the attributes written when a run ends (the run's
// description, per-link counters): they must not find the disk full either.
constexpr off_t kAttributeRoom = 1 << 20;

// HDF5's first messages say what failed; the deepest one, from the file driver, says why (the
// system's errno text: "No space left on device", "Read-only file system").
struct ErrorText {
  std::string head, reason;
};

herr_t collect_error(unsigned n, const H5E_error2_t* e, void* client) {
  auto* out = static_cast<ErrorText*>(client);
  if (!e->desc || !*e->desc) return 0;
  const std::string desc = e->desc;
  // The driver's message: "..., errno = 28, error message = 'No space left on device', ...".
  const std::string key = "error message = '";
  const size_t at = desc.find(key), end = desc.find('\'', at + key.size());
  if (at != std::string::npos && end != std::string::npos)
    out->reason = desc.substr(at + key.size(), end - at - key.size());
  else if (n < 3)
    out->head += (out->head.empty() ? "" : "; ") + desc;
  return 0;
}

std::string error_stack() {
  ErrorText text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &text);
  H5Eclear2(H5E_DEFAULT);
  if (text.head.empty()) return "unknown HDF5 error";
  return text.reason.empty() ? text.head : text.head + " (" + text.reason + ")";
}

// Before each file is opened: HDF5's messages off, and, if this is the process's first HDF5 call,
// no HDF5 clean-up at exit (h5_library_init, for processes that do not call it first; once the
// library is initialised H5dont_atexit fails, and that is harmless).
void quiet_hdf5() {
  (void)H5dont_atexit();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// The directory entry of a file created or renamed there, to the disk.
void fsync_directory_of(const std::string& file) {
  std::string dir = std::filesystem::path(file).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EP_CHECK(fd >= 0, "cannot open the folder '", dir, "' to sync it: ", std::strerror(errno));
  const int rc = fsync(fd), err = errno;
  close(fd);
  EP_CHECK(rc == 0, "fsync of the folder '", dir, "' failed: ", std::strerror(err));
}

}  // namespace

void h5_library_init() {
  if (H5dont_atexit() < 0)
    std::fprintf(stderr, "edgepipe: warning: HDF5 was initialised before h5_library_init\n");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

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
  if (!close().empty()) std::fprintf(stderr, "edgepipe: warning: closing an HDF5 object failed\n");
}

std::string H5Id::close() {
  const hid_t id = id_;
  id_ = -1;  // once, whatever happens: HDF5 must not see this id closed twice
  if (id < 0 || !closer_ || closer_(id) >= 0) return "";
  return error_stack();
}

void h5_check(herr_t rc, const std::string& what) {
  if (rc < 0) EP_FAIL(what, ": ", error_stack());
}

bool H5AttributeReader::has(const std::string& name) const { return h5_has_attr(object_, name); }

std::string H5AttributeReader::text(const std::string& name) const {
  return h5_read_text_attr(object_, name);
}

std::vector<int64_t> H5AttributeReader::ints(const std::string& name) const {
  return h5_read_ints_attr(object_, name);
}

H5Id h5_open_read_only(const std::string& file, const std::string& what) {
  quiet_hdf5();
  return H5Id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, what);
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
  EP_CHECK(H5Sget_simple_extent_dims(space.get(), d.data(), nullptr) == rank,
           "cannot read the shape of ", name_);
  dims_.assign(d.begin(), d.end());
}

void H5InputDataset::read_rows(int64_t first, int64_t count, float* out) const {
  const std::string rows = detail::concat("rows [", first, ", ", first + count, ")");
  EP_CHECK(first >= 0 && count >= 0 && first + count <= dims_[0], rows, " are outside ", name_,
           " (", dims_[0], " rows)");
  H5Id file_space(H5Dget_space(dataset_.get()), H5Sclose, "dataspace of " + name_);
  std::vector<hsize_t> start(dims_.size(), 0), size(dims_.begin(), dims_.end());
  start[0] = static_cast<hsize_t>(first);
  size[0] = static_cast<hsize_t>(count);
  h5_check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, size.data(),
                               nullptr),
           "selecting " + rows + " of " + name_);
  H5Id mem_space(H5Screate_simple(static_cast<int>(size.size()), size.data(), nullptr), H5Sclose,
                 "memory dataspace");
  h5_check(H5Dread(dataset_.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), H5P_DEFAULT,
                   out),
           "cannot read input " + rows + " of " + name_ + " (a damaged or unreadable chunk?)");
}

void H5OutputFile::preflight(const std::string& path, OutputMode mode) {
  check_output_file(path, mode);
}

bool H5OutputFile::already_complete(const std::string& path) {
  return std::filesystem::exists(path) && !std::filesystem::exists(path + ".partial");
}

H5OutputFile::H5OutputFile(const std::string& path, OutputMode mode, OutputLock lock)
    : path_(path), partial_(path + ".partial"), lock_(std::move(lock)) {
  quiet_hdf5();
  if (!lock_.held()) lock_ = OutputLock(path);  // before anything touches the files
  preflight(path, mode);
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "file access properties");
  // No sieve buffer: rows go to the file in H5Dwrite, so a write that fails fails there.
  h5_check(H5Pset_sieve_buf_size(fapl.get(), 0), "no sieve buffer");
  if (mode == OutputMode::resume) {
    file_ = H5Id(H5Fopen(partial_.c_str(), H5F_ACC_RDWR, fapl.get()), H5Fclose,
                 "cannot open '" + partial_ + "' to resume it");
  } else {
    const hid_t id = H5Fcreate(partial_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
    if (id < 0) {  // a file begun here and left unusable (a full disk): not worth keeping
      std::error_code ec;
      std::filesystem::remove(partial_, ec);
    }
    file_ = H5Id(id, H5Fclose, "cannot create output file '" + partial_ + "'");
  }
  void* handle = nullptr;
  h5_check(H5Fget_vfd_handle(file_.get(), H5P_DEFAULT, &handle), "file descriptor of " + partial_);
  fd_ = *static_cast<int*>(handle);
  struct stat st;
  EP_CHECK(fstat(fd_, &st) == 0, "cannot stat '", partial_, "': ", std::strerror(errno));
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (mode == OutputMode::resume) reserved_bytes_ = st.st_size;
  if (mode != OutputMode::resume) fsync_directory_of(partial_);
}

H5OutputFile::~H5OutputFile() {
  if (committed_) return;
  const bool ours = fd_ >= 0 && still_named();
  const std::string error = close_objects();
  if (!error.empty())
    std::fprintf(stderr, "edgepipe: warning: closing '%s' failed: %s\n", partial_.c_str(),
                 error.c_str());
  if (discard_ && ours) {
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
  }
}

std::string H5OutputFile::close_objects() {
  std::string first;
  for (auto it = datasets_.rbegin(); it != datasets_.rend(); ++it) {
    const std::string e = it->second.close();
    if (first.empty() && !e.empty()) first = "dataset " + it->first + ": " + e;
  }
  datasets_.clear();
  const std::string e = file_.close();
  if (first.empty()) first = e;
  fd_ = -1;
  if (!first.empty()) failed_ = true;
  return first;
}

void H5OutputFile::check_ok(herr_t rc, const std::string& what) {
  if (rc < 0) failed_ = true;
  h5_check(rc, what);
}

bool H5OutputFile::has_dataset(const std::string& name) const {
  return H5Lexists(file_.get(), name.c_str(), H5P_DEFAULT) > 0;
}

hid_t H5OutputFile::dataset(const std::string& name) {
  for (const auto& d : datasets_)
    if (d.first == name) return d.second.get();
  datasets_.emplace_back(name, H5Id(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose,
                                    "dataset " + name + " of " + partial_));
  return datasets_.back().second.get();
}

std::vector<int64_t> H5OutputFile::dataset_dims(const std::string& name) const {
  H5Id dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose, "dataset " + name);
  H5Id space(H5Dget_space(dset.get()), H5Sclose, "dataspace of " + name);
  hsize_t dims[2] = {0, 0};
  EP_CHECK(H5Sget_simple_extent_ndims(space.get()) == 2, "dataset ", name, " is not 2-D");
  EP_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr) == 2, "shape of dataset ", name);
  return {static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])};
}

bool H5OutputFile::has_attribute(const std::string& name) const { return attributes().has(name); }

std::string H5OutputFile::string_attribute(const std::string& name) const {
  return attributes().text(name);
}

std::vector<int64_t> H5OutputFile::int_attribute(const std::string& name) const {
  return attributes().ints(name);
}

void H5OutputFile::flush() {
  EP_CHECK(!failed_, "an earlier write to '", partial_,
           "' failed: nothing more of it is flushed as good");
  check_still_named();
  check_ok(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "flushing '" + partial_ + "'");
  if (fsync(fd_) != 0) {
    failed_ = true;
    EP_FAIL("fsync of '", partial_, "' failed: ", std::strerror(errno));
  }
}

bool H5OutputFile::still_named() const {
  struct stat st;
  return stat(partial_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

void H5OutputFile::check_still_named() const {
  EP_CHECK(still_named(), "'", partial_,
           "' was deleted or replaced while this run wrote it: the rows it held are gone with "
           "it; stopping (start again: with --overwrite if a file is there now)");
  // Overwritten in place (cp onto it): shorter than the space its datasets were given.
  struct stat st;
  EP_CHECK(fd_ < 0 || fstat(fd_, &st) != 0 || st.st_size >= reserved_bytes_, "'", partial_,
           "' was truncated or overwritten while this run wrote it (", st.st_size,
           " bytes, its datasets take ", reserved_bytes_,
           "); stopping (start again with --overwrite)");
}

void H5OutputFile::fail_writes_for_test() {
  // HDF5's descriptor now refers to the file read-only: every write fails with EBADF.
  const int ro = open(partial_.c_str(), O_RDONLY | O_CLOEXEC);
  EP_CHECK(ro >= 0 && dup2(ro, fd_) == fd_, "test hook: cannot make '", partial_, "' read-only");
  EP_CHECK(close(ro) == 0, "test hook: close failed");
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
  const std::string error = attr.close();
  EP_CHECK(error.empty(), "attribute row_shape of ", name, ": ", error);
  datasets_.emplace_back(name, std::move(dset));
}

void H5OutputFile::reserve_space() {
  flush();  // the datasets' metadata; HDF5 sets the file's length to its allocated space
  struct stat st;
  EP_CHECK(fstat(fd_, &st) == 0, "cannot stat '", partial_, "': ", std::strerror(errno));
  int rc = posix_fallocate(fd_, 0, st.st_size);
  if (rc == 0 && fallocate(fd_, FALLOC_FL_KEEP_SIZE, st.st_size, kAttributeRoom) != 0 &&
      errno != EOPNOTSUPP)
    rc = errno;
  EP_CHECK(rc == 0, "cannot reserve ", st.st_size + kAttributeRoom, " bytes for '", partial_,
           "' on its disk: ", std::strerror(rc));
  reserved_bytes_ = st.st_size;
}

void H5OutputFile::write_rows(const std::string& name, int64_t first, int64_t count,
                              const float* data) {
  EP_CHECK(!failed_, "an earlier write to '", partial_, "' failed");
  const hid_t dset = dataset(name);
  H5Id space(H5Dget_space(dset), H5Sclose, "dataspace of " + name);
  hsize_t dims[2] = {0, 0};
  EP_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr) == 2, "shape of dataset ", name);
  hsize_t start[2] = {static_cast<hsize_t>(first), 0};
  hsize_t size[2] = {static_cast<hsize_t>(count), dims[1]};
  EP_CHECK(first >= 0 && start[0] + size[0] <= dims[0], "rows [", first, ", ", first + count,
           ") are outside ", name);
  h5_check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, size, nullptr),
           "selecting rows of " + name);
  H5Id mem(H5Screate_simple(2, size, nullptr), H5Sclose, "memory dataspace");
  check_ok(H5Dwrite(dset, H5T_NATIVE_FLOAT, mem.get(), space.get(), H5P_DEFAULT, data),
           detail::concat("cannot write rows [", first, ", ", first + count, ") of ", name, " to ",
                          partial_));
}

void H5OutputFile::set_attribute(const std::string& name, const std::string& value) {
  h5_write_text_attr(file_.get(), name, value);
}

void H5OutputFile::set_attribute(const std::string& name, const std::vector<int64_t>& value) {
  h5_write_ints_attr(file_.get(), name, value);  // same size: in place (marks move no layout)
}

void H5OutputFile::set_attribute(const std::string& name, double value) {
  h5_write_double_attr(file_.get(), name, value);
}

void H5OutputFile::commit() {
  flush();
  const std::string error = close_objects();
  EP_CHECK(error.empty(), "closing '", partial_, "' failed: ", error);
  std::error_code ec;
  std::filesystem::rename(partial_, path_, ec);
  EP_CHECK(!ec, "cannot rename '", partial_, "' to '", path_, "': ", ec.message());
  committed_ = true;
  fsync_directory_of(path_);
}

}  // namespace edgepipe
