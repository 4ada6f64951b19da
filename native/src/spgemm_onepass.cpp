// One-pass SpGEMM (C = A * B, CSR, row-wise Gustavson, plus_times float64) for products whose
// rows have few products (random, unsymmetric and rectangular structure, meshes).
//
// The two-phase kernel (spgemm.cpp) sizes every output row in a symbolic pass and fills it in a
// numeric pass, emitting sorted columns from a bitmap: where each product lands in its own
// 64-column word (scattered columns, compression nnz(C) / products ~ 1), marking and scanning
// the bitmap cost more than the products (profiled: ~540 of ~860 us on rectangular-2500).
// Here there is no symbolic pass:
//   1. products per row (flops, an exact upper bound on the row's entries) in O(nnz(A)) from
//      B's row lengths; rows cut into one contiguous run per thread of equal flops + rows;
//   2. each thread computes its rows straight into C's arrays, sized for all products
//      (threads 0 and 1 meeting at thread 0's products, see multiply_onepass; threads 2 and
//      up into buffers kept between calls): a per-column value and stamp (the row that last
//      touched it) collect the row's distinct columns in a touched list, which is sorted (by
//      rank for short lists; for long ones from a bitmap of the columns, the set bits over the
//      list's span, or by std::sort) and written, with its values, at the thread's running
//      offset;
//   3. row offsets moved to C's start; threads 2 and up copy their rows in; C's arrays are
//      compacted only where under half full (see multiply_onepass).
// Sums run in the order of A's entries, as in the two-phase kernel, so each row's values do
// not depend on the thread count.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "hpc/bitmap_emit.hpp"
#include "hpc/caches.hpp"
#include "hpc/checks.hpp"
#include "hpc/owned.hpp"
#include "hpc/registry.hpp"
#include "hpc/stream_rows.hpp"
#include "hpc/thread_model.hpp"

namespace {
using hpc::carray;
using std::int64_t;

template <typename I>
struct View {
  const I* P;
  const I* J;
  const double* V;
  int64_t nrows, ncols;
};

constexpr int64_t kPad = 16;  // slack after a row's list for emit_rank's padding
static_assert(kPad >= hpc::kSlack, "emit_word writes up to kSlack past a row's list");

// Per-thread scratch, kept between calls (OpenMP's threads persist): values and stamps over
// B's columns, and a row's touched-column list. A row's stamp is a fresh counter value, so
// the stamps need zeroing only when the counter wraps.
//
// For short rows a column's sum and stamp sit side by side (16 bytes), so a product's random
// access to its column touches one cache line, not one in a value array and one in a stamp
// array (long rows keep the two arrays: see the end of onepass_row). 1 thread,
// thread CPU time, median of 31 alternating calls, load 7-9, against the two arrays:
// rectangular-13000 2.92 against 3.98 ms, rectangular-2500 0.41 / 0.54, unsymmetric-13000
// 4.82 / 5.40, uniform-100000 101 / 127, denserows-13000 2.08 / 2.31, 1138_bus 0.21 / 0.22.
struct Slot {
  double v;    // the row's sum for this column
  uint32_t s;  // stamp of the row that last touched this column
  uint32_t pad;
};

// A row's columns: sums and stamps in slots (short rows) or in two arrays (long rows).
struct SlotCols {
  Slot* __restrict p;
  bool fresh(int64_t c, uint32_t st) const {  // first touch of c in this row: stamps it
    if (p[c].s == st) return false;
    p[c].s = st;
    return true;
  }
  double& val(int64_t c) const { return p[c].v; }
};
struct SplitCols {
  double* __restrict v;
  uint32_t* __restrict m;
  bool fresh(int64_t c, uint32_t st) const {
    if (m[c] == st) return false;
    m[c] = st;
    return true;
  }
  double& val(int64_t c) const { return v[c]; }
};

template <typename I>
struct Scratch {
  std::vector<Slot> slot;       // short rows' sums and stamps (see Slot)
  std::vector<double> acc;      // long rows' sums
  std::vector<uint32_t> mark;   // and stamps
  std::vector<uint64_t> bits;   // and their columns as bits (zero between rows)
  std::vector<I> list;
  std::vector<int16_t> key;  // the list as 16-bit offsets from its least column (emit_rank16)
  // the thread's compacted rows before they are copied into C (kept, so their pages are
  // touched once and not on every call: fresh pages cost ~175 page faults, 0.26 ms, per
  // rectangular-2500 product, a third of the call)
  I* oc = nullptr;
  double* ov = nullptr;
  int64_t cap = 0;
  uint32_t stamp = 0;
  ~Scratch() { release(); }
  void release() {
    std::free(oc);
    std::free(ov);
    oc = nullptr;
    ov = nullptr;
    cap = 0;
  }
  bool reserve(int64_t need) {
    if (need <= cap) return true;
    release();
    const int64_t c = need + need / 4;
    oc = static_cast<I*>(std::malloc(sizeof(I) * c));
    ov = static_cast<double*>(std::malloc(sizeof(double) * c));
    if (!oc || !ov) {
      release();
      return false;
    }
    cap = c;
    return true;
  }
  void ensure(int64_t ncols, int64_t maxlen) {
    if (int64_t(acc.size()) < ncols) {
      slot.assign(ncols, Slot{0.0, 0u, 0u});
      acc.resize(ncols);
      mark.assign(ncols, 0u);
      bits.assign(ncols / 64 + 1, 0u);
      stamp = 0;
    }
    if (int64_t(list.size()) < maxlen + kPad) {  // emit_rank pads
      list.resize(maxlen + kPad);
      key.resize(maxlen + kPad);
    }
  }
  uint32_t next() {
    if (++stamp == 0) {
      for (Slot& x : slot) x.s = 0u;
      std::fill(mark.begin(), mark.end(), 0u);
      stamp = 1;
    }
    return stamp;
  }
};

template <typename I>
Scratch<I>& scratch() {
  static thread_local Scratch<I> s;
  return s;
}

// How a row's touched list is put in column order (stats: rows per method).
enum Emit : int { kEmpty = 0, kCopy = 1, kRank = 2, kScan = 3, kSort = 4, kEmits = 5 };

// Rank sort: each column's place is the count of smaller ones in the list (the columns are
// distinct): len^2 compares, but branch-free and vectorised, so no mispredicted branch (an
// insertion sort mispredicts about once per entry, std::sort about half its compares). The
// list is padded to a whole number of vectors with the largest index, never counted, so
// there is no scalar tail loop. Measured against std::sort on unsymmetric-2500 (rows of ~49
// columns, 1 thread): 1.1 against 3.4 ms for the whole product.
template <typename I, typename Cols>
inline void emit_rank(I* __restrict list, int64_t len, const Cols& acc,
                      I* __restrict oc, double* __restrict ov) {
#if defined(__AVX2__)
  // W columns at a time against every column of the list (one broadcast load, a compare and
  // a subtract per list entry): no horizontal sum per column. The list is padded to a whole
  // number of vectors; the pads' ranks are computed and not used.
  constexpr int64_t W = 32 / sizeof(I);  // lanes per 256-bit vector
  const int64_t padded = (len + W - 1) / W * W;
  for (int64_t b = len; b < padded; ++b) list[b] = std::numeric_limits<I>::max();
  alignas(32) I rank[W];
  for (int64_t a = 0; a < padded; a += W) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(list + a));
    __m256i cnt = _mm256_setzero_si256();
    for (int64_t b = 0; b < len; ++b) {
      if constexpr (sizeof(I) == 4)
        cnt = _mm256_sub_epi32(cnt, _mm256_cmpgt_epi32(xv, _mm256_set1_epi32(list[b])));
      else
        cnt = _mm256_sub_epi64(cnt, _mm256_cmpgt_epi64(xv, _mm256_set1_epi64x(list[b])));
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(rank), cnt);
    const int64_t m = std::min<int64_t>(W, len - a);
    for (int64_t u = 0; u < m; ++u) {
      const I x = list[a + u];
      oc[rank[u]] = x;
      ov[rank[u]] = acc.val(x);
    }
  }
