// Masked semiring SpGEMM, C<M> = A (+.x) B, split into a symbolic and a numeric phase
// (GraphBLAS GrB_mxm without the accumulator, which hpc.spgemm applies in Python).
//
// symbolic: the pattern of C, i.e. the columns j with at least one k such that A(i,k) and B(k,j)
//   are stored, kept where the structural mask M has (i,j) (or, complemented, does not). The
//   pattern depends on the operands' structure only, so a plan made once serves every product
//   with the same patterns and new values (KokkosKernels' symbolic/numeric split).
// numeric: the values of a known pattern under one of six semirings, in one of five types.
// mask_count: the number of (i,j) of A B's pattern inside M, each weighted by its count of k
//   (plus_pair reduced to a scalar): triangle counting without forming C.
//
// Rows are independent: OpenMP dynamic schedule over row chunks, per-thread dense marker arrays
// over the column space (stamped by row, never cleared). With a plain mask a row only looks at
// the columns its mask row lists, and B's rows (ascending columns) are cut at the mask row's
// last column, so a sparse mask (triangle counting's L) prunes most of the products.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <memory>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/owned.hpp"
#include "hpc/registry.hpp"
#include "hpc/thread_model.hpp"

namespace {
using std::int64_t;

enum Semiring : int { kPlusTimes = 0, kPlusPair = 1, kMinPlus = 2, kMaxPlus = 3, kAnyPair = 4,
                      kLorLand = 5 };

template <typename I>
struct Pat {  // a CSR pattern (values separately)
  const I* ptr;
  const I* idx;
  int64_t nrows, ncols;
};

template <typename I>
Pat<I> check_pattern(const py::array& ptr_, const py::array& idx_, int64_t nrows, int64_t ncols,
                     const char* what, std::vector<py::object>& keep) {
  auto ptr = hpc::exact<I>(ptr_, what);
  auto idx = hpc::exact<I>(idx_, what);
  keep.push_back(ptr);
  keep.push_back(idx);
  hpc::require_1d(ptr, nrows + 1, what);
  hpc::require_1d(idx, -1, what);
  const I* P = ptr.data();
  if (P[0] != 0) hpc::fail(std::string(what) + ": indptr[0] must be 0");
  if (!hpc::non_decreasing(P, nrows)) hpc::fail(std::string(what) + ": indptr is not non-decreasing");
  if (int64_t(P[nrows]) > int64_t(idx.shape(0)))
    hpc::fail(std::string(what) + ": indptr[-1] exceeds len(indices)");
  if (!hpc::all_in_range(idx.data(), int64_t(P[nrows]), ncols))
    hpc::fail(std::string(what) + ": column index out of range");
  return Pat<I>{P, idx.data(), nrows, ncols};
}

template <typename T>
const T* check_values(const py::array& v_, int64_t nnz, const char* what,
                      std::vector<py::object>& keep) {
  auto v = hpc::exact<T>(v_, what);
  hpc::require_1d(v, -1, what);
  if (int64_t(v.shape(0)) < nnz) hpc::fail(std::string(what) + ": data shorter than nnz");
  keep.push_back(v);
  return v.data();
}

// Marks row i of the mask in `mark` (stamp i); returns the largest masked column (or -1).
template <typename I>
inline int64_t mark_mask(const Pat<I>& M, int64_t i, std::vector<int64_t>& mark) {
  const I b = M.ptr[i], e = M.ptr[i + 1];
  for (I q = b; q < e; ++q) mark[M.idx[q]] = i;
  return e > b ? int64_t(M.idx[e - 1]) : -1;
}

// ------------------------------------------------------------------------------- symbolic
// Visits row i's accepted columns (in product order, each once) and returns their count;
// `emit(j)` is called for each when non-null. mode: 0 no mask, 1 mask, 2 complemented mask.
template <typename I, typename F>
inline int64_t row_pattern(const Pat<I>& A, const Pat<I>& B, const Pat<I>* M, int mode,
                           int64_t i, std::vector<int64_t>& seen, std::vector<int64_t>& mmark,
                           F&& emit) {
  int64_t cut = std::numeric_limits<int64_t>::max();
  if (mode != 0) {
    const int64_t last = mark_mask(*M, i, mmark);
    if (mode == 1) {
      if (last < 0) return 0;
      cut = last;
    }
  }
  int64_t cnt = 0;
  for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
    const int64_t k = A.idx[p];
    for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
      const int64_t j = B.idx[q];
      if (j > cut) break;  // B's rows are ascending: nothing further is masked in
      if (mode == 1 && mmark[j] != i) continue;
      if (mode == 2 && mmark[j] == i) continue;
      if (seen[j] == i) continue;
      seen[j] = i;
      ++cnt;
      emit(j);
    }
  }
  return cnt;
}

