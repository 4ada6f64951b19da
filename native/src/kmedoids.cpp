// k-medoids kernels (hpc.kmedoids, native back end): exact distance tiles and the ΔTD sweeps of
// PAM, FastPAM1/2 and FasterPAM over a tile of candidate columns, on float64 or float32 tiles
// (--dtype float32: half the memory; the sums stay float64). Threads own disjoint column
// chunks and stream the rows in order, so each candidate's sums are accumulated in point order
// whatever the thread count (results do not depend on OMP_NUM_THREADS).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>
#include <omp.h>
#include "hpc/checks.hpp"
#include "hpc/kmedoids_tile.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;
using hpc::kmedoids::chunk_cols;
using hpc::kmedoids::kCW;
using hpc::kmedoids::kParMin;
using hpc::kmedoids::Tile;

template <typename T>
Tile<T> tile(const py::array& a, const char* what) {
  if (a.ndim() != 2) hpc::fail(std::string(what) + ": expected a 2-D float64 or float32 array");
  return hpc::kmedoids::tile<T>(a, what);
}

// Calls f(Tile<float>) or f(Tile<double>) by the array's dtype.
template <typename F>
void with_tile(const py::array& a, const char* what, F&& f) {
  if (py::isinstance<py::array_t<double>>(a)) {
    f(tile<double>(a, what));
  } else if (py::isinstance<py::array_t<float>>(a)) {
    f(tile<float>(a, what));
  } else {
    hpc::fail(std::string(what) + ": expected a 2-D float64 or float32 array");
  }
}

template <typename T>
const T* vec(const py::array& a, int64_t n, const char* what) {
  auto c = hpc::exact<T>(a, what);
  hpc::require_1d<T>(c, n, what);
  return c.data();
}

int metric_code(const std::string& m) {
  if (m == "euclidean") return 0;
  if (m == "sqeuclidean") return 1;
  if (m == "manhattan") return 2;
  if (m == "cosine") return 3;
  hpc::fail("kmedoids.dist: unknown metric " + m);
}

// Distances computed in float64 and stored as O (float64, or float32: each the float64 value
// rounded once, so a float32 run sees the float64 distances to 24 bits).
template <typename O_t>
py::array dist_into(const py::array& a_, const py::array& b_, const std::string& metric) {
  auto a = hpc::exact<double>(a_, "dist: A");
  auto b = hpc::exact<double>(b_, "dist: B");
  if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(1))
    hpc::fail("kmedoids.dist: A and B must be 2-D with the same number of columns");
  const int mc = metric_code(metric);
  const int64_t na = a.shape(0), nb = b.shape(0), d = a.shape(1);
  py::array_t<O_t> out({na, nb});
  const double* A = a.data();
  const double* B = b.data();
  O_t* O = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    std::vector<double> nra, nrb;
    if (mc == 3) {
      nra.resize(na);
      nrb.resize(nb);
      for (int64_t i = 0; i < na; ++i) {
        double s = 0;
        for (int64_t t = 0; t < d; ++t) s += A[i * d + t] * A[i * d + t];
        nra[i] = s > 0 ? std::sqrt(s) : 1.0;
      }
      for (int64_t j = 0; j < nb; ++j) {
        double s = 0;
        for (int64_t t = 0; t < d; ++t) s += B[j * d + t] * B[j * d + t];
        nrb[j] = s > 0 ? std::sqrt(s) : 1.0;
      }
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < na; ++i) {
      const double* x = A + i * d;
      for (int64_t j = 0; j < nb; ++j) {
        const double* y = B + j * d;
        double s = 0;
        if (mc <= 1) {
#pragma omp simd reduction(+ : s)
          for (int64_t t = 0; t < d; ++t) {
            double u = x[t] - y[t];
            s += u * u;
          }
          O[i * nb + j] = static_cast<O_t>(mc == 0 ? std::sqrt(s) : s);
        } else if (mc == 2) {
#pragma omp simd reduction(+ : s)
          for (int64_t t = 0; t < d; ++t) s += std::fabs(x[t] - y[t]);
          O[i * nb + j] = static_cast<O_t>(s);
        } else {
#pragma omp simd reduction(+ : s)
          for (int64_t t = 0; t < d; ++t) s += x[t] * y[t];
          O[i * nb + j] = static_cast<O_t>(std::min(std::max(1.0 - s / nra[i] / nrb[j], 0.0), 2.0));
        }
      }
    }
  }
  return out;
}

