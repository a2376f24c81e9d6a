// h5: RAII HDF5 handles, an input dataset reader and an outputs file writer. HDF5's automatic error
// printing is off; its error stack becomes the message of the edgepipe::Error thrown.
#pragma once
#include <hdf5.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/io/output_lock.h"

namespace edgepipe {

// Once per process, before any other HDF5 call: HDF5's messages off, and no HDF5 clean-up at
// exit. Every file is closed by its owner in a defined order; HDF5's own clean-up at exit would
// close again what a failed close left half closed (on a full disk) and crash in H5F_term_package.
void h5_library_init();

// A move-only HDF5 id, closed by the right H5?close in its destructor (which never throws).
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer closer, const std::string& what);  // throws if id < 0
  ~H5Id() { reset(); }
  H5Id(H5Id&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  H5Id& operator=(H5Id&& o) noexcept;
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  hid_t get() const { return id_; }
  void reset();  // closes (once); a failure is a warning
  // Closes (once) and returns HDF5's error stack if that failed, "" if not.
  std::string close();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Throws edgepipe::Error "<what>: <HDF5's error stack>" if rc < 0.
void h5_check(herr_t rc, const std::string& what);

// Root attributes of an open file (or attributes of any object), read. Does not own the id.
class H5AttributeReader {
 public:
  explicit H5AttributeReader(hid_t object) : object_(object) {}
  bool has(const std::string& name) const;
  std::string text(const std::string& name) const;  // a string attribute
  std::vector<int64_t> ints(const std::string& name) const;

 private:
  hid_t object_;
};

// An HDF5 file opened read-only (e.g. a complete outputs file checked before --resume ends).
H5Id h5_open_read_only(const std::string& file, const std::string& what);

// A numeric dataset whose first dimension indexes samples; read as float32 row ranges.
class H5InputDataset {
 public:
  H5InputDataset(const std::string& file, const std::string& dataset);
  const std::vector<int64_t>& dims() const { return dims_; }
  // Reads rows [first, first + count) as float32 into out (count x row elements). A read error
  // (a corrupt chunk) names the rows and the dataset.
  void read_rows(int64_t first, int64_t count, float* out) const;

 private:
  std::string name_;
  H5Id file_, dataset_;
  std::vector<int64_t> dims_;
};

// How an outputs file is opened.
enum class OutputMode {
  create,     // refuse if <path> or <path>.partial exists
  overwrite,  // replace whatever is there
  resume,     // continue the <path>.partial an earlier run left
};

// An outputs file, written under "<path>.partial" and renamed to <path> by commit(): the final
// name only ever holds complete files. Datasets are allocated whole when created, their metadata
// flushed and their blocks reserved on the disk (posix_fallocate), so that later writes touch
// raw data only, cannot find the disk full, and a process killed at any point leaves a partial
// file that HDF5 can still open (and a run can resume). Any failed write, flush or close marks
// the file failed: it is never flushed as good again (OutputSink then moves no progress mark).
// Objects are closed once each, datasets before the file, on every path.
class H5OutputFile {
 public:
  // Holds `lock` (on <path>) until closed, or takes it now if `lock` holds nothing.
  H5OutputFile(const std::string& path, OutputMode mode, OutputLock lock = OutputLock());
  ~H5OutputFile();  // closes; removes the partial file if discard_on_close() was called
  H5OutputFile(const H5OutputFile&) = delete;
  H5OutputFile& operator=(const H5OutputFile&) = delete;
  // Checks, without touching anything, that a file can be opened in this mode (output_paths.h).
  static void preflight(const std::string& path, OutputMode mode);
  // With --resume: the run that made <path> completed it (there is no partial file).
  static bool already_complete(const std::string& path);
  bool has_dataset(const std::string& name) const;
  // Shape of a 2-D dataset (rows, columns).
  std::vector<int64_t> dataset_dims(const std::string& name) const;
  // Creates a float32 dataset of rows x (product of row_shape) elements.
  void create_dataset(const std::string& name, int64_t rows, const std::vector<int64_t>& row_shape);
  // Flushes the datasets' metadata and reserves the file's blocks on the disk (and some room
  // for the attributes set at the end): after this, writing rows needs no more space.
  void reserve_space();
  void write_rows(const std::string& name, int64_t first, int64_t count, const float* data);
  // Root attributes; set_* replaces an existing attribute of the same name.
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, const std::vector<int64_t>& value);
  void set_attribute(const std::string& name, double value);
  bool has_attribute(const std::string& name) const;
  std::string string_attribute(const std::string& name) const;
  std::vector<int64_t> int_attribute(const std::string& name) const;
  H5AttributeReader attributes() const { return H5AttributeReader(file_.get()); }
  // HDF5's buffers to the file, then fsync(2): what was written is on the disk.
  void flush();
  // Throws if <path>.partial no longer names the file open here (deleted or replaced), or it
  // was cut shorter than its datasets (overwritten in place).
  void check_still_named() const;
  bool still_named() const;  // <path>.partial is the file open here
  // Test hook (EDGEPIPE_TEST_CRASH=io-error...): every later write fails, as on a failed disk.
  void fail_writes_for_test();
  bool failed() const { return failed_; }
  void commit();  // flush, close, rename <path>.partial to <path>, fsync the directory
  void discard_on_close() { discard_ = true; }
  const std::string& path() const { return path_; }
  const std::string& partial_path() const { return partial_; }

 private:
  hid_t dataset(const std::string& name);
  void check_ok(herr_t rc, const std::string& what);  // h5_check; a failure marks the file failed
  std::string close_objects();  // datasets, then the file, once each; the first error
  std::string path_, partial_;
  OutputLock lock_;  // released after the file is closed
  H5Id file_;
  std::vector<std::pair<std::string, H5Id>> datasets_;  // open, in creation order
  int fd_ = -1;                                         // HDF5's file descriptor (sec2 driver)
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t reserved_bytes_ = 0;  // the file's length once its datasets are allocated
  bool committed_ = false;
  bool discard_ = false;
  bool failed_ = false;
};

}  // namespace edgepipe
