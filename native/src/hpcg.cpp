// HPCG's kernels for hpc.cg.hpcg: problem generation on one rank's box of the global grid,
// the 27-point operator stored as a general sparse matrix (split ELLPACK, int16 column offsets,
// values and column indices read from memory on every product, as HPCG's rules require), the
// reference kernels (SpMV, the sequential symmetric Gauss-Seidel, restriction by injection,
// prolongation) and the optimised ones: OpenMP SpMV fused with its dot product, the residual
// computed only at the coarse points restriction needs, the pre-smoother's forward sweep
// from x = 0 reading only the strictly lower entries, every backward sweep reading only the
// upper ones (each row's lower sum kept from the forward sweep), and a level-scheduled
// OpenMP SYMGS whose row order is the sequential one (so it changes no result and no
// iteration count).
//
// Every entry point checks lengths and dtypes; the matrix class copies and validates its
// arrays once (column range, row layout) so the products only check vector lengths.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include <omp.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using hpc::carray;
using std::int32_t;
using std::int64_t;

constexpr int W = 27;  // slots per row: the 27-point stencil's largest row
constexpr int64_t BLK = 512;  // rows per block of the blocked loops

// sum over blocks of [0, n) of body(lo, hi) (each block's partial, in row order), blocks
// split statically over the threads and the threads' partials added in thread order: the
// same rounding for every kernel that reduces over rows, and the same from run to run
// (OpenMP's reduction clause leaves the order of the threads' partials open).
template <typename F>
double blocked_sum(int64_t n, F&& body) {
  const int64_t nb = (n + BLK - 1) / BLK;
  const int nt = omp_get_max_threads();
  std::vector<double> part(size_t(nt), 0.0);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t b0 = nb * t / T, b1 = nb * (t + 1) / T;
    double d = 0.0;
    for (int64_t b = b0; b < b1; ++b) d += body(b * BLK, std::min(n, (b + 1) * BLK));
    part[size_t(t)] = d;
  }
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}


template <typename T>
const T* in(const carray<T>& a, int64_t n, const char* what) {
  hpc::require_1d(a, n, what);
  return a.data();
}

template <typename T>
T* out(carray<T>& a, int64_t n, const char* what) {
  hpc::require_1d(a, n, what);
  return hpc::mut_ptr(a, what);
}

// a * b + c rounded once where the CPU has FMA (every kernel sums rows through these helpers,
// so the reference and optimised kernels round alike in any build)
#if defined(__FMA__)
inline double fmadd(double a, double b, double c) { return std::fma(a, b, c); }
#else
inline double fmadd(double a, double b, double c) { return a * b + c; }
#endif

// One rank's rows of HPCG's matrix in a split, sliced ELLPACK form: int16 column offsets
// (column - row) and float64 values, both read on every product. Each row has two streams,
// L (the strictly lower entries) and U (the upper ones), so that a sweep reads only what it
// needs: the pre-smoother's forward sweep (from x = 0) reads L, every backward sweep reads U
// (the lower part of its sum is the forward sweep's, kept per row, see symgs_raw):
//   L (15 values, 15 offsets): 0: the entry in column i - 1 (the forward sweep's newest
//     value); values 1-2: the diagonal and 1 / diagonal, offsets 1-2: the row's index in the
//     side table as an int32, or -1; 3-14: groups 1-3, the other strictly lower entries
//     (column < i) ascending;
//   U (14 values, 15 offsets): 0-11: groups 4-6, the other upper entries by descending
//     column; 12: the entry in column i + 1 (the backward sweep's newest value); value 13:
//     1 / diagonal again, offsets 13-14: the side index again.
// No slot is padding by layout: per row 29 values and 30 offsets, 292 bytes.
// Missing entries are padding (offset 0, value 0): a product that adds +-0. The ghost columns
// (numbered after the rank's own rows) and any entry whose offset does not fit in int16 (a far
// column of a very large box) or that finds its 12 slots full go to the side table (int32
// column, value). A row's sum is two partial sums: hL over groups 1-3 and hU over groups 4-6,
// each in four lanes (slot 4g + q of the groups into lane q, group after group, each step a fused
// multiply-add) added as (l0 + l1) + (l2 + l3), hU then taking the side entries in order.
// Gauss-Seidel computes, forward, x_i = (r_i - (hL + (a_i,i+1 x_{i+1} + hU))) / a_ii
// - (a_i,i-1 / a_ii) x_{i-1} and, backward, x_i = ((r_i - sL) - hU) / a_ii
// - (a_i,i+1 / a_ii) x_{i+1} with sL = a_i,i-1 x_{i-1} + hL, so the sweep's chain from one
// row to the next is one fused multiply-add, and the backward sweep's r_i - sL is the value
// the forward sweep had (the lower columns do not change in between).
class Ell {
 public:
  static constexpr int SL = 15, SU = 14, SUC = 15;  // L slots; U values; U offsets

