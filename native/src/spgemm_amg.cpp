// Kernels of smoothed-aggregation AMG (hpc.amg), each one pass over a rank's rows:
//
// - aggregate: the standard three-pass greedy aggregation of Vanek, Mandel and Brezina (1996),
//   as pyamg's standard_aggregation does it, on a strength graph given as CSR;
// - aggregate_pass: one pass of it over a rank's rows with ghost columns, for the coupled
//   aggregation across ranks (hpc/amg/sa.py runs the passes rank colour by rank colour), on
//   the symmetric strength graph decided on the fly: (i, j) is strong when j != i, a_ij != 0
//   and |a_ij| >= theta sqrt(|a_ii a_jj|) (pyamg's symmetric_strength_of_connection);
// - smoothed_prolongator: the rows of P = T - w D^-1 (A T) for the tentative prolongator T of
//   an aggregation (one entry per row: t_i in the column of i's aggregate). Row i of A T
//   gathers a_ij t_j into the column of j's aggregate, so no general SpGEMM is needed;
// - GaussSeidel: Gauss-Seidel on a list of rows, in the order given (the coupled smoother).
//
// Aggregation passes: 1. a node whose strong neighbours are all free roots a new aggregate with
// them; 2. a free node joins an aggregate of a neighbour aggregated in pass 1; 3. the free
// nodes left root new aggregates with their free neighbours. Nodes without strong neighbours
// (e.g. Dirichlet rows) join no aggregate (-1).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;

// A checked CSR block of exactly n rows (hpc::CheckedCsr; a negative n is refused here).
template <typename I>
hpc::CheckedCsr<I> csr(const py::array& ptr_, const py::array& idx_, int64_t n, int64_t ncols,
                       const std::string& what) {
  if (n < 0) hpc::fail(what + ": negative size");
  return hpc::CheckedCsr<I>(ptr_, idx_, n, ncols, what);
}

template <typename T>
const T* vec_in(const py::array& a, int64_t n, const std::string& what, hpc::carray<T>& keep) {
  keep = hpc::exact<T>(a, what.c_str());
  hpc::require_1d(keep, n, what.c_str());
  return keep.data();
}

// The standard aggregation's three row steps, shared by the serial passes and the coupled
// (cross-rank) pass. strong(i, q) says whether entry q of row i is a strong off-diagonal edge.
// Pass 1: row i becomes the root of aggregate `code` with its strong neighbours when none of
// them is taken; a row with no strong neighbour gets `isolated`. Returns whether it made one.
template <typename I, typename Strong>
bool root_step(int64_t i, const I* P, const I* J, int64_t* x, Strong strong, int64_t code,
               int64_t isolated) {
  bool neighbours = false;
  for (I q = P[i]; q < P[i + 1]; ++q) {
    if (!strong(i, q)) continue;
    neighbours = true;
    if (x[J[q]]) return false;
  }
  if (!neighbours) {
    x[i] = isolated;
    return false;
  }
  x[i] = code;
  for (I q = P[i]; q < P[i + 1]; ++q)
    if (strong(i, q)) x[J[q]] = code;
  return true;
}

// Pass 2: a free row joins the first pass-1 aggregate k > 0 among its strong neighbours (-k).
template <typename I, typename Strong>
void join_step(int64_t i, const I* P, const I* J, int64_t* x, Strong strong) {
  for (I q = P[i]; q < P[i + 1]; ++q) {
    if (!strong(i, q)) continue;
    const int64_t xj = x[J[q]];
    if (xj > 0) {
      x[i] = -xj;
      return;
    }
  }
}

// Pass 3: a row still free roots aggregate `code` (< 0) with its free strong neighbours.
template <typename I, typename Strong>
void leftover_step(int64_t i, const I* P, const I* J, int64_t* x, Strong strong, int64_t code) {
  x[i] = code;
  for (I q = P[i]; q < P[i + 1]; ++q)
    if (strong(i, q) && x[J[q]] == 0) x[J[q]] = code;
}

