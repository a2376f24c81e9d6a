// h5: RAII HDF5 handles, an input dataset reader and an outputs file writer. HDF5's automatic error
// printing is off; its error stack becomes the message of the edgepipe::Error thrown.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace edgepipe {

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
  void reset();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Throws edgepipe::Error "<what>: <HDF5's error stack>" if rc < 0.
void h5_check(herr_t rc, const std::string& what);

// A numeric dataset whose first dimension indexes samples; read as float32 row ranges.
class H5InputDataset {
 public:
  H5InputDataset(const std::string& file, const std::string& dataset);
  const std::vector<int64_t>& dims() const { return dims_; }
  // Reads rows [first, first + count) as float32 into out (count x row elements).
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
// name only ever holds complete files. Datasets are allocated whole when created and their
// metadata flushed at once, so that later writes touch raw data only and a process killed at
// any point leaves a partial file that HDF5 can still open (and a run can resume).
class H5OutputFile {
 public:
  H5OutputFile(const std::string& path, OutputMode mode);
  ~H5OutputFile();  // closes; removes the partial file if discard_on_close() was called
  // Checks, without touching anything, that a file can be opened in this mode.
  static void preflight(const std::string& path, OutputMode mode);
  // With --resume: the run that made <path> completed it (nothing is left to do).
  static bool already_complete(const std::string& path);
  bool has_dataset(const std::string& name) const;
  // Shape of a 2-D dataset (rows, columns).
  std::vector<int64_t> dataset_dims(const std::string& name) const;
  // Creates a float32 dataset of rows x (product of row_shape) elements.
  void create_dataset(const std::string& name, int64_t rows, const std::vector<int64_t>& row_shape);
  void write_rows(const std::string& name, int64_t first, int64_t count, const float* data);
  // Root attributes; set_* replaces an existing attribute of the same name.
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, const std::vector<int64_t>& value);
  void set_attribute(const std::string& name, double value);
  bool has_attribute(const std::string& name) const;
  std::string string_attribute(const std::string& name) const;
  std::vector<int64_t> int_attribute(const std::string& name) const;
  void flush();
  void commit();  // flush, close, rename <path>.partial to <path>
  void discard_on_close() { discard_ = true; }
  const std::string& path() const { return path_; }
  const std::string& partial_path() const { return partial_; }

 private:
  void delete_attribute_if_any(const std::string& name);
  std::string path_, partial_;
  H5Id file_;
  bool committed_ = false;
  bool discard_ = false;
};

}  // namespace edgepipe