template <typename I>
py::tuple symbolic(py::array ap, py::array ai, int64_t n, int64_t k, py::array bp, py::array bi,
                   int64_t m, py::object mp, py::object mi, bool complement, int threads) {
  if (n < 0 || k < 0 || m < 0) hpc::fail("symbolic: negative shape");
  if (threads < 1) hpc::fail("symbolic: threads must be >= 1");
  std::vector<py::object> keep;
  const auto A = check_pattern<I>(ap, ai, n, k, "symbolic A", keep);
  const auto B = check_pattern<I>(bp, bi, k, m, "symbolic B", keep);
  Pat<I> Mk{};
  int mode = 0;
  if (!mp.is_none()) {
    Mk = check_pattern<I>(mp.cast<py::array>(), mi.cast<py::array>(), n, m, "symbolic mask",
                          keep);
    mode = complement ? 2 : 1;
  }
  const Pat<I>* M = mode ? &Mk : nullptr;
  std::vector<int64_t> cnt(n + 1, 0);
  {
    py::gil_scoped_release nogil;
#pragma omp parallel num_threads(threads)
    {
      std::vector<int64_t> seen(m, -1), mmark(mode ? m : 0, -1);
#pragma omp for schedule(dynamic, 256)
      for (int64_t i = 0; i < n; ++i)
        cnt[i + 1] = row_pattern(A, B, M, mode, i, seen, mmark, [](int64_t) {});
    }
  }
  for (int64_t i = 0; i < n; ++i) cnt[i + 1] += cnt[i];
  const int64_t nnz = cnt[n];
  if (nnz > int64_t(std::numeric_limits<I>::max()))
    hpc::fail("symbolic: the product has more entries than 32-bit indices hold; use int64");
  hpc::carray<I> indptr(n + 1), indices(nnz);
  I* ip = indptr.mutable_data();
  I* ix = indices.mutable_data();
  for (int64_t i = 0; i <= n; ++i) ip[i] = static_cast<I>(cnt[i]);
  {
    py::gil_scoped_release nogil;
#pragma omp parallel num_threads(threads)
    {
      std::vector<int64_t> seen(m, -1), mmark(mode ? m : 0, -1);
#pragma omp for schedule(dynamic, 256)
      for (int64_t i = 0; i < n; ++i) {
        I* out = ix + cnt[i];
        const int64_t len = cnt[i + 1] - cnt[i];
        if (len == 0) continue;
        if (mode == 1) {
          // the mask row is sorted: emit its columns the product reached, in its order
          row_pattern(A, B, M, mode, i, seen, mmark, [](int64_t) {});
          int64_t o = 0;
          for (I q = Mk.ptr[i]; q < Mk.ptr[i + 1]; ++q)
            if (seen[Mk.idx[q]] == i) out[o++] = Mk.idx[q];
        } else {
          int64_t o = 0;
          row_pattern(A, B, M, mode, i, seen, mmark,
                      [&](int64_t j) { out[o++] = static_cast<I>(j); });
          std::sort(out, out + len);
        }
      }
    }
  }
  return py::make_tuple(indptr, indices);
}

