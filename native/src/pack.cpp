// Packers for TEMPI's canonical strided blocks (hpc.halo.canonical.StridedBlock).
//
// A block is: start byte, counts[0] contiguous bytes, then counts[i] repetitions strides[i]
// bytes apart for i >= 1 (outermost slowest, the order MPI_Pack follows). pack() gathers the
// bytes into a contiguous buffer, unpack() scatters them back.
//
// Every block runs as 2-D "rows" calls: n runs of counts[0] bytes, one stride apart on the
// strided side and back to back on the packed side (dimensions >= 2 walk an odometer). One
// rows kernel serves pack and unpack (only the two strides swap). Runs of common lengths
// (1..256 bytes: an element, or the R*Q doubles of a halo's x face) have a compile-time
// length, runs of whole 64-byte pieces up to 8 KiB (y/z face rows) an inline loop, and the kernel holds every pointer and stride in a register: the loop is one load
// and one store per run. (The previous loop body was a lambda reading its captures by
// reference; every char store could alias them, so each 8-byte run re-loaded 9 values.)
//
// Plan (a fixed list of blocks, e.g. a halo's 26 faces) packs all blocks in ONE sweep over
// the source: each block is cut into pieces (one 2-D rows call per outer index, i.e. per
// plane of a 3-D face) and the pieces of all blocks run in order of their source address,
// so faces, edges and corners that touch the same plane run together while its cache lines
// are hot. Each piece writes its own block's packed offsets: the output is byte-identical to
// packing the blocks one after another (and to MPI_Pack). OpenMP splits large work: one
// block's outer rows, or a plan's sweep in contiguous byte ranges.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>
#include <unistd.h>
#include <pybind11/stl.h>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {
using std::int64_t;
using Vec = std::vector<int64_t>;
using uchar = unsigned char;

constexpr int64_t kParallelBytes = 1 << 18;     // below this, threads cost more than they save
constexpr int64_t kParallelAllBytes = 1 << 15;  // a plan's pieces split over threads
constexpr int64_t kMaxPieces = 1 << 16;         // per block; more and the block runs whole
constexpr int64_t kReleaseGil = 1 << 16;       // packs below this keep the GIL (see all())
constexpr int64_t kInlineRun = 8192;            // longer runs: copy_bytes per run
constexpr size_t kWindow = 64;  // runs per decision of the run list's copy kernel
constexpr int64_t kAhead = 8;  // runs prefetched ahead when each run is its own cache line
constexpr int64_t kTransRow = 512;    // transposes: bytes of a row per block (8 lines)
constexpr int64_t kTransBuf = 8192;   // transposes: the block's buffer (a quarter of L1)
constexpr int64_t kTransAhead = 16;   // transposes: rows prefetched ahead

// One short run (1..64 bytes) copied inline: two overlapping loads and stores of the largest
// power of two not above the length (no call, no loop). Block lists of application types
// (indexed atoms, mesh points) are thousands of such runs; a libc call each costs more.
inline void small_copy(uchar* __restrict d, const uchar* __restrict s, int64_t len) {
  if (len >= 32) {
    std::memcpy(d, s, 32);
    std::memcpy(d + len - 32, s + len - 32, 32);
  } else if (len >= 16) {
    std::memcpy(d, s, 16);
    std::memcpy(d + len - 16, s + len - 16, 16);
  } else if (len >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + len - 8, s + len - 8, 8);
  } else if (len >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + len - 4, s + len - 4, 4);
  } else {
    for (int64_t t = 0; t < len; ++t) d[t] = s[t];
  }
}

// len bytes copied with explicit 32-byte loads and stores (an overlapping last one), not
// libc's memcpy: glibc copies blocks from a few KiB up to its non-temporal threshold with
// `rep movsb`, which on AMD Zen 3 runs 10-17x slower when source and destination differ in
// their address mod 64 (measured here, 32 KiB: 0.63 us when they agree, 11.4 us 16 bytes
// apart; this loop 0.65 us either way). Packed buffers lie anywhere relative to the source,
// so one copy for every alignment. Huge runs go to libc (non-temporal stores pay there).
constexpr int64_t kLibcCopy = int64_t(4) << 20;
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))  // no memcpy call back
#endif
inline void copy_bytes(uchar* __restrict d, const uchar* __restrict s, int64_t len) {
  if (len <= 64) {
    small_copy(d, s, len);
    return;
  }
  if (len >= kLibcCopy) {
    std::memcpy(d, s, static_cast<size_t>(len));
    return;
  }
  int64_t w = 0;
  for (; w + 128 <= len; w += 128) {
    std::memcpy(d + w, s + w, 32);
    std::memcpy(d + w + 32, s + w + 32, 32);
    std::memcpy(d + w + 64, s + w + 64, 32);
    std::memcpy(d + w + 96, s + w + 96, 32);
  }
  for (; w + 32 <= len; w += 32) std::memcpy(d + w, s + w, 32);
  if (w < len) std::memcpy(d + len - 32, s + len - 32, 32);
}

// n runs of len bytes from s (stride ss) to d (stride ds). B > 0: len == B at compile time.
using RowsFn = void (*)(const uchar* __restrict s, int64_t ss, uchar* __restrict d,
                        int64_t ds, int64_t n, int64_t len);

template <int64_t B>
void rows(const uchar* __restrict s, int64_t ss, uchar* __restrict d, int64_t ds, int64_t n,
          int64_t len) {
  if constexpr (B == 0) {
    for (int64_t j = 0; j < n; ++j, s += ss, d += ds) copy_bytes(d, s, len);
  } else {
    (void)len;
    int64_t j = 0;
    // runs a cache line or more apart: each is a miss of its own, so the line kAhead runs on
    // is asked for now (the stride prefetchers stop at page ends and ramp up slowly)
    const bool far_s = ss >= 64 || ss <= -64, far_d = ds >= 64 || ds <= -64;
    // four runs per step: their loads are independent, so four cache misses overlap
    for (; j + 4 <= n; j += 4, s += 4 * ss, d += 4 * ds) {
      if (far_s && j + kAhead + 4 <= n)
        for (int q = 0; q < 4; ++q) __builtin_prefetch(s + (kAhead + q) * ss, 0);
      if (far_d && j + kAhead + 4 <= n)
        for (int q = 0; q < 4; ++q) __builtin_prefetch(d + (kAhead + q) * ds, 1);
      std::memcpy(d, s, B);
      std::memcpy(d + ds, s + ss, B);
      std::memcpy(d + 2 * ds, s + 2 * ss, B);
      std::memcpy(d + 3 * ds, s + 3 * ss, B);
    }
    for (; j < n; ++j, s += ss, d += ds) std::memcpy(d, s, B);
  }
}

// Runs of a run-time multiple of 64 bytes: 64-byte pieces inline (no libc call per run).
void rows_m64(const uchar* __restrict s, int64_t ss, uchar* __restrict d, int64_t ds,
              int64_t n, int64_t len) {
  const bool far_s = ss > len || ss < -len, far_d = ds > len || ds < -len;
  for (int64_t j = 0; j < n; ++j, s += ss, d += ds) {
    const bool ahead = j + 1 < n;  // the next run's lines asked for while this one copies
    for (int64_t w = 0; w < len; w += 64) {
      if (ahead && far_s) __builtin_prefetch(s + ss + w, 0);
      if (ahead && far_d) __builtin_prefetch(d + ds + w, 1);
      std::memcpy(d + w, s + w, 64);
    }
  }
}

