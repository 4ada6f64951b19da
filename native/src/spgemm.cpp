// SMASH-style hash SpGEMM (C = A * B, CSR, row-wise Gustavson) with OpenMP.
//
// Two phases: symbolic sizes every output row exactly, numeric fills it. Rows are binned by their
// count of intermediate products ("products" = sum over A(i,k) of nnz(B(k,:))), and cut into
// chunks of equal work by a prefix sum of products (numeric: products + output entries), 8 per
// thread, taken dynamically, so each thread gets the same work, not the same row count. Per bin:
//   empty   no products;
//   copy    A's row has one entry: C(i,:) = a * B(k,:) (no accumulator, already sorted);
//   hash    per-thread power-of-two table with linear probing, sized to 2 x the row's products;
//   dense   per-thread dense accumulator over all columns (values + a bitmap of the pattern,
//           so a bit scan emits the columns already sorted), for every row of some weight
//           when it fits in cache, else for rows whose table would be as large as the column
//           space; its symbolic phase ORs B's rows packed 64 columns to a word where that
//           saves work (see Packed);
//   shared  rows heavier than half a thread's share of all products (SMASH): every thread
//           merges its slice of the row into ONE shared table with atomic compare-and-swap.
// Output columns are ascending in every row. Products whose temporary (an index per product)
// fits in this core's share of the LLC take a one-parallel-region variant of the same two
// phases (see "small products" below), whose per-row accumulator follows a cost model.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

#if defined(__AVX512VBMI2__)
#include <immintrin.h>
#endif

#include "hpc/bitmap_emit.hpp"
#include "hpc/caches.hpp"
#include "hpc/checks.hpp"
#include "hpc/owned.hpp"
#include "hpc/registry.hpp"
#include "hpc/thread_model.hpp"

namespace {
using hpc::carray;
using hpc::kSlack;
using std::int64_t;

// kSparse and kEsc are chosen by the one-region path's cost model only (see choose_bin).
enum Bin : int8_t { kEmpty = 0, kCopy = 1, kHash = 2, kDense = 3, kShared = 4, kSparse = 5, kEsc = 6 };
constexpr int kNumBins = 7;

using hpc::caches;

// The dense accumulator (8 bytes per column of B) is used where it fits in this core's L2: its
// random accesses then cost an L2 hit at worst, against a hash probe into an L1-sized table.
inline bool dense_fits(int64_t ncols) { return ncols * int64_t(sizeof(double)) <= caches().l2; }

inline int64_t next_pow2(int64_t x) {
  int64_t p = 8;
  while (p < x) p <<= 1;
  return p;
}

// Fibonacci hashing: the top bits of col * 2^64/phi spread consecutive columns apart.
inline int64_t hash_slot(int64_t col, int shift) {
  return static_cast<int64_t>((static_cast<uint64_t>(col) * 0x9E3779B97F4A7C15ull) >> shift);
}

inline int log2_of(int64_t pow2) {
  int s = 0;
  while ((int64_t(1) << s) < pow2) ++s;
  return s;
}

template <typename I>
struct Csr {
  const I* ptr;
  const I* idx;
  const double* val;  // nullptr: pattern (all ones)
  int64_t nrows, ncols;
  double v(int64_t p) const { return val ? val[p] : 1.0; }
};

// B's pattern with each row's columns packed into 64-column words: (c >> 6, bit mask) pairs.
// The symbolic phase of a dense-accumulator row ORs whole words into its bitmap, and the numeric
// phase marks the row's pattern the same way (KokkosKernels' compressed symbolic): on matrices
// whose rows have clustered columns (FEM meshes: ~6-10 columns per word) that is several times
// fewer operations than one bit per product. Entries of one row need not be sorted: a word that
// recurs is just ORed twice.
template <typename I>
struct Packed {
  std::vector<int64_t> ptr;  // row k's words are [ptr[k], ptr[k+1])
  std::vector<I> word;
  std::vector<uint64_t> mask;
  bool used = false;
  int64_t runs = 0;  // B's entries in rows whose columns are one run (see fused_numeric_row)

  // Pass 1: words per row (kept in ptr as an exclusive prefix sum); returns the total.
  int64_t count(const Csr<I>& B, int threads) {
    const int64_t n = B.nrows;
    ptr.assign(n + 1, 0);
    int64_t run = 0;
#pragma omp parallel for schedule(static) reduction(+ : run) num_threads(threads)
    for (int64_t k = 0; k < n; ++k) {
      int64_t w = 0;
      const I qb = B.ptr[k], qe = B.ptr[k + 1];
      for (I q = qb; q < qe; ++q)
        w += q == qb || (B.idx[q] >> 6) != (B.idx[q - 1] >> 6);
      ptr[k + 1] = w;
      run += qe > qb && int64_t(B.idx[qe - 1]) - int64_t(B.idx[qb]) == qe - qb - 1 ? qe - qb : 0;
    }
    runs = run;
    for (int64_t k = 0; k < n; ++k) ptr[k + 1] += ptr[k];
    return ptr[n];
  }
  // Pass 2: the words and masks.
  void fill(const Csr<I>& B, int threads) {
    const int64_t n = B.nrows;
    word.resize(ptr[n]);
    mask.resize(ptr[n]);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t k = 0; k < n; ++k) {
      int64_t j = ptr[k] - 1;
      for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
        const I c = B.idx[q];
        if (q == B.ptr[k] || (c >> 6) != (B.idx[q - 1] >> 6)) {
          ++j;
          word[j] = c >> 6;
          mask[j] = 0;
        }
        mask[j] |= uint64_t(1) << (c & 63);
      }
    }
    used = true;
  }
  // Words one row of A touches: sum over its entries of the packed lengths of B's rows.
  int64_t row_words(const Csr<I>& A, int64_t i) const {
    int64_t s = 0;
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) s += ptr[A.idx[p] + 1] - ptr[A.idx[p]];
    return s;
  }
};

struct Plan {
  std::vector<int64_t> prod;        // products per row of C
  std::vector<int8_t> bin;          // Bin per row
  std::vector<int64_t> chunks;      // chunk c = rows [chunks[c], chunks[c+1]), equal products
  std::vector<int64_t> shared_rows; // rows handled by all threads together
  int64_t total = 0;
  int64_t bins[kNumBins] = {};
  int threads = 1;
};

// First row of part u of `parts` parts of equal weight, by the prefix sum `pre` (pre[i] = weight
// of rows < i, pre.size() = rows + 1): the first row whose weight before it reaches u / parts of
// the total. Non-decreasing in u; part `parts` begins at the end.
int64_t equal_cut(const std::vector<int64_t>& pre, int64_t parts, int64_t u) {
  const int64_t n = int64_t(pre.size()) - 1;
  if (u >= parts) return n;
  const int64_t total = pre[n];
  const int64_t target = total / parts * u + total % parts * u / parts;  // no overflow
  return std::lower_bound(pre.begin(), pre.end(), target) - pre.begin();
}

// Cuts rows into chunks of equal weight by the prefix sum `pre`: 8 chunks per thread, taken
// dynamically, so a thread that is slowed (or a row heavier than its products say) does not hold
// the others at the barrier; one chunk when single-threaded.
std::vector<int64_t> equal_chunks(const std::vector<int64_t>& pre, int threads) {
  const int64_t n = int64_t(pre.size()) - 1;
  const int64_t nc = threads > 1 ? std::min<int64_t>(8 * threads, std::max<int64_t>(n, 1)) : 1;
  std::vector<int64_t> c(nc + 1);
  for (int64_t t = 0; t <= nc; ++t) c[t] = equal_cut(pre, nc, t);
  return c;
}

