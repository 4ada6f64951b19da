// Local sparse kernels for hpc.sparse / hpc.cg: CSR SpMV (OpenMP, static row blocks), the
// sequential Gauss-Seidel sweeps of the block-Jacobi / multigrid smoothers, and CG's fused
// vector updates.
// Every entry point checks shapes, dtypes and index ranges before touching raw pointers. The
// hot path is the `Csr` class: it copies and validates the matrix ONCE at construction (it owns
// its arrays, so Python cannot change them afterwards), and each product only checks the two
// vector lengths.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>
#include <omp.h>
#include <pybind11/stl.h>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using hpc::carray;
using std::int64_t;

template <typename I>
struct Csr {
  const int64_t* indptr;
  const I* indices;
  const double* data;
  int64_t rows, cols;
};

// Validates indptr (monotone, starts at 0, ends at nnz) and every column index once per call:
// O(nnz) integer reads, cheap next to the SpMV itself and it rules out out-of-range loads.
template <typename I>
Csr<I> check_csr(const py::array& indptr, const py::array& indices, const py::array& data,
                 int64_t cols, const char* what, bool check_cols) {
  auto ip = hpc::exact<int64_t>(indptr, what);
  auto ix = hpc::exact<I>(indices, what);
  auto dv = hpc::exact<double>(data, what);
  if (ip.ndim() != 1 || ix.ndim() != 1 || dv.ndim() != 1 || ip.shape(0) < 1)
    hpc::fail(std::string(what) + ": CSR arrays must be 1-D");
  const int64_t rows = ip.shape(0) - 1, nnz = ix.shape(0);
  if (dv.shape(0) != nnz) hpc::fail(std::string(what) + ": indices and data differ in length");
  const int64_t* p = ip.data();
  if (p[0] != 0 || p[rows] != nnz) hpc::fail(std::string(what) + ": indptr does not span the entries");
  if (!hpc::non_decreasing(p, rows)) hpc::fail(std::string(what) + ": indptr is not monotone");
  if (check_cols) {
    const I* c = ix.data();
    bool ok = true;
#pragma omp parallel reduction(&& : ok)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t lo = nnz * t / nt, hi = nnz * (t + 1) / nt;
      ok = hpc::all_in_range(c + lo, hi - lo, cols);
    }
    if (!ok) hpc::fail(std::string(what) + ": column index out of range");
  }
  return {p, ix.data(), dv.data(), rows, cols};
}


// One Gauss-Seidel sweep on the square local block, x updated in place:
// x_i <- (b_i - sum_{j != i} a_ij x_j) / a_ii, rows in order (forward) or reverse (backward).
template <typename I>
void gs_kernel(const Csr<I>& A, const double* __restrict diag, const double* __restrict b,
               double* __restrict x, bool forward) {
  const int64_t n = A.rows;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t i = forward ? t : n - 1 - t;
    double s = b[i];
    for (int64_t k = A.indptr[i]; k < A.indptr[i + 1]; ++k) {
      const int64_t j = A.indices[k];
      if (j != i) s -= A.data[k] * x[j];
    }
    x[i] = s / diag[i];
  }
}

double* out_vec(py::array& y, int64_t n, const char* what) {
  auto yy = hpc::exact<double>(y, what);
  hpc::require_1d(yy, n, what);
  return hpc::mut_ptr(yy, what);
}

const double* in_vec(const py::array& x, int64_t n, const char* what) {
  auto xx = hpc::exact<double>(x, what);
  hpc::require_1d(xx, n, what);
  return xx.data();
}

// One row's sum a_i . x. Short rows (stencils: 5-7 entries): two scalar accumulators, which
// halves the dependent add chain; long rows (hpcg's 27, FEM rows): SIMD gathers with a vector
// reduction. Measured on the development VM against the plain loop (1 thread, hpcg:64):
// 4.3-5.1 ms against 5.3-7.3 ms; poisson3d:64 1.03-1.07 ms against 1.10-1.12 ms.
template <typename P, typename I>
inline double row_dot(P b, P e, const I* __restrict ix, const double* __restrict d,
                      const double* __restrict x) {
  double s = 0.0;
  if (e - b >= 16) {
#pragma omp simd reduction(+ : s)
    for (P k = b; k < e; ++k) s += d[k] * x[ix[k]];
    return s;
  }
  double s1 = 0.0;
  P k = b;
  for (; k + 2 <= e; k += 2) {
    s += d[k] * x[ix[k]];
    s1 += d[k + 1] * x[ix[k + 1]];
  }
  if (k < e) s += d[k] * x[ix[k]];
  return s + s1;
}