RowsFn pick(int64_t len) {
  switch (len) {  // element sizes and R*Q element runs of halo faces
    case 1: return rows<1>;
    case 2: return rows<2>;
    case 4: return rows<4>;
    case 8: return rows<8>;
    case 12: return rows<12>;
    case 16: return rows<16>;
    case 24: return rows<24>;
    case 32: return rows<32>;
    case 40: return rows<40>;
    case 48: return rows<48>;
    case 56: return rows<56>;
    case 64: return rows<64>;
    case 72: return rows<72>;
    case 96: return rows<96>;
    case 128: return rows<128>;
    case 256: return rows<256>;
    default:  // long runs of whole 64-byte pieces (y/z face rows): inline, no libc call
      if (len % 64 == 0 && len <= kInlineRun) return rows_m64;
      return rows<0>;
  }
}

// Runs f(lo, hi) over [0, n): serially (no OpenMP region at all: entering one, even with
// if(false), costs more than packing a small face), or split across threads.
template <class F>
inline void split(F&& f, int64_t n, bool par, int threads) {
  if (!par) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int tid = 0, nt = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    const int64_t per = (n + nt - 1) / nt;
    const int64_t lo = std::min(n, tid * per), hi = std::min(n, lo + per);
    if (hi > lo) f(lo, hi);
  }
}

// A transpose-like 3-D block (FFT columns of a row-major matrix): neighbouring outer
// indices (columns) lie less than half a cache line apart while every row is a line of its
// own, so the plain order (one column, all rows) reads each line once per column. Such a
// block goes through transpose() below; its columns never overlap within a row (checked
// here), so the order of the writes does not matter for unpacking either. 0: not one.
inline int64_t tile_of(const Vec& c, const Vec& st) {
  if (c.size() != 3) return 0;
  const int64_t len = c[0], n1 = c[1], n2 = c[2], s1 = st[1], s2 = st[2];
  if (s2 <= 0 || len > s2 || s1 < 64 || (n2 - 1) * s2 + len > s1 || n2 < 2) return 0;
  return s2 <= 32 && n1 >= 8 ? 1 : 0;
}

// The transpose itself, columns [o_lo, o_hi) (FFT columns: n1 rows s1 apart, the columns
// len bytes each, s2 apart within a row; packed: column after column, n1 * len bytes each).
// Blocks of `cols` columns (kTransRow bytes of a row: whole lines, read once) by rb rows go
// through an L1 buffer: rows in (each row's piece one rows call), columns out (rb * len
// contiguous bytes each, whole lines). Written straight to the packed columns, every store
// of a row lands in another column, a multiple of 4 KiB apart when the columns are (power-
// of-two sizes): all in one L1 set, so a tile could hold only 4 columns and each source row
// was visited once per 4 columns (ddtbench's FFT of 512, 1 MiB packed: 181-258 us, now
// 100-114 us; MPI_Pack 210-235 us). The rows kTransAhead on are prefetched: rows a page or
// more apart escape the hardware prefetchers.
template <bool Unpack>
void transpose(uchar* sbase, uchar* packed, RowsFn fn, int64_t len, int64_t n1, int64_t s1,
               int64_t s2, int64_t cols, int64_t o_lo, int64_t o_hi) {
  alignas(64) uchar buf[kTransBuf];
  const int64_t rb = std::max<int64_t>(1, kTransBuf / (cols * len)), plen = n1 * len;
  const int64_t cl = rb * len;  // a column's bytes in the buffer
  for (int64_t o0 = o_lo; o0 < o_hi; o0 += cols) {
    const int64_t m = std::min(cols, o_hi - o0), span = (m - 1) * s2 + len;
    for (int64_t j0 = 0; j0 < n1; j0 += rb) {
      const int64_t r = std::min(rb, n1 - j0);
      if constexpr (Unpack)
        for (int64_t c = 0; c < m; ++c)
          copy_bytes(buf + c * cl, packed + (o0 + c) * plen + j0 * len, r * len);
      for (int64_t j = j0; j < j0 + r; ++j) {
        uchar* sp = sbase + j * s1 + o0 * s2;
        if (j + kTransAhead < n1)
          for (int64_t w = 0; w < span; w += 64)
            __builtin_prefetch(sp + kTransAhead * s1 + w, Unpack);
        if constexpr (Unpack) fn(buf + (j - j0) * len, cl, sp, s2, m, len);
        else fn(sp, s2, buf + (j - j0) * len, cl, m, len);
      }
      if constexpr (!Unpack)
        for (int64_t c = 0; c < m; ++c)
          copy_bytes(packed + (o0 + c) * plen + j0 * len, buf + c * cl, r * len);
    }
  }
}

// Run lists (block lists of short runs): n runs of a compile-time length B, the strided
// side at offsets so[k], the packed side back to back. Four runs a step, as in rows<B>.
// Far: the runs span more than the last-level cache, and the run kAhead on is prefetched.
// Only then: out-of-order execution already overlaps the misses of short runs served by
// L2 or L3, and the prefetches only take load slots (ddtbench's LAMMPS atoms, 15310 runs of
// 8 bytes over 140 KiB: 10.7 us with them, 7.4 us without; SPECFEM3D's 877 points 0.59 us
// against 0.42 us; random 24-byte runs over 32 MiB: 7.3 against 8.2 ns a run).
// Off: the offsets' type (uint32_t where every offset fits: the list is read once a pack,
// and at 8 bytes a run it was as large as the bytes it moves).
template <class Off = int64_t>
using GatherFn = void (*)(uchar* __restrict strided, const Off* __restrict so,
                          uchar* __restrict packed, int64_t n);
// no-tree-vectorize: GCC 12 turned the four offsets into vector lanes and took each back
// out with vpextrq (spilling to the stack): 11.7 us for those 15310 runs, 7.0 us scalar.
#if defined(__GNUC__) && !defined(__clang__)
#define HPC_SCALAR __attribute__((optimize("no-tree-vectorize")))
#else
#define HPC_SCALAR
#endif
template <int64_t B, bool Unpack, bool Far, class Off>
HPC_SCALAR void gather(uchar* __restrict strided, const Off* __restrict so, uchar* __restrict packed,
            int64_t n) {
  int64_t k = 0;
  if constexpr (sizeof(Off) == 4) {
    // eight runs a step, their offsets read as four 8-byte pairs: a short run costs an
    // offset load, a load and a store, and the load ports are the limit (LAMMPS' 15310
    // runs of 8 bytes: 6.7 us with one offset load a run, 5.7 us with one a pair)
    auto run = [](uchar* __restrict st, uchar* __restrict pk, uint64_t o) {
      if constexpr (Unpack) std::memcpy(st + o, pk, B);
      else std::memcpy(pk, st + o, B);
    };
    for (; k + 8 <= n; k += 8, packed += 8 * B) {
      if constexpr (Far)
        if (k + kAhead + 8 <= n)
          for (int q = 0; q < 8; ++q) __builtin_prefetch(strided + so[k + kAhead + q], Unpack);
      // four scalar loads (an array of four would pass through the stack)
      uint64_t p0, p1, p2, p3;
      std::memcpy(&p0, so + k, 8);
      std::memcpy(&p1, so + k + 2, 8);
      std::memcpy(&p2, so + k + 4, 8);
      std::memcpy(&p3, so + k + 6, 8);
      constexpr bool little = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
      constexpr int lo = little ? 0 : 32, hi = little ? 32 : 0;  // so[k + 2q]: low half
      run(strided, packed, (p0 >> lo) & 0xffffffffu);
      run(strided, packed + B, (p0 >> hi) & 0xffffffffu);
      run(strided, packed + 2 * B, (p1 >> lo) & 0xffffffffu);
      run(strided, packed + 3 * B, (p1 >> hi) & 0xffffffffu);
      run(strided, packed + 4 * B, (p2 >> lo) & 0xffffffffu);
      run(strided, packed + 5 * B, (p2 >> hi) & 0xffffffffu);
      run(strided, packed + 6 * B, (p3 >> lo) & 0xffffffffu);
      run(strided, packed + 7 * B, (p3 >> hi) & 0xffffffffu);
    }
  }
  for (; k + 4 <= n; k += 4, packed += 4 * B) {
    if constexpr (Far)
      if (k + kAhead + 4 <= n)  // irregular offsets: no hardware prefetcher follows them
        for (int q = 0; q < 4; ++q) __builtin_prefetch(strided + so[k + kAhead + q], Unpack);
    const Off o0 = so[k], o1 = so[k + 1], o2 = so[k + 2], o3 = so[k + 3];
    if constexpr (Unpack) {
      std::memcpy(strided + o0, packed, B);
      std::memcpy(strided + o1, packed + B, B);
      std::memcpy(strided + o2, packed + 2 * B, B);
      std::memcpy(strided + o3, packed + 3 * B, B);
    } else {
      std::memcpy(packed, strided + o0, B);
      std::memcpy(packed + B, strided + o1, B);
      std::memcpy(packed + 2 * B, strided + o2, B);
      std::memcpy(packed + 3 * B, strided + o3, B);
    }
  }
  for (; k < n; ++k, packed += B) {
    if constexpr (Unpack) std::memcpy(strided + so[k], packed, B);
    else std::memcpy(packed, strided + so[k], B);
  }
}

