// h5_attributes: the HDF5 attributes, groups and small datasets that edgepipe's files carry,
// written and read back in one place for the run log and the outputs file alike: scalar and
// vector attributes (a write replaces an attribute of the same name), 1-D datasets of numbers
// with a `units` attribute, compound tables, and every scalar attribute of an object read back.
#pragma once
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "edgepipe/io/h5.h"

namespace edgepipe {

// ---- groups ----
H5Id h5_create_group(hid_t parent, const std::string& name);
// Throws "'<file>' has no <name>: not an edgepipe run log" when the group is missing.
H5Id h5_open_group(hid_t parent, const std::string& name, const std::string& file);
// Whether a link (group or dataset) of that name exists under parent.
bool h5_exists(hid_t parent, const std::string& name);

// ---- attributes (on a file, group or dataset) ----
// Scalar float64, scalar int64, and a string sized to its text.
void h5_write_double_attr(hid_t obj, const std::string& name, double value);
void h5_write_int_attr(hid_t obj, const std::string& name, int64_t value);
void h5_write_text_attr(hid_t obj, const std::string& name, const std::string& value);
// A 1-D int64 attribute. One of the same length is written in place, so that rewriting it (the
// outputs file's progress marks) changes no object layout.
void h5_write_ints_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& value);
bool h5_has_attr(hid_t obj, const std::string& name);
std::string h5_read_text_attr(hid_t obj, const std::string& name);
std::vector<int64_t> h5_read_ints_attr(hid_t obj, const std::string& name);
// Every scalar attribute of obj: numbers (integer or float) as doubles into *numbers, strings
// into *texts (either may be null). `what` names obj in errors.
void h5_read_attrs(hid_t obj, const std::string& what, std::map<std::string, double>* numbers,
                   std::map<std::string, std::string>* texts);

// ---- 1-D datasets ----
// float64 values with a `units` attribute ("seconds per batch", ...), and int64 values.
void h5_write_doubles(hid_t parent, const std::string& name, const std::vector<double>& values,
                      const std::string& units);
void h5_write_ints(hid_t parent, const std::string& name, const std::vector<int64_t>& values);
std::vector<double> h5_read_doubles(hid_t parent, const std::string& name, const std::string& file);
std::vector<int64_t> h5_read_ints(hid_t parent, const std::string& name, const std::string& file);

// ---- compound tables (one row per struct) ----
// A member of a row struct: its name in the file, its offset, and whether it is an int64
// (else a float64).
struct H5Field {
  const char* name;
  size_t offset;
  bool is_int;
};
H5Id h5_compound_type(size_t row_size, const std::vector<H5Field>& fields);
// Adds a fixed-size string member (`size` bytes, NUL-padded) to a compound type.
void h5_insert_text_member(const H5Id& type, const char* name, size_t offset, size_t size);
// Writes `count` rows of `type` (count may be 0: an empty table).
void h5_write_rows(hid_t parent, const std::string& name, const void* rows, size_t count,
                   const H5Id& type);
template <typename Row>
void h5_write_table(hid_t parent, const std::string& name, const std::vector<Row>& rows,
                    const H5Id& type) {
  h5_write_rows(parent, name, rows.data(), rows.size(), type);
}
// The element count of a dataset, and all of its elements read as `type` into `rows`.
size_t h5_dataset_size(hid_t parent, const std::string& name);
void h5_read_rows(hid_t parent, const std::string& name, void* rows, const H5Id& type);
// Every row of a table, read into the reader's struct layout (`type`).
template <typename Row>
std::vector<Row> h5_read_table(hid_t parent, const std::string& name, const H5Id& type) {
  std::vector<Row> rows(h5_dataset_size(parent, name));
  if (!rows.empty()) h5_read_rows(parent, name, rows.data(), type);
  return rows;
}

}  // namespace edgepipe