#else
  for (int64_t a = 0; a < len; ++a) {
    const I x = list[a];
    I r = 0;
    for (int64_t b = 0; b < len; ++b) r += I(list[b] < x);
    oc[r] = x;
    ov[r] = acc.val(x);
  }
#endif
}

#if defined(__AVX2__)
// emit_rank on 16-bit keys (column - lo, where the list's span is below 2^15 - 1): 16 lanes
// a vector instead of 8, so half the compares of the int32 ranks.
template <typename I, typename Cols>
inline void emit_rank16(int16_t* __restrict key, int64_t len, I lo, const Cols& acc, I* __restrict oc, double* __restrict ov) {
  constexpr int64_t W = 16;
  const int64_t padded = (len + W - 1) / W * W;
  for (int64_t b = len; b < padded; ++b) key[b] = std::numeric_limits<int16_t>::max();
  alignas(32) int16_t rank[W];
  for (int64_t a = 0; a < padded; a += W) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(key + a));
    __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
    int64_t b = 0;
    for (; b + 1 < len; b += 2) {  // two chains: the subtracts' latency overlaps
      c0 = _mm256_sub_epi16(c0, _mm256_cmpgt_epi16(xv, _mm256_set1_epi16(key[b])));
      c1 = _mm256_sub_epi16(c1, _mm256_cmpgt_epi16(xv, _mm256_set1_epi16(key[b + 1])));
    }
    if (b < len) c0 = _mm256_sub_epi16(c0, _mm256_cmpgt_epi16(xv, _mm256_set1_epi16(key[b])));
    _mm256_store_si256(reinterpret_cast<__m256i*>(rank), _mm256_add_epi16(c0, c1));
    const int64_t m = std::min<int64_t>(W, len - a);
    for (int64_t u = 0; u < m; ++u) {
      const I x = I(lo + key[a + u]);
      oc[rank[u]] = x;
      ov[rank[u]] = acc.val(x);
    }
  }
}
#endif

// Column-order choice for a long row's list of len > rank_max distinct columns over `words`
// 64-column words of its span, in L1 operations as spgemm.cpp's choose_bin weighs them: the
// bitmap's linear scan costs 2 a word (load, clear) + 4 a touched word (its bits emitted) + 2
// an entry (the copy with its sum); a comparison sort 2 len log2(len) (a compare is a likely
// mispredicted branch) + 1 an entry (its bit cleared).
inline bool bitmap_cheaper(int64_t len, int64_t words) {
  const double scan = 2.0 * double(words) + 4.0 * double(std::min(len, words)) + 2.0 * double(len);
  return scan <= 2.0 * double(len) * std::log2(double(len)) + double(len);
}

constexpr int kAhead = 8;  // A's entries ahead whose B row is prefetched (as in spgemm.cpp)