template <bool Unpack, bool Far = false, class Off = int64_t>
GatherFn<Off> pick_gather(int64_t len) {
  switch (len) {  // element sizes and small multiples (atoms' 3 doubles, points' 3 floats)
    case 1: return gather<1, Unpack, Far, Off>;
    case 2: return gather<2, Unpack, Far, Off>;
    case 4: return gather<4, Unpack, Far, Off>;
    case 8: return gather<8, Unpack, Far, Off>;
    case 12: return gather<12, Unpack, Far, Off>;
    case 16: return gather<16, Unpack, Far, Off>;
    case 24: return gather<24, Unpack, Far, Off>;
    case 32: return gather<32, Unpack, Far, Off>;
    case 48: return gather<48, Unpack, Far, Off>;
    case 64: return gather<64, Unpack, Far, Off>;
    default: return nullptr;
  }
}

// The last-level cache in bytes (the largest cache sysconf reports; 32 MiB when it reports
// none): run lists spanning more than this prefetch (see gather).
inline int64_t llc_bytes() {
  static const int64_t v = [] {
    long c = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
    c = std::max(c, sysconf(_SC_LEVEL3_CACHE_SIZE));
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    c = std::max(c, sysconf(_SC_LEVEL2_CACHE_SIZE));
#endif
    return c > 0 ? int64_t(c) : int64_t(32) << 20;
  }();
  return v;
}

// Variable-length runs packed with chunks of W bytes, rounding each run up to whole chunks:
// the bytes written past a run's end are rewritten by the next run (the packed side is back
// to back), and the bytes read past it lie inside the source buffer (checked when the plan
// is built; runs flagged kExact, and the last run of a range, copy exactly instead).
constexpr uint32_t kExact = 1u << 31;
template <int64_t W>
void gather_chunks(const uchar* __restrict s, const int64_t* __restrict so,
                   const uint32_t* __restrict ln, uchar* __restrict d, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const uint32_t l = ln[k];
    const uchar* sp = s + so[k];
    if (l & kExact) {
      const int64_t len = l & ~kExact;
      copy_bytes(d, sp, len);
      d += len;
    } else {
      for (uint32_t w = 0; w < l; w += W) std::memcpy(d + w, sp + w, W);
      d += l;
    }
  }
}

// Runs of at most W bytes (several lengths, e.g. atoms of a LAMMPS struct where neighbours
// merged): one W-byte load and store a run, no length loop (the over-copy rule of
// gather_chunks). Far runs: the run kAhead on is prefetched (see gather).
template <int64_t W, bool Far>
void gather_one(const uchar* __restrict s, const int64_t* __restrict so,
                const uint32_t* __restrict ln, uchar* __restrict d, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    if constexpr (Far)
      if (k + kAhead < n) __builtin_prefetch(s + so[k + kAhead], 0);
    const uint32_t l = ln[k];
    if (l & kExact) {
      copy_bytes(d, s + so[k], l & ~kExact);
      d += l & ~kExact;
    } else {
      std::memcpy(d, s + so[k], W);
      d += l;
    }
  }
}

// One 2-D sub-block: n runs, the strided side at byte soff (runs s1 apart), the packed side
// at poff (runs back to back).
template <bool Unpack>
inline void rows2d(RowsFn fn, uchar* strided, uchar* packed, int64_t soff, int64_t s1,
                   int64_t poff, int64_t n, int64_t len) {
  if constexpr (Unpack) fn(packed + poff, len, strided + soff, s1, n, len);
  else fn(strided + soff, s1, packed + poff, len, n, len);
}

// A whole block: dimensions 0 and 1 are one rows call, outer dimensions an odometer.
template <bool Unpack>
void run(uchar* strided, uchar* packed, int64_t start, const Vec& counts, const Vec& strides,
         int threads) {
  const int64_t len = counts[0];
  const int nd = static_cast<int>(counts.size());
  int64_t nblocks = 1;
  for (int i = 1; i < nd; ++i) nblocks *= counts[i];
  if (nblocks == 0 || len == 0) return;
  const bool par = threads > 1 && nblocks * len >= kParallelBytes;
  if (nd == 1) {  // one contiguous run: split it across threads when large
    split([&](int64_t lo, int64_t hi) {
      if (Unpack) copy_bytes(strided + start + lo, packed + lo, hi - lo);
      else copy_bytes(packed + lo, strided + start + lo, hi - lo);
    }, len, par, threads);
    return;
  }
  const RowsFn fn = pick(len);
  const int64_t n1 = counts[1], s1 = strides[1];
  if (nd == 2) {
    split([&](int64_t j0, int64_t j1) {
      rows2d<Unpack>(fn, strided, packed, start + j0 * s1, s1, j0 * len, j1 - j0, len);
    }, n1, par, threads);
    return;
  }
  if (tile_of(counts, strides)) {  // transpose-like: blocks of columns through a buffer
    const int64_t n2 = counts[2], s2 = strides[2];
    const int64_t cols = std::min(n2, std::max<int64_t>(2, kTransRow / s2));
    split([&](int64_t t0, int64_t t1) {
      transpose<Unpack>(strided + start, packed, fn, len, n1, s1, s2, cols, t0 * cols,
                        std::min(n2, t1 * cols));
    }, (n2 + cols - 1) / cols, par, threads);
    return;
  }
  split([&](int64_t o0, int64_t o1) {  // outer indices [o0, o1) over counts[2..]
    Vec idx(nd, 0);
    int64_t rem = o0, soff = start;
    for (int i = 2; i < nd; ++i) {
      idx[i] = rem % counts[i];
      rem /= counts[i];
      soff += idx[i] * strides[i];
    }
    const int64_t plen = n1 * len;
    for (int64_t o = o0; o < o1; ++o) {
      rows2d<Unpack>(fn, strided, packed, soff, s1, o * plen, n1, len);
      for (int i = 2; i < nd; ++i) {  // advance the odometer
        soff += strides[i];
        if (++idx[i] < counts[i]) break;
        soff -= counts[i] * strides[i];
        idx[i] = 0;
      }
    }
  }, nblocks / n1, par, threads);
}