template <typename I>
Plan make_plan(const Csr<I>& A, const Csr<I>& B, int threads, int64_t shared_at,
               int64_t dense_at) {
  Plan P;
  const int64_t n = A.nrows;
  P.prod.assign(n, 0);
  P.bin.assign(n, kEmpty);
  int64_t total = 0;
  const int pt = A.ptr[n] > (1 << 16) ? threads : 1;  // waking threads costs more than tiny loops
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(pt)
  for (int64_t i = 0; i < n; ++i) {
    int64_t s = 0;
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      s += B.ptr[k + 1] - B.ptr[k];
    }
    P.prod[i] = s;
    total += s;
  }
  P.total = total;
  // Small products run on fewer threads (about 8k products each at least), unless a test
  // forces the bins; below that a fork/join costs more than the work it shares.
  if (shared_at <= 0 && dense_at <= 0)
    threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, total >> 13)));
  P.threads = threads;
  // A row is "shared" when it alone exceeds half a thread's share (and is large enough that
  // synchronising threads pays off).
  int64_t shared_min =
      threads > 1 ? std::max<int64_t>(int64_t(1) << 15, total / (2 * threads)) : INT64_MAX;
  // Dense accumulator: for any row of some weight when it fits in a per-thread cache budget
  // (random access into a cached array beats hashing + compaction + sorting), else only for
  // rows whose hash table would be about as large as the column space. A dense row also scans
  // ncols / 64 bitmap words: rows with fewer products than an eighth of that hash instead.
  int64_t dense_min = dense_fits(B.ncols) ? std::max<int64_t>(2, B.ncols / 512)
                                 : std::max<int64_t>(B.ncols / 4, 1);
  if (shared_at > 0) shared_min = shared_at;  // overrides (tests force every bin)
  if (dense_at > 0) dense_min = dense_at;
  // Weights for the thread split: products plus one per row (every row costs something).
  std::vector<int64_t> pre(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = P.prod[i];
    int8_t b;
    if (s == 0) b = kEmpty;
    else if (A.ptr[i + 1] - A.ptr[i] == 1) b = kCopy;
    else if (s >= shared_min) b = kShared;
    else if (s >= dense_min) b = kDense;
    else b = kHash;
    P.bin[i] = b;
    P.bins[b]++;
    if (b == kShared) P.shared_rows.push_back(i);
    pre[i + 1] = pre[i] + (b == kShared ? 1 : s + 1);
  }
  P.chunks = equal_chunks(pre, threads);
  return P;
}

// Per-thread scratch: hash table (keys + values) and a lazily allocated dense accumulator.
// Keys and stamps use the index type: int32 halves the table's cache footprint.
template <typename I>
struct Scratch {
  std::vector<I> keys;
  std::vector<double> vals;
  std::vector<uint64_t> bits;  // dense: bitmap of the columns present in the row
  std::vector<double> dense;
  int64_t words = 0;
  void table(int64_t size, bool values) {
    if (int64_t(keys.size()) < size) keys.resize(size);
    if (values && int64_t(vals.size()) < size) vals.resize(size);
  }
  void make_dense(int64_t ncols) {
    if (words == 0 && ncols > 0) {
      words = (ncols + 63) / 64;
      bits.assign(words, 0);
      dense.resize(ncols);
    }
  }
};

// ---------------------------------------------------------------- per-thread row kernels
template <typename I>
int64_t hash_count(const Csr<I>& A, const Csr<I>& B, int64_t i, int64_t prod, Scratch<I>& S) {
  const int64_t size = next_pow2(2 * std::min(prod, B.ncols));
  const int64_t mask = size - 1;
  const int shift = 64 - log2_of(size);
  S.table(size, false);
  I* keys = S.keys.data();
  std::fill(keys, keys + size, I(-1));
  int64_t nnz = 0;
  for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
    const int64_t k = A.idx[p];
    for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
      const I c = B.idx[q];
      int64_t h = hash_slot(c, shift);
      while (true) {
        if (keys[h] == c) break;
        if (keys[h] < 0) {
          keys[h] = c;
          ++nnz;
          break;
        }
        h = (h + 1) & mask;
      }
    }
  }
  return nnz;
}

template <typename I>
void sort_row(I* cols, int64_t n) {
  if (n < 32) {  // insertion sort: short rows dominate sparse products
    for (int64_t a = 1; a < n; ++a) {
      const I x = cols[a];
      int64_t b = a - 1;
      while (b >= 0 && cols[b] > x) {
        cols[b + 1] = cols[b];
        --b;
      }
      cols[b + 1] = x;
    }
  } else {
    std::sort(cols, cols + n);
  }
}

template <typename I>
void hash_fill(const Csr<I>& A, const Csr<I>& B, int64_t i, Scratch<I>& S, I* oc, double* ov,
               int64_t nnz) {
  // The symbolic phase knows the row's size exactly: a table of 2 x nnz, not 2 x products.
  const int64_t size = next_pow2(2 * nnz);
  const int64_t mask = size - 1;
  const int shift = 64 - log2_of(size);
  S.table(size, true);
  I* keys = S.keys.data();
  double* vals = S.vals.data();
  std::fill(keys, keys + size, I(-1));
  for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
    const int64_t k = A.idx[p];
    const double a = A.v(p);
    for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
      const I c = B.idx[q];
      const double x = a * B.v(q);
      int64_t h = hash_slot(c, shift);
      while (true) {
        if (keys[h] == c) {
          vals[h] += x;
          break;
        }
        if (keys[h] < 0) {
          keys[h] = c;
          vals[h] = x;
          break;
        }
        h = (h + 1) & mask;
      }
    }
  }
  // Compact the columns, sort them, then look each value up again (cheaper than sorting pairs).
  int64_t n = 0;
  for (int64_t h = 0; h < size && n < nnz; ++h)
    if (keys[h] >= 0) oc[n++] = keys[h];
  sort_row(oc, nnz);
  for (int64_t j = 0; j < nnz; ++j) {
    const I c = oc[j];
    int64_t h = hash_slot(c, shift);
    while (keys[h] != c) h = (h + 1) & mask;
    ov[j] = vals[h];
  }
}

// Dense accumulator: a bitmap of the columns present (ncols bits: L1/L2 resident) and a value
// array. Extraction walks the bitmap's set bits, so the columns come out sorted with no sort,
// and clears the bitmap as it goes.
template <typename I>
int64_t dense_count(const Csr<I>& A, const Csr<I>& B, const Packed<I>& W, int64_t i,
                    Scratch<I>& S) {
  S.make_dense(B.ncols);
  uint64_t* bits = S.bits.data();
  int64_t nnz = 0;
  if (W.used) {
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      for (int64_t q = W.ptr[k]; q < W.ptr[k + 1]; ++q) bits[W.word[q]] |= W.mask[q];
    }
  } else {
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
        const uint64_t c = static_cast<uint64_t>(B.idx[q]);
        bits[c >> 6] |= uint64_t(1) << (c & 63);
      }
    }
  }
  // One popcount pass over the bitmap (ncols / 64 words) instead of a test per product.
  for (int64_t w = 0; w < S.words; ++w) {
    nnz += __builtin_popcountll(bits[w]);
    bits[w] = 0;
  }
  return nnz;
}

template <typename I>
void dense_fill(const Csr<I>& A, const Csr<I>& B, const Packed<I>& W, int64_t i, Scratch<I>& S,
                I* oc, double* ov, int64_t nnz, bool axpy) {
  S.make_dense(B.ncols);
  uint64_t* bits = S.bits.data();
  double* __restrict acc = S.dense.data();
  if (W.used) {
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      const double a = A.v(p);
      const I qb = B.ptr[k], qe = B.ptr[k + 1];
      if (axpy && qe > qb && int64_t(B.idx[qe - 1]) - int64_t(B.idx[qb]) == qe - qb - 1) {
        double* __restrict d = acc + B.idx[qb];  // one run of columns (see fused_numeric_row)
        const double* v = B.val + qb;
        for (int64_t t = 0; t < qe - qb; ++t) d[t] += a * v[t];
      } else {
        for (I q = qb; q < qe; ++q) acc[B.idx[q]] += a * B.v(q);
      }
      for (int64_t q = W.ptr[k]; q < W.ptr[k + 1]; ++q) bits[W.word[q]] |= W.mask[q];
    }
  } else {
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      const double a = A.v(p);
      for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
        // No branch on "first time seen": acc is all zeros between rows, so add always.
        const uint64_t c = static_cast<uint64_t>(B.idx[q]);
        acc[c] += a * B.v(q);
        bits[c >> 6] |= uint64_t(1) << (c & 63);
      }
    }
  }
  int64_t j = 0;
  for (int64_t wi = 0; wi < S.words && j < nnz; ++wi) {
    uint64_t w = bits[wi];
    bits[wi] = 0;
    while (w) {
      const int64_t c = (wi << 6) + __builtin_ctzll(w);
      w &= w - 1;
      oc[j] = static_cast<I>(c);
      ov[j++] = acc[c];
      acc[c] = 0.0;  // ready for the next row
    }
  }
}

// ---------------------------------------------------------------- shared (SMASH) rows
// All threads insert their slice of one heavy row into one table with CAS on the key; the
// numeric phase adds values with a CAS loop on the value's bits.
inline bool cas64(int64_t* p, int64_t expected, int64_t desired) {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED);
}