// Row i of C into (oc, ov), or where Back, ending at (oc, ov); returns its entry count and adds
// 1 to emits[method]. next: A's first entry of the row computed after this one (i + 1's, or
// i - 1's where the rows run backwards), whose B rows are prefetched after this row's.
template <typename I, bool Back>
int64_t onepass_row(const View<I>& A, const View<I>& B, int64_t i, Scratch<I>& S,
                    int64_t rank_max, I* __restrict oc, double* __restrict ov,
                    int64_t* emits, I next) {
  const I* const Ai = A.J;
  const double* const Av = A.V;
  const I* const Bp = B.P;
  const I* const Bi = B.J;
  const double* const Bv = B.V;
  const I pa = A.P[i], pe = A.P[i + 1];
  const I annz = A.P[A.nrows];
  if (pe == pa) {
    ++emits[kEmpty];
    return 0;
  }
  if (pe - pa == 1) {  // C(i,:) = a B(k,:), already in order
    const int64_t k = Ai[pa];
    const double a = Av[pa];
    const I q0 = Bp[k], q1 = Bp[k + 1];
    if (Back) {
      oc -= q1 - q0;
      ov -= q1 - q0;
    }
    for (I q = q0; q < q1; ++q) {
      oc[q - q0] = Bi[q];
      ov[q - q0] = a * Bv[q];
    }
    ++emits[q1 > q0 ? kCopy : kEmpty];  // as the two-phase kernel counts them
    return q1 - q0;
  }
  // The row's least and greatest candidate column and its products, from B's row pointers and
  // the first and last column of every B row it reads (B's rows are sorted; the loads also
  // bring those rows' first lines in). Knowing the span before the products lets a short row
  // write its list straight as 16-bit keys: reading a list back (for its span, then for the
  // keys) right after its scalar stores stalled on store forwarding (perf,
  // unsymmetric-13000, 1 thread: 16 % of the samples on the min/max loop, then 14 % on the
  // key conversion once the min/max came from here).
  I lo = std::numeric_limits<I>::max(), hi = std::numeric_limits<I>::min();
  int64_t prods = 0;
  for (I p = pa; p < pe; ++p) {
    const int64_t k = Ai[p];
    const I b0 = Bp[k], b1 = Bp[k + 1];
    if (b1 > b0) {
      lo = std::min(lo, Bi[b0]);
      hi = std::max(hi, Bi[b1 - 1]);
      prods += b1 - b0;
    }
  }
  if (prods == 0) return 0;
  const uint32_t st = S.next();
  // the rest with the columns' sums and stamps in acc (SlotCols or SplitCols)
  auto body = [&](const auto& acc) -> int64_t {
  // Gustavson's accumulation in A's entry order; each new column is passed to put(c)
  auto gather = [&](auto put) {
    int64_t len = 0;
    const I skip = next - pe;  // past the row's end, the prefetch goes on at `next`
    for (I p = pa; p < pe; ++p) {
      I ahead = p + kAhead;
      if (ahead >= pe) ahead += skip;
      if (ahead < annz) {
        const I q = Bp[Ai[ahead]];
        __builtin_prefetch(Bi + q);
        __builtin_prefetch(Bv + q);
      }
      const int64_t k = Ai[p];
      const double a = Av[p];
      const I* q = Bi + Bp[k];
      const I* const e = Bi + Bp[k + 1];
      const double* v = Bv + Bp[k];
      for (; q < e; ++q, ++v) {
        const I c = *q;
        if (acc.fresh(c, st)) {
          put(len++, c);
          acc.val(c) = 0.0;  // then += as the two-phase kernel's zeroed accumulator: same sums
        }
        acc.val(c) += a * *v;
      }
    }
    return len;
  };
#if defined(__AVX2__)
  if (prods <= rank_max && int64_t(hi) - int64_t(lo) < std::numeric_limits<int16_t>::max()) {
    int16_t* __restrict key = S.key.data();
    const int64_t len = gather([&](int64_t j, I c) { key[j] = int16_t(c - lo); });
    if (Back) {
      oc -= len;
      ov -= len;
    }
    emit_rank16(key, len, lo, acc, oc, ov);
    ++emits[kRank];
    return len;
  }
#endif
  I* __restrict list = S.list.data();
  // a long row (two arrays) also marks its columns in the bitmap, for the bitmap emission
  constexpr bool kMarks = std::is_same_v<std::decay_t<decltype(acc)>, SplitCols>;
  uint64_t* __restrict bits = S.bits.data();
  const int64_t len = gather([&](int64_t j, I c) {
    list[j] = c;
    if constexpr (kMarks) bits[c >> 6] |= uint64_t(1) << (c & 63);
  });
  auto unmark = [&] {  // the bitmap back to zero where the list is ordered another way
    if constexpr (kMarks)
      for (int64_t j = 0; j < len; ++j) bits[list[j] >> 6] = 0;
  };
  if (Back) {
    oc -= len;
    ov -= len;
  }
  if (len <= rank_max) {
    unmark();
#if defined(__AVX2__)
    if (int64_t(hi) - int64_t(lo) < std::numeric_limits<int16_t>::max()) {
      int16_t* const key = S.key.data();
      for (int64_t j = 0; j < len; ++j) key[j] = int16_t(list[j] - lo);
      emit_rank16(key, len, lo, acc, oc, ov);
      ++emits[kRank];
      return len;
    }
#endif
    emit_rank(list, len, acc, oc, ov);
    ++emits[kRank];
    return len;
  }
  const int64_t w0 = int64_t(lo) >> 6, w1 = int64_t(hi) >> 6;
  if (kMarks && bitmap_cheaper(len, w1 - w0 + 1)) {
    hpc::emit_words(bits, w0, w1, list);  // the list in order (kPad covers kSlack)
    ++emits[kScan];
  } else {
    unmark();
    std::sort(list, list + len);
    ++emits[kSort];
  }
  for (int64_t j = 0; j < len; ++j) {
    oc[j] = list[j];
    ov[j] = acc.val(list[j]);
  }
  return len;
  };
  // Slots where the row is short (few products, scattered columns: one cache line per
  // product instead of two); two arrays where it is long (many products per column: the
  // stamp test then waited on the previous product's store to the same slot; dwt_992 1.46x
  // and bcsstk13 1.15x slower in slots, thread CPU time, median of 21, load 8).
  if (prods <= rank_max) return body(SlotCols{S.slot.data()});
  return body(SplitCols{S.acc.data(), S.mark.data()});
}

