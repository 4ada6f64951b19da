// Local sparse kernels for hpc.sparse / hpc.cg: CSR SpMV (OpenMP, static row blocks) and the
// sequential Gauss-Seidel sweeps of the block-Jacobi / multigrid smoothers.
// Every entry point checks shapes, dtypes and index ranges before touching raw pointers.
#include <cstdint>
#include <string>
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
  for (int64_t i = 0; i < rows; ++i)
    if (p[i + 1] < p[i]) hpc::fail(std::string(what) + ": indptr is not monotone");
  if (check_cols) {
    const I* c = ix.data();
    bool bad = false;
#pragma omp parallel for reduction(|| : bad) schedule(static)
    for (int64_t k = 0; k < nnz; ++k) bad = bad || c[k] < 0 || int64_t(c[k]) >= cols;
    if (bad) hpc::fail(std::string(what) + ": column index out of range");
  }
  return {p, ix.data(), dv.data(), rows, cols};
}

template <typename I>
void spmv_kernel(const Csr<I>& A, const double* __restrict x, double* __restrict y, bool acc) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < A.rows; ++i) {
    double s = 0.0;
    for (int64_t k = A.indptr[i]; k < A.indptr[i + 1]; ++k) s += A.data[k] * x[A.indices[k]];
    y[i] = acc ? y[i] + s : s;
  }
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

template <typename F>
auto by_index(const py::array& indices, F&& f) {
  if (py::isinstance<carray<int32_t>>(indices)) return f(int32_t{});
  if (py::isinstance<carray<int64_t>>(indices)) return f(int64_t{});
  hpc::fail("sparse: indices must be int32 or int64");
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
}  // namespace

HPC_SUBMODULE(sparse) {
  m.doc() = "CSR kernels (OpenMP): SpMV, Gauss-Seidel sweeps, in-place vector updates";
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