inline void atomic_add_f64(double* p, double x) {
  int64_t* bits = reinterpret_cast<int64_t*>(p);
  int64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED);
  while (true) {
    double cur;
    std::memcpy(&cur, &old, sizeof cur);
    const double nxt = cur + x;
    int64_t want;
    std::memcpy(&want, &nxt, sizeof want);
    if (__atomic_compare_exchange_n(bits, &old, want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      return;
  }
}

// Returns the slot of column c, inserting it if absent; *inserted tells which.
inline int64_t shared_insert(int64_t* keys, int64_t mask, int shift, int64_t c, bool* inserted) {
  int64_t h = hash_slot(c, shift);
  while (true) {
    int64_t k = __atomic_load_n(&keys[h], __ATOMIC_RELAXED);
    if (k == c) {
      *inserted = false;
      return h;
    }
    if (k < 0) {
      if (cas64(&keys[h], -1, c)) {
        *inserted = true;
        return h;
      }
      if (__atomic_load_n(&keys[h], __ATOMIC_RELAXED) == c) {
        *inserted = false;
        return h;
      }
    }
    h = (h + 1) & mask;
  }
}

struct SharedTable {
  std::vector<int64_t> keys;
  std::vector<double> vals;
  int64_t size = 0, mask = 0;
  int shift = 0;
  void reset(int64_t prod, int64_t ncols, bool values, int threads) {
    size = next_pow2(2 * std::min(prod, ncols));
    mask = size - 1;
    shift = 64 - log2_of(size);
    if (int64_t(keys.size()) < size) keys.resize(size);
    if (values && int64_t(vals.size()) < size) vals.resize(size);
    int64_t* kp = keys.data();
    double* vp = vals.data();
    const int64_t sz = size;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t h = 0; h < sz; ++h) {
      kp[h] = -1;
      if (values) vp[h] = 0.0;
    }
  }
};

template <typename I>
int64_t shared_count(const Csr<I>& A, const Csr<I>& B, int64_t i, int64_t prod, SharedTable& T,
                     int threads) {
  T.reset(prod, B.ncols, false, threads);
  int64_t* keys = T.keys.data();
  const int64_t mask = T.mask;
  const int shift = T.shift;
  int64_t nnz = 0;
  const int64_t lo = A.ptr[i], hi = A.ptr[i + 1];
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : nnz) num_threads(threads)
  for (int64_t p = lo; p < hi; ++p) {
    const int64_t k = A.idx[p];
    for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
      bool ins;
      shared_insert(keys, mask, shift, B.idx[q], &ins);
      nnz += ins;
    }
  }
  return nnz;
}

template <typename I>
void shared_fill(const Csr<I>& A, const Csr<I>& B, int64_t i, int64_t prod, SharedTable& T,
                 int threads, I* oc, double* ov, int64_t nnz) {
  T.reset(prod, B.ncols, true, threads);
  int64_t* keys = T.keys.data();
  double* vals = T.vals.data();
  const int64_t mask = T.mask, size = T.size;
  const int shift = T.shift;
  const int64_t lo = A.ptr[i], hi = A.ptr[i + 1];
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t p = lo; p < hi; ++p) {
    const int64_t k = A.idx[p];
    const double a = A.v(p);
    for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
      bool ins;
      const int64_t h = shared_insert(keys, mask, shift, B.idx[q], &ins);
      atomic_add_f64(&vals[h], a * B.v(q));
    }
  }
  int64_t n = 0;
  for (int64_t h = 0; h < size && n < nnz; ++h)
    if (keys[h] >= 0) oc[n++] = static_cast<I>(keys[h]);
  std::sort(oc, oc + nnz);
  for (int64_t j = 0; j < nnz; ++j) {
    const int64_t c = oc[j];
    int64_t h = hash_slot(c, shift);
    while (keys[h] != c) h = (h + 1) & mask;
    ov[j] = vals[h];
  }
}

// ---------------------------------------------------------------- small products: one region
// Products of up to a few million scalar products (FEM meshes of 1-3k rows) take 0.1-1 ms, and
// there the fixed costs decided the time: six fork/joins, per-call scratch allocation and
// zeroing, B packing, a serial plan, and a bitmap scan per row in BOTH phases. This path keeps
// the two phases but runs everything in ONE parallel region with barriers, on scratch kept per
// thread across calls:
//   plan      products and bin per row over a static block of rows per thread, prefix sums
//             combined from per-thread partials;
//   symbolic  each row's sorted column list, appended to the thread's temporary: dense rows
//             OR bits into the bitmap (B packed 64 columns to a word when its rows are long
//             enough) and emit the set bits of the words between the lowest and highest
//             touched; short rows (wide B) hash, then insertion-sort; the count sizes the row
//             exactly;
//   numeric   into the exactly sized output: the thread's column lists are copied in at once,
//             then each row scatter-adds into the dense accumulator and gathers the values at
//             its columns (no second scan).
// Each thread takes ONE block of rows, cut by the prefix sum of products, in both phases: its
// numeric phase then reads the columns its own symbolic phase wrote, and the B rows it packed,
// from its own cache (measured: dynamic chunks, which moved them between cores, made jagmesh7's
// symbolic phase as slow on 2 threads as on 1).
// Prefetch of the B row that A's entry p + kAhead reads (its first line of columns, and of
// values when `vals`): B's rows are read in the order of A's columns, which no hardware
// prefetcher follows, so where columns are scattered every B row is a cache miss, in both
// phases. A's entries are contiguous across rows, so this reaches into the next rows too.
constexpr int kAhead = 8;
template <typename I>
inline void prefetch_b(const Csr<I>& A, const Csr<I>& B, I p, bool vals) {
  if (p + kAhead < A.ptr[A.nrows]) {
    const I q = B.ptr[A.idx[p + kAhead]];
    __builtin_prefetch(B.idx + q);
    if (vals && B.val) __builtin_prefetch(B.val + q);
  }
}

template <typename I>
struct Tls {  // OpenMP's threads persist, so this scratch is allocated once, not per call
  std::vector<uint64_t> bits;  // all-zero between rows
  std::vector<uint64_t> summ;  // bit w: word w of bits touched (kSparse rows); all-zero between rows
  std::vector<double> acc;     // all-zero between rows
  std::vector<I> keys;
  void ensure(int64_t ncols) {
    if (int64_t(acc.size()) < ncols) {
      acc.resize(ncols, 0.0);
      bits.resize((ncols + 63) / 64, 0);
      summ.resize((ncols + 4095) / 4096, 0);
    }
  }
};

template <typename I>
Tls<I>& tls() {
  static thread_local Tls<I> t;
  return t;
}

// A growable array whose entries are NOT initialised (every entry is written before it is
// read): the symbolic phase's temporary is sized by the products, an upper bound on what it
// holds, and zero-filling it (std::vector::resize) cost as much as the rest of the call where
// products far exceed nnz(C) (block-13000: 3.3M products, 0.2M entries, 1.6 of 5.7 ms). Its
// untouched pages are never faulted in.
template <typename T>
struct RawBuf {
  std::unique_ptr<T[]> p;
  int64_t cap = 0;
  T* ensure(int64_t n) {
    if (n > cap) {
      p.reset(new T[n]);  // default-initialised: no zeroing for arithmetic T
      cap = n;
    }
    return p.get();
  }
  T* data() const { return p.get(); }
  size_t bytes() const { return size_t(cap) * sizeof(T); }
};

template <typename I>
struct FusedWork {
  std::vector<int64_t> pre, ep;  // ep: running products over A's entries (plan)
  std::vector<I> rnnz, word, wcnt;
  RawBuf<I> tmp;       // the symbolic phase's column lists
  RawBuf<double> tmpv;  // values beside tmp (interleaved phases)
  std::vector<uint64_t> wmask;
  std::vector<int8_t> bin;
};


template <typename I>
struct FusedOut {
  I* indptr = nullptr;
  I* idx = nullptr;
  double* val = nullptr;
  int64_t nnz = 0, total = 0, packed = 0;
  int64_t bins[kNumBins] = {};
  int threads = 1;
  bool interleaved = false;
  bool axpy = false;  // the numeric phase added B's consecutive-column rows as axpys
  double t_plan = 0, t_sym = 0, t_num = 0;
};