  Ell(const py::array& cols, const py::array& vals, const py::array& nnz, int64_t ncol)
      : ncol_(ncol) {
    auto c = hpc::exact<int32_t>(cols, "cols");
    auto v = hpc::exact<double>(vals, "vals");
    auto z = hpc::exact<int32_t>(nnz, "nnz");
    if (c.ndim() != 1 || v.ndim() != 1 || z.ndim() != 1) hpc::fail("Ell: arrays must be 1-D");
    nrow_ = z.shape(0);
    if (c.shape(0) != nrow_ * W || v.shape(0) != nrow_ * W)
      hpc::fail("Ell: cols and vals must hold 27 slots per row");
    if (ncol < nrow_ || ncol > INT32_MAX) hpc::fail("Ell: ncol must be in [nrow, 2**31)");
    if (!hpc::all_in_range(c.data(), nrow_ * W, ncol)) hpc::fail("Ell: column index out of range");
    cL_.assign(size_t(nrow_) * SL, 0);
    vL_.assign(size_t(nrow_) * SL, 0.0);
    cU_.assign(size_t(nrow_) * SUC, 0);
    vU_.assign(size_t(nrow_) * SU, 0.0);
    sl_.assign(size_t(nrow_), 0.0);
    nnz_.assign(z.data(), z.data() + nrow_);
    diag_.resize(nrow_);
    side_ptr_.assign(1, 0);
    const int32_t* cs = c.data();
    const double* vs = v.data();
    for (int64_t i = 0; i < nrow_; ++i) {
      const int n = nnz_[i];
      if (n < 1 || n > W) hpc::fail("Ell: nnz per row must be in [1, 27]");
      int16_t* cl = &cL_[size_t(i) * SL];
      double* vl = &vL_[size_t(i) * SL];
      int16_t* cu = &cU_[size_t(i) * SUC];
      double* vu = &vU_[size_t(i) * SU];
      std::vector<std::pair<int32_t, double>> lo, up, side;
      int ndiag = 0;
      double dval = 0.0;
      bool left = false, right = false;
      for (int j = 0; j < n; ++j) {
        const int32_t col = cs[i * W + j];
        const double val = vs[i * W + j];
        const int64_t off = int64_t(col) - i;
        if (col == i) { ++ndiag; dval += val; }
        else if (off == -1 && !left) { cl[0] = -1; vl[0] = val; left = true; }
        else if (off == 1 && !right) { cu[12] = 1; vu[12] = val; right = true; }
        else if (col >= nrow_ || off < INT16_MIN || off > INT16_MAX) {
          side.emplace_back(col, val);
          side_upper_local_ |= col > i && col < nrow_;
        }
        else if (col < i) lo.emplace_back(col, val);
        else up.emplace_back(col, val);
      }
      if (ndiag != 1) hpc::fail("Ell: row " + std::to_string(i) + " needs exactly one diagonal entry");
      if (!(dval != 0.0)) hpc::fail("Ell: zero diagonal in row " + std::to_string(i));
      std::sort(lo.begin(), lo.end(), [](auto& a, auto& b) { return a.first < b.first; });
      std::sort(up.begin(), up.end(), [](auto& a, auto& b) { return a.first > b.first; });
      // more than 12 on one side (not in HPCG's matrix): the farthest ones to the side table
      while (lo.size() > 12) { side.push_back(lo.front()); lo.erase(lo.begin()); }
      while (up.size() > 12) {
        side_upper_local_ |= up.front().first < nrow_;
        side.push_back(up.front());
        up.erase(up.begin());
      }
      std::sort(side.begin(), side.end(), [](auto& a, auto& b) { return a.first > b.first; });
      int k = 3;
      for (auto& e : lo) { cl[k] = int16_t(e.first - i); vl[k] = e.second; ++k; }
      k = 0;
      for (auto& e : up) { cu[k] = int16_t(e.first - i); vu[k] = e.second; ++k; }
      int32_t sidx = -1;
      if (!side.empty()) {
        sidx = int32_t(side_ptr_.size()) - 1;
        for (auto& e : side) { side_col_.push_back(e.first); side_val_.push_back(e.second); }
        side_ptr_.push_back(int64_t(side_col_.size()));
      }
      std::memcpy(cl + 1, &sidx, 4);
      std::memcpy(cu + 13, &sidx, 4);
      vl[1] = dval;
      vl[2] = vu[13] = 1.0 / dval;
      diag_[i] = dval;
    }
  }

  int64_t nrow() const { return nrow_; }

  // Zero what a sweep from x = 0 (zero_init) reads before writing: the ghosts, and all of x
  // when a side entry holds a local column above its row (a far column of a very large
  // box); the sweep zeroes each row itself before it reads it, so the rows need no pass.
  void zero_for_sweep(double* x) const {
    std::fill(side_upper_local_ ? x : x + nrow_, x + ncol_, 0.0);
  }
  int64_t ncol() const { return ncol_; }

  // y = A x (x has ncol entries: own rows, then the ghosts)
  void spmv(const carray<double>& x, carray<double>& y) const {
    spmv_k(in(x, ncol_, "x"), out(y, nrow_, "y"), nullptr);
  }

  // y = A x and return x[:nrow] . y (the local part of p'Ap)
  double spmv_dot(const carray<double>& x, carray<double>& y) const {
    double d = 0.0;
    spmv_k(in(x, ncol_, "x"), out(y, nrow_, "y"), &d);
    return d;
  }