// -------------------------------------------------------------------------------- numeric
template <typename T>
struct Ops {
  static T zero_min() {  // identity of min: +inf, or the largest value
    if constexpr (std::numeric_limits<T>::has_infinity) return std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::max();
  }
  static T zero_max() {
    if constexpr (std::numeric_limits<T>::has_infinity) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
};

// One semiring's identity, multiply and add; T = bool gives lor/land for plus/times and
// land/lor for min/max, as NumPy's bool arithmetic does.
template <typename T, int S>
struct SR {
  static T id() {
    if constexpr (S == kMinPlus) return Ops<T>::zero_min();
    else if constexpr (S == kMaxPlus) return Ops<T>::zero_max();
    else return T(0);
  }
  static T mul(T a, T b) {
    if constexpr (S == kPlusTimes) return static_cast<T>(a * b);
    else if constexpr (S == kMinPlus || S == kMaxPlus) return static_cast<T>(a + b);
    else if constexpr (S == kLorLand) return static_cast<T>((a != T(0)) && (b != T(0)));
    else return T(1);  // pair
  }
  static T add(T x, T y) {
    if constexpr (S == kPlusTimes || S == kPlusPair) return static_cast<T>(x + y);
    else if constexpr (S == kMinPlus) return std::min(x, y);
    else if constexpr (S == kMaxPlus) return std::max(x, y);
    else if constexpr (S == kLorLand) return static_cast<T>((x != T(0)) || (y != T(0)));
    else return y;  // any
  }
};

// A complete pattern (made without a mask) holds the column of every product of its row: the
// numeric phase then needs no lookup at all, only the symbolic result's columns. Each product
// accumulates straight into a dense row (initialised to the semiring's identity), and the row's
// pattern gathers and resets it: the work of the full product's numeric phase, with none of its
// symbolic work (no hashing, no bitmap, no sort).
template <typename I, typename T, int S>
void numeric_rows_complete(const Pat<I>& A, const T* av, const Pat<I>& B, const T* bv,
                           const I* cp, const I* ci, T* cv, int threads) {
#pragma omp parallel num_threads(threads)
  {
    std::unique_ptr<T[]> acc(new T[std::max<int64_t>(B.ncols, 1)]);  // not vector<bool>
    T* const w = acc.get();
    std::fill(w, w + B.ncols, SR<T, S>::id());
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < A.nrows; ++i) {
      for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
        const int64_t k = A.idx[p];
        const T a = av[p];
        for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
          T& c = w[B.idx[q]];
          c = SR<T, S>::add(c, SR<T, S>::mul(a, bv[q]));
        }
      }
      for (I q = cp[i]; q < cp[i + 1]; ++q) {
        cv[q] = w[ci[q]];
        w[ci[q]] = SR<T, S>::id();
      }
    }
  }
}

template <typename I, typename T, int S>
void numeric_rows(const Pat<I>& A, const T* av, const Pat<I>& B, const T* bv, const I* cp,
                  const I* ci, T* cv, int threads, bool complete) {
  if (complete) return numeric_rows_complete<I, T, S>(A, av, B, bv, cp, ci, cv, threads);
#pragma omp parallel num_threads(threads)
  {
    // the row stamp and the entry's position side by side: one cache line per column touched
    struct Slot {
      int64_t row, pos;
    };
    std::vector<Slot> slot(B.ncols, Slot{-1, 0});
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < A.nrows; ++i) {
      const I cb = cp[i], ce = cp[i + 1];
      if (cb == ce) continue;
      for (I q = cb; q < ce; ++q) {
        slot[ci[q]] = Slot{i, int64_t(q)};
        cv[q] = SR<T, S>::id();
      }
      const int64_t cut = ci[ce - 1];  // the pattern is sorted: its last column bounds the row
      for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
        const int64_t k = A.idx[p];
        const T a = av[p];
        for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
          const int64_t j = B.idx[q];
          if (j > cut) break;
          const Slot sl = slot[j];
          if (sl.row != i) continue;
          T& c = cv[sl.pos];
          c = SR<T, S>::add(c, SR<T, S>::mul(a, bv[q]));
        }
      }
    }
  }
}