// The product's arrays: malloc'd, handed to NumPy, which frees them.
template <typename I, typename O>
struct Result {
  O* indptr = nullptr;
  I* idx = nullptr;  // C's arrays, inside the allocations idx_base and val_base (freed by NumPy)
  double* val = nullptr;
  I* idx_base = nullptr;
  double* val_base = nullptr;
  int64_t nnz = 0, products = 0;
  int threads = 1;
  bool streamed = false;
  int64_t emits[kEmits] = {0, 0, 0, 0, 0};
  double t_plan = 0, t_rows = 0, t_join = 0;
  // per thread (HPC_ONEPASS_TIMERS=1 only): start of its rows after the region's start, its
  // rows' wall and CPU seconds, its copy's wall seconds, its products
  std::vector<double> timers;
};

// Per-thread timers in stats["thread_timers"], read once from HPC_ONEPASS_TIMERS (a diagnostic:
// a CPU-clock read is a system call).
inline bool timers_on() {
  static const bool on = [] {
    const char* e = std::getenv("HPC_ONEPASS_TIMERS");
    return e && *e && *e != '0';
  }();
  return on;
}

inline double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

constexpr int kTimers = 5;

// Largest row buffer a thread keeps between calls (entries): 4M, 48 MiB with int32 indices.
constexpr int64_t kKeep = int64_t(1) << 22;

// Rows of each thread's run: weight flops + kRowCost per row (a row's fixed cost, in products).
constexpr int64_t kRowCost = 2;

// Step 1: flops per row (w[i + 1] = flops + kRowCost, prefix-summed) and each thread's run.
struct Plan {
  std::vector<int64_t> w, cut;
  int64_t total = 0, maxrow = 0;
  int threads = 1;
  int64_t flops_of(int64_t r0, int64_t r1) const { return (w[r1] - w[r0]) - kRowCost * (r1 - r0); }
};

template <typename I>
Plan make_plan(const View<I>& A, const View<I>& B, int threads) {
  const int64_t n = A.nrows;
  Plan L;
  L.threads = threads;
  L.w.assign(n + 1, 0);
  int64_t* const w = L.w.data();
  int64_t maxrow = 0;
#pragma omp parallel for schedule(static) reduction(max : maxrow) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    int64_t f = 0;
    for (I p = A.P[i]; p < A.P[i + 1]; ++p) {
      const int64_t k = A.J[p];
      f += int64_t(B.P[k + 1]) - int64_t(B.P[k]);
    }
    w[i + 1] = f + kRowCost;
    maxrow = std::max(maxrow, f);
  }
  for (int64_t i = 0; i < n; ++i) w[i + 1] += w[i];
  L.total = w[n] - kRowCost * n;
  L.maxrow = maxrow;
  L.cut.assign(threads + 1, n);
  L.cut[0] = 0;
  for (int t = 1; t < threads; ++t) {
    const int64_t target = w[n] / threads * t + w[n] % threads * t / threads;  // no overflow
    L.cut[t] = std::lower_bound(L.w.begin(), L.w.end(), target) - L.w.begin();
  }
  return L;
}

// Whether C's rows are written through StreamRows (non-temporal stores), from the operands'
// sizes: where the working set the rows touch at random (the per-column slots and B) and C's
// room both exceed this core's L2, C's lines would only push that working set out of it (and
// be read in before being written). multiply_onepass also asks that C's pages be in memory
// already (hpc::pages_resident). Measured, 1 thread, into resident pages, the rows'
// time: denserows-100000 (working set 7 MiB on a 2 MiB L2) 33-37 ms with plain stores, 21-23
// ms streamed; uniform-13000 (1.5 MiB) is not streamed, and in a standalone model streaming
// such a product was 10% slower.
template <typename I>
bool stream_pays(const View<I>& B, int64_t products) {
  const int64_t l2 = hpc::caches().l2;
  const int64_t entry = int64_t(sizeof(I) + sizeof(double));
  const int64_t work = B.ncols * int64_t(sizeof(Slot)) + int64_t(B.P[B.nrows]) * entry;
  return work > l2 && products * entry > l2;
}

