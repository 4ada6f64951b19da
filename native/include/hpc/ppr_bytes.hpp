// Bytes held by a PPR engine: its graph rows and its fingerprint (index) rows. The replicated
// and the partitioned engine report the same quantities, so their memory can be compared.
#pragma once

#include <cstdint>
#include <vector>

#include <pybind11/pybind11.h>

namespace hpc {

template <typename T>
inline int64_t vector_bytes(const std::vector<T>& v) {
  return static_cast<int64_t>(v.size() * sizeof(T));
}

inline pybind11::dict ppr_engine_bytes(const std::vector<int64_t>& gptr,
                                       const std::vector<int32_t>& gidx,
                                       const std::vector<int64_t>& fptr,
                                       const std::vector<int32_t>& fidx,
                                       const std::vector<double>& fval,
                                       const std::vector<double>& mass) {
  pybind11::dict d;
  d["graph"] = vector_bytes(gptr) + vector_bytes(gidx);
  d["index"] = vector_bytes(fptr) + vector_bytes(fidx) + vector_bytes(fval) + vector_bytes(mass);
  return d;
}

}  // namespace hpc