struct Buf {
  uchar* ptr;
  int64_t nbytes;
};

Buf bytes_of(const py::array& a, bool writable, const char* what) {
  if (!(a.flags() & py::array::c_style))
    hpc::fail(std::string("pack: ") + what + " must be C-contiguous");
  if (writable && !a.writeable()) hpc::fail(std::string("pack: ") + what + " is read-only");
  return {static_cast<uchar*>(const_cast<void*>(a.data())), static_cast<int64_t>(a.nbytes())};
}

// [lo, hi) of the bytes a block touches, relative to the strided buffer.
std::pair<__int128, __int128> span_of(int64_t start, const Vec& counts, const Vec& strides) {
  __int128 lo = start, hi = start;
  for (size_t i = 1; i < counts.size(); ++i) {
    const __int128 d = __int128(counts[i] - 1) * strides[i];
    if (d < 0) lo += d; else hi += d;
  }
  return {lo, hi + counts[0]};
}

// Validates the block against both buffers: every byte touched lies inside them, the packed
// buffer is large enough. Returns the packed size.
int64_t check_geometry(const Buf& strided, const Buf& packed, int64_t start,
                       const Vec& counts, const Vec& strides) {
  if (counts.empty() || counts.size() != strides.size())
    hpc::fail("pack: counts and strides must be non-empty and of equal length");
  if (strides[0] != 1) hpc::fail("pack: strides[0] must be 1 (dimension 0 is bytes)");
  __int128 total = 1;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) hpc::fail("pack: negative count");
    total *= counts[i];
    if (total > (__int128(1) << 62)) hpc::fail("pack: block too large");
  }
  if (total == 0) return 0;
  const auto [lo, hi] = span_of(start, counts, strides);
  if (lo < 0 || hi > strided.nbytes)
    hpc::fail("pack: block touches bytes [" + std::to_string(int64_t(lo)) + ", " +
              std::to_string(int64_t(hi)) + ") outside a buffer of " +
              std::to_string(strided.nbytes) + " bytes");
  if (total > packed.nbytes)
    hpc::fail("pack: packed buffer holds " + std::to_string(packed.nbytes) + " bytes, need " +
              std::to_string(int64_t(total)));
  return int64_t(total);
}

// check_geometry, and the two buffers do not overlap.
int64_t check(const Buf& strided, const Buf& packed, int64_t start, const Vec& counts,
              const Vec& strides) {
  const int64_t total = check_geometry(strided, packed, start, counts, strides);
  if (total == 0) return 0;
  const auto [lo, hi] = span_of(start, counts, strides);
  const uchar* s0 = strided.ptr + int64_t(lo);
  const uchar* s1 = strided.ptr + int64_t(hi);
  const uchar* p0 = packed.ptr;
  const uchar* p1 = packed.ptr + total;
  if (s0 < p1 && p0 < s1) hpc::fail("pack: strided and packed buffers overlap");
  return total;
}