// Steps 2 and 3 (row offsets of type O: the index type where every product fits in it).
//
// C's arrays are allocated for every product (an upper bound on nnz(C)). At one thread the
// rows are written there in order. At two threads or more, thread 0 writes its rows
// backwards, ending at F1 (its run's products), and thread 1 forwards from F1, so their rows
// meet there with no copy: C is the span [F1 - nnz0, F1 + nnz1) of the arrays, handed to NumPy
// at that offset. (The copy of thread 1's rows into C behind thread 0's had cost thread 1
// about a fifth of its rows' time while thread 0 waited: unsymmetric-13000, 0.59 ms after
// 3.2 ms of rows, HPC_ONEPASS_TIMERS.) Threads 2 and up write into their own buffers, copied
// in behind. Where C fills under half its room, the room's tail past C is trimmed in place
// (realloc), so the result holds g + nnz(C) entries; only where that is still over twice
// nnz(C) (thread 0's rows far under its products) does each thread copy its rows into arrays
// of nnz(C) (one huge product must not hold its products' memory). (The copy had cost each
// thread a fifth of its rows' time on ani4, 0.033 after 0.15 ms, HPC_ONEPASS_TIMERS; its
// products are 2.6x nnz(C), thread 0's g = 44k against nnz(C) = 56k.)
template <typename I, typename O>
void multiply_onepass(const View<I>& A, const View<I>& B, const Plan& L, int64_t rank_max,
                      int stream, Result<I, O>& R) {
  const int64_t n = A.nrows;
  const int threads = L.threads;
  const int64_t total = L.total;
  const std::vector<int64_t>& cut = L.cut;
  R.products = total;
  R.threads = threads;
  auto flops_of = [&](int64_t r0, int64_t r1) { return L.flops_of(r0, r1); };
  std::vector<int64_t> cnt(threads, 0), base(threads + 1, 0);
  const int64_t maxlen = std::min<int64_t>(L.maxrow, B.ncols);
  O* indptr = static_cast<O*>(std::malloc(sizeof(O) * (n + 1)));
  const int64_t room = std::max<int64_t>(total, 1);
  I* cidx = static_cast<I*>(std::malloc(sizeof(I) * room));
  double* cval = static_cast<double*>(std::malloc(sizeof(double) * room));
  bool oom = !indptr || !cidx || !cval;
  // stream: 1 forced, 0 off, -1 where it pays (stream_pays) and C's pages are present
  const bool streamed = stream > 0 || (stream < 0 && !oom && stream_pays(B, total) &&
                                       hpc::pages_resident(cidx, sizeof(I) * room) &&
                                       hpc::pages_resident(cval, sizeof(double) * room));
  R.streamed = streamed;
  // where threads 0 and 1 meet (buffer coordinates); C starts at g = F1 - nnz0
  const int64_t F1 = threads > 1 ? flops_of(cut[0], cut[1]) : 0;
  int64_t g = 0;
  I* fidx = nullptr;  // the compacted arrays where C is under half its room
  double* fval = nullptr;
  std::vector<int64_t> emits(int64_t(threads) * kEmits, 0);
  const bool timed = timers_on();
  if (timed) R.timers.assign(int64_t(threads) * kTimers, 0.0);
  double t1 = omp_get_wtime(), t2 = t1;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    double* const tm = timed ? R.timers.data() + int64_t(t) * kTimers : nullptr;
    const int64_t r0 = cut[t], r1 = cut[t + 1];
    Scratch<I>& S = scratch<I>();
    bool ok = !oom;
    try {
      S.ensure(B.ncols, maxlen);
      ok = ok && (t < 2 || S.reserve(std::max<int64_t>(flops_of(r0, r1), 1)));
    } catch (const std::bad_alloc&) {
      ok = false;
    }
    if (!ok) {
#pragma omp atomic write
      oom = true;
    }
#pragma omp barrier
    int64_t j = 0;
    if (!oom) {
      // the thread's own counters, added to emits at the end: counted into emits itself, the
      // threads' counters could share a cache line, written every row by both (denserows-2500
      // at 2 threads: 150-165 us of rows a thread where they did, 90 where not)
      int64_t em[kEmits] = {0, 0, 0, 0, 0};
      double w0 = 0, c0 = 0;
      if (tm) {
        w0 = omp_get_wtime();
        c0 = cpu_now();
      }
      // a row's products (L.w) bound its entries
      if (t == 0 && threads > 1) {  // backwards, ending at F1; indptr[i]: row i's start
        hpc::StreamRows<I, true> W(cidx, cval, F1, streamed);
        indptr[r1] = O(F1);
        for (int64_t i = r1 - 1; i >= r0; --i) {
          const I next = A.P[i > 0 ? i - 1 : i];
          const auto [oc, ov] = W.room(L.flops_of(i, i + 1));
          W.wrote(onepass_row<I, true>(A, B, i, S, rank_max, oc, ov, em, next));
          indptr[i] = O(W.pos());
        }
        W.finish();
        j = F1 - W.pos();
      } else {  // forwards, at F1 (thread 1), 0 (one thread) or into the thread's buffer
        const int64_t at = t == 1 ? F1 : 0;
        hpc::StreamRows<I, false> W(t < 2 ? cidx : S.oc, t < 2 ? cval : S.ov, at, streamed);
        for (int64_t i = r0; i < r1; ++i) {
          const auto [oc, ov] = W.room(L.flops_of(i, i + 1));
          W.wrote(onepass_row<I, false>(A, B, i, S, rank_max, oc, ov, em, A.P[i + 1]));
          indptr[i + 1] = O(W.pos());
        }
        W.finish();
        j = W.pos() - at;
      }
      std::copy(em, em + kEmits, emits.begin() + int64_t(t) * kEmits);
      if (tm) {
        tm[0] = w0 - t1;
        tm[1] = omp_get_wtime() - w0;
        tm[2] = cpu_now() - c0;
        tm[4] = double(flops_of(r0, r1));
      }
    }
    cnt[t] = j;
#pragma omp barrier
#pragma omp single
    {
      for (int u = 0; u < threads; ++u) base[u + 1] = base[u] + cnt[u];
      if (threads > 1) {
        g = F1 - cnt[0];
        // C is [g, g + nnz) of the room; the tail past it is trimmed below (in place), so
        // the result holds g + nnz: copied into arrays of nnz only where that is over 2 nnz
        if (!oom && 2 * base[threads] < g + base[threads]) {
          const int64_t keep = std::max<int64_t>(base[threads], 1);
          fidx = static_cast<I*>(std::malloc(sizeof(I) * keep));
          fval = static_cast<double*>(std::malloc(sizeof(double) * keep));
          if (!fidx || !fval) {  // keep the room instead
            std::free(fidx);
            std::free(fval);
            fidx = nullptr;
            fval = nullptr;
          }
        }
      }
      t2 = omp_get_wtime();
    }
    if (!oom && threads > 1) {
      const double w3 = tm ? omp_get_wtime() : 0.0;
      // this thread's rows: where they are, and where C wants them (from C's start)
      const I* src = t == 0 ? cidx + g : t == 1 ? cidx + F1 : S.oc;
      const double* srv = t == 0 ? cval + g : t == 1 ? cval + F1 : S.ov;
      if (fidx) {
        std::memcpy(fidx + base[t], src, sizeof(I) * cnt[t]);
        std::memcpy(fval + base[t], srv, sizeof(double) * cnt[t]);
      } else if (t > 1) {
        std::memcpy(cidx + g + base[t], src, sizeof(I) * cnt[t]);
        std::memcpy(cval + g + base[t], srv, sizeof(double) * cnt[t]);
      }
      if (t < 2) {  // buffer coordinates -> C's
        const O d = O(g);
        for (int64_t i = t == 0 ? r0 : r0 + 1; i <= r1; ++i) indptr[i] -= d;
      } else {
        const O b = O(base[t]);
        for (int64_t i = r0; i < r1; ++i) indptr[i + 1] += b;
      }
      if (tm) tm[3] = omp_get_wtime() - w3;
    }
    // a buffer far above what this product needs is returned (one huge product must not
    // hold its memory for the process's life); the rest are kept for the next call
    if (S.cap > kKeep) S.release();
  }
  if (oom) {
    std::free(cidx);
    std::free(cval);
    std::free(indptr);
    throw std::bad_alloc();
  }
  indptr[0] = 0;
  const int64_t nnz = base[threads];
  R.idx_base = cidx;
  R.val_base = cval;
  if (fidx) {
    std::free(cidx);
    std::free(cval);
    R.idx_base = cidx = fidx;
    R.val_base = cval = fval;
  } else if (threads > 1) {
    if (2 * nnz < room) {  // the tail trimmed in place (no copy), as at one thread below
      const int64_t keep = std::max<int64_t>(g + nnz, 1);
      if (void* q = std::realloc(cidx, sizeof(I) * keep)) cidx = static_cast<I*>(q);
      if (void* q = std::realloc(cval, sizeof(double) * keep)) cval = static_cast<double*>(q);
      R.idx_base = cidx;
      R.val_base = cval;
    }
    cidx += g;
    cval += g;
  } else if (2 * nnz < room) {
    // Shrunk (one thread) only where C is under half its room: a chunk freed at its full
    // size raises glibc's mmap threshold to it, so the next call's arrays come from the
    // heap; a shrunk one would be mapped afresh every call and fault in every page
    // (measured: ~175 page faults, a third of a rectangular-2500 product).
    const int64_t keep = std::max<int64_t>(nnz, 1);
    if (void* q = std::realloc(cidx, sizeof(I) * keep)) cidx = static_cast<I*>(q);
    if (void* q = std::realloc(cval, sizeof(double) * keep)) cval = static_cast<double*>(q);
    R.idx_base = cidx;
    R.val_base = cval;
  }
  R.indptr = indptr;
  R.idx = cidx;
  R.val = cval;
  R.nnz = nnz;
  for (int u = 0; u < threads; ++u)
    for (int e = 0; e < kEmits; ++e) R.emits[e] += emits[int64_t(u) * kEmits + e];
  R.t_rows = t2 - t1;
  R.t_join = omp_get_wtime() - t2;
}