  // y[i] = (A x)[i] for the listed rows only (the interior rows while the halo is in
  // flight, then the boundary rows), each row summed as spmv sums it
  void spmv_rows(const carray<double>& x, carray<double>& y, const carray<int32_t>& rows) const {
    const double* xv = in(x, ncol_, "x");
    double* yv = out(y, nrow_, "y");
    const int64_t m = rows.shape(0);
    const int32_t* rv = in(rows, -1, "rows");
    if (!hpc::all_in_range(rv, m, nrow_)) hpc::fail("rows: index out of range");
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < m; ++k) yv[rv[k]] = row_sum(rv[k], xv);
  }

  // Rows with an entry in a ghost column (they need the halo), or without one (interior).
  py::array_t<int32_t> rows_touching_ghosts(bool touching) const {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < nrow_; ++i) {
      bool g = false;
      for_each_entry(i, [&](int64_t col, double) { g |= col >= nrow_; });
      if (g == touching) out.push_back(int32_t(i));
    }
    py::array_t<int32_t> a(int64_t(out.size()));
    std::copy(out.begin(), out.end(), a.mutable_data());
    return a;
  }

  // HPCG's reference SYMGS: one forward then one backward sweep in row order, sequential.
  void symgs_ref(const carray<double>& r, carray<double>& x) const {
    const double* rv = in(r, nrow_, "r");
    double* xv = out(x, ncol_, "x");
    for (int64_t i = 0; i < nrow_; ++i) row_forward(i, rv, xv, nullptr, false);
    for (int64_t i = nrow_ - 1; i >= 0; --i) row_backward(i, xv, rv[i] - lower_sum(i, xv));
  }

  // The optimised SYMGS. zero_init: x is 0 on entry (MG's pre-smoother), so the forward
  // sweep reads only the L stream (the U groups multiply zeros). The forward sweep keeps
  // each row's tL = r_i - sL (sL: the lower sum; its columns j < i hold their forward values
  // until the backward sweep reaches row i), so the backward sweep reads only the U stream
  // and tL (not r) and gets the bits symgs_ref gets by recomputing sL from the whole row. With more than one thread
  // and a level schedule, rows of one level (independent by construction) run in parallel;
  // levels run in the sequential order, so every row sees the same values it would in the
  // sequential sweep.
  void symgs(const carray<double>& r, carray<double>& x, bool zero_init) const {
    symgs_raw(in(r, nrow_, "r"), out(x, ncol_, "x"), zero_init);
  }

  // the same on checked pointers (r: nrow entries, x: ncol)
  void symgs_raw(const double* rv, double* xv, bool zero_init) const {
    const int nt = omp_get_max_threads();
    // a level schedule pays only when each thread gets enough rows between two barriers
    const int64_t nl_all = level_ptr_.empty() ? 0 : int64_t(level_ptr_.size()) - 1;
    double* sl = sl_.data();
    if (nt <= 1 || nl_all == 0 || nrow_ < min_rows_per_level * nt * nl_all) {
      for (int64_t i = 0; i < nrow_; ++i) row_forward(i, rv, xv, sl, zero_init);
      for (int64_t i = nrow_ - 1; i >= 0; --i) row_backward(i, xv, sl[i]);
      return;
    }
    const int64_t nl = nl_all;
    const int32_t* lr = level_rows_.data();
    const int64_t* lp = level_ptr_.data();
#pragma omp parallel
    {
      for (int64_t l = 0; l < nl; ++l) {
#pragma omp for schedule(static)
        for (int64_t t = lp[l]; t < lp[l + 1]; ++t) row_forward(lr[t], rv, xv, sl, zero_init);
      }
      for (int64_t l = nl - 1; l >= 0; --l) {
#pragma omp for schedule(static)
        for (int64_t t = lp[l]; t < lp[l + 1]; ++t) row_backward(lr[t], xv, sl[lr[t]]);
      }
    }
  }

  // rc[k] = r[f[k]] - (A x)[f[k]]: the residual at the coarse points only (restriction by
  // injection needs nothing else), fused with the restriction.
  void residual_restrict(const carray<double>& r, const carray<double>& x,
                         const carray<int32_t>& f2c, carray<double>& rc) const {
    const int64_t nc = f2c.shape(0);
    const int32_t* f = in(f2c, -1, "f2c");
    if (!hpc::all_in_range(f, nc, nrow_)) hpc::fail("f2c: index out of range");
    residual_restrict_raw(in(r, nrow_, "r"), in(x, ncol_, "x"), f, nc, out(rc, nc, "rc"));
  }

  // the same on checked pointers (f: nc rows in [0, nrow))
  void residual_restrict_raw(const double* rv, const double* xv, const int32_t* f, int64_t nc,
                             double* o) const {
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < nc; ++k) {
      o[k] = rv[f[k]] - row_sum(f[k], xv);
    }
  }

  // The level schedule of the sequential forward sweep (the optimisation phase): level(i) =
  // 1 + the largest level among the lower entries of row i, read from the matrix's pattern.
  int64_t build_levels() {
    std::vector<int32_t> lev(nrow_, 0);
    int32_t top = 0;
    for (int64_t i = 0; i < nrow_; ++i) {
      int32_t l = 0;
      for_each_entry(i, [&](int64_t col, double) {
        if (col < i) l = std::max(l, lev[col] + 1);
      });
      lev[i] = l;
      top = std::max(top, l);
    }
    level_ptr_.assign(size_t(top) + 2, 0);
    for (int64_t i = 0; i < nrow_; ++i) ++level_ptr_[lev[i] + 1];
    for (int32_t l = 0; l <= top; ++l) level_ptr_[l + 1] += level_ptr_[l];
    level_rows_.resize(nrow_);
    std::vector<int64_t> fill(level_ptr_.begin(), level_ptr_.end() - 1);
    for (int64_t i = 0; i < nrow_; ++i) level_rows_[fill[lev[i]]++] = int32_t(i);
    return int64_t(top) + 1;
  }

  py::array_t<double> diagonal() const {
    py::array_t<double> d(nrow_);
    std::copy(diag_.begin(), diag_.end(), d.mutable_data());
    return d;
  }

  void set_diagonal(const carray<double>& d) {
    const double* dv = in(d, nrow_, "diagonal");
    for (int64_t i = 0; i < nrow_; ++i) {
      if (!(dv[i] != 0.0) || !std::isfinite(dv[i])) hpc::fail("diagonal: entries must be finite and non-zero");
    }
    for (int64_t i = 0; i < nrow_; ++i) {
      diag_[i] = dv[i];
      vL_[size_t(i) * SL + 1] = dv[i];
      vL_[size_t(i) * SL + 2] = vU_[size_t(i) * SU + 13] = 1.0 / dv[i];
    }
  }

  // The stored entries of row i (for checks): (columns, values), the row's nnz entries
  // (the diagonal, every slot that is not padding, the side entries).
  py::tuple row(int64_t i) const {
    if (i < 0 || i >= nrow_) hpc::fail("row: index out of range");
    std::vector<int32_t> cs{int32_t(i)};
    std::vector<double> vs{diag_[i]};
    for_each_entry(i, [&](int64_t col, double val) { cs.push_back(int32_t(col)); vs.push_back(val); });
    py::array_t<int32_t> co(int64_t(cs.size()));
    py::array_t<double> vo(int64_t(vs.size()));
    std::copy(cs.begin(), cs.end(), co.mutable_data());
    std::copy(vs.begin(), vs.end(), vo.mutable_data());
    return py::make_tuple(co, vo);
  }

  int64_t nnz() const {
    int64_t s = 0;
    for (int32_t n : nnz_) s += n;
    return s;
  }

  // entries kept in the side table (offsets beyond int16): ghost columns, far columns
  int64_t side_entries() const { return int64_t(side_col_.size()); }

 private:
  // f(column, value) for every stored off-diagonal entry of row i (padding skipped: an
  // off-diagonal slot with offset 0)
  template <typename F>
  void for_each_entry(int64_t i, F&& f) const {
    const int16_t* cl = &cL_[size_t(i) * SL];
    const double* vl = &vL_[size_t(i) * SL];
    const int16_t* cu = &cU_[size_t(i) * SUC];
    const double* vu = &vU_[size_t(i) * SU];
    for (int j = 0; j < SL; ++j)
      if (j != 1 && j != 2 && cl[j] != 0) f(i + cl[j], vl[j]);
    for (int j = 0; j < 13; ++j)
      if (cu[j] != 0) f(i + cu[j], vu[j]);
    const int32_t s = side_index(i);
    if (s >= 0)
      for (int64_t k = side_ptr_[s]; k < side_ptr_[s + 1]; ++k) f(side_col_[k], side_val_[k]);
  }

  inline int32_t side_index(int64_t i) const {
    int32_t s;
    std::memcpy(&s, &cL_[size_t(i) * SL + 1], 4);
    return s;
  }

  // the same from the U stream (the backward sweep reads no L offsets)
  inline int32_t side_index_u(int64_t i) const {
    int32_t s;
    std::memcpy(&s, &cU_[size_t(i) * SUC + 13], 4);
    return s;
  }