int threads_or_default(int threads) {
#ifdef _OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

int64_t pack(const py::array& src, py::array& dst, int64_t start, const Vec& counts,
             const Vec& strides, int threads) {
  Buf s = bytes_of(src, false, "source"), d = bytes_of(dst, true, "packed buffer");
  const int64_t n = check(s, d, start, counts, strides);
  const int nt = threads_or_default(threads);
  {
    py::gil_scoped_release nogil;
    run<false>(s.ptr, d.ptr, start, counts, strides, nt);
  }
  return n;
}

int64_t unpack(const py::array& src, py::array& dst, int64_t start, const Vec& counts,
               const Vec& strides, int threads) {
  Buf p = bytes_of(src, false, "packed buffer"), d = bytes_of(dst, true, "destination");
  const int64_t n = check(d, p, start, counts, strides);
  const int nt = threads_or_default(threads);
  {
    py::gil_scoped_release nogil;
    run<true>(d.ptr, p.ptr, start, counts, strides, nt);
  }
  return n;
}

// A fixed list of blocks (e.g. a halo's 26 faces), validated once against a strided buffer
// size, then packed one at a time or all together in one sweep (see the file comment).
class Plan {
 public:
  struct Block {
    int64_t start;
    Vec counts, strides;
    int64_t size;
  };
  // n runs of len bytes: strided side at soff (s1 apart), packed side at poff. fn == nullptr:
  // the whole block `block` (too many pieces to list).
  struct Piece {
    int64_t soff, s1, poff, n, len;
    RowsFn fn;
    int64_t block;
  };

  Plan(const std::vector<std::tuple<int64_t, Vec, Vec>>& blocks, int64_t strided_bytes,
       bool sweep)
      : strided_bytes_(strided_bytes), sweep_(sweep) {
    int64_t off = 0;
    for (const auto& [start, counts, strides] : blocks) {
      Buf fake_s{nullptr, strided_bytes}, fake_p{nullptr, int64_t(1) << 62};
      const int64_t n = check_geometry(fake_s, fake_p, start, counts, strides);
      blocks_.push_back(Block{start, counts, strides, n});
      offsets_.push_back(off);
      off += n;
    }
    total_ = off;
    for (size_t i = 0; i < blocks_.size(); ++i) cut(i);
    if (sweep_)  // one sweep in source order; ties keep block order
      std::stable_sort(pieces_.begin(), pieces_.end(),
                       [](const Piece& a, const Piece& b) { return a.soff < b.soff; });
    ends_.reserve(pieces_.size());
    int64_t acc = 0;
    for (const Piece& p : pieces_) ends_.push_back(acc += p.fn ? p.n * p.len : blocks_[p.block].size);
    build_runs();
  }
  int64_t total() const { return total_; }
  const Vec& offsets() const { return offsets_; }
  size_t size() const { return blocks_.size(); }
  size_t pieces() const { return pieces_.size(); }
  bool sweep() const { return sweep_; }
  size_t runs() const { return rsoff_.size(); }
  int64_t run_copy() const {
    if (segs_.empty()) return 0;
    if (segs_.size() == 1 && segs_[0].kind == kGather) return segs_[0].unit;
    int64_t w = 0;
    for (const Seg& g : segs_)
      if (g.kind != kGather) w = std::max(w, g.unit);
    return -w;
  }
  size_t run_segments() const { return segs_.size(); }
  int run_offset_bits() const { return rsoff_.empty() ? 0 : rso32_.empty() ? 64 : 32; }
  bool run_prefetch() const { return far_; }
  int64_t block_bytes(size_t i) const { return at(i).size; }

  int64_t pack_one(size_t i, const py::array& src, py::array& dst, int threads) const {
    return one<false>(i, src, dst, threads);
  }
  int64_t unpack_one(size_t i, const py::array& src, py::array& dst, int threads) const {
    return one<true>(i, src, dst, threads);
  }
  int64_t pack_all(const py::array& src, py::array& dst, int threads) const {
    return all<false>(src, dst, threads);
  }
  int64_t unpack_all(const py::array& src, py::array& dst, int threads) const {
    return all<true>(src, dst, threads);
  }

 private:
  const Block& at(size_t i) const {
    if (i >= blocks_.size()) throw py::index_error("pack.Plan: block index out of range");
    return blocks_[i];
  }
  // The pieces of block i: one rows call per outer index (dimensions >= 2).
  void cut(size_t i) {
    const Block& b = blocks_[i];
    if (b.size == 0) return;
    const int64_t len = b.counts[0], po = offsets_[i];
    const int nd = static_cast<int>(b.counts.size());
    if (nd == 1) {
      pieces_.push_back(Piece{b.start, 0, po, 1, len, pick(len), int64_t(i)});
      return;
    }
    int64_t npieces = 1;
    for (int k = 2; k < nd; ++k) npieces *= b.counts[k];
    if (!sweep_ || npieces > kMaxPieces || tile_of(b.counts, b.strides)) {
      pieces_.push_back(Piece{b.start, 0, po, 0, 0, nullptr, int64_t(i)});
      return;
    }
    const int64_t n = b.counts[1];
    const RowsFn fn = pick(len);
    Vec idx(nd, 0);
    int64_t soff = b.start;
    for (int64_t k = 0; k < npieces; ++k) {
      pieces_.push_back(Piece{soff, b.strides[1], po + k * n * len, n, len, fn, int64_t(i)});
      for (int d = 2; d < nd; ++d) {
        soff += b.strides[d];
        if (++idx[d] < b.counts[d]) break;
        soff -= b.counts[d] * b.strides[d];
        idx[d] = 0;
      }
    }
  }
  // Block lists whose pieces are a few short runs each (indexed atoms, mesh points) pack
  // from one flat list of runs in packed order instead: (strided offset, length). The copy
  // is chosen from the measured lengths, window by window: a stretch of runs of one length
  // -> a compile-time gather (no length read); runs of several lengths -> one or more
  // chunks of a power of two (8..64) each, runs rounded up to whole chunks where that stays
  // inside both buffers (kExact otherwise, and over 256 bytes: copy_bytes).
  void build_runs() {
    int64_t nruns = 0;
    for (const Block& b : blocks_) nruns += b.counts[0] ? b.size / b.counts[0] : 0;
    if (blocks_.size() < 2 || nruns >= (int64_t(1) << 26) || nruns > 4 * int64_t(pieces_.size()))
      return;  // long pieces: the rows kernels move several runs per call already
    Vec so, po, ln;
    so.reserve(nruns);
    ln.reserve(nruns);
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const Block& b = blocks_[i];
      if (b.size == 0) continue;
      const int nd = static_cast<int>(b.counts.size());
      const int64_t len = b.counts[0];
      Vec idx(nd, 0);
      int64_t soff = b.start;
      for (int64_t r = 0, nr = b.size / len; r < nr; ++r) {
        // runs that touch stay apart: merging them would turn a gather of one length
        // (atoms of 3 doubles) into runs of several (the blocks are folded already)
        so.push_back(soff);
        ln.push_back(len);
        for (int d = 1; d < nd; ++d) {
          soff += b.strides[d];
          if (++idx[d] < b.counts[d]) break;
          soff -= b.counts[d] * b.strides[d];
          idx[d] = 0;
        }
      }
    }
    for (int64_t l : ln)
      if (l >= (int64_t(1) << 30)) return;  // lengths must fit the 31-bit field
    const size_t n = so.size();
    po.resize(n);
    int64_t acc = 0;
    for (size_t k = 0; k < n; ++k) {
      po[k] = acc;
      acc += ln[k];
    }
    // segments, decided per window of kWindow runs: all of one length with a compile-time
    // gather (an indexed member's element) -> kGather; else chunks of W, the smallest power
    // of two (8..64) not below the window's median length: kOne when every run fits one
    // chunk (one W-byte copy a run, no loop), else kChunks. A struct's members get their own
    // W (LAMMPS: 32 for the atoms' coordinates, 8 for their types). Equal neighbours join.
    auto pow2 = [](int64_t v) -> int64_t { return v <= 8 ? 8 : v <= 16 ? 16 : v <= 32 ? 32 : 64; };
    Vec win;
    for (size_t k = 0; k < n; k += kWindow) {
      const size_t e = std::min(n, k + kWindow);
      win.assign(ln.begin() + static_cast<std::ptrdiff_t>(k), ln.begin() + static_cast<std::ptrdiff_t>(e));
      const int64_t top = *std::max_element(win.begin(), win.end());
      const bool same = std::all_of(win.begin(), win.end(), [&](int64_t l) { return l == top; });
      std::nth_element(win.begin(), win.begin() + static_cast<std::ptrdiff_t>(win.size() / 2),
                       win.end());
      Seg g{static_cast<int64_t>(k), static_cast<int64_t>(e), pow2(win[win.size() / 2]),
            kChunks};
      if (same && pick_gather<false>(top)) {
        g.unit = top;
        g.kind = kGather;
      } else if (top <= g.unit) {  // every run one chunk: no loop (wider chunks waste stores)
        g.kind = kOne;
      }
      if (!segs_.empty() && segs_.back().unit == g.unit && segs_.back().kind == g.kind)
        segs_.back().hi = g.hi;
      else
        segs_.push_back(g);
    }
    rlen_.resize(n);
    for (const Seg& g : segs_) {
      const int64_t w = g.kind == kGather ? 1 : g.unit;
      for (int64_t k = g.lo; k < g.hi; ++k) {
        const int64_t up = (ln[k] + w - 1) / w * w;
        const bool exact = ln[k] > 256 || so[k] + up > strided_bytes_ || po[k] + up > total_;
        rlen_[k] = static_cast<uint32_t>(ln[k]) | (exact ? kExact : 0u);
      }
    }
    int64_t lo = n ? so[0] : 0, hi = lo;
    for (size_t k = 0; k < n; ++k) {
      lo = std::min(lo, so[k]);
      hi = std::max(hi, so[k] + ln[k]);
    }
    far_ = hi - lo > llc_bytes();
    if (hi <= int64_t(UINT32_MAX) && lo >= 0) rso32_.assign(so.begin(), so.end());
    rsoff_ = std::move(so);
    rpoff_ = std::move(po);
  }
  // Runs [lo, hi) of the run list, segment by segment; runs near the range's end copy
  // exactly (another thread may own the bytes after it).
  template <bool Unpack>
  void run_list(uchar* s, uchar* p, int64_t lo, int64_t hi) const {
    if (hi <= lo) return;
    const int64_t* so = rsoff_.data();
    const uint32_t* ln = rlen_.data();
    auto g = std::upper_bound(segs_.begin(), segs_.end(), lo,
                              [](int64_t v, const Seg& x) { return v < x.hi; });
    for (; g != segs_.end() && g->lo < hi; ++g) {
      const int64_t a = std::max(lo, g->lo), b = std::min(hi, g->hi);
      if (g->kind == kGather) {
        if (!rso32_.empty())
          (far_ ? pick_gather<Unpack, true, uint32_t>(g->unit)
                : pick_gather<Unpack, false, uint32_t>(g->unit))(s, rso32_.data() + a,
                                                                  p + rpoff_[a], b - a);
        else
          (far_ ? pick_gather<Unpack, true>(g->unit) : pick_gather<Unpack>(g->unit))(
              s, so + a, p + rpoff_[a], b - a);
        continue;
      }
      if constexpr (Unpack) {  // the strided side is written: exact copies only
        for (int64_t k = a; k < b; ++k) {
          const int64_t len = ln[k] & ~kExact;
          copy_bytes(s + so[k], p + rpoff_[k], len);
        }
        continue;
      }
      // over-copying runs write past their end into the next runs' bytes (rewritten next);
      // the runs whose over-copy could pass the range's end (bytes of another thread, or
      // past the buffer) copy exactly: a run copies at most `reach` bytes from its start
      const int64_t end = rpoff_[hi - 1] + (ln[hi - 1] & ~kExact);
      const int64_t reach = g->kind == kOne ? g->unit : 256 + g->unit;
      int64_t cut = b;
      if (rpoff_[b - 1] + reach > end)
        cut = std::upper_bound(rpoff_.begin() + a, rpoff_.begin() + b, end - reach) -
              rpoff_.begin();
      const int64_t n = cut - a;
      uchar* d = p + rpoff_[a];
      switch (g->unit + (g->kind == kOne ? 1 : 0)) {
        case 8 + 1: one_run<8>(s, so + a, ln + a, d, n); break;
        case 16 + 1: one_run<16>(s, so + a, ln + a, d, n); break;
        case 32 + 1: one_run<32>(s, so + a, ln + a, d, n); break;
        case 64 + 1: one_run<64>(s, so + a, ln + a, d, n); break;
        case 8: gather_chunks<8>(s, so + a, ln + a, d, n); break;
        case 16: gather_chunks<16>(s, so + a, ln + a, d, n); break;
        case 32: gather_chunks<32>(s, so + a, ln + a, d, n); break;
        default: gather_chunks<64>(s, so + a, ln + a, d, n); break;
      }
      for (int64_t k = cut; k < b; ++k) copy_bytes(p + rpoff_[k], s + so[k], ln[k] & ~kExact);
    }
  }
  template <int64_t W>
  void one_run(const uchar* s, const int64_t* so, const uint32_t* ln, uchar* d,
               int64_t n) const {
    if (far_) gather_one<W, true>(s, so, ln, d, n);
    else gather_one<W, false>(s, so, ln, d, n);
  }
  // strided: the array addressed by the blocks; packed: the contiguous one.
  template <bool Unpack>
  std::pair<Buf, Buf> bufs(const py::array& src, py::array& dst) const {
    Buf strided = Unpack ? bytes_of(dst, true, "destination") : bytes_of(src, false, "source");
    Buf packed = Unpack ? bytes_of(src, false, "packed buffer") : bytes_of(dst, true, "packed buffer");
    if (strided.nbytes < strided_bytes_)
      hpc::fail("pack.Plan: strided buffer has " + std::to_string(strided.nbytes) +
                " bytes, the plan needs " + std::to_string(strided_bytes_));
    return {strided, packed};
  }
  static void no_overlap(const Buf& s, const Buf& p, int64_t plen) {
    if (s.ptr < p.ptr + plen && p.ptr < s.ptr + s.nbytes)
      hpc::fail("pack.Plan: strided and packed buffers overlap");
  }
  template <bool Unpack>
  int64_t one(size_t i, const py::array& src, py::array& dst, int threads) const {
    const Block& b = at(i);
    auto [s, p] = bufs<Unpack>(src, dst);
    if (p.nbytes < b.size)
      hpc::fail("pack.Plan: packed buffer holds " + std::to_string(p.nbytes) +
                " bytes, block " + std::to_string(i) + " needs " + std::to_string(b.size));
    no_overlap(s, p, b.size);
    const int nt = threads_or_default(threads);
    py::gil_scoped_release nogil;
    run<Unpack>(s.ptr, p.ptr, b.start, b.counts, b.strides, nt);
    return b.size;
  }
  template <bool Unpack>
  void run_pieces(uchar* s, uchar* p, int64_t lo, int64_t hi) const {
    for (int64_t k = lo; k < hi; ++k) {
      const Piece& q = pieces_[k];
      if (q.n == 1 && q.len <= 64 && q.fn) {  // one short run (block lists): inline
        if constexpr (Unpack) small_copy(s + q.soff, p + q.poff, q.len);
        else small_copy(p + q.poff, s + q.soff, q.len);
      } else if (q.fn) {
        rows2d<Unpack>(q.fn, s, p, q.soff, q.s1, q.poff, q.n, q.len);
      } else {
        const Block& b = blocks_[q.block];
        run<Unpack>(s, p + q.poff, b.start, b.counts, b.strides, 1);
      }
    }
  }
  // Unpacking writes the strided buffer: when two blocks write the same byte, the later
  // block must win, as in unpacking them one by one. The sweep keeps that order only if no
  // byte is written twice, which is checked once (sorted runs) on first use.
  bool writes_disjoint() const {
    if (disjoint_ >= 0) return disjoint_ == 1;
    std::vector<std::pair<int64_t, int64_t>> runs;
    int64_t nruns = 0;
    for (const Block& b : blocks_) nruns += b.counts[0] ? b.size / b.counts[0] : 0;
    bool ok = nruns <= (int64_t(1) << 22);
    if (ok) {
      runs.reserve(static_cast<size_t>(nruns));
      for (const Block& b : blocks_) {
        if (b.size == 0) continue;
        const int nd = static_cast<int>(b.counts.size());
        Vec idx(nd, 0);
        int64_t soff = b.start;
        for (int64_t r = 0, nr = b.size / b.counts[0]; r < nr; ++r) {
          runs.emplace_back(soff, soff + b.counts[0]);
          for (int d = 1; d < nd; ++d) {
            soff += b.strides[d];
            if (++idx[d] < b.counts[d]) break;
            soff -= b.counts[d] * b.strides[d];
            idx[d] = 0;
          }
        }
      }
      std::sort(runs.begin(), runs.end());
      for (size_t k = 1; ok && k < runs.size(); ++k) ok = runs[k].first >= runs[k - 1].second;
    }
    disjoint_ = ok ? 1 : 0;
    return ok;
  }
 public:
  // pack_all / unpack_all with the packed side at byte `position` of its buffer (mpi4py's
  // Pack/Unpack position): returns the new position. One call for FastType.pack.
  int64_t pack_at(const py::array& src, py::array& dst, int64_t position, int threads) const {
    return position + all<false>(src, dst, threads, position);
  }
  int64_t unpack_at(const py::array& src, int64_t position, py::array& dst, int threads) const {
    return position + all<true>(src, dst, threads, position);
  }

 private:
  template <bool Unpack>
  int64_t all(const py::array& src, py::array& dst, int threads, int64_t position = 0) const {
    auto [s, p] = bufs<Unpack>(src, dst);
    return all_bufs<Unpack>(s, p, threads, position);
  }

 public:
  // The buffers as raw bytes (FastCall has them from the arrays already): the strided one
  // checked against the plan's size, then all_bufs.
  template <bool Unpack>
  int64_t all_raw(Buf strided, Buf packed, int threads, int64_t position) const {
    if (strided.nbytes < strided_bytes_)
      hpc::fail("pack.Plan: strided buffer has " + std::to_string(strided.nbytes) +
                " bytes, the plan needs " + std::to_string(strided_bytes_));
    return all_bufs<Unpack>(strided, packed, threads, position);
  }

 private:
  template <bool Unpack>
  int64_t all_bufs(Buf s, Buf p, int threads, int64_t position) const {
    if (position < 0 || position > p.nbytes)
      hpc::fail("position " + std::to_string(position) + " outside a buffer of " +
                std::to_string(p.nbytes) + " bytes");
    p.ptr += position;
    p.nbytes -= position;
    if (total_ == 0) return 0;
    if (p.nbytes < total_)
      hpc::fail("pack.Plan: packed buffer holds " + std::to_string(p.nbytes) +
                " bytes, the plan needs " + std::to_string(total_));
    no_overlap(s, p, total_);
    const int nt = threads_or_default(threads);
    const bool in_order = Unpack && !writes_disjoint();
    // small packs keep the GIL: releasing and taking it back costs more than the copy
    std::optional<py::gil_scoped_release> nogil;
    if (total_ >= kReleaseGil || nt > 1) nogil.emplace();
    if (!rsoff_.empty()) {  // the run list is in packed (type-map) order: later runs win
      const int64_t nr = static_cast<int64_t>(rsoff_.size());
      if (nt > 1 && !in_order && total_ >= kParallelAllBytes && nr > 1) {
#pragma omp parallel num_threads(nt)
        {
          int tid = 0, n = 1;
#ifdef _OPENMP
          tid = omp_get_thread_num();
          n = omp_get_num_threads();
#endif
          auto bound = [&](int t) -> int64_t {  // equal packed bytes per thread
            if (t >= n) return nr;
            return std::lower_bound(rpoff_.begin(), rpoff_.end(), total_ / n * t) -
                   rpoff_.begin();
          };
          run_list<Unpack>(s.ptr, p.ptr, tid == 0 ? 0 : bound(tid), bound(tid + 1));
        }
      } else {
        run_list<Unpack>(s.ptr, p.ptr, 0, nr);
      }
      return total_;
    }
    if (in_order) {  // block by block, as unpack_one in turn would
      for (size_t i = 0; i < blocks_.size(); ++i)
        run<Unpack>(s.ptr, p.ptr + offsets_[i], blocks_[i].start, blocks_[i].counts,
                    blocks_[i].strides, nt);
      return total_;
    }
    const int64_t np = static_cast<int64_t>(pieces_.size());
    if (nt > 1 && total_ >= kParallelAllBytes && np > 1) {
      // contiguous ranges of the sweep with about equal bytes: each thread keeps its planes
#pragma omp parallel num_threads(nt)
      {
        int tid = 0, n = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        n = omp_get_num_threads();
#endif
        auto bound = [&](int t) -> int64_t {
          if (t >= n) return np;
          const int64_t want = total_ / n * t;
          return std::lower_bound(ends_.begin(), ends_.end(), want + 1) - ends_.begin();
        };
        const int64_t lo = tid == 0 ? 0 : bound(tid), hi = bound(tid + 1);
        if (hi > lo) run_pieces<Unpack>(s.ptr, p.ptr, lo, hi);
      }
    } else {
      run_pieces<Unpack>(s.ptr, p.ptr, 0, np);
    }
    return total_;
  }

  std::vector<Block> blocks_;
  std::vector<Piece> pieces_;
  Vec ends_;  // running packed bytes after each piece (thread split)
  Vec offsets_;
  int64_t total_ = 0;
  int64_t strided_bytes_;
  bool sweep_;
  mutable int disjoint_ = -1;  // unknown until the first unpack_all
  Vec rsoff_, rpoff_;           // run list: strided and packed offset of each run
  std::vector<uint32_t> rlen_;  // its length (| kExact: copy exactly)
  std::vector<uint32_t> rso32_;  // rsoff_ as 32 bits where it fits (the gathers read it)
  bool far_ = false;            // the runs span more than the last-level cache: prefetch
  enum Kind { kGather, kOne, kChunks };
  struct Seg {
    int64_t lo, hi, unit;  // runs [lo, hi): kGather: all unit bytes; else chunks of unit
    Kind kind;
  };
  std::vector<Seg> segs_;
};

