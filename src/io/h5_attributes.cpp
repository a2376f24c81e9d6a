#include "edgepipe/io/h5_attributes.h"

#include <algorithm>

#include "edgepipe/base/error.h"

namespace edgepipe {

H5Id h5_create_group(hid_t parent, const std::string& name) {
  return H5Id(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
              "creating group " + name);
}

bool h5_exists(hid_t parent, const std::string& name) {
  return H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0;
}

H5Id h5_open_group(hid_t parent, const std::string& name, const std::string& file) {
  EP_CHECK(h5_exists(parent, name), "'", file, "' has no ", name, ": not an edgepipe run log");
  return H5Id(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, "opening " + name);
}

// ---- attributes ----

namespace {

void delete_attr_if_any(hid_t obj, const std::string& name) {
  if (h5_has_attr(obj, name)) h5_check(H5Adelete(obj, name.c_str()), "replacing " + name);
}

// A new attribute of `type` over `space` (an existing one of that name is replaced), written
// from `data` in memory type `mem_type`.
void write_attr(hid_t obj, const std::string& name, hid_t type, hid_t space, hid_t mem_type,
                const void* data) {
  delete_attr_if_any(obj, name);
  H5Id a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         "attribute " + name);
  if (data) h5_check(H5Awrite(a.get(), mem_type, data), "writing attribute " + name);
}

H5Id scalar_space() { return H5Id(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace"); }

H5Id text_type(size_t size) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  h5_check(H5Tset_size(type.get(), std::max<size_t>(size, 1)), "string size");
  return type;
}

struct AttrMaps {
  std::map<std::string, double>* numbers;
  std::map<std::string, std::string>* texts;
};

herr_t read_one_attr(hid_t obj, const char* name, const H5A_info_t*, void* data) {
  auto* maps = static_cast<AttrMaps*>(data);
  try {
    H5Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, std::string("attribute ") + name);
    H5Id type(H5Aget_type(a.get()), H5Tclose, "attribute type");
    H5Id space(H5Aget_space(a.get()), H5Sclose, "attribute space");
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return 0;
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_STRING) {
      std::string v(H5Tget_size(type.get()), '\0');
      h5_check(H5Aread(a.get(), type.get(), v.data()), "reading attribute");
      (*maps->texts)[name] = v.substr(0, v.find('\0'));
    } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
      double v = 0;
      h5_check(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v), "reading attribute");
      (*maps->numbers)[name] = v;
    }
  } catch (const std::exception&) {
    return -1;  // an exception must not cross HDF5's C frames
  }
  return 0;
}

}  // namespace

bool h5_has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

void h5_write_double_attr(hid_t obj, const std::string& name, double value) {
  write_attr(obj, name, H5T_IEEE_F64LE, scalar_space().get(), H5T_NATIVE_DOUBLE, &value);
}

void h5_write_int_attr(hid_t obj, const std::string& name, int64_t value) {
  write_attr(obj, name, H5T_STD_I64LE, scalar_space().get(), H5T_NATIVE_INT64, &value);
}

void h5_write_text_attr(hid_t obj, const std::string& name, const std::string& value) {
  const H5Id type = text_type(value.size());
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  write_attr(obj, name, type.get(), scalar_space().get(), type.get(), padded.data());
}

void h5_write_ints_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& value) {
  if (!value.empty() && h5_has_attr(obj, name) &&
      h5_read_ints_attr(obj, name).size() == value.size()) {
    H5Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
    h5_check(H5Awrite(a.get(), H5T_NATIVE_INT64, value.data()), "writing " + name);
    return;
  }
  const hsize_t n = value.size();
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, "attribute dataspace");
  write_attr(obj, name, H5T_STD_I64LE, space.get(), H5T_NATIVE_INT64,
             value.empty() ? nullptr : value.data());
}

std::string h5_read_text_attr(hid_t obj, const std::string& name) {
  H5Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
  H5Id type(H5Aget_type(a.get()), H5Tclose, "type of attribute " + name);
  EP_CHECK(H5Tget_class(type.get()) == H5T_STRING, "attribute ", name, " is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {  // as h5py writes them (UTF-8 or ASCII)
    char* text = nullptr;
    h5_check(H5Aread(a.get(), type.get(), &text), "reading attribute " + name);
    const std::string value = text ? text : "";
    h5_check(H5free_memory(text), "freeing attribute " + name);
    return value;
  }
  std::string value(H5Tget_size(type.get()), '\0');
  h5_check(H5Aread(a.get(), type.get(), value.data()), "reading attribute " + name);
  return value.substr(0, value.find('\0'));
}