// Largest product count the fused path takes: its temporary holds one index per product, written
// by the symbolic phase and read back by the numeric one, so it should stay in this core's share
// of the last-level cache (measured on a 32 MiB L3 shared by 2 CPUs, 4M int32 products:
// block-13000, 3.3M products, 8.6 -> 5.6 ms on one thread; bcsstk13, 4.5M, unchanged either way).
template <typename I>
int64_t fused_max_products() {
  return std::max<int64_t>(int64_t(1) << 16, caches().l3_share / int64_t(sizeof(I)));
}

// The same for a B wider than the dense accumulator's L2 budget: the two-region path's
// alternative there is its hash bin, measured slower at every size tried, so the bound is the
// temporary's memory (untouched past nnz(C), but reserved): 1/64 of physical memory. Measured
// at n = 100,000, 1 thread, one-region / two-region: uniform 224 / 517 ms (6.4M products),
// unsymmetric 207 / 337 (4.9M), block 29.8 / 84.5 (25.6M), banded 28.2 / 57.1 (12.1M).
template <typename I>
int64_t wide_max_products() {
  const int64_t pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const int64_t mem = pages > 0 && page > 0 ? pages * page : int64_t(8) << 30;
  return std::max(fused_max_products<I>(), mem / 64 / int64_t(sizeof(I)));
}

// Whether packing B into 64-column words (fused_pack_block) can pay: multiply_fused uses the
// packing where B's words are at most 2/3 of its entries. Estimated on 256 entries evenly spaced
// through B, each counted as opening a word where its word differs from the entry before it:
// that fraction estimates words / entries (a row's first entry compared with the previous row's
// last can only undercount, which keeps the packing). A B clearly above the bar (scattered
// columns: mostly one entry per word, as in random, unsymmetric and rectangular products) skips
// the packing pass, a full read of B that it could not use. The axpy count made by that pass is
// not lost: rows of consecutive columns have ~1/length words per entry, far below the bar.
template <typename I>
bool pack_may_pay(const Csr<I>& B) {
  constexpr int64_t kSample = 256;
  const int64_t nnz = B.ptr[B.nrows];
  if (nnz < 4 * kSample) return true;  // a small B: the pass is cheap, so measure it exactly
  int64_t opened = 0;
  for (int64_t s = 0; s < kSample; ++s) {
    const int64_t q = 1 + (nnz - 1) * s / kSample;
    opened += (int64_t(B.idx[q]) >> 6) != (int64_t(B.idx[q - 1]) >> 6);
  }
  return opened * 4 < kSample * 3;  // words / entries below 3/4 (~3 standard errors over 2/3)
}

// The one-region path's phase clock: wall time; a profiling build with -DHPC_SPGEMM_CPU_CLOCK
// reads the calling thread's CPU time instead (a syscall, so not by default), which a loaded
// machine inflates far less: meaningful for 1-thread calls only.
inline double phase_clock() {
#ifdef HPC_SPGEMM_CPU_CLOCK
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
#else
  return omp_get_wtime();
#endif
}

// ---- thread count from measured costs (the one-region path): hpc/thread_model.hpp
hpc::ThreadModel g_threads;  // seconds per product of this path
hpc::ThreadModel g_threads_big;  // the two-region path's (another cost per product)

// ---- accumulator per row (the one-region path)
// The numeric phase always scatters into the dense value array and gathers at the columns the
// symbolic phase listed; the choice is how the symbolic phase finds a row's distinct columns,
// sorted. Inputs, all measured per row in the plan pass:
//   p     products, the upper bound on the row's entries;
//   span  64-column words between the row's lowest and highest candidate column (each B row
//         read gives its first and last column: B's rows are sorted);
// Cost model, in L1 operations (a load, store or ALU op on L1-resident data), where touched
// words are bounded by t = min(p, span):
//   kDense  (bitmap, linear scan)   p ORs + 2 per word of the span (load, clear) + 4 per touched
//                                   word (its set bits emitted);
//   kSparse (bitmap + summary)      2p ORs (the word, and its bit in a summary bitmap of
//                                   words) + 2 per summary word of the span + 6 per touched word
//                                   (found by the summary's set bits, then emitted);
//   kEsc    (expand, sort, compress) p stores + the sort (insertion: ~p^2/4 compare-moves, else
//                                   p log2 p) at 2 each + p to drop repeats.
// Rows with clustered columns (meshes: span ~ p / 8) scan linearly; scattered columns (span >>
// p) take the summary; only short rows of a very wide B sort. The bitmap is ncols / 8 bytes
// (a 64k-column B: 8 KiB), L1/L2-resident when the accumulator itself fits in L2 (dense_fits).
inline int8_t choose_bin(int64_t p, int64_t span) {
  const int64_t t = std::min(p, span);
  const int64_t lin = p + 2 * span + 4 * t;
  const int64_t sparse = 2 * p + 2 * ((span + 63) / 64 + 1) + 6 * t;
  // ceil(log2 p) without a loop (its exit mispredicted once per row of the plan)
  const int64_t lg = p > 1 ? 64 - __builtin_clzll(uint64_t(p - 1)) : 0;
  const int64_t esc = 2 * p + 2 * (p < 32 ? p * p / 4 : p * lg);
  if (esc < lin && esc < sparse) return kEsc;
  return sparse < lin ? kSparse : kDense;
}

// Row i's columns of C as bits of the bitmap (one OR per 64-column word when B is packed:
// wcnt/word/wmask), and the span [lo, hi] of words touched; with Summary, each touched word
// also sets its bit in summ, so a scan can skip the words between.
template <bool Summary, typename I>
inline void mark_row_bits(const Csr<I>& A, const Csr<I>& B, int64_t i, const I* wcnt,
                          const I* word, const uint64_t* wmask, uint64_t* bits, uint64_t* summ,
                          int64_t& lo, int64_t& hi) {
  lo = B.ncols;
  hi = -1;
  auto touch = [&](int64_t w, uint64_t m) {
    bits[w] |= m;
    if constexpr (Summary) summ[w >> 6] |= uint64_t(1) << (w & 63);
    lo = std::min(lo, w);
    hi = std::max(hi, w);
  };
  if (wcnt) {
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      for (I q = B.ptr[k], e = B.ptr[k] + wcnt[k]; q < e; ++q) touch(word[q], wmask[q]);
    }
  } else {
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      prefetch_b(A, B, p, false);
      const int64_t k = A.idx[p];
      for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
        const uint64_t c = static_cast<uint64_t>(B.idx[q]);
        touch(int64_t(c >> 6), uint64_t(1) << (c & 63));
      }
    }
  }
}

template <typename I>
int64_t fused_symbolic_row(const Csr<I>& A, const Csr<I>& B, int64_t i, int8_t bin, I* out,
                           Tls<I>& S, const I* wcnt, const I* word, const uint64_t* wmask) {
  int64_t j = 0;
  if (bin == kDense) {
    uint64_t* bits = S.bits.data();
    int64_t lo, hi;
    mark_row_bits<false>(A, B, i, wcnt, word, wmask, bits, nullptr, lo, hi);
    j = hpc::emit_words(bits, lo, hi, out);
  } else if (bin == kSparse) {
    // As kDense, and each touched word also sets its bit in the summary: the scan then visits
    // the summary's words of the span and the touched words only, not every word between.
    uint64_t* bits = S.bits.data();
    uint64_t* summ = S.summ.data();
    int64_t lo, hi;
    mark_row_bits<true>(A, B, i, wcnt, word, wmask, bits, summ, lo, hi);
    for (int64_t sw = lo >> 6; sw <= (hi >> 6); ++sw) {
      uint64_t m = summ[sw];
      summ[sw] = 0;
      while (m) {
        const int64_t w = (sw << 6) + __builtin_ctzll(m);
        m &= m - 1;
        uint64_t x = bits[w];
        bits[w] = 0;
        // Scattered columns: a touched word mostly holds one column, so the first is stored
        // unconditionally and a loop (rarely entered) takes the rest.
        const I base = static_cast<I>(w << 6);
        out[j++] = base + static_cast<I>(__builtin_ctzll(x));
        x &= x - 1;
        while (x) {
          out[j++] = base + static_cast<I>(__builtin_ctzll(x));
          x &= x - 1;
        }
      }
    }
  } else if (bin == kEsc) {
    // Expand the row's candidate columns, sort, compress repeats (no accumulator to clear).
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      prefetch_b(A, B, p, false);
      const int64_t k = A.idx[p];
      const I n = B.ptr[k + 1] - B.ptr[k];
      std::memcpy(out + j, B.idx + B.ptr[k], sizeof(I) * n);
      j += n;
    }
    sort_row(out, j);
    int64_t u = 0;
    for (int64_t a = 0; a < j; ++a) {
      out[u] = out[a];
      u += u == 0 || out[a] != out[u - 1];
    }
    j = u;
  } else {  // kHash: distinct columns appended as they are first seen, then sorted
    int64_t prod = 0;
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) prod += B.ptr[A.idx[p] + 1] - B.ptr[A.idx[p]];
    const int64_t size = next_pow2(2 * std::min(prod, B.ncols));
    const int64_t mask = size - 1;
    const int shift = 64 - log2_of(size);
    if (int64_t(S.keys.size()) < size) S.keys.resize(size);
    I* keys = S.keys.data();
    std::fill(keys, keys + size, I(-1));
    for (I p = A.ptr[i]; p < A.ptr[i + 1]; ++p) {
      const int64_t k = A.idx[p];
      for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q) {
        const I c = B.idx[q];
        int64_t h = hash_slot(c, shift);
        while (keys[h] != c) {
          if (keys[h] < 0) {
            keys[h] = c;
            out[j++] = c;
            break;
          }
          h = (h + 1) & mask;
        }
      }
    }
    sort_row(out, j);
  }
  return j;
}