#if defined(__AVX__) && defined(__FMA__)
  // lanes += a[0:4] * x[i + c[0:4]] (four scalar loads of x: faster than the hardware gather
  // on this kind of CPU)
  static inline __m256d group(const int16_t* __restrict c, const double* __restrict a,
                              const double* __restrict x, __m128i vi, __m256d acc) {
    const __m128i d = _mm_add_epi32(
        _mm_cvtepi16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))), vi);
    const uint64_t c01 = uint64_t(_mm_cvtsi128_si64(d)), c23 = uint64_t(_mm_extract_epi64(d, 1));
    const __m128d lo = _mm_loadh_pd(_mm_load_sd(x + uint32_t(c01)), x + (c01 >> 32));
    const __m128d hi = _mm_loadh_pd(_mm_load_sd(x + uint32_t(c23)), x + (c23 >> 32));
    const __m256d xv = _mm256_insertf128_pd(_mm256_castpd128_pd256(lo), hi, 1);
    return _mm256_fmadd_pd(_mm256_loadu_pd(a), xv, acc);
  }
#endif

  // four lanes over the three groups at c / a (slots 4g + q into lane q), added
  // (l0 + l1) + (l2 + l3)
  static inline double lanes3(const int16_t* __restrict c, const double* __restrict a,
                              const double* __restrict x, int64_t i) {
#if defined(__AVX__) && defined(__FMA__)
    const __m128i vi = _mm_set1_epi32(int32_t(i));
    __m256d acc = _mm256_setzero_pd();
    for (int g = 0; g < 3; ++g) acc = group(c + 4 * g, a + 4 * g, x, vi, acc);
    const __m128d l01 = _mm256_castpd256_pd128(acc), l23 = _mm256_extractf128_pd(acc, 1);
    // [l0 + l1, l2 + l3], then their sum
    const __m128d s = _mm_add_pd(_mm_unpacklo_pd(l01, l23), _mm_unpackhi_pd(l01, l23));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
#else
    double l[4] = {0.0, 0.0, 0.0, 0.0};
    for (int j = 0; j < 12; ++j) l[j % 4] = fmadd(a[j], x[i + c[j]], l[j % 4]);
    return (l[0] + l[1]) + (l[2] + l[3]);
#endif
  }

  // hL: groups 1-3 of row i
  inline double hl(int64_t i, const double* __restrict x) const {
    return lanes3(&cL_[size_t(i) * SL + 3], &vL_[size_t(i) * SL + 3], x, i);
  }

  // side entries of table row sx added to h in order
  inline double side(int32_t sx, const double* __restrict x, double h) const {
    if (sx >= 0)
      for (int64_t k = side_ptr_[sx]; k < side_ptr_[sx + 1]; ++k)
        h = fmadd(side_val_[k], x[side_col_[k]], h);
    return h;
  }

  // hU: groups 4-6 of row i, then the side entries
  inline double hu(int64_t i, const double* __restrict x) const {
    return side(side_index_u(i),
                x, lanes3(&cU_[size_t(i) * SUC], &vU_[size_t(i) * SU], x, i));
  }

  // (A x)_i: hL + hU, then columns i - 1, i + 1 and the diagonal
  inline double row_sum(int64_t i, const double* __restrict x) const {
    const double* a = &vL_[size_t(i) * SL];
    const int16_t* c = &cL_[size_t(i) * SL];
    const double* u = &vU_[size_t(i) * SU];
    const int16_t* cu = &cU_[size_t(i) * SUC];
    const double h = hl(i, x) + hu(i, x);
    return fmadd(a[1], x[i], fmadd(u[12], x[i + cu[12]], fmadd(a[0], x[i + c[0]], h)));
  }

  // The forward sweep's update of row i; tl (if given) gets r_i - sL for the backward
  // sweep. zero_init: x is 0 from row i on (and in the ghosts), so hU is the side
  // entries alone (the U lanes would stay +0: the same bits) and column i + 1 is skipped
  // (its product is +-0, and hU is never -0); x[i] is set to 0 first, so the caller need
  // not zero the rows (see zero_for_sweep): the row's only read of a column >= i outside
  // the side table is its padding (offset 0, value 0).
  inline void row_forward(int64_t i, const double* __restrict r, double* __restrict x,
                          double* __restrict tl, bool zero_init) const {
    const double* a = &vL_[size_t(i) * SL];
    const int16_t* c = &cL_[size_t(i) * SL];
    if (zero_init) x[i] = 0.0;
    const double l = hl(i, x);
    double u;
    if (zero_init) {
      u = side(side_index(i), x, 0.0);
    } else {
      const double* v = &vU_[size_t(i) * SU];
      const int16_t* cu = &cU_[size_t(i) * SUC];
      u = fmadd(v[12], x[i + cu[12]], hu(i, x));
    }
    const double inv = a[2];
    const double q = (r[i] - (l + u)) * inv;
    const double xm = x[i + c[0]];
    x[i] = fmadd(-(a[0] * inv), xm, q);
    if (tl) tl[i] = r[i] - fmadd(a[0], xm, l);
  }

  // The backward sweep's update of row i given tL = r_i - sL (the forward sweep's)
  inline void row_backward(int64_t i, double* __restrict x, double tl) const {
    const double* v = &vU_[size_t(i) * SU];
    const int16_t* cu = &cU_[size_t(i) * SUC];
    const double inv = v[13];
    const double q = (tl - hu(i, x)) * inv;
    x[i] = fmadd(-(v[12] * inv), x[i + cu[12]], q);
  }

  // sL of row i recomputed (the reference's backward sweep reads the whole row)
  inline double lower_sum(int64_t i, const double* __restrict x) const {
    const double* a = &vL_[size_t(i) * SL];
    const int16_t* c = &cL_[size_t(i) * SL];
    return fmadd(a[0], x[i + c[0]], hl(i, x));
  }

  // The dot product is taken per block of rows just computed (still in cache), in row
  // order, so it rounds exactly as the separate dot kernel does.
  void spmv_k(const double* __restrict x, double* __restrict y, double* dot) const {
    const double d = blocked_sum(nrow_, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) y[i] = row_sum(i, x);
      double s = 0.0;
      if (dot)
        for (int64_t i = lo; i < hi; ++i) s += x[i] * y[i];
      return s;
    });
    if (dot) *dot = d;
  }

 public:
  // rows per level and thread below which SYMGS stays sequential (barrier cost); settable
  int64_t min_rows_per_level = 128;

 private:
  int64_t nrow_ = 0, ncol_ = 0;
  std::vector<int16_t> cL_, cU_;
  std::vector<double> vL_, vU_;
  std::vector<int64_t> side_ptr_;
  std::vector<int32_t> side_col_;
  std::vector<double> side_val_;
  std::vector<int32_t> nnz_;
  std::vector<double> diag_;
  // r_i - sL per row: written by the optimised forward sweep, read by its backward sweep
  // (which reads the U stream only); one SYMGS at a time per matrix
  mutable std::vector<double> sl_;
  bool side_upper_local_ = false;   // a side entry in a local column above its row
  std::vector<int64_t> level_ptr_;
  std::vector<int32_t> level_rows_;
};