template <typename I, typename T>
hpc::carray<T> numeric(int semiring, py::array ap, py::array ai, py::array av, int64_t n,
                       int64_t k, py::array bp, py::array bi, py::array bv, int64_t m,
                       py::array cp, py::array ci, int threads, bool complete,
                       py::object out_) {
  if (n < 0 || k < 0 || m < 0) hpc::fail("numeric: negative shape");
  if (threads < 1) hpc::fail("numeric: threads must be >= 1");
  if (semiring < kPlusTimes || semiring > kLorLand) hpc::fail("numeric: unknown semiring");
  std::vector<py::object> keep;
  const auto A = check_pattern<I>(ap, ai, n, k, "numeric A", keep);
  const auto B = check_pattern<I>(bp, bi, k, m, "numeric B", keep);
  const auto C = check_pattern<I>(cp, ci, n, m, "numeric C", keep);
  if (!complete)  // the masked rows stop at the pattern's last column: ascending per row
    for (int64_t i = 0; i < n; ++i)
      for (I q = C.ptr[i] + 1; q < C.ptr[i + 1]; ++q)
        if (C.idx[q] <= C.idx[q - 1]) hpc::fail("numeric C: columns not strictly ascending");
  const T* a = check_values<T>(av, A.ptr[n], "numeric A data", keep);
  const T* b = check_values<T>(bv, B.ptr[k], "numeric B data", keep);
  const int64_t nnz = int64_t(C.ptr[n]);
  T* cv = nullptr;
  hpc::carray<T> out;
  if (!out_.is_none()) {  // the caller's values array (PETSc's MAT_REUSE_MATRIX): no allocation
    out = hpc::exact<T>(out_.cast<py::array>(), "numeric out");
    hpc::require_1d(out, nnz, "numeric out");
    cv = hpc::mut_ptr(out, "numeric out");
  } else {
    // malloc'd and handed to NumPy (hpc/owned.hpp: a reuse's next output has its pages)
    cv = static_cast<T*>(std::malloc(sizeof(T) * std::max<int64_t>(nnz, 1)));
    if (!cv) throw std::bad_alloc();
    out = hpc::owned(cv, cv, nnz);
  }
  {
    py::gil_scoped_release nogil;
    switch (semiring) {
      case kPlusTimes: numeric_rows<I, T, kPlusTimes>(A, a, B, b, C.ptr, C.idx, cv, threads, complete); break;
      case kPlusPair: numeric_rows<I, T, kPlusPair>(A, a, B, b, C.ptr, C.idx, cv, threads, complete); break;
      case kMinPlus: numeric_rows<I, T, kMinPlus>(A, a, B, b, C.ptr, C.idx, cv, threads, complete); break;
      case kMaxPlus: numeric_rows<I, T, kMaxPlus>(A, a, B, b, C.ptr, C.idx, cv, threads, complete); break;
      case kAnyPair: numeric_rows<I, T, kAnyPair>(A, a, B, b, C.ptr, C.idx, cv, threads, complete); break;
      default: numeric_rows<I, T, kLorLand>(A, a, B, b, C.ptr, C.idx, cv, threads, complete); break;
    }
  }
  return out;
}