// Contig: B's rows are mostly runs of consecutive columns (dense blocks, bands), measured by
// the packing pass: a row whose last column is its first + its length - 1 is added into the
// accumulator as one vectorised axpy (acc[c0 + t] += a * v[t]) instead of a scatter of indexed
// read-modify-writes; the same sums in the same order.
template <bool Contig, typename I>
void fused_numeric_row(const Csr<I>& A, const Csr<I>& B, int64_t i, int8_t bin, const I* cols,
                       int64_t r, double* ov, double* __restrict acc) {
  const I* const Bp = B.ptr;
  const I* const Bi = B.idx;
  const double* const Bv = B.val;
  const I pa = A.ptr[i], pe = A.ptr[i + 1];
  if (bin == kCopy) {  // the symbolic phase copied B's columns
    const int64_t k = A.idx[pa];
    const double a = A.v(pa);
    int64_t j = 0;
    for (I q = Bp[k]; q < Bp[k + 1]; ++q, ++j) ov[j] = a * B.v(q);
    return;
  }
  if (A.val && Bv) {
    // Raw pointers and pointer bounds: with the Csr fields and the null checks in the loop,
    // GCC reloaded them and recomputed the trip count for every entry of A (~25 instructions
    // per entry, as many as 5 products).
    const I* const Ai = A.idx;
    const double* const Av = A.val;
    for (I p = pa; p < pe; ++p) {
      prefetch_b(A, B, p, true);
      const int64_t k = Ai[p];
      const double a = Av[p];
      const I* q = Bi + Bp[k];
      const I* const e = Bi + Bp[k + 1];
      const double* v = Bv + Bp[k];
      if constexpr (Contig) {
        const int64_t len = e - q;
        if (len > 0 && int64_t(q[len - 1]) - int64_t(q[0]) == len - 1) {
          double* __restrict d = acc + q[0];
          for (int64_t t = 0; t < len; ++t) d[t] += a * v[t];
          continue;
        }
      }
      // Two per iteration: half the loop overhead, and on rows of 2-8 entries (1138_bus)
      // half the exits to mispredict (measured: its numeric phase 24 -> 14 us, 2 threads).
      for (; q + 1 < e; q += 2, v += 2) {
        acc[q[0]] += a * v[0];
        acc[q[1]] += a * v[1];
      }
      if (q < e) acc[*q] += a * *v;
    }
  } else {
    for (I p = pa; p < pe; ++p) {
      const int64_t k = A.idx[p];
      const double a = A.v(p);
      for (I q = Bp[k]; q < Bp[k + 1]; ++q) acc[Bi[q]] += a * B.v(q);
    }
  }
  int64_t j = 0;
  for (; j + 1 < r; j += 2) {  // two per iteration: half the loop overhead
    const I c0 = cols[j], c1 = cols[j + 1];
    ov[j] = acc[c0];
    ov[j + 1] = acc[c1];
    acc[c0] = 0.0;  // ready for the next row
    acc[c1] = 0.0;
  }
  if (j < r) {
    ov[j] = acc[cols[j]];
    acc[cols[j]] = 0.0;
  }
}

// Plan of rows [r0, r1) by the cost model (choose_bin): products per row into pre[i + 1], and
// the span of each row's candidate columns from the first and last column of every B row it
// reads; bins and bin counts; returns their products.
template <typename I>
__attribute__((noinline)) int64_t fused_plan_block_model(const Csr<I>& A, const Csr<I>& B,
                                                         int64_t r0, int64_t r1, int64_t* pre,
                                                         int8_t* bin, int64_t* bins) {
  const I* const Bp = B.ptr;
  const I* const Bi = B.idx;
  int64_t s = 0;
  for (int64_t i = r0; i < r1; ++i) {
    int64_t p = 0, lo = B.ncols, hi = -1;
    for (I e = A.ptr[i]; e < A.ptr[i + 1]; ++e) {
      const int64_t k = A.idx[e];
      const I q0 = Bp[k], q1 = Bp[k + 1];
      p += q1 - q0;
      if (q1 > q0) {
        lo = std::min<int64_t>(lo, Bi[q0]);
        hi = std::max<int64_t>(hi, Bi[q1 - 1]);
      }
    }
    pre[i + 1] = p;
    s += p;
    int8_t b = choose_bin(p, (hi >> 6) - (lo >> 6) + 1);
    if (A.ptr[i + 1] - A.ptr[i] == 1) b = kCopy;
    if (p == 0) b = kEmpty;
    bin[i] = b;
    bins[b]++;
  }
  return s;
}

// Plan of rows [r0, r1) with a forced dense threshold (tests): products per row into
// pre[i + 1], bins, bin counts; returns their products. Products per row come from a running sum over the rows' entries of A (one flat
// loop, then one read per row): a loop per row of 3-17 entries mispredicts its exit on most rows.
template <typename I>
__attribute__((noinline)) int64_t fused_plan_block(const Csr<I>& A, const Csr<I>& B, int64_t r0,
                                                   int64_t r1, int64_t dense_min, int64_t* ep,
                                                   int64_t* pre, int8_t* bin, int64_t* bins) {
  if (dense_min <= 0) return fused_plan_block_model(A, B, r0, r1, pre, bin, bins);
  const int64_t e0 = A.ptr[r0], e1 = A.ptr[r1];
  int64_t run = 0;
  for (int64_t e = e0; e < e1; ++e) {
    run += B.ptr[A.idx[e] + 1] - B.ptr[A.idx[e]];
    ep[e] = run;
  }
  int64_t before = 0, s = 0;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t end = A.ptr[i + 1];
    const int64_t upto = end > e0 ? ep[end - 1] : 0;
    const int64_t p = upto - before;
    before = upto;
    pre[i + 1] = p;
    s += p;
    const int8_t b = p == 0 ? kEmpty
                     : A.ptr[i + 1] - A.ptr[i] == 1 ? kCopy
                     : p >= dense_min ? kDense : kHash;
    bin[i] = b;
    bins[b]++;
  }
  return s;
}

// B's rows [k0, k1) packed into (column / 64, mask) words, row k's at B.ptr[k] (never more words
// than entries); returns their words. The slot is rewritten until its word ends. Written with
// selects on the slot pointers (GCC branches on them): 0.96 -> 0.79 ns an entry on ani4, against
// the branch-free form with a running slot index and masks.
template <typename I>
__attribute__((noinline)) int64_t fused_pack_block(const Csr<I>& B, int64_t k0, int64_t k1,
                                                   I* word, uint64_t* wmask, I* wcnt,
                                                   int64_t* contig) {
  const I* const bi = B.idx;
  int64_t w = 0, run = 0;
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t qb = B.ptr[k], qe = B.ptr[k + 1];
    // Entries in rows that are one run of consecutive columns (see fused_numeric_row).
    run += qe > qb && int64_t(bi[qe - 1]) - int64_t(bi[qb]) == qe - qb - 1 ? qe - qb : 0;
    I* wq = word + qb - 1;  // the current word's slot
    uint64_t* mq = wmask + qb - 1;
    int64_t prev = -1;
    uint64_t m = 0;
    for (const I *p = bi + qb, *e = bi + qe; p < e; ++p) {
      const int64_t col = *p, cw = col >> 6;
      const bool same = cw == prev;
      m = same ? m : 0;
      wq = same ? wq : wq + 1;
      mq = same ? mq : mq + 1;
      m |= uint64_t(1) << (col & 63);
      *wq = static_cast<I>(cw);
      *mq = m;
      prev = cw;
    }
    const int64_t c = wq + 1 - (word + qb);
    wcnt[k] = static_cast<I>(c);
    w += c;
  }
  *contig = run;
  return w;
}