// HPCG's V-cycle with the optimised kernels in one call: per level the pre-smoother from
// x = 0, the residual at the coarse points (fused with the restriction), the coarse level,
// the prolongation, the post-smoother; the coarsest level one SYMGS from zero. Only the halo
// exchanges go back to Python (a callback per exchange; none on one rank). The arrays are
// checked once here, so a cycle is a handful of pointer calls instead of some 25 Python
// calls (tens of microseconds per CG iteration).
class VCycle {
 public:
  VCycle(py::list mats, py::list f2cs, py::list xs, py::list rcs) {
    const size_t L = mats.size();
    if (L < 1 || f2cs.size() != L - 1 || xs.size() != L - 1 || rcs.size() != L - 1)
      hpc::fail("VCycle: one matrix per level, one f2c, coarse x and rc per coarsening");
    for (size_t l = 0; l < L; ++l) {
      keep_.push_back(mats[l]);
      A_.push_back(mats[l].cast<const Ell*>());
    }
    xobj_.push_back(py::none());
    x_.push_back(nullptr);
    for (size_t l = 0; l + 1 < L; ++l) {
      auto f = hpc::exact<int32_t>(f2cs[l], "f2cs");
      auto rc = hpc::exact<double>(rcs[l], "rcs");
      auto xc = hpc::exact<double>(xs[l], "xs");
      keep_.push_back(f);
      keep_.push_back(rc);
      xobj_.push_back(xc);
      const int64_t nc = A_[l + 1]->nrow();
      const int32_t* fp = in(f, nc, "f2cs[l]");
      if (!hpc::all_in_range(fp, nc, A_[l]->nrow())) hpc::fail("f2cs: index out of range");
      f2c_.push_back(fp);
      rc_.push_back(out(rc, nc, "rcs[l]"));
      x_.push_back(out(xc, A_[l + 1]->ncol(), "xs[l]"));
    }
  }