// The three passes into x[0..n). Returns the number of aggregates.
template <typename I, typename Strong>
int64_t aggregate_passes(const I* P, const I* J, int64_t n, int64_t* x, Strong strong) {
  // x: 0 free, k > 0 in aggregate k (pass 1), -k joined aggregate k (pass 2), -n-1 isolated
  const int64_t isolated = -n - 1;
  std::fill(x, x + n, int64_t(0));
  int64_t next = 1;
  for (int64_t i = 0; i < n; ++i)
    if (!x[i] && root_step(i, P, J, x, strong, next, isolated)) ++next;
  for (int64_t i = 0; i < n; ++i)
    if (!x[i]) join_step(i, P, J, x, strong);
  // pass 3: the free nodes left root aggregates next, next + 1, ... (encoded as pass 2's -k)
  for (int64_t i = 0; i < n; ++i)
    if (!x[i]) leftover_step(i, P, J, x, strong, -next++);
  for (int64_t i = 0; i < n; ++i) {  // decode: aggregate numbers from 0
    const int64_t xi = x[i];
    x[i] = xi == isolated ? -1 : (xi > 0 ? xi - 1 : -xi - 1);
  }
  return next - 1;
}

// On a strength graph S (pyamg's convention: the diagonal, if stored, is skipped).
template <typename I>
py::tuple aggregate(py::array ptr_, py::array idx_, int64_t n) {
  auto S = csr<I>(ptr_, idx_, n, n, "aggregate");
  hpc::carray<int64_t> out(n);
  int64_t* x = out.mutable_data();
  int64_t count;
  {
    py::gil_scoped_release nogil;
    const I* J = S.J;
    count = aggregate_passes(S.P, J, n, x, [J](int64_t i, I q) { return int64_t(J[q]) != i; });
  }
  return py::make_tuple(out, count);
}

// One pass of the standard aggregation over a rank's own rows, for the coupled (cross-rank)
// aggregation of hpc.amg: columns are numbered own rows first [0, n), then ghosts [n, n + g);
// state[0, n + g) holds 0 free, +(c + 1) member of aggregate c from pass 1, -(c + 1) member of
// aggregate c from pass 2 or 3, INT64_MIN no strong neighbour. Pass 1 and pass 3 may claim
// ghost nodes (the caller sends those claims to their owners); new aggregates get the codes
// first_code, first_code + 1, ...; returns how many were made. diag covers own and ghost
// columns (the strength test).
template <typename I>
int64_t aggregate_pass(py::array ptr_, py::array idx_, py::array data_, py::array diag_,
                       double theta, py::array state_, int pass, int64_t first_code) {
  const int64_t nt = diag_.ndim() == 1 ? diag_.shape(0) : -1;
  if (nt < 0) hpc::fail("aggregate_pass diag: expected a 1-D array");
  if (pass < 1 || pass > 3) hpc::fail("aggregate_pass: pass must be 1, 2 or 3");
  if (!(theta >= 0.0 && theta < 1.0)) hpc::fail("aggregate_pass: theta must be in [0, 1)");
  const int64_t n = ptr_.ndim() == 1 ? ptr_.shape(0) - 1 : -1;
  if (n < 0 || n > nt) hpc::fail("aggregate_pass indptr: more rows than columns");
  auto A = csr<I>(ptr_, idx_, n, nt, "aggregate_pass");
  hpc::carray<double> kv, kd;
  const double* V = vec_in<double>(data_, -1, "aggregate_pass data", kv);
  if (kv.shape(0) < A.nnz()) hpc::fail("aggregate_pass data: shorter than the indices");
  const double* d = vec_in<double>(diag_, nt, "aggregate_pass diag", kd);
  auto ss = hpc::exact<int64_t>(state_, "aggregate_pass state");
  hpc::require_1d(ss, nt, "aggregate_pass state");
  int64_t* x = hpc::mut_ptr(ss, "aggregate_pass state");
  const int64_t none = std::numeric_limits<int64_t>::min();
  int64_t made = 0;
  py::gil_scoped_release nogil;
  const I* P = A.P;
  const I* J = A.J;
  auto strong = [&](int64_t i, I q) {
    const int64_t j = J[q];
    if (j == i || V[q] == 0.0) return false;
    return theta == 0.0 || std::fabs(V[q]) >= theta * std::sqrt(std::fabs(d[i] * d[j]));
  };
  for (int64_t i = 0; i < n; ++i) {
    if (x[i]) continue;
    if (pass == 1) {
      if (root_step(i, P, J, x, strong, first_code + made + 1, none)) ++made;
    } else if (pass == 2) {
      join_step(i, P, J, x, strong);
    } else {
      leftover_step(i, P, J, x, strong, -(first_code + made++ + 1));
    }
  }
  return made;
}