hpc::ThreadModel g_threads;  // this kernel's own thread choice (measured, per work size)

// Default largest list sorted by rank (see emit_rank; measured below std::sort's cost up to it).
constexpr int64_t kRankMax = 96;

template <typename I, typename O>
py::dict run_rows(const View<I>& A, const View<I>& B, const Plan& L, int64_t rank_max,
                  int stream, py::array& indptr, py::array& indices, py::array& data,
                  double t_plan) {
  Result<I, O> R;
  {
    py::gil_scoped_release nogil;
    multiply_onepass<I, O>(A, B, L, rank_max, stream, R);
  }
  py::dict stats;
  stats["products"] = R.products;
  stats["onepass"] = true;
  stats["threads"] = R.threads;
  stats["rows_empty"] = R.emits[kEmpty];
  stats["rows_copy"] = R.emits[kCopy];
  stats["rows_rank"] = R.emits[kRank];
  stats["rows_scan"] = R.emits[kScan];
  stats["rows_sort"] = R.emits[kSort];
  stats["streamed"] = R.streamed;
  stats["plan_s"] = t_plan;
  stats["rows_s"] = R.t_rows;
  stats["join_s"] = R.t_join;
  if (!R.timers.empty()) {
    py::list tl;
    for (int u = 0; u < R.threads; ++u) {
      py::list row;
      for (int e = 0; e < kTimers; ++e) row.append(R.timers[int64_t(u) * kTimers + e]);
      tl.append(row);
    }
    stats["thread_timers"] = tl;  // per thread: start, rows wall, rows CPU, copy wall, products
  }
  indices = hpc::owned(R.idx_base, R.idx, R.nnz);
  data = hpc::owned(R.val_base, R.val, R.nnz);
  indptr = hpc::owned(R.indptr, R.indptr, A.nrows + 1);
  return stats;
}