  // x = M^{-1} r on the finest level (x: ncol entries, zeroed here; the coarse levels use
  // the xs given at construction); halo(level, x) fills the ghosts of x (None: one rank);
  // post_smooth=False drops the post-smoother (the non-symmetric test hook)
  void run(const carray<double>& r, carray<double>& x, const py::object& halo, bool post_smooth) {
    const double* rv = in(r, A_[0]->nrow(), "r");
    double* xv = out(x, A_[0]->ncol(), "x");
    level(0, rv, xv, x, halo, post_smooth);
  }

 private:
  void level(size_t l, const double* r, double* x, const py::object& xobj, const py::object& halo,
             bool post_smooth) {
    const Ell& A = *A_[l];
    A.zero_for_sweep(x);       // the sweep from zero zeroes each row as it reaches it
    A.symgs_raw(r, x, true);   // from zero: its halo is zero, nothing to exchange
    if (l + 1 == A_.size()) return;
    if (!halo.is_none()) halo(l, xobj);
    const int64_t nc = A_[l + 1]->nrow();
    A.residual_restrict_raw(r, x, f2c_[l], nc, rc_[l]);
    level(l + 1, rc_[l], x_[l + 1], xobj_[l + 1], halo, post_smooth);
    const int32_t* f = f2c_[l];
    const double* xc = x_[l + 1];
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < nc; ++k) x[f[k]] += xc[k];
    if (!post_smooth) return;
    if (!halo.is_none()) halo(l, xobj);
    A.symgs_raw(r, x, false);
  }

  std::vector<py::object> keep_, xobj_;   // kept alive: matrices, f2c and rc arrays; coarse x
  std::vector<const Ell*> A_;
  std::vector<double*> x_;
  std::vector<const int32_t*> f2c_;
  std::vector<double*> rc_;
};