// Rows of P = T - w D^-1 A T. The block's own columns (A_own, local numbering) map to the
// aggregates in `agg` (compact ids, -1: none) with T values `t`; its ghost columns (A_gh, ghost
// slots) to compact ids `gagg` with values `gt`. `colid` gives each compact id its global
// column. Returns (indptr, global column indices sorted per row, values), exact zeros dropped.
template <typename I>
py::tuple smoothed_prolongator(py::array optr, py::array oidx, py::array odat, py::array gptr,
                               py::array gidx, py::array gdat, py::array agg_, py::array t_,
                               py::array gagg_, py::array gt_, py::array colid_, py::array dinv_,
                               double w) {
  const int64_t n = agg_.ndim() == 1 ? agg_.shape(0) : -1;
  const int64_t ng = gagg_.ndim() == 1 ? gagg_.shape(0) : -1;
  const int64_t nc = colid_.ndim() == 1 ? colid_.shape(0) : -1;
  if (n < 0 || ng < 0 || nc < 0) hpc::fail("smoothed_prolongator: expected 1-D arrays");
  auto Ao = csr<I>(optr, oidx, n, n, "smoothed_prolongator own block");
  auto Ag = csr<I>(gptr, gidx, n, ng, "smoothed_prolongator ghost block");
  hpc::carray<double> k1, k2, k3, k4, k5;
  hpc::carray<int64_t> k6, k7, k8;
  const double* OV = vec_in<double>(odat, -1, "smoothed_prolongator own data", k1);
  const double* GV = vec_in<double>(gdat, -1, "smoothed_prolongator ghost data", k2);
  if (k1.shape(0) < Ao.nnz() || k2.shape(0) < Ag.nnz())
    hpc::fail("smoothed_prolongator data: shorter than the indices");
  const double* t = vec_in<double>(t_, n, "smoothed_prolongator t", k3);
  const double* gt = vec_in<double>(gt_, ng, "smoothed_prolongator gt", k4);
  const double* dinv = vec_in<double>(dinv_, n, "smoothed_prolongator dinv", k5);
  const int64_t* agg = vec_in<int64_t>(agg_, n, "smoothed_prolongator agg", k6);
  const int64_t* gagg = vec_in<int64_t>(gagg_, ng, "smoothed_prolongator gagg", k7);
  const int64_t* colid = vec_in<int64_t>(colid_, nc, "smoothed_prolongator colid", k8);
  for (int64_t i = 0; i < n; ++i)
    if (agg[i] < -1 || agg[i] >= nc) hpc::fail("smoothed_prolongator agg: out of range");
  for (int64_t i = 0; i < ng; ++i)
    if (gagg[i] < -1 || gagg[i] >= nc) hpc::fail("smoothed_prolongator gagg: out of range");
  std::vector<int64_t> ptr(n + 1, 0), col;
  std::vector<double> val;
  {
    py::gil_scoped_release nogil;
    col.reserve(size_t(Ao.nnz() / 2 + n));
    val.reserve(col.capacity());
    std::vector<double> acc(nc, 0.0);
    std::vector<char> seen(nc, 0);
    std::vector<int64_t> list;
    std::vector<std::pair<int64_t, double>> row;
    for (int64_t i = 0; i < n; ++i) {
      list.clear();
      auto add = [&](int64_t c, double v) {
        if (c < 0) return;
        if (!seen[c]) {
          seen[c] = 1;
          acc[c] = 0.0;
          list.push_back(c);
        }
        acc[c] += v;
      };
      const double s = -w * dinv[i];
      for (I q = Ao.P[i]; q < Ao.P[i + 1]; ++q) add(agg[Ao.J[q]], s * OV[q] * t[Ao.J[q]]);
      for (I q = Ag.P[i]; q < Ag.P[i + 1]; ++q) add(gagg[Ag.J[q]], s * GV[q] * gt[Ag.J[q]]);
      add(agg[i], t[i]);
      row.clear();
      for (int64_t c : list) {
        seen[c] = 0;
        if (acc[c] != 0.0) row.emplace_back(colid[c], acc[c]);
      }
      std::sort(row.begin(), row.end());
      for (auto& e : row) {
        col.push_back(e.first);
        val.push_back(e.second);
      }
      ptr[i + 1] = int64_t(col.size());
    }
  }
  hpc::carray<int64_t> p(n + 1), c(int64_t(col.size()));
  hpc::carray<double> v(int64_t(val.size()));
  std::copy(ptr.begin(), ptr.end(), p.mutable_data());
  std::copy(col.begin(), col.end(), c.mutable_data());
  std::copy(val.begin(), val.end(), v.mutable_data());
  return py::make_tuple(p, c, v);
}