py::array dist(const py::array& a, const py::array& b, const std::string& metric,
               const std::string& dtype) {
  if (dtype == "float64") return dist_into<double>(a, b, metric);
  if (dtype == "float32") return dist_into<float>(a, b, metric);
  hpc::fail("kmedoids.dist: dtype must be float64 or float32, got " + dtype);
}

template <typename T>
void colsum_t(const Tile<T>& D, double* o) {
  py::gil_scoped_release nogil;
  const int64_t cw = chunk_cols(D.cols);
#pragma omp parallel for schedule(static) if (D.rows * D.cols >= kParMin)
  for (int64_t lo = 0; lo < D.cols; lo += cw) {
    const int64_t hi = std::min(D.cols, lo + cw);
    for (int64_t c = lo; c < hi; ++c) o[c] = 0;
    for (int64_t r = 0; r < D.rows; ++r)
      for (int64_t c = lo; c < hi; ++c) o[c] += D.at(r, c);
  }
}

py::array_t<double> colsum(const py::array& D_) {
  py::array_t<double> out(D_.ndim() == 2 ? D_.shape(1) : 0);
  double* o = out.mutable_data();
  with_tile(D_, "colsum: D", [&](auto D) { colsum_t(D, o); });
  return out;
}

template <typename T>
void build_gain_t(const Tile<T>& D, const double* nd, double* o) {
  py::gil_scoped_release nogil;
  const int64_t cw = chunk_cols(D.cols);
#pragma omp parallel for schedule(static) if (D.rows * D.cols >= kParMin)
  for (int64_t lo = 0; lo < D.cols; lo += cw) {
    const int64_t hi = std::min(D.cols, lo + cw);
    for (int64_t c = lo; c < hi; ++c) o[c] = 0;
    for (int64_t r = 0; r < D.rows; ++r) {
      const double n = nd[r];
      for (int64_t c = lo; c < hi; ++c) {
        const double x = D.at(r, c) - n;
        if (x < 0) o[c] += x;
      }
    }
  }
}

py::array_t<double> build_gain(const py::array& D_, const py::array& near_d_) {
  const int64_t rows = D_.ndim() == 2 ? D_.shape(0) : -1;
  const double* nd = vec<double>(near_d_, rows, "build_gain: near_d");
  py::array_t<double> out(D_.ndim() == 2 ? D_.shape(1) : 0);
  double* o = out.mutable_data();
  with_tile(D_, "build_gain: D", [&](auto D) { build_gain_t(D, nd, o); });
  return out;
}

struct Assign {
  const int64_t* ni;
  const double *nd, *sd;
};

Assign assign(const py::array& ni, const py::array& nd, const py::array& sd, int64_t rows,
              int64_t k) {
  Assign a{vec<int64_t>(ni, rows, "near_i"), vec<double>(nd, rows, "near_d"),
           vec<double>(sd, rows, "seco_d")};
  if (!hpc::all_in_range(a.ni, rows, k)) hpc::fail("kmedoids: near_i out of range [0, k)");
  return a;
}

// out[c, m] (m < k): change of the loss, beyond the removal loss of medoid m, when candidate c
// replaces medoid m; out[c, k]: the part shared by all m (points that move to c).
//
// Only entries below max(near, second) of their point change anything (most do not: a point is
// far from most candidates), so each row is tested kSkipW columns at a time (vectorised) and
// only the hits branch; the sums are those of the plain loop (skipped terms add nothing).
// Chunks are wide (kFW columns: a row's entries are read as one contiguous run, not one cache
// line per row and chunk) and split over threads only for large tiles.
constexpr int64_t kSkipW = 16;
constexpr int64_t kFW = 1024;