// Software prefetch of the value and index streams PF entries ahead of the row being summed,
// one hint per cache line the row spans (clamped to the arrays: no pointer past the end).
// The hardware prefetchers stop at 4 KiB pages; measured on the development VM (1 thread,
// hpcg:64, 83 MB, row sums as above): 3.1-3.4 ms with PF = 512 against 4.1-6.6 ms without;
// poisson3d:64 unchanged (0.96-0.98 against 1.00-1.06 ms). 256-1024 are within noise.
constexpr int64_t PF = 512;

template <typename P, typename I>
inline void prefetch_row(P b, P e, P nnz, const I* ix, const double* d) {
  const int64_t lo = int64_t(b) + PF, hi = std::min<int64_t>(int64_t(e) + PF, nnz);
  for (int64_t q = lo; q < hi; q += 64 / int64_t(sizeof(double))) __builtin_prefetch(d + q);
  for (int64_t q = lo; q < hi; q += 64 / int64_t(sizeof(I))) __builtin_prefetch(ix + q);
}

// A validated CSR block owned by the kernel. P: row pointer type, I: column index type (int32
// whenever they fit: 4 B less per nonzero / per row of memory traffic). `rows` (optional, sorted
// distinct) maps stored row i to output row rows[i]: the ghost-column block of a distributed
// matrix has entries in only a few rows, and storing just those rows makes y += A_gh g cost
// O(ghost rows) instead of a pass over every row.
template <typename P, typename I>
struct CsrStore {
  // numpy-allocated (never handed to Python): numpy advises transparent huge pages for large
  // arrays, which std::vector does not get; fewer TLB misses on the two streamed arrays.
  py::array_t<P> indptr;
  py::array_t<I> indices;
  py::array_t<double> data;
  const P* ip_ = nullptr;        // their data pointers, taken with the GIL held (fill)
  const I* ix_ = nullptr;
  const double* d_ = nullptr;
  std::vector<int64_t> rows;
  int64_t nrows = 0, ncols = 0, nout = 0;

  // y (+)= A x over the stored rows; returns sum_i w[out(i)] * (A x)_i when w is given.
  double matvec(const double* __restrict x, double* __restrict y, bool acc,
                const double* __restrict w) const {
    const P* ip = ip_;
    const I* ix = ix_;
    const double* d = d_;
    const int64_t* ro = rows.empty() ? nullptr : rows.data();
    const int64_t n = nrows;
    const P nnz = ip[n];
    double dot = 0.0;
    if (w) {
#pragma omp parallel for schedule(static) reduction(+ : dot)
      for (int64_t i = 0; i < n; ++i) {
        prefetch_row<P, I>(ip[i], ip[i + 1], nnz, ix, d);
        const double s = row_dot<P, I>(ip[i], ip[i + 1], ix, d, x);
        const int64_t o = ro ? ro[i] : i;
        y[o] = acc ? y[o] + s : s;
        dot += w[o] * s;
      }
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        prefetch_row<P, I>(ip[i], ip[i + 1], nnz, ix, d);
        const double s = row_dot<P, I>(ip[i], ip[i + 1], ix, d, x);
        const int64_t o = ro ? ro[i] : i;
        y[o] = acc ? y[o] + s : s;
      }
    }
    return dot;
  }
};

template <typename T, typename S>
py::array_t<T> narrow_copy(const S* src, int64_t n) {
  py::array_t<T> out(static_cast<py::ssize_t>(n));
  T* o = out.mutable_data();
  for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(src[i]);
  return out;
}

template <typename S>
const S* as_ptr(const py::array& a, int64_t& n, const char* what) {
  auto c = hpc::exact<S>(a, what);
  if (c.ndim() != 1) hpc::fail(std::string(what) + ": expected a 1-D array");
  n = c.shape(0);
  return c.data();
}

class CsrMatrix {
 public:
  using Store = std::variant<CsrStore<int32_t, int32_t>, CsrStore<int64_t, int32_t>,
                             CsrStore<int32_t, int64_t>, CsrStore<int64_t, int64_t>>;