// Gauss-Seidel on one rank's own block, checked and copied once (a sweep of hpcg:64's 6.9M
// entries took 16 ms with the O(nnz) index check per call, 9 ms without):
// sweep(b, x, rows) sets x_i = (b_i - sum_{j != i} a_ij x_j) / diag_i for the rows i of `rows`,
// in that order.
template <typename I>
class GaussSeidel {
 public:
  GaussSeidel(py::array ptr_, py::array idx_, py::array data_, py::array diag_) {
    n_ = diag_.ndim() == 1 ? diag_.shape(0) : -1;
    auto A = csr<I>(ptr_, idx_, n_, n_, "GaussSeidel");
    hpc::carray<double> kv, kd;
    const double* V = vec_in<double>(data_, -1, "GaussSeidel data", kv);
    if (kv.shape(0) < A.nnz()) hpc::fail("GaussSeidel data: shorter than the indices");
    const double* d = vec_in<double>(diag_, n_, "GaussSeidel diag", kd);
    for (int64_t i = 0; i < n_; ++i)
      if (!(d[i] != 0.0)) hpc::fail("GaussSeidel: zero divisor in row " + std::to_string(i));
    ptr_v.assign(A.P, A.P + n_ + 1);
    idx_v.assign(A.J, A.J + A.nnz());
    val_v.assign(V, V + A.nnz());
    diag_v.assign(d, d + n_);
  }

  void sweep(py::array b_, py::array x_, py::array rows_) const {
    hpc::carray<double> kb;
    hpc::carray<int64_t> kr;
    const double* b = vec_in<double>(b_, n_, "GaussSeidel.sweep b", kb);
    auto xx = hpc::exact<double>(x_, "GaussSeidel.sweep x");
    hpc::require_1d(xx, n_, "GaussSeidel.sweep x");
    double* x = hpc::mut_ptr(xx, "GaussSeidel.sweep x");
    const int64_t* rows = vec_in<int64_t>(rows_, -1, "GaussSeidel.sweep rows", kr);
    const int64_t m = kr.shape(0);
    if (!hpc::all_in_range(rows, m, n_)) hpc::fail("GaussSeidel.sweep rows: out of range");
    py::gil_scoped_release nogil;
    const I* P = ptr_v.data();
    const I* J = idx_v.data();
    const double* V = val_v.data();
    const double* d = diag_v.data();
    for (int64_t k = 0; k < m; ++k) {
      const I i = I(rows[k]);
      double s = b[i];
      for (I q = P[i]; q < P[i + 1]; ++q) {
        const I j = J[q];
        if (j != i) s -= V[q] * x[j];
      }
      x[i] = s / d[i];
    }
  }

