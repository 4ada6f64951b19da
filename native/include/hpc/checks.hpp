// Bounds-checked entry points: every binding validates shapes, dtypes and contiguity before
// handing raw pointers to a kernel, and raises ValueError instead of reading out of range.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace hpc {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

[[noreturn]] inline void fail(const std::string& msg) { throw py::value_error(msg); }

template <typename T>
inline T* mut_ptr(carray<T>& a, const char* what) {
  if (!a.writeable()) fail(std::string(what) + ": array is read-only");
  return a.mutable_data();
}

template <typename T>
inline void require_1d(const carray<T>& a, py::ssize_t n, const char* what) {
  if (a.ndim() != 1) fail(std::string(what) + ": expected a 1-D array");
  if (n >= 0 && a.shape(0) != n)
    fail(std::string(what) + ": expected length " + std::to_string(n) + ", got " +
         std::to_string(a.shape(0)));
}

// Refuses implicit conversion: a float32 array passed where float64 is expected would
// otherwise be copied, and an in-place kernel would write into the copy.
template <typename T>
inline carray<T> exact(const py::array& a, const char* what) {
  if (!py::isinstance<carray<T>>(a) || !(a.flags() & py::array::c_style))
    fail(std::string(what) + ": wrong dtype or not C-contiguous");
  return py::reinterpret_borrow<carray<T>>(a);
}
}  // namespace hpc