// hpc.halo.datatype.FastType's pack/unpack as ONE native call: a plain CPython fast-call
// function (no pybind11 dispatch: its argument casters cost ~0.25 us a call, as much as
// packing a 2 KiB face, and a Python method in front another ~0.1 us) over the plans FastType
// built, one per element count. FastType binds it as the instance's `pack` / `unpack`, with
// mpi4py's signatures. What it does not serve (buffers that are not numpy arrays, a count
// without a plan yet, any error) it hands, arguments unchanged, to the FastType's Python
// method `_pack_py` / `_unpack_py`, which builds the plan or raises the one-line UsageError.
// The function's self is a tuple (capsule of the state, the FastType): like a bound method it
// keeps its FastType alive (`fast(t).pack(...)` works), and the cycle through the instance's
// __dict__ is one the garbage collector sees (tuples and functions are GC-tracked).
struct FastState {
  int64_t extent = 0;
  int threads = 1;
  std::vector<std::pair<int64_t, const Plan*>> plans;  // count -> plan (a few: linear search)
  std::vector<py::object> keep;                        // the Plan objects, kept alive
  py::object owner;                                    // weakref to the FastType
};
using FastPtr = std::shared_ptr<FastState>;

// A numpy array's bytes, or nullopt when obj is not a numpy array.
inline std::optional<Buf> array_bytes(PyObject* obj, bool writable, const char* what) {
  const py::handle h(obj);
  if (!py::isinstance<py::array>(h)) return std::nullopt;
  return bytes_of(py::reinterpret_borrow<py::array>(h), writable, what);
}