// ----------------------------------------------------------------------------- mask_count
template <typename I>
int64_t mask_count(py::array ap, py::array ai, int64_t n, int64_t k, py::array bp, py::array bi,
                   int64_t m, py::array mp, py::array mi, int threads) {
  if (n < 0 || k < 0 || m < 0) hpc::fail("mask_count: negative shape");
  if (threads < 1) hpc::fail("mask_count: threads must be >= 1");
  std::vector<py::object> keep;
  const auto A = check_pattern<I>(ap, ai, n, k, "mask_count A", keep);
  const auto B = check_pattern<I>(bp, bi, k, m, "mask_count B", keep);
  const auto M = check_pattern<I>(mp, mi, n, m, "mask_count mask", keep);
  int64_t total = 0;
  py::gil_scoped_release nogil;
  // Threads from the measured model: a small graph's count (~1 ms) on two threads of a busy
  // machine waited ~10 ms for the second one. Work estimate: nnz(A) x B's mean row length.
  static hpc::ThreadModel model;
  const double est = double(A.ptr[n]) * double(B.ptr[k]) / double(std::max<int64_t>(k, 1));
  // Repeated counts of one graph compare thread counts on that graph (hpc/thread_model.hpp).
  const uint64_t key = hpc::ThreadModel::key_of({n, k, m, A.ptr[n], B.ptr[k], M.ptr[n]});
  const int T = model.choose(est, threads, key);
  const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(T) reduction(+ : total)
  {
    std::vector<int64_t> mark(m, -1);
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t cut = mark_mask(M, i, mark);
      if (cut < 0) continue;
      int64_t c = 0;
      for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
        const int64_t kk = A.idx[p];
        for (I q = B.ptr[kk]; q < B.ptr[kk + 1]; ++q) {
          const int64_t j = B.idx[q];
          if (j > cut) break;
          c += mark[j] == i;
        }
      }
      total += c;
    }
  }
  model.record(omp_get_wtime() - t0, T, std::max<int64_t>(1, int64_t(est)), key);
  return total;
}

template <typename I, typename T>
void def_numeric(py::module_& m, const std::string& suffix) {
  m.def(("numeric_" + suffix).c_str(), &numeric<I, T>,
        "numeric(semiring, a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, "
        "c_indptr, c_indices, threads) -> c_data: the values of C's known pattern (from "
        "symbolic) under semiring 0 plus_times, 1 plus_pair, 2 min_plus, 3 max_plus, "
        "4 any_pair, 5 lor_land. complete: the pattern is the whole product's (no mask), so "
        "every product accumulates without a lookup; with a pattern that misses a product's "
        "column that product is dropped only when complete is false. out: a C-contiguous "
        "array of C's type and length nnz(C) written in place and returned (no allocation).",
        py::arg("semiring"), py::arg("a_indptr"), py::arg("a_indices"), py::arg("a_data"),
        py::arg("n"), py::arg("k"), py::arg("b_indptr"), py::arg("b_indices"),
        py::arg("b_data"), py::arg("m"), py::arg("c_indptr"), py::arg("c_indices"),
        py::arg("threads"), py::arg("complete") = false, py::arg("out") = py::none());
}

template <typename I>
void def_index(py::module_& m, const std::string& ix) {
  m.def(("symbolic_" + ix).c_str(), &symbolic<I>,
        "symbolic(a_indptr, a_indices, n, k, b_indptr, b_indices, m, mask_indptr|None, "
        "mask_indices|None, complement, threads) -> (indptr, indices): the pattern of C<M> = "
        "A B, columns ascending per row.",
        py::arg("a_indptr"), py::arg("a_indices"), py::arg("n"), py::arg("k"),
        py::arg("b_indptr"), py::arg("b_indices"), py::arg("m"), py::arg("mask_indptr"),
        py::arg("mask_indices"), py::arg("complement"), py::arg("threads"));
  m.def(("mask_count_" + ix).c_str(), &mask_count<I>,
        "mask_count(a_indptr, a_indices, n, k, b_indptr, b_indices, m, mask_indptr, "
        "mask_indices, threads) -> int: sum of C<M> = A B over the plus_pair semiring.",
        py::arg("a_indptr"), py::arg("a_indices"), py::arg("n"), py::arg("k"),
        py::arg("b_indptr"), py::arg("b_indices"), py::arg("m"), py::arg("mask_indptr"),
        py::arg("mask_indices"), py::arg("threads"));
  def_numeric<I, bool>(m, ix + "_bool");
  def_numeric<I, int32_t>(m, ix + "_int32");
  def_numeric<I, int64_t>(m, ix + "_int64");
  def_numeric<I, float>(m, ix + "_float32");
  def_numeric<I, double>(m, ix + "_float64");
}
}  // namespace

HPC_SUBMODULE(spgemm_semiring) {
  m.doc() = "Masked semiring SpGEMM: symbolic pattern, numeric values, masked counts (OpenMP)";
  def_index<int32_t>(m, "i32");
  def_index<int64_t>(m, "i64");
}