// HPCG's problem on the box of rank (ipx, ipy, ipz) of an npx x npy x npz process grid, each
// box nx x ny x nz: row (ix, iy, iz) couples to every point of its 3x3x3 neighbourhood inside
// the global box: 26 on the diagonal, -1 elsewhere; b = 26 - (nnz - 1) (so A 1 = b). Columns
// are "rank-major" ids, owner * nx*ny*nz + the owner's local row, so the caller can tell its
// own columns from the ghosts and ask their owners. Rows: local lexicographic order, x fastest.
py::tuple generate(int64_t nx, int64_t ny, int64_t nz, int64_t npx, int64_t npy, int64_t npz,
                   int64_t ipx, int64_t ipy, int64_t ipz) {
  if (nx < 1 || ny < 1 || nz < 1 || npx < 1 || npy < 1 || npz < 1)
    hpc::fail("generate: sizes must be positive");
  if (ipx < 0 || ipx >= npx || ipy < 0 || ipy >= npy || ipz < 0 || ipz >= npz)
    hpc::fail("generate: process coordinates outside the grid");
  const int64_t nrow = nx * ny * nz;
  if (nrow * npx * npy * npz > (int64_t(1) << 50)) hpc::fail("generate: problem too large");
  const int64_t gnx = nx * npx, gny = ny * npy, gnz = nz * npz;
  py::array_t<int64_t> cols(nrow * W);
  py::array_t<double> vals(nrow * W);
  py::array_t<int32_t> nnz(nrow);
  py::array_t<double> b(nrow);
  int64_t* C = cols.mutable_data();
  double* V = vals.mutable_data();
  int32_t* Z = nnz.mutable_data();
  double* B = b.mutable_data();
#pragma omp parallel for schedule(static)
  for (int64_t iz = 0; iz < nz; ++iz)
    for (int64_t iy = 0; iy < ny; ++iy)
      for (int64_t ix = 0; ix < nx; ++ix) {
        const int64_t i = ix + nx * (iy + ny * iz);
        const int64_t gx = ipx * nx + ix, gy = ipy * ny + iy, gz = ipz * nz + iz;
        int k = 0;
        for (int dz = -1; dz <= 1; ++dz)
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              const int64_t qx = gx + dx, qy = gy + dy, qz = gz + dz;
              if (qx < 0 || qx >= gnx || qy < 0 || qy >= gny || qz < 0 || qz >= gnz) continue;
              const int64_t ox = qx / nx, oy = qy / ny, oz = qz / nz;
              const int64_t owner = ox + npx * (oy + npy * oz);
              const int64_t loc = (qx - ox * nx) + nx * ((qy - oy * ny) + ny * (qz - oz * nz));
              C[i * W + k] = owner * nrow + loc;
              V[i * W + k] = (dx == 0 && dy == 0 && dz == 0) ? 26.0 : -1.0;
              ++k;
            }
        Z[i] = k;
        B[i] = 26.0 - double(k - 1);
        for (int j = k; j < W; ++j) { C[i * W + j] = -1; V[i * W + j] = 0.0; }
      }
  return py::make_tuple(cols, vals, nnz, b);
}

// f2c[k]: the fine local row of coarse local row k, (2x, 2y, 2z) under (x, y, z)
py::array_t<int32_t> f2c_map(int64_t nxf, int64_t nyf, int64_t nzf) {
  if (nxf < 2 || nyf < 2 || nzf < 2 || nxf % 2 || nyf % 2 || nzf % 2)
    hpc::fail("f2c: fine extents must be even and at least 2");
  const int64_t nxc = nxf / 2, nyc = nyf / 2, nzc = nzf / 2;
  py::array_t<int32_t> f(nxc * nyc * nzc);
  int32_t* F = f.mutable_data();
  for (int64_t z = 0; z < nzc; ++z)
    for (int64_t y = 0; y < nyc; ++y)
      for (int64_t x = 0; x < nxc; ++x)
        F[x + nxc * (y + nyc * z)] = int32_t(2 * x + nxf * (2 * y + nyf * 2 * z));
  return f;
}

double dot(const carray<double>& a, const carray<double>& b) {
  const int64_t n = a.shape(0);
  const double* x = in(a, -1, "a");
  const double* y = in(b, n, "b");
  return blocked_sum(n, [&](int64_t lo, int64_t hi) {
    double s = 0.0;
    for (int64_t i = lo; i < hi; ++i) s += x[i] * y[i];
    return s;
  });
}

// w = alpha x + beta y (w may be x or y)
void waxpby(double alpha, const carray<double>& x, double beta, const carray<double>& y,
            carray<double>& w) {
  const int64_t n = w.shape(0);
  const double* xv = in(x, -1, "x");
  const double* yv = in(y, -1, "y");
  if (x.shape(0) < n || y.shape(0) < n) hpc::fail("waxpby: x and y must be at least as long as w");
  double* wv = out(w, n, "w");
  // HPCG's three cases: a unit coefficient is not multiplied (so x + beta y rounds as the
  // fused updates of the optimised CG do: one fused multiply-add)
  if (alpha == 1.0) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) wv[i] = xv[i] + beta * yv[i];
  } else if (beta == 1.0) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) wv[i] = alpha * xv[i] + yv[i];
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) wv[i] = alpha * xv[i] + beta * yv[i];
  }
}

// CG's two updates and the new residual norm in one pass: x += alpha p, r -= alpha Ap,
// return r.r (local)
double cg_update(carray<double>& x, carray<double>& r, const carray<double>& p,
                 const carray<double>& Ap, double alpha) {
  const int64_t n = r.shape(0);
  double* xv = hpc::mut_ptr(x, "x");
  double* rv = out(r, n, "r");
  const double* pv = in(p, -1, "p");
  const double* av = in(Ap, n, "Ap");
  if (x.ndim() != 1 || x.shape(0) < n || p.shape(0) < n) hpc::fail("cg_update: x and p must hold the rows");
  return blocked_sum(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      xv[i] += alpha * pv[i];
      rv[i] = rv[i] - alpha * av[i];
    }
    double s = 0.0;
    for (int64_t i = lo; i < hi; ++i) s += rv[i] * rv[i];
    return s;
  });
}