  int64_t rows() const { return n_; }

 private:
  int64_t n_ = 0;
  std::vector<I> ptr_v, idx_v;
  std::vector<double> val_v, diag_v;
};

template <typename I>
void bind_gs(py::module_& m, const char* name) {
  py::class_<GaussSeidel<I>>(m, name,
                             "Gauss-Seidel on a square CSR block, checked and copied once")
      .def(py::init<py::array, py::array, py::array, py::array>(), py::arg("indptr"),
           py::arg("indices"), py::arg("data"), py::arg("diag"))
      .def("sweep", &GaussSeidel<I>::sweep, py::arg("b"), py::arg("x"), py::arg("rows"),
           "x_i = (b_i - sum_{j != i} a_ij x_j) / diag_i for the rows `rows` (int64), in order")
      .def("rows", &GaussSeidel<I>::rows);
}
}  // namespace

HPC_SUBMODULE(spgemm_amg) {
  m.doc() = "Smoothed-aggregation AMG kernels: aggregation, smoothed prolongator, Gauss-Seidel";
  const char* doc =
      "aggregate(indptr, indices, n) -> (aggregate of every node int64 (-1: none), count): "
      "standard three-pass aggregation of a symmetric strength graph (pyamg's "
      "standard_aggregation).";
  m.def("aggregate_i32", &aggregate<int32_t>, doc, py::arg("indptr"), py::arg("indices"),
        py::arg("n"));
  m.def("aggregate_i64", &aggregate<int64_t>, doc, py::arg("indptr"), py::arg("indices"),
        py::arg("n"));
  const char* pdoc =
      "smoothed_prolongator(own_indptr, own_indices, own_data, gh_indptr, gh_indices, gh_data, "
      "agg, t, gagg, gt, colid, dinv, w) -> (indptr, indices, data) int64/int64/float64: rows "
      "of P = T - w D^-1 A T, T(i, agg_i) = t_i; compact aggregate ids map to columns colid.";
  m.def("smoothed_prolongator_i32", &smoothed_prolongator<int32_t>, pdoc, py::arg("own_indptr"),
        py::arg("own_indices"), py::arg("own_data"), py::arg("gh_indptr"), py::arg("gh_indices"),
        py::arg("gh_data"), py::arg("agg"), py::arg("t"), py::arg("gagg"), py::arg("gt"),
        py::arg("colid"), py::arg("dinv"), py::arg("w"));
  m.def("smoothed_prolongator_i64", &smoothed_prolongator<int64_t>, pdoc, py::arg("own_indptr"),
        py::arg("own_indices"), py::arg("own_data"), py::arg("gh_indptr"), py::arg("gh_indices"),
        py::arg("gh_data"), py::arg("agg"), py::arg("t"), py::arg("gagg"), py::arg("gt"),
        py::arg("colid"), py::arg("dinv"), py::arg("w"));
  const char* adoc =
      "aggregate_pass(indptr, indices, data, diag, theta, state, pass, first_code) -> int: one "
      "pass (1, 2 or 3) of the standard aggregation over own rows, columns numbered own then "
      "ghost; state (int64, own + ghost) updated in place; returns the aggregates made.";
  m.def("aggregate_pass_i32", &aggregate_pass<int32_t>, adoc, py::arg("indptr"),
        py::arg("indices"), py::arg("data"), py::arg("diag"), py::arg("theta"), py::arg("state"),
        py::arg("pass_"), py::arg("first_code"));
  m.def("aggregate_pass_i64", &aggregate_pass<int64_t>, adoc, py::arg("indptr"),
        py::arg("indices"), py::arg("data"), py::arg("diag"), py::arg("theta"), py::arg("state"),
        py::arg("pass_"), py::arg("first_code"));
  bind_gs<int32_t>(m, "GaussSeidel_i32");
  bind_gs<int64_t>(m, "GaussSeidel_i64");
}