template <typename T>
void fastpam_delta_t(const Tile<T>& D, const Assign& a, int64_t k, double* o) {
  py::gil_scoped_release nogil;
  const bool par = D.rows * D.cols >= kParMin && omp_get_max_threads() > 1;
  const int64_t nt = par ? omp_get_max_threads() : 1;
  const int64_t cw = std::clamp<int64_t>((D.cols + nt - 1) / nt, kSkipW, kFW);
#pragma omp parallel for schedule(dynamic, 1) if (par)
  for (int64_t lo = 0; lo < D.cols; lo += cw) {
    const int64_t hi = std::min(D.cols, lo + cw);
    std::fill(o + lo * (k + 1), o + hi * (k + 1), 0.0);
    for (int64_t r = 0; r < D.rows; ++r) {
      const double n = a.nd[r], s = a.sd[r], lim = std::max(n, s);
      const int64_t m = a.ni[r];
      const T* row = D.p + r * D.ld;
      auto hit = [&](int64_t c) {
        const double x = static_cast<double>(row[c]);
        if (x < n) {
          o[c * (k + 1) + k] += x - n;
          o[c * (k + 1) + m] += n - s;
        } else {
          o[c * (k + 1) + m] += x - s;  // n <= x < s
        }
      };
      int64_t c0 = lo;
      for (; c0 + kSkipW <= hi; c0 += kSkipW) {
        uint32_t mask = 0;
#pragma omp simd reduction(| : mask)
        for (int64_t i = 0; i < kSkipW; ++i)
          mask |= uint32_t(static_cast<double>(row[c0 + i]) < lim) << i;
        while (mask) {
          hit(c0 + __builtin_ctz(mask));
          mask &= mask - 1;
        }
      }
      for (int64_t c = c0; c < hi; ++c)
        if (static_cast<double>(row[c]) < lim) hit(c);
    }
  }
}

py::array_t<double> fastpam_delta(const py::array& D_, const py::array& ni_, const py::array& nd_,
                                  const py::array& sd_, int64_t k) {
  if (k < 1) hpc::fail("fastpam_delta: k must be positive");
  if (D_.ndim() != 2) hpc::fail("fastpam_delta: D: expected a 2-D float64 or float32 array");
  Assign a = assign(ni_, nd_, sd_, D_.shape(0), k);
  py::array_t<double> out({static_cast<int64_t>(D_.shape(1)), k + 1});
  double* o = out.mutable_data();
  with_tile(D_, "fastpam_delta: D", [&](auto D) { fastpam_delta_t(D, a, k, o); });
  return out;
}

// The original PAM: every medoid's removal evaluated in its own pass over the points (O(k) more
// work than fastpam_delta, on purpose: it is the baseline of the paper's speedups).
template <typename T>
void pam_delta_t(const Tile<T>& D, const Assign& a, int64_t k, double* o) {
  py::gil_scoped_release nogil;
  const int64_t cw = chunk_cols(D.cols);
#pragma omp parallel for schedule(dynamic, 1) if (D.rows * D.cols >= kParMin)
  for (int64_t lo = 0; lo < D.cols; lo += cw) {
    const int64_t hi = std::min(D.cols, lo + cw);
    double acc[kCW];
    for (int64_t m = 0; m < k; ++m) {
      std::fill(acc, acc + kCW, 0.0);
      for (int64_t r = 0; r < D.rows; ++r) {
        const double n = a.nd[r];
        const T* row = D.p + r * D.ld;
        if (a.ni[r] == m) {
          const double s = a.sd[r];
          for (int64_t c = lo; c < hi; ++c)
            acc[c - lo] += std::min(static_cast<double>(row[c]), s) - n;
        } else {
          for (int64_t c = lo; c < hi; ++c) {
            const double x = static_cast<double>(row[c]) - n;
            if (x < 0) acc[c - lo] += x;
          }
        }
      }
      for (int64_t c = lo; c < hi; ++c) o[c * k + m] = acc[c - lo];
    }
  }
}

py::array_t<double> pam_delta(const py::array& D_, const py::array& ni_, const py::array& nd_,
                              const py::array& sd_, int64_t k) {
  if (k < 1) hpc::fail("pam_delta: k must be positive");
  if (D_.ndim() != 2) hpc::fail("pam_delta: D: expected a 2-D float64 or float32 array");
  Assign a = assign(ni_, nd_, sd_, D_.shape(0), k);
  py::array_t<double> out({static_cast<int64_t>(D_.shape(1)), k});
  double* o = out.mutable_data();
  with_tile(D_, "pam_delta: D", [&](auto D) { pam_delta_t(D, a, k, o); });
  return out;
}
}  // namespace

HPC_SUBMODULE(kmedoids) {
  m.doc() = "k-medoids kernels (OpenMP): distance tiles, BUILD gains, PAM/FastPAM ΔTD";
  m.def("dist", &dist, py::arg("A"), py::arg("B"), py::arg("metric"),
        py::arg("dtype") = "float64");
  m.def("colsum", &colsum);
  m.def("build_gain", &build_gain);
  m.def("fastpam_delta", &fastpam_delta);
  m.def("pam_delta", &pam_delta);
}