// One thread's rows [rb, re) of each phase, each in a function of its own: inlined into the
// parallel region, one phase's loops took the registers of another's, and an edit of one phase
// moved the other's time by up to 60 % (measured: the numeric loop's trip count rewritten, the
// symbolic phase 43 -> 70 us on ani4).
template <typename I>
__attribute__((noinline)) int64_t fused_symbolic_block(const Csr<I>& A, const Csr<I>& B,
                                                       int64_t rb, int64_t re, const int8_t* bin,
                                                       I* out, I* rnnz, Tls<I>& S, const I* wcnt,
                                                       const I* word, const uint64_t* wmask) {
  int64_t j = 0;
  for (int64_t i = rb; i < re; ++i) {
    const int8_t b = bin[i];
    int64_t r = 0;
    if (b != kCopy && b != kEmpty) {
      r = fused_symbolic_row(A, B, i, b, out + j, S, wcnt, word, wmask);
    } else if (b == kCopy) {
      const int64_t k = A.idx[A.ptr[i]];
      r = B.ptr[k + 1] - B.ptr[k];
      std::memcpy(out + j, B.idx + B.ptr[k], sizeof(I) * r);
    }
    rnnz[i] = static_cast<I>(r);
    j += r;
  }
  return j;
}

// Both phases row by row (the interleaved mode): each row's sorted columns, then at once its
// values, into the thread's temporaries; the second read of the row's B rows hits the cache.
template <typename I>
__attribute__((noinline)) int64_t fused_both_block(const Csr<I>& A, const Csr<I>& B, int64_t rb,
                                                   int64_t re, const int8_t* bin, I* out,
                                                   double* vout, I* rnnz, Tls<I>& S,
                                                   const I* wcnt, const I* word,
                                                   const uint64_t* wmask) {
  int64_t j = 0;
  double* acc = S.acc.data();
  for (int64_t i = rb; i < re; ++i) {
    const int8_t b = bin[i];
    int64_t r = 0;
    if (b != kEmpty) {
      if (b == kCopy) {
        const int64_t k = A.idx[A.ptr[i]];
        r = B.ptr[k + 1] - B.ptr[k];
        std::memcpy(out + j, B.idx + B.ptr[k], sizeof(I) * r);
      } else {
        r = fused_symbolic_row(A, B, i, b, out + j, S, wcnt, word, wmask);
      }
      fused_numeric_row<false>(A, B, i, b, out + j, r, vout + j, acc);
    }
    rnnz[i] = static_cast<I>(r);
    j += r;
  }
  return j;
}

template <bool Contig, typename I>
__attribute__((noinline)) void fused_numeric_block(const Csr<I>& A, const Csr<I>& B, int64_t rb,
                                                   int64_t re, const int8_t* bin, const I* ip,
                                                   const I* idx, const I* rnnz, double* val,
                                                   double* acc) {
  for (int64_t i = rb; i < re; ++i)
    if (bin[i] != kEmpty)
      fused_numeric_row<Contig>(A, B, i, bin[i], idx + ip[i], rnnz[i], val + ip[i], acc);
}

// Returns false (and does nothing) when the product has more than `limit` products.
template <typename I>
bool multiply_fused(const Csr<I>& A, const Csr<I>& B, int threads, int64_t dense_at,
                    int64_t limit, int interleave, FusedOut<I>& R) {
  const int64_t n = A.nrows;
  // Threads from an estimate (nnz(A) x mean row length of B): the exact count needs a pass.
  const double est = double(A.ptr[n]) * double(B.ptr[B.nrows]) / double(std::max<int64_t>(B.nrows, 1));
  if (est > 4.0 * double(limit)) return false;
  const uint64_t key = hpc::ThreadModel::key_of({n, A.ncols, A.ptr[n], B.ncols, B.ptr[B.nrows]});
  int T = g_threads.choose(est, threads, key);
  if (dense_at > 0) T = threads;  // tests: every thread count
  const int64_t dense_min = dense_at > 0 ? dense_at : 0;  // 0: the cost model (choose_bin)
  // Phases interleaved row by row (interleave 1): each row's numeric step right after its
  // symbolic one, while its B rows are in L1/L2, values into a temporary copied out at the
  // end. Meant for a B larger than L2, where a separate numeric phase reads every B row from
  // L3 a second time; measured on the scattered families (B 0.5-1.1 MB, L2 512 KiB), it was no
  // faster (uniform-13000 slower: the values' temporary is written and copied), so it is
  // off unless asked for (-1 automatic = off, 0 off, 1 on).
  R.interleaved = interleave > 0;

  // Work arrays of the calling thread, kept across calls: fresh ones cost a page fault per
  // 4 KiB on first touch, which for these sizes is as much as the kernel.
  static thread_local FusedWork<I> work;
  FusedWork<I>& Wk = work;
  RawBuf<double>& tmpv = Wk.tmpv;
  Wk.pre.resize(n + 1);
  Wk.rnnz.resize(n);
  Wk.bin.resize(n);
  if (int64_t(Wk.ep.size()) < int64_t(A.ptr[n])) Wk.ep.resize(A.ptr[n]);
  int64_t* ep = Wk.ep.data();
  std::vector<int64_t>& pre = Wk.pre;  // products before row i
  I* rnnz = Wk.rnnz.data();
  int8_t* bin = Wk.bin.data();
  pre[0] = 0;
  std::vector<int64_t> part(T + 1, 0), part2(T + 1, 0);
  std::vector<int64_t> nb(int64_t(T) * kNumBins, 0);
  RawBuf<I>& tmp = Wk.tmp;
  // Packing costs a pass over B: tried when B's rows average 6+ entries (the meshes here:
  // 6.5-17 entries, 1.7-5.8 per word), not for 1138_bus's 3.6.
  const bool try_pack = B.nrows > 0 && int64_t(B.ptr[B.nrows]) >= 6 * B.nrows && pack_may_pay(B);
  if (try_pack) {
    if (int64_t(Wk.word.size()) < int64_t(B.ptr[B.nrows])) {
      Wk.word.resize(B.ptr[B.nrows]);
      Wk.wmask.resize(B.ptr[B.nrows]);
    }
    if (int64_t(Wk.wcnt.size()) < B.nrows) Wk.wcnt.resize(B.nrows);
  }
  I* wcnt = Wk.wcnt.data();
  std::vector<int64_t> part3(T + 1, 0), part4(T + 1, 0);
  bool use_pack = false;
  bool contig = false;  // B's entries mostly in rows of consecutive columns
  const I* wp = nullptr;  // words of B's row k: [B.ptr[k], B.ptr[k] + wp[k])
  const I* wd = Wk.word.data();
  const uint64_t* wm = Wk.wmask.data();
  bool abort = false;
  const double t0 = phase_clock();
  double t1 = t0, t2 = t0, t3 = t0;
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
    // bin counts in the thread's own array, copied out once: counted in nb itself, both
    // threads' counts could share a cache line written every row
    int64_t counts[kNumBins] = {};
    part[t + 1] = fused_plan_block(A, B, r0, r1, dense_min, ep, pre.data(), bin, counts);
    std::copy(counts, counts + kNumBins, nb.begin() + int64_t(t) * kNumBins);
    // B packed into (column / 64, mask) words when its rows are long enough to gain.
    if (try_pack)
      part3[t + 1] = fused_pack_block(B, B.nrows * t / nt, B.nrows * (t + 1) / nt,
                                      Wk.word.data(), Wk.wmask.data(), wcnt, &part4[t + 1]);
#pragma omp barrier
#pragma omp single
    {
      if (try_pack) {
        for (int u = 0; u < nt; ++u) part3[u + 1] += part3[u];
        use_pack = part3[nt] * 3 <= int64_t(B.ptr[B.nrows]) * 2;
        R.packed = use_pack ? part3[nt] : 0;
        if (use_pack) wp = wcnt;  // read only after the barrier that follows the packing
        for (int u = 0; u < nt; ++u) part4[u + 1] += part4[u];
        // The axpy test costs two loads and a branch per entry of A: worth it where nearly
        // every row of B passes it (the branch then predicts).
        contig = part4[nt] * 10 >= int64_t(B.ptr[B.nrows]) * 9;
        R.axpy = contig && !R.interleaved;
      }
      for (int u = 0; u < nt; ++u) part[u + 1] += part[u];
      R.total = part[nt];
      R.threads = nt;
      if (R.total > limit) {
        abort = true;
      } else {
        tmp.ensure(R.total + kSlack * nt);
        if (R.interleaved) tmpv.ensure(R.total + kSlack * nt);
      }
    }
    if (!abort) {
      int64_t base = part[t];
      for (int64_t i = r0; i < r1; ++i) {
        base += pre[i + 1];
        pre[i + 1] = base;
      }
      Tls<I>& S = tls<I>();
      S.ensure(B.ncols);
#pragma omp barrier
#pragma omp master
      t1 = phase_clock();
      // This thread's rows, both phases: a block of equal products.
      const int64_t rb = equal_cut(pre, nt, t), re = equal_cut(pre, nt, t + 1);
      I* tb = tmp.data() + pre[rb] + kSlack * t;     // their column lists, back to back
      double* tv = R.interleaved ? tmpv.data() + pre[rb] + kSlack * t : nullptr;
      const int64_t j = R.interleaved
                            ? fused_both_block(A, B, rb, re, bin, tb, tv, rnnz, S, wp, wd, wm)
                            : fused_symbolic_block(A, B, rb, re, bin, tb, rnnz, S, wp, wd, wm);
      part2[t + 1] = j;
#pragma omp barrier
#pragma omp single
      {
        for (int u = 0; u < nt; ++u) part2[u + 1] += part2[u];
        R.nnz = part2[nt];
        R.indptr = static_cast<I*>(std::malloc(sizeof(I) * (n + 1)));
        R.idx = static_cast<I*>(std::malloc(sizeof(I) * std::max<int64_t>(R.nnz, 1)));
        R.val = static_cast<double*>(std::malloc(sizeof(double) * std::max<int64_t>(R.nnz, 1)));
        t2 = phase_clock();
      }
      if (R.indptr && R.idx && R.val) {  // every thread fills its own rows: no barrier
        base = part2[t];
        std::memcpy(R.idx + base, tb, sizeof(I) * j);
        for (int64_t i = rb; i < re; ++i) {
          R.indptr[i] = static_cast<I>(base);
          base += rnnz[i];
        }
        if (t == nt - 1) R.indptr[n] = static_cast<I>(base);
        if (R.interleaved)
          std::memcpy(R.val + part2[t], tv, sizeof(double) * j);
        else if (contig)
          fused_numeric_block<true>(A, B, rb, re, bin, R.indptr, R.idx, rnnz, R.val, S.acc.data());
        else
          fused_numeric_block<false>(A, B, rb, re, bin, R.indptr, R.idx, rnnz, R.val, S.acc.data());
      }
      // An accumulator wider than L2 (a wide B, see multiply) is not kept between calls.
      if (!dense_fits(B.ncols)) S = Tls<I>();
    }
  }
  // Keep between calls what the largest automatic fused product needs (its temporaries of one
  // index and one value per product, and 8 MiB of per-row and per-entry arrays): freed and
  // reallocated every call, block-13000's 13 MiB temporary cost a page fault per 4 KiB touched.
  const size_t kept = (Wk.pre.capacity() + Wk.ep.capacity()) * 8 + (Wk.rnnz.capacity() +
                      Wk.word.capacity() + Wk.wcnt.capacity()) * sizeof(I) +
                      Wk.wmask.capacity() * 8 + Wk.bin.capacity() + tmp.bytes() + tmpv.bytes();
  const size_t keep_max = size_t(fused_max_products<I>() + 1024) * (sizeof(I) + sizeof(double)) +
                          (size_t(8) << 20);
  if (kept > keep_max) Wk = FusedWork<I>();
  if (abort) return false;
  if (!(R.indptr && R.idx && R.val)) {
    std::free(R.indptr);
    std::free(R.idx);
    std::free(R.val);
    throw std::bad_alloc();
  }
  t3 = phase_clock();
  for (int u = 0; u < R.threads; ++u)
    for (int b = 0; b < kNumBins; ++b) R.bins[b] += nb[int64_t(u) * kNumBins + b];
  R.t_plan = t1 - t0;
  R.t_sym = t2 - t1;
  R.t_num = t3 - t2;
  g_threads.record(t3 - t0, R.threads, est, key);  // as choose() classed it
  return true;
}