// An int argument (None or absent -> dflt); false when it is neither.
inline bool int_arg(PyObject* obj, int64_t dflt, int64_t& out) {
  if (obj == nullptr || obj == Py_None) {
    out = dflt;
    return true;
  }
  if (!PyLong_Check(obj)) return false;
  const long long v = PyLong_AsLongLong(obj);
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  out = v;
  return true;
}

// The fast path: the new position, or -1 when the Python path must serve the call.
// pack(inbuf, outbuf, position=0, comm=None, count=None);
// unpack(inbuf, position, outbuf, comm=None, count=None).
template <bool Unpack>
int64_t fast_path(const FastState& st, PyObject* const* args, Py_ssize_t nargs,
                  PyObject* kwnames) {
  static const char* const names[2][5] = {{"inbuf", "outbuf", "position", "comm", "count"},
                                          {"inbuf", "position", "outbuf", "comm", "count"}};
  static PyObject* interned[2][5] = {};  // created once, under the GIL, never freed
  if (interned[Unpack][0] == nullptr)
    for (int i = 0; i < 5; ++i) interned[Unpack][i] = PyUnicode_InternFromString(names[Unpack][i]);
  PyObject* a[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  if (nargs > 5) return -1;
  for (Py_ssize_t i = 0; i < nargs; ++i) a[i] = args[i];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    int slot = -1;
    for (int i = 0; i < 5 && slot < 0; ++i)  // call sites' keywords are interned: same object
      if (key == interned[Unpack][i]) slot = i;
    for (int i = 0; i < 5 && slot < 0; ++i)
      if (PyUnicode_CompareWithASCIIString(key, names[Unpack][i]) == 0) slot = i;
    if (slot < 0 || a[slot] != nullptr) return -1;
    a[slot] = args[nargs + k];
  }
  PyObject* packed_obj = Unpack ? a[0] : a[1];
  PyObject* strided_obj = Unpack ? a[2] : a[0];
  if (packed_obj == nullptr || strided_obj == nullptr || (Unpack && a[1] == nullptr)) return -1;
  auto strided = array_bytes(strided_obj, Unpack, Unpack ? "destination" : "source");
  if (!strided) return -1;
  auto packed = array_bytes(packed_obj, !Unpack, "packed buffer");
  if (!packed) return -1;
  int64_t position = 0, count = 0;
  if (!int_arg(Unpack ? a[1] : a[2], 0, position) ||
      !int_arg(a[4], st.extent > 0 ? strided->nbytes / st.extent : 0, count))
    return -1;
  const Plan* plan = nullptr;
  for (const auto& [c, p] : st.plans)
    if (c == count) plan = p;
  if (plan == nullptr || position < 0) return -1;
  return position + plan->all_raw<Unpack>(*strided, *packed, st.threads, position);
}

template <bool Unpack>
PyObject* fast_call(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                    PyObject* kwnames) {
  PyObject* cap = PyTuple_GET_ITEM(self, 0);  // self: (capsule, FastType), see above
  const FastState& st = **static_cast<FastPtr*>(PyCapsule_GetPointer(cap, "hpc.pack.fast"));
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  try {
    const int64_t pos = fast_path<Unpack>(st, args, nargs, kwnames);
    if (pos >= 0) return PyLong_FromLongLong(pos);
  } catch (...) {  // an error: the Python path raises it as a UsageError
    PyErr_Clear();
  }
  PyObject* owner = PyTuple_GET_ITEM(self, 1);  // borrowed from self, which the call holds
  Py_INCREF(owner);
  PyObject* meth = PyObject_GetAttrString(owner, Unpack ? "_unpack_py" : "_pack_py");
  Py_DECREF(owner);
  if (meth == nullptr) return nullptr;
  PyObject* out = PyObject_Vectorcall(meth, args, nargs, kwnames);
  Py_DECREF(meth);
  return out;
}

