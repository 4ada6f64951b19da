// Medoid silhouette kernels (hpc.kmedoids.msc, native back end): the gain of FastMSC/FasterMSC
// for a tile of candidate columns, and the k = 2 loss. Tiles may be float64 or float32 (the
// --dtype float32 matrix); sums are float64. As in kmedoids.cpp, threads own disjoint column
// chunks and stream the rows in order, so results do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <vector>
#include "hpc/checks.hpp"
#include "hpc/kmedoids_tile.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;
using namespace hpc::kmedoids;  // Tile, chunk_cols, kParMin, ratio, MscPoint

template <typename T>
const T* vec(const py::array& a, int64_t n, const char* what) {
  auto c = hpc::exact<T>(a, what);
  hpc::require_1d<T>(c, n, what);
  return c.data();
}

// out[c, 0..width) for every column c of D (float32 or float64, viewed without a copy),
// filled by sweep(view, out) with the GIL released.
template <typename Sweep>
py::array_t<double> by_columns(const py::array& D_, const char* what, int64_t width,
                               Sweep&& sweep) {
  return hpc::visit_real(D_, what, [&](auto tag) {
    const auto D = tile<decltype(tag)>(D_, what);
    py::array_t<double> out({D.cols, width});
    double* o = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      sweep(D, o);
    }
    return out;
  });
}

struct Near3 {
  const int64_t *ni, *si;
  const double *nd, *sd, *td;
};

// out[c, m] (m < k): gain of L = sum near/second when candidate c replaces medoid m, beyond
// m's removal gain; out[c, k]: the gain shared by every m (points that move to c).
template <typename T>
void msc_sweep(const Tile<T>& D, const Near3& a, int64_t k, double* o) {
  const int64_t cw = chunk_cols(D.cols);
  // the per-point ratios, once per call rather than once per column chunk
  std::vector<double> r3(3 * static_cast<size_t>(D.rows));
  for (int64_t r = 0; r < D.rows; ++r) {
    r3[3 * r] = ratio(a.nd[r], a.sd[r]);
    r3[3 * r + 1] = ratio(a.sd[r], a.td[r]);
    r3[3 * r + 2] = ratio(a.nd[r], a.td[r]);
  }
#pragma omp parallel for schedule(dynamic, 1) if (D.rows * D.cols >= kParMin)
  for (int64_t lo = 0; lo < D.cols; lo += cw) {
    const int64_t hi = std::min(D.cols, lo + cw);
    std::fill(o + lo * (k + 1), o + hi * (k + 1), 0.0);
    for (int64_t r = 0; r < D.rows; ++r) {
      const MscPoint pt{a.nd[r], a.sd[r], r3[3 * r], r3[3 * r + 1], r3[3 * r + 2],
                        a.ni[r], a.si[r]};
      const double t = a.td[r];
      const T* row = D.p + r * D.ld;
      for (int64_t c = lo; c < hi; ++c) {
        const double x = static_cast<double>(row[c]);
        if (x < pt.n || x < pt.s || x < t) pt.add_terms(x, k, o + c * (k + 1));
      }
    }
  }
}

py::array_t<double> msc_delta(const py::array& D_, const py::array& ni_, const py::array& si_,
                              const py::array& nd_, const py::array& sd_, const py::array& td_,
                              int64_t k) {
  if (k < 3) hpc::fail("msc_delta: k must be at least 3 (k = 2 has msc2_loss)");
  const int64_t rows = D_.ndim() == 2 ? D_.shape(0) : -1;
  Near3 a{vec<int64_t>(ni_, rows, "near_i"), vec<int64_t>(si_, rows, "seco_i"),
          vec<double>(nd_, rows, "near_d"), vec<double>(sd_, rows, "seco_d"),
          vec<double>(td_, rows, "third_d")};
  if (rows > 0 && (!hpc::all_in_range(a.ni, rows, k) || !hpc::all_in_range(a.si, rows, k)))
    hpc::fail("msc_delta: near_i/seco_i out of range [0, k)");
  return by_columns(D_, "msc_delta: D", k + 1,
                    [&](const auto& D, double* o) { msc_sweep(D, a, k, o); });
}

template <typename T>
void msc2_sweep(const Tile<T>& D, const double* d0, const double* d1, double* o) {
  const int64_t cw = chunk_cols(D.cols);
#pragma omp parallel for schedule(dynamic, 1) if (D.rows * D.cols >= kParMin)
  for (int64_t lo = 0; lo < D.cols; lo += cw) {
    const int64_t hi = std::min(D.cols, lo + cw);
    std::fill(o + lo * 2, o + hi * 2, 0.0);
    for (int64_t r = 0; r < D.rows; ++r) {
      const double a = d0[r], b = d1[r];
      const T* row = D.p + r * D.ld;
      for (int64_t c = lo; c < hi; ++c) {
        const double x = static_cast<double>(row[c]);
        o[2 * c] += x < b ? ratio(x, b) : ratio(b, x);      // c replaces slot 0
        o[2 * c + 1] += x < a ? ratio(x, a) : ratio(a, x);  // c replaces slot 1
      }
    }
  }
}

// k = 2: the loss L after candidate c replaces medoid slot 0 (out[c, 0]) or 1 (out[c, 1]).
py::array_t<double> msc2_loss(const py::array& D_, const py::array& d0_, const py::array& d1_) {
  const int64_t rows = D_.ndim() == 2 ? D_.shape(0) : -1;
  const double* d0 = vec<double>(d0_, rows, "d0");
  const double* d1 = vec<double>(d1_, rows, "d1");
  return by_columns(D_, "msc2_loss: D", 2,
                    [&](const auto& D, double* o) { msc2_sweep(D, d0, d1, o); });
}
}  // namespace

HPC_SUBMODULE(kmedoids_msc) {
  m.doc() = "medoid silhouette kernels (OpenMP): FastMSC/FasterMSC gains, the k = 2 loss";
  m.def("msc_delta", &msc_delta, py::arg("D"), py::arg("near_i"), py::arg("seco_i"),
        py::arg("near_d"), py::arg("seco_d"), py::arg("third_d"), py::arg("k"));
  m.def("msc2_loss", &msc2_loss, py::arg("D"), py::arg("d0"), py::arg("d1"));
}