std::vector<int64_t> h5_read_ints_attr(hid_t obj, const std::string& name) {
  H5Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
  H5Id space(H5Aget_space(a.get()), H5Sclose, "dataspace of attribute " + name);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<int64_t> value(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  if (!value.empty())
    h5_check(H5Aread(a.get(), H5T_NATIVE_INT64, value.data()), "reading attribute " + name);
  return value;
}

void h5_read_attrs(hid_t obj, const std::string& what, std::map<std::string, double>* numbers,
                   std::map<std::string, std::string>* texts) {
  std::map<std::string, double> ignore_numbers;
  std::map<std::string, std::string> ignore_texts;
  AttrMaps maps{numbers ? numbers : &ignore_numbers, texts ? texts : &ignore_texts};
  hsize_t idx = 0;
  h5_check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, read_one_attr, &maps),
           "reading the attributes of " + what);
}

// ---- datasets ----

namespace {

void write_dataset(hid_t parent, const std::string& name, const void* data, size_t count,
                   hid_t file_type, hid_t mem_type) {
  const hsize_t n = count;
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, "dataspace of " + name);
  H5Id d(H5Dcreate2(parent, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT),
         H5Dclose, "creating dataset " + name);
  if (n)
    h5_check(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
             "writing dataset " + name);
}

template <typename T>
std::vector<T> read_dataset(hid_t parent, const std::string& name, hid_t mem_type,
                            const std::string& file) {
  EP_CHECK(h5_exists(parent, name), "'", file, "' has no ", name);
  std::vector<T> v(h5_dataset_size(parent, name));
  H5Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  if (!v.empty())
    h5_check(H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
             "reading " + name);
  return v;
}

}  // namespace

void h5_write_doubles(hid_t parent, const std::string& name, const std::vector<double>& values,
                      const std::string& units) {
  write_dataset(parent, name, values.data(), values.size(), H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
  H5Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "dataset " + name);
  h5_write_text_attr(d.get(), "units", units);
}

void h5_write_ints(hid_t parent, const std::string& name, const std::vector<int64_t>& values) {
  write_dataset(parent, name, values.data(), values.size(), H5T_STD_I64LE, H5T_NATIVE_INT64);
}

std::vector<double> h5_read_doubles(hid_t parent, const std::string& name,
                                    const std::string& file) {
  return read_dataset<double>(parent, name, H5T_NATIVE_DOUBLE, file);
}

std::vector<int64_t> h5_read_ints(hid_t parent, const std::string& name, const std::string& file) {
  return read_dataset<int64_t>(parent, name, H5T_NATIVE_INT64, file);
}

H5Id h5_compound_type(size_t row_size, const std::vector<H5Field>& fields) {
  H5Id t(H5Tcreate(H5T_COMPOUND, row_size), H5Tclose, "compound type");
  for (const H5Field& f : fields)
    h5_check(H5Tinsert(t.get(), f.name, f.offset, f.is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE),
             std::string("compound member ") + f.name);
  return t;
}

void h5_insert_text_member(const H5Id& type, const char* name, size_t offset, size_t size) {
  const H5Id text = text_type(size);
  h5_check(H5Tinsert(type.get(), name, offset, text.get()), std::string("member ") + name);
}

void h5_write_rows(hid_t parent, const std::string& name, const void* rows, size_t count,
                   const H5Id& type) {
  write_dataset(parent, name, rows, count, type.get(), type.get());
}

size_t h5_dataset_size(hid_t parent, const std::string& name) {
  H5Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  H5Id space(H5Dget_space(d.get()), H5Sclose, "dataspace of " + name);
  return static_cast<size_t>(std::max<hssize_t>(H5Sget_simple_extent_npoints(space.get()), 0));
}

void h5_read_rows(hid_t parent, const std::string& name, void* rows, const H5Id& type) {
  H5Id d(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  h5_check(H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows), "reading " + name);
}

}  // namespace edgepipe