// The record of one multiply: row counts per bin, threads, packing and phase times.
py::dict run_stats(int64_t products, const int64_t (&bins)[kNumBins], int64_t shared_rows,
                   int threads, int64_t packed_words, bool fused, bool interleaved, bool axpy,
                   double plan_s, double symbolic_s, double numeric_s) {
  py::dict stats;
  stats["products"] = products;
  stats["rows_empty"] = bins[kEmpty];
  stats["rows_copy"] = bins[kCopy];
  stats["rows_hash"] = bins[kHash];
  stats["rows_dense"] = bins[kDense];
  stats["rows_sparse"] = bins[kSparse];
  stats["rows_esc"] = bins[kEsc];
  stats["rows_shared"] = shared_rows;
  stats["threads"] = threads;
  stats["packed_words"] = packed_words;
  stats["fused"] = fused;
  stats["interleaved"] = interleaved;
  stats["axpy"] = axpy;
  stats["plan_s"] = plan_s;
  stats["symbolic_s"] = symbolic_s;
  stats["numeric_s"] = numeric_s;
  return stats;
}

// ---------------------------------------------------------------- driver
template <typename I>
py::tuple multiply(const Csr<I>& A, const Csr<I>& B, int threads, int64_t shared_at,
                   int64_t dense_at, int64_t fused_max, int interleave) {
  const int64_t n = A.nrows;
  // Small products: the one-region path (shared rows are for heavy rows: never there).
  const int64_t limit = fused_max >= 0      ? fused_max
                       : dense_fits(B.ncols) ? fused_max_products<I>()
                                             : wide_max_products<I>();
  // Its dense accumulator is touched only at each row's columns (as SciPy's is) and its bitmap
  // (ncols / 8 bytes) is what rows scan: a B wider than the accumulator's L2 budget still takes
  // it where the bitmap fits L2 and the products (est) are at least B's columns, so that
  // zeroing the accumulator, allocated per call then, is a small part of the call (measured
  // at n = 100,000, 1 thread: rectangular 212 -> 112 ms, denserows 149 -> 62 ms against the
  // two-region path).
  const double est_all =
      double(A.ptr[n]) * double(B.ptr[B.nrows]) / double(std::max<int64_t>(B.nrows, 1));
  const bool fused_fits =
      dense_fits(B.ncols) || (B.ncols / 8 <= caches().l2 && est_all >= double(B.ncols));
  if (limit > 0 && shared_at <= 0 && fused_fits) {
    FusedOut<I> R;
    bool done;
    {
      py::gil_scoped_release nogil;
      done = multiply_fused(A, B, threads, dense_at, limit, interleave, R);
    }
    if (done) {
      py::array indptr = hpc::owned(R.indptr, R.indptr, n + 1);
      py::array indices = hpc::owned(R.idx, R.idx, R.nnz);
      py::array data = hpc::owned(R.val, R.val, R.nnz);
      return py::make_tuple(indptr, indices, data,
                            run_stats(R.total, R.bins, 0, R.threads, R.packed, true,
                                      R.interleaved, R.axpy, R.t_plan,
                                      R.t_sym, R.t_num));
    }
  }
  // Its threads from the measured model as well (a 2-thread call of bcsstk13, 4.5M products,
  // took 84 ms against 10 ms on one thread at load 9), unless a test forces the bins.
  const bool auto_bins = shared_at <= 0 && dense_at <= 0;
  const double est = double(A.ptr[n]) * double(B.ptr[B.nrows]) / double(std::max<int64_t>(B.nrows, 1));
  const uint64_t key = hpc::ThreadModel::key_of({n, A.ncols, A.ptr[n], B.ncols, B.ptr[B.nrows]});
  if (auto_bins) threads = g_threads_big.choose(est, threads, key);
  std::vector<int64_t> rnnz(n, 0);
  std::vector<int64_t> off(n + 1, 0);  // row offsets of C
  Plan P;
  Packed<I> W;
  double t0 = omp_get_wtime(), t1 = 0, t2 = 0;
  {
    py::gil_scoped_release nogil;
    P = make_plan(A, B, threads, shared_at, dense_at);
    t1 = omp_get_wtime();
    // Packed symbolic only where it pays: the dense rows' word count at most 2/3 of products.
    if (P.bins[kDense] > 0 && W.count(B, P.threads) * 3 <= int64_t(B.ptr[B.nrows]) * 2) {
      int64_t prod = 0, words = 0;
#pragma omp parallel for schedule(static) reduction(+ : prod, words) num_threads(P.threads)
      for (int64_t i = 0; i < n; ++i)
        if (P.bin[i] == kDense) {
          prod += P.prod[i];
          words += W.row_words(A, i);
        }
      if (words * 3 <= prod * 2) W.fill(B, P.threads);
    }
    const int64_t nc = int64_t(P.chunks.size()) - 1;
#pragma omp parallel num_threads(P.threads)
    {
      Scratch<I> S;
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < nc; ++c)
        for (int64_t i = P.chunks[c]; i < P.chunks[c + 1]; ++i) {
          switch (P.bin[i]) {
            case kCopy: rnnz[i] = P.prod[i]; break;
            case kHash: rnnz[i] = hash_count(A, B, i, P.prod[i], S); break;
            case kDense: rnnz[i] = dense_count(A, B, W, i, S); break;
            default: break;
          }
        }
    }
    SharedTable T;
    for (int64_t i : P.shared_rows) rnnz[i] = shared_count(A, B, i, P.prod[i], T, P.threads);
    t2 = omp_get_wtime();
    // The numeric phase writes every output entry: its chunks weigh products + nnz + 1 per row.
    std::vector<int64_t> pre(n + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
      off[i + 1] = off[i] + rnnz[i];
      pre[i + 1] = pre[i] + (P.bin[i] == kShared ? 1 : P.prod[i] + rnnz[i] + 1);
    }
    P.chunks = equal_chunks(pre, P.threads);
  }
  const int64_t nnz = off[n];
  // Dense rows add B's one-run rows as axpys where 90 % of B's entries are in such rows (the
  // packed symbolic measured them; values needed).
  const bool axpy = W.used && B.val && W.runs * 10 >= int64_t(B.ptr[B.nrows]) * 9;
  // indptr in the index type when nnz fits (what scipy would hold), else int64.
  py::array indptr;
  if (nnz <= int64_t(std::numeric_limits<I>::max())) {
    carray<I> a(n + 1);
    std::copy(off.begin(), off.end(), a.mutable_data());
    indptr = a;
  } else {
    carray<int64_t> a(n + 1);
    std::copy(off.begin(), off.end(), a.mutable_data());
    indptr = a;
  }
  carray<I> indices(nnz);
  carray<double> data(nnz);
  I* oc = indices.mutable_data();
  double* ov = data.mutable_data();
  {
    py::gil_scoped_release nogil;
    const int64_t* ip = off.data();
    const int64_t nc = int64_t(P.chunks.size()) - 1;
#pragma omp parallel num_threads(P.threads)
    {
      Scratch<I> S;
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < nc; ++c)
        for (int64_t i = P.chunks[c]; i < P.chunks[c + 1]; ++i) {
          const int64_t s = ip[i];
          switch (P.bin[i]) {
            case kCopy: {
              const I p = A.ptr[i];
              const int64_t k = A.idx[p];
              const double a = A.v(p);
              int64_t j = s;
              for (I q = B.ptr[k]; q < B.ptr[k + 1]; ++q, ++j) {
                oc[j] = B.idx[q];
                ov[j] = a * B.v(q);
              }
              break;
            }
            case kHash: hash_fill(A, B, i, S, oc + s, ov + s, rnnz[i]); break;
            case kDense: dense_fill(A, B, W, i, S, oc + s, ov + s, rnnz[i], axpy); break;
            default: break;
          }
        }
    }
    SharedTable T;
    for (int64_t i : P.shared_rows)
      shared_fill(A, B, i, P.prod[i], T, P.threads, oc + ip[i], ov + ip[i], rnnz[i]);
  }
  const double t3 = omp_get_wtime();
  if (auto_bins) g_threads_big.record(t3 - t0, P.threads, est, key);
  // plan: products per row, bins, chunks; numeric includes row offsets and output allocation
  return py::make_tuple(indptr, indices, data,
                        run_stats(P.total, P.bins, P.bins[kShared], P.threads,
                                  W.used ? int64_t(W.word.size()) : int64_t(0), false, false, axpy,
                                  t1 - t0,
                                  t2 - t1, t3 - t2));
}

