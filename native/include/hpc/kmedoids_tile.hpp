// What the k-medoids kernels (kmedoids.cpp, kmedoids_msc.cpp, kmedoids_swap.cpp) share: the
// strided view of a distance tile, the column chunks of the tile sweeps, and the medoid
// silhouette's per-point terms (one definition: the tile and the SWAP kernels sum the same
// float64 expressions, bit for bit).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <omp.h>
#include "hpc/checks.hpp"

namespace hpc::kmedoids {
using std::int64_t;

constexpr int64_t kCW = 32;  // candidate columns per thread chunk, at most
// Tiles smaller than this many entries run on one thread: FasterPAM evaluates many small
// blocks, where a fork/join costs more than the sweep itself.
constexpr int64_t kParMin = int64_t(1) << 17;

// Columns per chunk: small blocks (FasterPAM's speculative blocks) are still split over all
// threads; a chunk's sums do not depend on its width, so results stay thread-count independent.
inline int64_t chunk_cols(int64_t cols) {
  const int64_t nt = std::max(1, omp_get_max_threads());
  return std::clamp<int64_t>((cols + nt - 1) / nt, 4, kCW);
}

// A read-only 2-D view (float64, or float32 for --dtype float32) with unit column stride and
// any row stride (a column slice of the distance matrix is passed without copying). Sums are
// float64 whatever the element type.
template <typename T>
struct Tile {
  const T* p;
  int64_t rows, cols, ld;
  double at(int64_t r, int64_t c) const { return static_cast<double>(p[r * ld + c]); }
};

// a (2-D, of dtype T) as a Tile; refuses strides a Tile cannot express.
template <typename T>
Tile<T> tile(const py::array& a, const char* what) {
  if (a.ndim() != 2) hpc::fail(std::string(what) + ": expected a 2-D array");
  if (!py::isinstance<py::array_t<T>>(a)) hpc::fail(std::string(what) + ": wrong dtype");
  if (a.shape(0) == 0 || a.shape(1) == 0)  // empty (a rank without points): strides are moot
    return {static_cast<const T*>(a.data()), a.shape(0), a.shape(1), a.shape(1)};
  const auto sz = static_cast<py::ssize_t>(sizeof(T));
  if (a.shape(1) > 1 && a.strides(1) != sz)
    hpc::fail(std::string(what) + ": columns must be contiguous");
  if (a.strides(0) % sz != 0 || a.strides(0) < 0)
    hpc::fail(std::string(what) + ": bad row stride");
  const int64_t ld = a.strides(0) / sz;
  if (a.shape(0) > 1 && ld < a.shape(1)) hpc::fail(std::string(what) + ": overlapping rows");
  return {static_cast<const T*>(a.data()), a.shape(0), a.shape(1), ld};
}

// a / b, 0 when a or b is 0: the medoid silhouette's loss term
inline double ratio(double a, double b) { return (a == 0.0 || b == 0.0) ? 0.0 : a / b; }

// A point's medoid silhouette state: distances to its nearest and second medoids (n, s), the
// ratios near/second, second/third and near/third, and its nearest and second slots.
struct MscPoint {
  double n, s, ns, st, nt;
  int64_t mn, ms;

  // FastMSC's gain terms for a candidate at distance x nearer than one of the point's three
  // medoids (x < n, s or third), added to oc[0..k]: oc[m] for m replaced by the candidate
  // beyond m's removal gain, oc[k] the term shared by every m.
  void add_terms(double x, int64_t k, double* oc) const {
    if (x < n) {
      oc[k] += ns - ratio(x, n);
      oc[mn] += ratio(x, n) + st - ratio(n + x, s);
      oc[ms] += nt - ns;
    } else if (x < s) {
      oc[k] += ns - ratio(n, x);
      oc[mn] += ratio(n, x) + st - ratio(n + x, s);
      oc[ms] += nt - ns;
    } else {
      oc[mn] += st - ratio(s, x);
      oc[ms] += nt - ratio(n, x);
    }
  }
};
}  // namespace hpc::kmedoids