template <typename I>
py::tuple run(const View<I>& A, const View<I>& B, int threads, bool fixed, int64_t rank_max,
              int stream) {
  const double est = double(A.P[A.nrows]) * double(B.P[B.nrows]) /
                     double(std::max<int64_t>(B.nrows, 1));
  // the operands' own class in the model (a size class alone mixes matrices of unlike cost)
  const uint64_t key =
      hpc::ThreadModel::key_of({A.nrows, A.ncols, int64_t(A.P[A.nrows]), B.ncols,
                                int64_t(B.P[B.nrows])});
  const double t0 = omp_get_wtime();
  Plan L;
  {
    py::gil_scoped_release nogil;
    L = make_plan(A, B, fixed ? threads : g_threads.choose(est, threads, key));
  }
  const double t_plan = omp_get_wtime() - t0;
  if (rank_max < 0) rank_max = kRankMax;
  py::array indptr, indices, data;
  // row offsets in I where every product fits (nnz(C) <= products), else int64
  py::dict stats =
      L.total <= int64_t(std::numeric_limits<I>::max())
          ? run_rows<I, I>(A, B, L, rank_max, stream, indptr, indices, data, t_plan)
          : run_rows<I, int64_t>(A, B, L, rank_max, stream, indptr, indices, data, t_plan);
  if (!fixed) g_threads.record(omp_get_wtime() - t0, L.threads, est, key);
  return py::make_tuple(indptr, indices, data, stats);
}

// Whether this kernel suits a product, from a sample of A's rows (every row up to kSampleRows, else
// rows evenly spaced, as many as hold about kSampleEntries entries; each read bounds-checked, since
// the operands are not validated yet): per row its products p, the span of its candidate columns
// (from the first and last column of every B row it reads: B's rows are sorted) and the products
// from B rows that are one run of columns. A row suits the one-pass kernel where its output is
// short enough for the rank sort: p <= rank_max, or span <= rank_max where under half its products
// come from runs (those the two-phase kernel adds as vectorised axpys: banded, block). The kernel
// is chosen where such rows hold at least half of the sampled products. Measured (1 and 2 threads,
// median of 5, load 2-9, against the two-phase kernel): faster on every family and file so chosen
// (uniform, unsymmetric, rectangular, denserows; 1138_bus, ani4, dwt_992, jagmesh7), slower on
// those not (banded, block: axpy rows; powerlaw, R-MAT, bcsstk13, pushpull: long rows, where the
// rank sort's len^2 compares do not pay). Returns (chosen, estimated products of the whole product,
// the share).
constexpr int64_t kSample = 4096;
constexpr int64_t kSampleRows = 512;
constexpr int64_t kSampleEntries = 4096;

template <typename I>
py::tuple suits(py::array ap, py::array ai, py::array bp, py::array bi, int64_t n, int64_t k,
                int64_t rank_max) {
  auto aptr = hpc::exact<I>(ap, "spgemm_onepass A indptr");
  auto aidx = hpc::exact<I>(ai, "spgemm_onepass A indices");
  auto bptr = hpc::exact<I>(bp, "spgemm_onepass B indptr");
  auto bidx = hpc::exact<I>(bi, "spgemm_onepass B indices");
  hpc::require_1d(aptr, n + 1, "spgemm_onepass A indptr");
  hpc::require_1d(bptr, k + 1, "spgemm_onepass B indptr");
  if (rank_max < 0) rank_max = kRankMax;
  const I* AP = aptr.data();
  const I* AJ = aidx.data();
  const I* BP = bptr.data();
  const I* BJ = bidx.data();
  const int64_t alen = aidx.shape(0), blen = bidx.shape(0);
  // rows read: all up to kSampleRows, else about kSampleEntries of A's entries' worth (the
  // scan costs ~2 ns an entry: all 3081 rows of ani4 took 36 us, a fifth of its 2-thread
  // product), between kSampleRows and kSample rows
  const int64_t stored = std::min<int64_t>(alen, int64_t(AP[n]) - int64_t(AP[0]));
  const int64_t per_row = std::max<int64_t>(1, stored / std::max<int64_t>(n, 1));
  const int64_t rows =
      std::min(n, std::clamp<int64_t>(kSampleEntries / per_row, kSampleRows, kSample));
  double prod = 0, fit = 0;
  for (int64_t s = 0; s < rows; ++s) {
    const int64_t i = rows == n ? s : s * n / rows;
    const int64_t p0 = AP[i], p1 = AP[i + 1];
    if (p0 < 0 || p1 < p0 || p1 > alen) hpc::fail("spgemm_onepass A indptr: not a CSR row pointer");
    int64_t p = 0, runs = 0, lo = std::numeric_limits<int64_t>::max(), hi = -1;
    for (int64_t q = p0; q < p1; ++q) {
      const int64_t c = AJ[q];
      if (c < 0 || c >= k) hpc::fail("spgemm_onepass A indices: out of range");
      const int64_t b0 = BP[c], b1 = BP[c + 1];
      if (b0 < 0 || b1 < b0 || b1 > blen) hpc::fail("spgemm_onepass B indptr: not a CSR row pointer");
      if (b1 == b0) continue;
      const int64_t first = BJ[b0], last = BJ[b1 - 1];
      p += b1 - b0;
      if (last - first == b1 - b0 - 1) runs += b1 - b0;
      lo = std::min(lo, first);
      hi = std::max(hi, last);
    }
    prod += double(p);
    if (p <= rank_max || (hi - lo < rank_max && 2 * runs < p)) fit += double(p);
  }
  const double share = prod > 0 ? fit / prod : 0.0;
  const double est = rows > 0 ? prod * double(n) / double(rows) : 0.0;
  return py::make_tuple(share >= 0.5, est, share);
}

