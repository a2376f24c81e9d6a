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

// An outputs file, written under "<path>.partial" and renamed to <path> by commit(), so that a
// run that fails leaves no half-written file under the final name.
class H5OutputFile {
 public:
  H5OutputFile(const std::string& path, bool overwrite);
  ~H5OutputFile();  // removes the partial file unless committed
  // Creates a float32 dataset of rows x (product of row_shape) elements.
  void create_dataset(const std::string& name, int64_t rows, const std::vector<int64_t>& row_shape);
  void write_rows(const std::string& name, int64_t first, int64_t count, const float* data);
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, const std::vector<int64_t>& value);
  void set_attribute(const std::string& name, double value);
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, partial_;
  H5Id file_;
  bool committed_ = false;
};

}  // namespace edgepipe
