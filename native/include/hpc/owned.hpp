// A malloc'd block handed to NumPy: the array views n elements from p, inside the block at
// base, and frees the block when it goes. (A freed chunk raises glibc's mmap threshold to its
// size, so a kernel's next output of that size comes from the heap with its pages present;
// NumPy's own allocation of a large array is mapped afresh each call.)
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstdlib>

namespace hpc {

template <typename T>
pybind11::array_t<T, pybind11::array::c_style> owned(T* base, T* p, int64_t n) {
  pybind11::capsule owner(base, [](void* q) { std::free(q); });
  return pybind11::array_t<T, pybind11::array::c_style>(
      {static_cast<pybind11::ssize_t>(n)}, {static_cast<pybind11::ssize_t>(sizeof(T))}, p, owner);
}

}  // namespace hpc
