// What the replicated and the partitioned PPR engine share: the bytes they hold (graph rows and
// fingerprint (index) rows, reported alike so their memory can be compared) and the numbering
// of the accumulator by index popularity.
#pragma once

#include <algorithm>
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

// vertex: the vertices ordered by how often fidx names them, most first (stable: ties keep
// vertex order); slot: its inverse. The hot part of an n-slot accumulator then fits in cache.
inline void number_by_popularity(int64_t n, const std::vector<int32_t>& fidx,
                                 std::vector<int32_t>& vertex, std::vector<int32_t>& slot) {
  std::vector<int64_t> cnt(static_cast<size_t>(n), 0);
  for (int32_t u : fidx) ++cnt[u];
  vertex.resize(static_cast<size_t>(n));
  for (int64_t v = 0; v < n; ++v) vertex[v] = static_cast<int32_t>(v);
  std::stable_sort(vertex.begin(), vertex.end(),
                   [&cnt](int32_t a, int32_t b) { return cnt[a] > cnt[b]; });
  slot.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) slot[vertex[k]] = static_cast<int32_t>(k);
}

}  // namespace hpc