// Validates one CSR operand: lengths, monotone indptr, column indices in range. O(nnz).
template <typename I>
Csr<I> check_csr(const py::array& ptr_, const py::array& idx_, const py::object& val_,
                 int64_t nrows, int64_t ncols, const char* what, std::vector<py::object>& keep) {
  auto ptr = hpc::exact<I>(ptr_, what);
  auto idx = hpc::exact<I>(idx_, what);
  keep.push_back(ptr);
  keep.push_back(idx);
  hpc::require_1d(ptr, nrows + 1, what);
  hpc::require_1d(idx, -1, what);
  const I* P = ptr.data();
  const I* X = idx.data();
  if (P[0] != 0) hpc::fail(std::string(what) + ": indptr[0] must be 0");
  if (!hpc::non_decreasing(P, nrows)) hpc::fail(std::string(what) + ": indptr is not non-decreasing");
  if (int64_t(P[nrows]) > int64_t(idx.shape(0)))
    hpc::fail(std::string(what) + ": indptr[-1] exceeds len(indices)");
  const int64_t nnz = P[nrows];
  if (!hpc::all_in_range(X, nnz, ncols)) hpc::fail(std::string(what) + ": column index out of range");
  const double* V = nullptr;
  if (!val_.is_none()) {
    auto val = hpc::exact<double>(py::reinterpret_borrow<py::array>(val_), what);
    hpc::require_1d(val, -1, what);
    if (int64_t(val.shape(0)) < nnz) hpc::fail(std::string(what) + ": data shorter than nnz");
    keep.push_back(val);
    V = val.data();
  }
  return Csr<I>{P, X, V, nrows, ncols};
}

template <typename I>
py::tuple entry(py::array ap, py::array ai, py::object av, int64_t an, int64_t ak, py::array bp,
                py::array bi, py::object bv, int64_t bm, int threads, int64_t shared_at,
                int64_t dense_at, int64_t fused_max, int interleave) {
  if (an < 0 || ak < 0 || bm < 0) hpc::fail("spgemm: negative shape");
  if (threads < 1) hpc::fail("spgemm: threads must be >= 1");
  std::vector<py::object> keep;
  auto A = check_csr<I>(ap, ai, av, an, ak, "spgemm A", keep);
  // A A: the same arrays with the same shape were just checked.
  const bool same = ap.ptr() == bp.ptr() && ai.ptr() == bi.ptr() && av.ptr() == bv.ptr() &&
                    an == ak && ak == bm;
  auto B = same ? A : check_csr<I>(bp, bi, bv, ak, bm, "spgemm B", keep);
  return multiply(A, B, threads, shared_at, dense_at, fused_max, interleave);
}
}  // namespace

HPC_SUBMODULE(spgemm) {
  m.doc() = "SMASH-style two-phase hash SpGEMM (OpenMP)";
  const char* doc =
      "multiply(a_indptr, a_indices, a_data|None, n, k, b_indptr, b_indices, b_data|None, m, "
      "threads) -> (indptr int64, indices, data float64, stats). A is n x k, B is k x m, CSR "
      "with unique column indices per row; data None means all ones. Output columns ascending. "
      "shared_at / dense_at > 0 override the product counts from which a row goes to the "
      "shared (SMASH, all threads) table or the dense accumulator (0: automatic). fused_max: "
      "largest product count for the one-region small-product path (-1: automatic, 0: never). "
      "interleave: the one-region path's phases row by row (1; -1 automatic and 0: not).";
  m.def("multiply_i32", &entry<int32_t>, doc, py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("a_data"), py::arg("n"), py::arg("k"), py::arg("b_indptr"), py::arg("b_indices"),
        py::arg("b_data"), py::arg("m"), py::arg("threads"), py::arg("shared_at") = 0,
        py::arg("dense_at") = 0, py::arg("fused_max") = -1, py::arg("interleave") = -1);
  m.def("multiply_i64", &entry<int64_t>, doc, py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("a_data"), py::arg("n"), py::arg("k"), py::arg("b_indptr"), py::arg("b_indices"),
        py::arg("b_data"), py::arg("m"), py::arg("threads"), py::arg("shared_at") = 0,
        py::arg("dense_at") = 0, py::arg("fused_max") = -1, py::arg("interleave") = -1);
}