  CsrMatrix(const py::array& indptr, const py::array& indices, const py::array& data, int64_t ncols,
      std::optional<py::array> rows, int64_t nout) {
    if (ncols < 0) hpc::fail("Csr: ncols must be >= 0");
    int64_t np1 = 0, nnz = 0, nd = 0;
    const int64_t* ip = as_ptr<int64_t>(indptr, np1, "Csr indptr (int64)");
    const double* dv = as_ptr<double>(data, nd, "Csr data (float64)");
    if (np1 < 1) hpc::fail("Csr: indptr is empty");
    const int64_t n = np1 - 1;
    // indices: int32 or int64 accepted
    const int32_t* ix32 = nullptr;
    const int64_t* ix64 = nullptr;
    if (py::isinstance<hpc::carray<int32_t>>(indices))
      ix32 = as_ptr<int32_t>(indices, nnz, "Csr indices");
    else
      ix64 = as_ptr<int64_t>(indices, nnz, "Csr indices (int32 or int64)");
    if (nd != nnz) hpc::fail("Csr: indices and data differ in length");
    if (ip[0] != 0 || ip[n] != nnz) hpc::fail("Csr: indptr does not span the entries");
    if (!hpc::non_decreasing(ip, n)) hpc::fail("Csr: indptr is not monotone");
    for (int64_t k = 0; k < nnz; ++k) {
      const int64_t c = ix32 ? int64_t(ix32[k]) : ix64[k];
      if (c < 0 || c >= ncols)
        hpc::fail("Csr: column index " + std::to_string(c) + " out of range [0, " +
                  std::to_string(ncols) + ")");
    }
    std::vector<int64_t> ro;
    if (rows) {
      int64_t nr = 0;
      const int64_t* r = as_ptr<int64_t>(*rows, nr, "Csr rows (int64)");
      if (nr != n) hpc::fail("Csr: rows must have one entry per stored row");
      for (int64_t i = 0; i < nr; ++i) {
        if (r[i] < 0 || r[i] >= nout) hpc::fail("Csr: output row out of range");
        if (i && r[i] <= r[i - 1]) hpc::fail("Csr: rows must be strictly increasing");
      }
      ro.assign(r, r + nr);
    } else {
      if (nout != n) hpc::fail("Csr: nout must equal the number of rows when rows is not given");
    }
    const bool p32 = nnz <= std::numeric_limits<int32_t>::max();
    const bool i32 = ncols <= std::numeric_limits<int32_t>::max();
    auto fill = [&](auto& st) {
      using P = std::decay_t<decltype(*st.indptr.data())>;
      using I = std::decay_t<decltype(*st.indices.data())>;
      st.indptr = narrow_copy<P>(ip, np1);
      st.indices = ix32 ? narrow_copy<I>(ix32, nnz) : narrow_copy<I>(ix64, nnz);
      st.data = narrow_copy<double>(dv, nnz);
      st.ip_ = st.indptr.data();
      st.ix_ = st.indices.data();
      st.d_ = st.data.data();
      st.rows = std::move(ro);
      st.nrows = n;
      st.ncols = ncols;
      st.nout = nout;
    };
    if (p32 && i32) store_ = CsrStore<int32_t, int32_t>{};
    else if (!p32 && i32) store_ = CsrStore<int64_t, int32_t>{};
    else if (p32) store_ = CsrStore<int32_t, int64_t>{};
    else store_ = CsrStore<int64_t, int64_t>{};
    std::visit(fill, store_);
  }

  // y (+)= A x; with w, also returns w . (the product's contribution to y).
  double matvec(const py::array& x, py::array& y, bool accumulate,
                std::optional<py::array> w) const {
    return std::visit(
        [&](const auto& st) {
          const double* px = in_vec(x, st.ncols, "Csr.matvec x");
          double* py_ = out_vec(y, st.nout, "Csr.matvec y");
          const double* pw = w ? in_vec(*w, st.nout, "Csr.matvec w") : nullptr;
          py::gil_scoped_release nogil;
          return st.matvec(px, py_, accumulate, pw);
        },
        store_);
  }

  int64_t nrows() const { return std::visit([](const auto& s) { return s.nrows; }, store_); }
  int64_t ncols() const { return std::visit([](const auto& s) { return s.ncols; }, store_); }
  int64_t nout() const { return std::visit([](const auto& s) { return s.nout; }, store_); }
  int64_t nnz() const {
    return std::visit([](const auto& s) { return int64_t(s.data.size()); }, store_);
  }
  int indptr_itemsize() const {
    return std::visit([](const auto& s) { return int(sizeof(*s.indptr.data())); }, store_);
  }
  int index_itemsize() const {
    return std::visit([](const auto& s) { return int(sizeof(*s.indices.data())); }, store_);
  }

 private:
  Store store_;
};