// A fresh ThreadModel driven by a list of calls, for tests of its logic (no timing): each op
// is ("choose", est, threads, key, now) -> the choice is appended to the result, or
// ("record", seconds, threads, units, key, now).
py::list thread_model_replay(const py::list& ops) {
  hpc::ThreadModel model;
  py::list out;
  for (const py::handle& h : ops) {
    const py::tuple op = py::reinterpret_borrow<py::tuple>(h);
    const std::string kind = op[0].cast<std::string>();
    if (kind == "choose" && op.size() == 5) {
      out.append(model.choose(op[1].cast<double>(), op[2].cast<int>(), op[3].cast<uint64_t>(),
                              op[4].cast<double>()));
    } else if (kind == "record" && op.size() == 6) {
      model.record(op[1].cast<double>(), op[2].cast<int>(), op[3].cast<double>(),
                   op[4].cast<uint64_t>(), op[5].cast<double>());
    } else {
      hpc::fail("thread_model_replay: an op is (\"choose\", est, threads, key, now) or "
                "(\"record\", seconds, threads, units, key, now)");
    }
  }
  return out;
}

template <typename I>
py::tuple entry(py::array ap, py::array ai, py::array av, int64_t an, int64_t ak, py::array bp,
                py::array bi, py::array bv, int64_t bm, int threads, bool fixed_threads,
                int64_t rank_max, int stream) {
  if (an < 0 || ak < 0 || bm < 0) hpc::fail("spgemm_onepass: negative shape");
  if (threads < 1) hpc::fail("spgemm_onepass: threads must be >= 1");
  if (an >= int64_t(std::numeric_limits<I>::max()))
    hpc::fail("spgemm_onepass: too many rows for the index type");
  hpc::CheckedCsr<I> a(ap, ai, an, ak, "spgemm_onepass A");
  hpc::CheckedCsr<I> b(bp, bi, ak, bm, "spgemm_onepass B");
  auto avals = hpc::exact<double>(av, "spgemm_onepass A data");
  auto bvals = hpc::exact<double>(bv, "spgemm_onepass B data");
  hpc::require_1d(avals, -1, "spgemm_onepass A data");
  hpc::require_1d(bvals, -1, "spgemm_onepass B data");
  if (int64_t(avals.shape(0)) < a.nnz()) hpc::fail("spgemm_onepass A data: shorter than nnz");
  if (int64_t(bvals.shape(0)) < b.nnz()) hpc::fail("spgemm_onepass B data: shorter than nnz");
  const View<I> A{a.P, a.J, avals.data(), an, ak};
  const View<I> B{b.P, b.J, bvals.data(), ak, bm};
  return run<I>(A, B, threads, fixed_threads, rank_max, stream);
}
}  // namespace

HPC_SUBMODULE(spgemm_onepass) {
  m.doc() = "One-pass SpGEMM for products of short rows (row buffers, rank-sorted columns; OpenMP)";
  const char* doc =
      "multiply(a_indptr, a_indices, a_data, n, k, b_indptr, b_indices, b_data, m, threads, "
      "fixed_threads=False, rank_max=-1, stream=-1) -> (indptr, indices, data float64, stats). "
      "A is n x k, B is k x m, CSR with unique column indices per row, float64 data. Output "
      "columns ascending, summed in the order of A's entries. fixed_threads: run on exactly "
      "`threads` (else the measured thread model picks up to it). rank_max: longest row list "
      "sorted by rank (-1: automatic). stream: 1 writes C with non-temporal stores (rows staged "
      "in L1), 0 with plain stores, -1 where the working set and C exceed L2 and C's pages are "
      "in memory already (stats['streamed']).";
  m.def("multiply_i32", &entry<int32_t>, doc, py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("a_data"), py::arg("n"), py::arg("k"), py::arg("b_indptr"), py::arg("b_indices"),
        py::arg("b_data"), py::arg("m"), py::arg("threads"), py::arg("fixed_threads") = false,
        py::arg("rank_max") = -1, py::arg("stream") = -1);
  const char* sdoc =
      "suits(a_indptr, a_indices, b_indptr, b_indices, n, k, rank_max=-1) -> (chosen, "
      "products estimate, share): whether the one-pass kernel suits A @ B, from a sample of "
      "A's rows: the share of their products in rows whose output is short enough for the "
      "rank sort (at most rank_max products, or a column span of at most rank_max where under "
      "half the products come from B rows that are one run of columns); chosen where >= 0.5.";
  m.def("suits_i32", &suits<int32_t>, sdoc, py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("b_indptr"), py::arg("b_indices"), py::arg("n"), py::arg("k"),
        py::arg("rank_max") = -1);
  m.def("suits_i64", &suits<int64_t>, sdoc, py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("b_indptr"), py::arg("b_indices"), py::arg("n"), py::arg("k"),
        py::arg("rank_max") = -1);
  m.def("thread_model_replay", &thread_model_replay,
        "thread_model_replay(ops) -> list of choices: a fresh thread model (as the kernels "
        "use, native/include/hpc/thread_model.hpp) driven by ops, each (\"choose\", est, "
        "threads, key, now) or (\"record\", seconds, threads, units, key, now); now: wall "
        "seconds. For tests of the model's logic.",
        py::arg("ops"));
  m.def("multiply_i64", &entry<int64_t>, doc, py::arg("a_indptr"), py::arg("a_indices"),
        py::arg("a_data"), py::arg("n"), py::arg("k"), py::arg("b_indptr"), py::arg("b_indices"),
        py::arg("b_data"), py::arg("m"), py::arg("threads"), py::arg("fixed_threads") = false,
        py::arg("rank_max") = -1, py::arg("stream") = -1);
}