PyMethodDef kFastPack{"pack", reinterpret_cast<PyCFunction>(
                                  reinterpret_cast<void (*)()>(fast_call<false>)),
                      METH_FASTCALL | METH_KEYWORDS,
                      "pack(inbuf, outbuf, position=0, comm=None, count=None) -> new position "
                      "(hpc.halo.datatype.FastType.pack in one native call)"};
PyMethodDef kFastUnpack{"unpack", reinterpret_cast<PyCFunction>(
                                      reinterpret_cast<void (*)()>(fast_call<true>)),
                        METH_FASTCALL | METH_KEYWORDS,
                        "unpack(inbuf, position, outbuf, comm=None, count=None) -> new "
                        "position (hpc.halo.datatype.FastType.unpack in one native call)"};

class FastCall {
 public:
  FastCall(int64_t extent, int threads, const py::object& owner)
      : st_(std::make_shared<FastState>()) {
    st_->extent = extent;
    st_->threads = threads_or_default(threads);
    PyObject* ref = PyWeakref_NewRef(owner.ptr(), nullptr);
    if (ref == nullptr) throw py::error_already_set();
    st_->owner = py::reinterpret_steal<py::object>(ref);
  }
  void add(int64_t count, const py::object& plan) {
    remove(count);
    st_->plans.emplace_back(count, plan.cast<const Plan*>());
    st_->keep.push_back(plan);
  }
  void remove(int64_t count) {
    for (size_t k = 0; k < st_->plans.size(); ++k)
      if (st_->plans[k].first == count) {
        st_->plans.erase(st_->plans.begin() + static_cast<std::ptrdiff_t>(k));
        st_->keep.erase(st_->keep.begin() + static_cast<std::ptrdiff_t>(k));
        return;
      }
  }
  size_t size() const { return st_->plans.size(); }
  // The bound function: its self is (a capsule sharing the state, the FastType); it may
  // outlive this object and keeps the FastType alive as a bound method does.
  py::object function(bool unpack) const {
    PyObject* owner = PyWeakref_GetObject(st_->owner.ptr());  // borrowed; None when gone
    if (owner == nullptr || owner == Py_None) {  // only while the FastType is being built
      PyErr_SetString(PyExc_ReferenceError, "hpc.halo.datatype: the FastType is gone");
      throw py::error_already_set();
    }
    py::capsule cap(new FastPtr(st_), "hpc.pack.fast", [](PyObject* c) {
      delete static_cast<FastPtr*>(PyCapsule_GetPointer(c, "hpc.pack.fast"));
    });
    py::tuple self = py::make_tuple(cap, py::reinterpret_borrow<py::object>(owner));
    PyObject* f = PyCFunction_NewEx(unpack ? &kFastUnpack : &kFastPack, self.ptr(), nullptr);
    if (f == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(f);
  }

 private:
  FastPtr st_;
};
}  // namespace

HPC_SUBMODULE(pack) {
  m.doc() = "Pack/unpack TEMPI canonical strided blocks (start, counts[], strides[] in bytes)";
  m.def("pack", &pack, py::arg("src"), py::arg("dst"), py::arg("start"), py::arg("counts"),
        py::arg("strides"), py::arg("threads") = 0,
        "Gather the strided block of src (any C-contiguous array, addressed in bytes) into "
        "the contiguous dst; returns the packed byte count. threads=0: OpenMP's default.");
  m.def("unpack", &unpack, py::arg("src"), py::arg("dst"), py::arg("start"), py::arg("counts"),
        py::arg("strides"), py::arg("threads") = 0,
        "Scatter the contiguous src into the strided block of dst; returns the byte count.");
  py::class_<Plan>(m, "Plan", "Blocks validated once against a strided buffer size; packed "
                              "one by one or all into one buffer at offsets(). sweep=True: "
                              "pack_all/unpack_all run every block's pieces in one pass in "
                              "source-address order (same bytes); False: block after block")
      .def(py::init<const std::vector<std::tuple<int64_t, Vec, Vec>>&, int64_t, bool>(),
           py::arg("blocks"), py::arg("strided_bytes"), py::arg("sweep") = true)
      .def_property_readonly("total", &Plan::total)
      .def_property_readonly("offsets", &Plan::offsets)
      .def_property_readonly("pieces", &Plan::pieces)
      .def_property_readonly("sweep", &Plan::sweep)
      .def_property_readonly("runs", &Plan::runs,
                             "runs of the flat run list (block lists of short runs); 0: pieces")
      .def_property_readonly("run_segments", &Plan::run_segments,
                             "segments of the run list (one copy kernel each)")
      .def_property_readonly("run_offset_bits", &Plan::run_offset_bits,
                             "bits of the run list's offsets as the gathers read them (32 where "
                             "every offset fits, else 64; 0 without a run list)")
      .def_property_readonly("run_prefetch", &Plan::run_prefetch,
                             "the run list's gathers prefetch (its runs span more than the "
                             "last-level cache)")
      .def_property_readonly("run_copy", &Plan::run_copy,
                             "run list copy: L > 0 every run L bytes (compile-time gather), "
                             "else -W: chunks of up to W bytes where runs vary; 0 without a run list")
      .def("__len__", &Plan::size)
      .def("block_bytes", &Plan::block_bytes)
      .def("pack_one", &Plan::pack_one, py::arg("i"), py::arg("src"), py::arg("dst"),
           py::arg("threads") = 0)
      .def("unpack_one", &Plan::unpack_one, py::arg("i"), py::arg("src"), py::arg("dst"),
           py::arg("threads") = 0)
      .def("pack_all", &Plan::pack_all, py::arg("src"), py::arg("dst"), py::arg("threads") = 0)
      .def("unpack_all", &Plan::unpack_all, py::arg("src"), py::arg("dst"),
           py::arg("threads") = 0)
      .def("pack_at", &Plan::pack_at, py::arg("src"), py::arg("dst"), py::arg("position"),
           py::arg("threads") = 0, "pack_all into dst at byte position; the new position")
      .def("unpack_at", &Plan::unpack_at, py::arg("src"), py::arg("position"), py::arg("dst"),
           py::arg("threads") = 0, "unpack_all from src at byte position; the new position");
  py::class_<FastCall>(m, "FastCall", "hpc.halo.datatype.FastType's one native call: plans by "
                                      "element count; pack/unpack hand what they do not serve "
                                      "to owner._pack_py/_unpack_py (the functions hold the owner)")
      .def(py::init<int64_t, int, const py::object&>(), py::arg("extent"), py::arg("threads"),
           py::arg("owner"))
      .def("add", &FastCall::add, py::arg("count"), py::arg("plan"),
           "serve `count` elements with this Plan (kept alive)")
      .def("remove", &FastCall::remove, py::arg("count"))
      .def("__len__", &FastCall::size)
      .def_property_readonly("pack", [](const FastCall& f) { return f.function(false); },
                             "pack(inbuf, outbuf, position=0, comm=None, count=None) -> int")
      .def_property_readonly("unpack", [](const FastCall& f) { return f.function(true); },
                             "unpack(inbuf, position, outbuf, comm=None, count=None) -> int");
}