// rc[k] = rf[f2c[k]] - Axf[f2c[k]]  (HPCG's reference restriction)
void restrict_ref(const carray<double>& rf, const carray<double>& Axf, const carray<int32_t>& f2c,
                  carray<double>& rc) {
  const int64_t nf = rf.shape(0), nc = f2c.shape(0);
  const double* r = in(rf, -1, "rf");
  const double* a = in(Axf, -1, "Axf");
  if (Axf.shape(0) < nf) hpc::fail("restrict: Axf shorter than rf");
  const int32_t* f = in(f2c, -1, "f2c");
  double* o = out(rc, nc, "rc");
  if (!hpc::all_in_range(f, nc, nf)) hpc::fail("f2c: index out of range");
  for (int64_t k = 0; k < nc; ++k) o[k] = r[f[k]] - a[f[k]];
}

// xf[f2c[k]] += xc[k]  (HPCG's prolongation)
void prolong(carray<double>& xf, const carray<double>& xc, const carray<int32_t>& f2c) {
  const int64_t nc = f2c.shape(0);
  const int32_t* f = in(f2c, -1, "f2c");
  const double* c = in(xc, -1, "xc");
  if (xc.shape(0) < nc) hpc::fail("prolong: xc shorter than f2c");
  double* x = hpc::mut_ptr(xf, "xf");
  if (xf.ndim() != 1 || !hpc::all_in_range(f, nc, xf.shape(0))) hpc::fail("f2c: index out of range");
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < nc; ++k) x[f[k]] += c[k];
}
}  // namespace

HPC_SUBMODULE(hpcg) {
  m.doc() = "HPCG kernels: problem generation, ELLPACK 27-point operator, SYMGS, MG transfers";
  py::class_<Ell>(m, "Ell", "One rank's rows of HPCG's matrix (split ELLPACK, int16 column offsets)")
      .def(py::init<const py::array&, const py::array&, const py::array&, int64_t>(),
           py::arg("cols"), py::arg("vals"), py::arg("nnz"), py::arg("ncol"))
      .def_property_readonly("nrow", &Ell::nrow)
      .def_property_readonly("ncol", &Ell::ncol)
      .def("spmv", &Ell::spmv, py::arg("x"), py::arg("y"), "y = A x")
      .def("spmv_dot", &Ell::spmv_dot, py::arg("x"), py::arg("y"), "y = A x; return x[:nrow].y")
      .def("spmv_rows", &Ell::spmv_rows, py::arg("x"), py::arg("y"), py::arg("rows"),
           "y[rows] = (A x)[rows]")
      .def("rows_touching_ghosts", &Ell::rows_touching_ghosts, py::arg("touching"),
           "local rows with (True) or without (False) an entry in a ghost column")
      .def("symgs_ref", &Ell::symgs_ref, py::arg("r"), py::arg("x"),
           "reference SYMGS: sequential forward and backward sweeps")
      .def("symgs", &Ell::symgs, py::arg("r"), py::arg("x"), py::arg("zero_init"),
           "optimised SYMGS (level-scheduled with threads; zero_init skips zero products)")
      .def("residual_restrict", &Ell::residual_restrict, py::arg("r"), py::arg("x"),
           py::arg("f2c"), py::arg("rc"), "rc = (r - A x)[f2c]")
      .def("build_levels", &Ell::build_levels, "level schedule of the forward sweep; returns levels")
      .def("diagonal", &Ell::diagonal)
      .def("set_diagonal", &Ell::set_diagonal, py::arg("d"))
      .def("row", &Ell::row, py::arg("i"), "(columns, values) of local row i as stored")
      .def("nnz", &Ell::nnz)
      .def("side_entries", &Ell::side_entries,
           "entries stored in the side table (column offsets beyond int16)")
      .def_readwrite("min_rows_per_level", &Ell::min_rows_per_level,
                     "rows per level and thread below which SYMGS runs sequentially");
  py::class_<VCycle>(m, "VCycle", "HPCG's V-cycle with the optimised kernels in one call")
      .def(py::init<py::list, py::list, py::list, py::list>(), py::arg("mats"), py::arg("f2cs"),
           py::arg("xs"), py::arg("rcs"))
      .def("run", &VCycle::run, py::arg("r"), py::arg("x"), py::arg("halo"),
           py::arg("post_smooth") = true,
           "x = M^-1 r; halo(level, x) fills the ghosts (None on one rank)");
  m.def("generate", &generate, py::arg("nx"), py::arg("ny"), py::arg("nz"), py::arg("npx"),
        py::arg("npy"), py::arg("npz"), py::arg("ipx"), py::arg("ipy"), py::arg("ipz"),
        "HPCG's rows on one box: (rank-major cols int64, vals, nnz int32, b)");
  m.def("f2c_map", &f2c_map, py::arg("nxf"), py::arg("nyf"), py::arg("nzf"));
  m.def("dot", &dot, py::arg("a"), py::arg("b"));
  m.def("waxpby", &waxpby, py::arg("alpha"), py::arg("x"), py::arg("beta"), py::arg("y"), py::arg("w"));
  m.def("cg_update", &cg_update, py::arg("x"), py::arg("r"), py::arg("p"), py::arg("Ap"),
        py::arg("alpha"));
  m.def("restrict_ref", &restrict_ref, py::arg("rf"), py::arg("Axf"), py::arg("f2c"), py::arg("rc"));
  m.def("prolong", &prolong, py::arg("xf"), py::arg("xc"), py::arg("f2c"));
}