template <typename I>
void spmv_kernel(const Csr<I>& A, const double* __restrict x, double* __restrict y, bool acc) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < A.rows; ++i) {
    const double s = row_dot<int64_t, I>(A.indptr[i], A.indptr[i + 1], A.indices, A.data, x);
    y[i] = acc ? y[i] + s : s;
  }
}

// The fused kernels below write some arrays while reading others through __restrict
// pointers: refuse any overlap instead of computing garbage.
void no_overlap(std::initializer_list<std::pair<const double*, const char*>> arrays, int64_t n,
                const char* what) {
  const size_t len = static_cast<size_t>(n);
  for (auto a = arrays.begin(); a != arrays.end(); ++a)
    for (auto b = a + 1; b != arrays.end(); ++b)
      if (a->first && b->first && a->first < b->first + len && b->first < a->first + len)
        hpc::fail(std::string(what) + ": " + a->second + " and " + b->second + " overlap");
}

template <typename F>
auto by_index(const py::array& indices, F&& f) {
  if (py::isinstance<carray<int32_t>>(indices)) return f(int32_t{});
  if (py::isinstance<carray<int64_t>>(indices)) return f(int64_t{});
  hpc::fail("sparse: indices must be int32 or int64");
}

}  // namespace

HPC_SUBMODULE(sparse) {
  m.doc() = "CSR kernels (OpenMP): SpMV, Gauss-Seidel sweeps, fused CG vector updates";
  // Krylov vector updates without temporaries: y += a x, and y = x + a y.
  m.def(
      "axpy",
      [](double a, py::array x, py::array y) {
        const int64_t n = y.ndim() == 1 ? y.shape(0) : -1;
        const double* px = in_vec(x, n, "axpy x");
        double* py_ = out_vec(y, n, "axpy y");
        py::gil_scoped_release nogil;
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; ++i) py_[i] += a * px[i];
      },
      py::arg("a"), py::arg("x"), py::arg("y"), "y += a x (in place)");
  m.def(
      "aypx",
      [](double a, py::array x, py::array y) {
        const int64_t n = y.ndim() == 1 ? y.shape(0) : -1;
        const double* px = in_vec(x, n, "aypx x");
        double* py_ = out_vec(y, n, "aypx y");
        py::gil_scoped_release nogil;
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; ++i) py_[i] = px[i] + a * py_[i];
      },
      py::arg("a"), py::arg("x"), py::arg("y"), "y = x + a y (in place)");
  m.def(
      "spmv",
      [](py::array indptr, py::array indices, py::array data, py::array x, py::array y,
         bool accumulate, bool check) {
        by_index(indices, [&](auto t) {
          using I = decltype(t);
          const int64_t ncols = x.ndim() == 1 ? x.shape(0) : -1;
          auto A = check_csr<I>(indptr, indices, data, ncols, "spmv", check);
          const double* px = in_vec(x, ncols, "spmv x");
          double* py_ = out_vec(y, A.rows, "spmv y");
          py::gil_scoped_release nogil;
          spmv_kernel(A, px, py_, accumulate);
          return 0;
        });
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("x"), py::arg("y"),
      py::arg("accumulate") = false, py::arg("check") = true,
      "y = A x (or y += A x); A in CSR with int64 indptr, column indices < len(x)");
  py::class_<CsrMatrix>(m, "Csr",
                        "A CSR block copied and validated once; matvec checks only the vectors")
      .def(py::init<const py::array&, const py::array&, const py::array&, int64_t,
                    std::optional<py::array>, int64_t>(),
           py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("ncols"),
           py::arg("rows") = py::none(), py::arg("nout"),
           "indptr int64, indices int32/int64 in [0, ncols), data float64; rows (int64, strictly "
           "increasing, < nout): stored row i is output row rows[i] (None: nout == rows)")
      .def("matvec", &CsrMatrix::matvec, py::arg("x"), py::arg("y"),
           py::arg("accumulate") = false, py::arg("w") = py::none(),
           "y = A x (or y += A x); returns w . (A x) over the stored rows when w is given, else 0")
      .def_property_readonly("nrows", &CsrMatrix::nrows)
      .def_property_readonly("ncols", &CsrMatrix::ncols)
      .def_property_readonly("nout", &CsrMatrix::nout)
      .def_property_readonly("nnz", &CsrMatrix::nnz)
      .def_property_readonly("indptr_itemsize", &CsrMatrix::indptr_itemsize)
      .def_property_readonly("index_itemsize", &CsrMatrix::index_itemsize);
  // CG's end of iteration in one pass: x += a p; r -= a q; then z = dinv * r and the two local
  // dot products r.r and r.z the next iteration reduces (z, dinv None: no preconditioner, r.z
  // = r.r). Replaces two axpys, the Jacobi product and two dots (five passes, a temporary).
  m.def(
      "cg_update",
      [](double a, py::array p, py::array q, py::array x, py::array r,
         std::optional<py::array> dinv, std::optional<py::array> z) {
        const int64_t n = r.ndim() == 1 ? r.shape(0) : -1;
        if (dinv.has_value() != z.has_value()) hpc::fail("cg_update: give both dinv and z, or neither");
        const double* pp = in_vec(p, n, "cg_update p");
        const double* pq = in_vec(q, n, "cg_update q");
        double* px = out_vec(x, n, "cg_update x");
        double* pr = out_vec(r, n, "cg_update r");
        const double* pd = dinv ? in_vec(*dinv, n, "cg_update dinv") : nullptr;
        double* pz = z ? out_vec(*z, n, "cg_update z") : nullptr;
        no_overlap({{pp, "p"}, {pq, "q"}, {px, "x"}, {pr, "r"}, {pd, "dinv"}, {pz, "z"}}, n,
                   "cg_update");
        double rr = 0.0, rz = 0.0;
        {
          py::gil_scoped_release nogil;
          if (pz) {
#pragma omp parallel for simd schedule(static) reduction(+ : rr, rz)
            for (int64_t i = 0; i < n; ++i) {
              px[i] += a * pp[i];
              const double ri = pr[i] - a * pq[i];
              const double zi = pd[i] * ri;
              pr[i] = ri;
              pz[i] = zi;
              rr += ri * ri;
              rz += ri * zi;
            }
          } else {
#pragma omp parallel for simd schedule(static) reduction(+ : rr)
            for (int64_t i = 0; i < n; ++i) {
              px[i] += a * pp[i];
              const double ri = pr[i] - a * pq[i];
              pr[i] = ri;
              rr += ri * ri;
            }
            rz = rr;
          }
        }
        return py::make_tuple(rr, rz);
      },
      py::arg("a"), py::arg("p"), py::arg("q"), py::arg("x"), py::arg("r"),
      py::arg("dinv") = py::none(), py::arg("z") = py::none(),
      "x += a p; r -= a q; z = dinv r; returns local (r.r, r.z)");
  m.def(
      "jacobi_dots",
      [](py::array dinv, py::array r, py::array z) {
        const int64_t n = r.ndim() == 1 ? r.shape(0) : -1;
        const double* pd = in_vec(dinv, n, "jacobi_dots dinv");
        const double* pr = in_vec(r, n, "jacobi_dots r");
        double* pz = out_vec(z, n, "jacobi_dots z");
        no_overlap({{pd, "dinv"}, {pr, "r"}, {pz, "z"}}, n, "jacobi_dots");
        double rr = 0.0, rz = 0.0;
        {
          py::gil_scoped_release nogil;
#pragma omp parallel for simd schedule(static) reduction(+ : rr, rz)
          for (int64_t i = 0; i < n; ++i) {
            const double ri = pr[i], zi = pd[i] * ri;
            pz[i] = zi;
            rr += ri * ri;
            rz += ri * zi;
          }
        }
        return py::make_tuple(rr, rz);
      },
      py::arg("dinv"), py::arg("r"), py::arg("z"), "z = dinv r; returns local (r.r, r.z)");
  m.def(
      "gs_sweep",
      [](py::array indptr, py::array indices, py::array data, py::array diag, py::array b,
         py::array x, bool forward) {
        by_index(indices, [&](auto t) {
          using I = decltype(t);
          const int64_t n = indptr.ndim() == 1 ? indptr.shape(0) - 1 : -1;
          auto A = check_csr<I>(indptr, indices, data, n, "gs_sweep", true);
          const double* pd = in_vec(diag, n, "gs_sweep diag");
          const double* pb = in_vec(b, n, "gs_sweep b");
          double* px = out_vec(x, n, "gs_sweep x");
          for (int64_t i = 0; i < n; ++i)
            if (pd[i] == 0.0) hpc::fail("gs_sweep: zero on the diagonal (row " + std::to_string(i) + ")");
          py::gil_scoped_release nogil;
          gs_kernel(A, pd, pb, px, forward);
          return 0;
        });
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("diag"), py::arg("b"),
      py::arg("x"), py::arg("forward") = true,
      "one Gauss-Seidel sweep on a square local CSR block, x updated in place");
}
