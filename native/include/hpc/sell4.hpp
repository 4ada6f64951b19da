// SELL-4 pull products, shared by the 1D and 2D PageRank kernels: the four row sums of one
// chunk, and the split of the chunks between OpenMP threads by work.
#pragma once

#include <cstdint>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>
#if defined(__AVX2__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace hpc {

// a * b + c, rounded once where the target has FMA and twice where it has not, in every copy
// of the code alike: left to the compiler (-ffp-contract=fast), the inlined copies of one
// expression were contracted differently (the sweep's one-thread and thread-team loops gave
// scores 1 ulp apart), so the choice of threads, or the replicated mode's, changed the bits.
inline double mul_add(double a, double b, double c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

#if defined(__AVX2__)
// base[idx[0..3]]: _mm256_i32gather_pd with a zeroed source and every lane enabled (the same
// instruction); GCC's plain intrinsic starts from an undefined register, which -Wall reports
// as maybe-uninitialized wherever it is inlined.
inline __m256d gather4(const double* base, __m128i idx) {
  return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), base, idx,
                                  _mm256_castsi256_pd(_mm256_set1_epi64x(-1)), 8);
}
#endif

#if defined(__SSE2__)
// The operands of one SSE2 step of a SELL-4 chunk with integer weights: four int32 weights
// (the lanes of m) as two pairs of doubles, and x at four columns given as the zero-extended
// 32-bit halves of p01 and p23. Shared by every SSE2 weighted kernel (u16, exact_values_u16,
// packed deltas), so they read x and convert the weights alike.
struct Sse2Quad {
  __m128d w01, w23, x01, x23;
};
inline Sse2Quad sse2_quad(__m128i m, uint64_t p01, uint64_t p23, const double* x) {
  return {_mm_cvtepi32_pd(m), _mm_cvtepi32_pd(_mm_unpackhi_epi64(m, m)),
          _mm_loadh_pd(_mm_load_sd(x + static_cast<uint32_t>(p01)), x + (p01 >> 32)),
          _mm_loadh_pd(_mm_load_sd(x + static_cast<uint32_t>(p23)), x + (p23 >> 32))};
}
#endif

// V: the stored weight type (double, or float where every weight is exactly a float: the
// product is then the same double as with the double weight, with 4 bytes less an entry).
template <bool W, typename V = double>
inline void sell4_chunk_sums(const int32_t* q, const V* wv, int64_t width, const double* x,
                             double s[4]) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  if constexpr (W) {
    for (int64_t l = 0; l < width; ++l, q += 4, wv += 4) {
      s0 += static_cast<double>(wv[0]) * x[q[0]];
      s1 += static_cast<double>(wv[1]) * x[q[1]];
      s2 += static_cast<double>(wv[2]) * x[q[2]];
      s3 += static_cast<double>(wv[3]) * x[q[3]];
    }
  } else {
    (void)wv;
    for (int64_t l = 0; l < width; ++l, q += 4) {
      s0 += x[q[0]];
      s1 += x[q[1]];
      s2 += x[q[2]];
      s3 += x[q[3]];
    }
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
}

// The four row sums of an unweighted chunk stored as 16-bit words (sell4_pack_d16): each
// word is delta << 1 | real, delta the column less the lane's previous column (the lane's
// first column in base), real 0 for a jump (a gap of 2^15 or more) or padding, whose x is not
// added. Half the unweighted layout's index bytes; the same sums, in the lanes' order.
inline void sell4_chunk_sums_d16(const uint16_t* p, const uint32_t* base, int64_t width,
                                 const double* x, double s[4]) {
#if defined(__AVX2__)
  __m256d a = _mm256_setzero_pd();
  __m128i col = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base));
  const __m128i one = _mm_set1_epi32(1), z = _mm_setzero_si128();
  for (int64_t l = 0; l < width; ++l, p += 4) {
    const __m128i v = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    col = _mm_add_epi32(col, _mm_srli_epi32(v, 1));
    const __m256d m = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_sub_epi32(z, _mm_and_si128(v, one))));
    a = _mm256_add_pd(a, _mm256_mask_i32gather_pd(_mm256_setzero_pd(), x, col, m, 8));
  }
  _mm256_storeu_pd(s, a);
#else
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  uint32_t c0 = base[0], c1 = base[1], c2 = base[2], c3 = base[3];
  for (int64_t l = 0; l < width; ++l, p += 4) {
    c0 += p[0] >> 1, c1 += p[1] >> 1, c2 += p[2] >> 1, c3 += p[3] >> 1;
    s0 += static_cast<double>(p[0] & 1) * x[c0];
    s1 += static_cast<double>(p[1] & 1) * x[c1];
    s2 += static_cast<double>(p[2] & 1) * x[c2];
    s3 += static_cast<double>(p[3] & 1) * x[c3];
  }
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
#endif
}

// The four row sums of a weighted chunk on the 16-bit delta columns (sell4_pack_d16, weights
// w in the packed order, 0 at jumps and padding), each entry s = fma(w, x, s) in lane order:
// the same bits as sell4_chunk_sums_fma on the sorted 32-bit columns. A jump's x is read (its
// column is in range) and multiplied by 0.
inline void sell4_chunk_sums_d16_f32(const uint16_t* p, const uint32_t* base, const float* w,
                                     int64_t width, const double* x, double s[4]) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256d a = _mm256_setzero_pd();
  __m128i col = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base));
  for (int64_t l = 0; l < width; ++l, p += 4, w += 4) {
    const __m128i v = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    col = _mm_add_epi32(col, _mm_srli_epi32(v, 1));
    a = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(w)), gather4(x, col), a);
  }
  _mm256_storeu_pd(s, a);
#else
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  uint32_t c0 = base[0], c1 = base[1], c2 = base[2], c3 = base[3];
  for (int64_t l = 0; l < width; ++l, p += 4, w += 4) {
    c0 += p[0] >> 1, c1 += p[1] >> 1, c2 += p[2] >> 1, c3 += p[3] >> 1;
    s0 = std::fma(static_cast<double>(w[0]), x[c0], s0);
    s1 = std::fma(static_cast<double>(w[1]), x[c1], s1);
    s2 = std::fma(static_cast<double>(w[2]), x[c2], s2);
    s3 = std::fma(static_cast<double>(w[3]), x[c3], s3);
  }
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
#endif
}

// sell4_chunk_sums<true, float> with each entry an explicit fma (s = fma(w, x, s)), so its
// bits do not depend on the compiler's contraction: the 32-bit twin of sell4_chunk_sums_d16_f32.
inline void sell4_chunk_sums_fma(const int32_t* q, const float* wv, int64_t width,
                                 const double* x, double s[4]) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  for (int64_t l = 0; l < width; ++l, q += 4, wv += 4) {
    s0 = std::fma(static_cast<double>(wv[0]), x[q[0]], s0);
    s1 = std::fma(static_cast<double>(wv[1]), x[q[1]], s1);
    s2 = std::fma(static_cast<double>(wv[2]), x[q[2]], s2);
    s3 = std::fma(static_cast<double>(wv[3]), x[q[3]], s3);
  }
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
}

// Pack the SELL-4 columns sell (start, width, nch; padding = zero) as sell4_chunk_sums_d16
// reads them, each lane's entries in their stored order (a lane sorted by column packs best):
// out (16-bit words), ostart (chunk starts, nch + 1), obase (4 first columns a chunk); with
// vals (one per SELL-4 entry), ovals gets them in the packed order (0 at jumps and padding).
// Returns the packed entries (jumps and padding included), or -1 where a lane's columns
// decrease.
inline int64_t sell4_pack_d16(const int32_t* sell, const int64_t* start, const int64_t* width,
                              int64_t nch, int32_t zero, std::vector<uint16_t>& out,
                              std::vector<int64_t>& ostart, std::vector<uint32_t>& obase,
                              const float* vals = nullptr, std::vector<float>* ovals = nullptr) {
  constexpr uint32_t kMax = (1u << 15) - 1u;
  ostart.assign(static_cast<size_t>(nch) + 1, 0);
  obase.assign(static_cast<size_t>(4 * nch), 0u);
  // lane lengths first (jumps included), then the words
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      out.assign(static_cast<size_t>(ostart[nch]), 0);
      if (vals != nullptr) ovals->assign(static_cast<size_t>(ostart[nch]), 0.0f);
    }
    for (int64_t ch = 0; ch < nch; ++ch) {
      int64_t w = 0;
      for (int j = 0; j < 4; ++j) {
        int64_t l = 0;
        bool first = true;
        uint32_t prev = 0;
        for (int64_t e = 0; e < width[ch]; ++e) {
          const int32_t c = sell[start[ch] + 4 * e + j];
          if (c == zero) continue;
          const auto u = static_cast<uint32_t>(c);
          if (first) {
            prev = u;
            first = false;
            if (pass == 1) obase[4 * ch + j] = u;
          }
          if (u < prev) return -1;
          for (; u - prev > kMax; prev += kMax, ++l)
            if (pass == 1) out[ostart[ch] + 4 * l + j] = static_cast<uint16_t>(kMax << 1);
          if (pass == 1) {
            out[ostart[ch] + 4 * l + j] = static_cast<uint16_t>(((u - prev) << 1) | 1u);
            if (vals != nullptr) (*ovals)[ostart[ch] + 4 * l + j] = vals[start[ch] + 4 * e + j];
          }
          prev = u;
          ++l;
        }
        w = std::max(w, l);
      }
      if (pass == 0) ostart[ch + 1] = ostart[ch] + 4 * w;
    }
  }
  return ostart[nch];
}

// The four row sums of a chunk whose entries carry their weight as a code in the top 8 bits of
// the column (col | code << 24, tab[code] the weight): the weighted product with the unweighted
// product's memory traffic (4 bytes an entry, not 12), for graphs with at most 256 distinct
// weights and fewer than 2^24 columns. The sums are the same as sell4_chunk_sums<true>'s.
inline void sell4_chunk_sums_coded(const int32_t* q, const double* tab, int64_t width,
                                   const double* x, double s[4]) {
  constexpr uint32_t COL = (1u << 24) - 1;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  for (int64_t l = 0; l < width; ++l, q += 4) {
    const uint32_t u0 = static_cast<uint32_t>(q[0]), u1 = static_cast<uint32_t>(q[1]);
    const uint32_t u2 = static_cast<uint32_t>(q[2]), u3 = static_cast<uint32_t>(q[3]);
    // mul_add: rounded alike in every inlined copy of this kernel (see mul_add)
    s0 = mul_add(tab[u0 >> 24], x[u0 & COL], s0);
    s1 = mul_add(tab[u1 >> 24], x[u1 & COL], s1);
    s2 = mul_add(tab[u2 >> 24], x[u2 & COL], s2);
    s3 = mul_add(tab[u3 >> 24], x[u3 & COL], s3);
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
}

// The four row sums of a chunk whose weights are integers m < 2^16 beside the columns (2 bytes
// an entry; the caller multiplies each row sum by the weights' scale, hpc::sell4_int_scale).
// Each product m * x is the double the float or double weight m gives, so the sums are
// sell4_chunk_sums<true>'s with those weights. On x86-64 written with SSE2: two column indices
// from one 8-byte load, four weights widened and converted in registers; measured on kron:17:16
// (1 thread, 60 alternated rounds of 10 steps, load 7.3) 1.15x the unweighted step against
// 1.24x for floats beside the columns; the same loop left to the compiler took 1.53x (a scalar
// convert an entry).
inline void sell4_chunk_sums_u16(const int32_t* q, const uint16_t* wv, int64_t width,
                                 const double* x, double s[4]) {
#if defined(__SSE2__)
  __m128d a = _mm_setzero_pd(), b = _mm_setzero_pd();
  const __m128i z = _mm_setzero_si128();
  for (int64_t l = 0; l < width; ++l, q += 4, wv += 4) {
    uint64_t p01, p23;   // columns are in [0, 2^31): the halves of each word, zero-extended
    std::memcpy(&p01, q, 8);
    std::memcpy(&p23, q + 2, 8);
    const __m128i m = _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wv)), z);
    const Sse2Quad o = sse2_quad(m, p01, p23, x);
    a = _mm_add_pd(a, _mm_mul_pd(o.w01, o.x01));
    b = _mm_add_pd(b, _mm_mul_pd(o.w23, o.x23));
  }
  _mm_storeu_pd(s, a);
  _mm_storeu_pd(s + 2, b);
#else
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  for (int64_t l = 0; l < width; ++l, q += 4, wv += 4) {
    s0 += static_cast<double>(wv[0]) * x[q[0]];
    s1 += static_cast<double>(wv[1]) * x[q[1]];
    s2 += static_cast<double>(wv[2]) * x[q[2]];
    s3 += static_cast<double>(wv[3]) * x[q[3]];
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
#endif
}

// The largest scale = (smallest positive weight) / k, k = 1..64, such that every weight of w
// (sorted, distinct, none negative) is within 2 ulp of scale times an integer below max_int;
// 0 when there is none.
inline double sell4_scale_search(const std::vector<double>& w, double max_int) {
  double wmin = 0.0;
  for (const double v : w)
    if (v > 0.0) {
      wmin = v;
      break;
    }
  if (w.empty() || !(wmin > 0.0) || w.front() < 0.0 || !std::isfinite(w.back())) return 0.0;
  constexpr double kUlp = 2.220446049250313e-16;
  for (int k = 1; k <= 64; ++k) {
    const double scale = wmin / k;
    const bool ok = std::all_of(w.begin(), w.end(), [&](double v) {
      const double m = std::nearbyint(v / scale);
      return m < max_int && std::fabs(m * scale - v) <= 2.0 * kUlp * v;
    });
    if (ok) return scale;
  }
  return 0.0;
}

// The scale that makes every weight of w (sorted, distinct) an integer below max_int: first the
// largest power of two that divides every weight exactly (integer weights: 1; halves: 1/2),
// so scale * m is each weight itself and the sums are those of the weights, bit for bit; else
// sell4_scale_search's (decimal weights: tenths, cents; each product then within 3 ulp of the
// weight's). 0 when there is none (negative, infinite or too many distinct magnitudes).
inline double sell4_int_scale(const std::vector<double>& w, double max_int) {
  if (w.empty() || w.front() < 0.0 || !std::isfinite(w.back())) return 0.0;
  int e = std::numeric_limits<int>::max();   // min over the weights of their lowest set bit
  for (const double v : w) {
    if (v == 0.0) continue;
    int ex = 0;
    const double mant = std::frexp(v, &ex);   // v = mant 2^ex, mant in [0.5, 1)
    const auto M = static_cast<uint64_t>(std::ldexp(mant, 53));
    e = std::min(e, ex - 53 + __builtin_ctzll(M));
  }
  if (e == std::numeric_limits<int>::max()) return 1.0;      // all zero
  if (e > -1000 && e < 1000 && std::ldexp(w.back(), -e) < max_int) return std::ldexp(1.0, e);
  return sell4_scale_search(w, max_int);
}

// The scale that makes every weight a float: 1 when each weight of w (sorted, distinct) is
// exactly a float (its products are then the same doubles as with double weights); else the
// largest scale = (smallest positive weight) / k, k = 1..64, with every w / scale within
// 2 ulp of an integer of magnitude below 2^24 (decimal weights: tenths, cents), so the sweep
// reads 4-byte floats m = w / scale and multiplies each row sum by scale once (each product
// then within 3 ulp of w times its operand: the answer moves by about 1e-16, relative); 0 when
// there is none (e.g. random doubles). Measured on kron:17:16, 1 thread: a float beside the
// column costs less than a code in its top bits (the decode: a shift, a mask and a table load
// an entry), though it reads 4 bytes more an entry.
inline double sell4_float_scale(const std::vector<double>& w) {
  const auto is_float = [](double v) {
    return std::fabs(v) <= 3.0e38 && static_cast<double>(static_cast<float>(v)) == v;
  };
  if (std::all_of(w.begin(), w.end(), is_float)) return 1.0;
  return sell4_scale_search(w, 16777216.0);
}

// First chunk of part t of nt, chunk ch costing its padded entries (start[ch+1] - start[ch])
// plus row_cost per row. Rows sorted by length put most edges in the first chunks, so equal
// chunk counts would give the first thread nearly all of a power-law graph's edges.
inline int64_t sell4_split(const int64_t* start, int64_t nch, int64_t row_cost, int t, int nt) {
  if (t <= 0) return 0;
  if (t >= nt) return nch;
  const int64_t total = start[nch] + row_cost * 4 * nch;
  const int64_t target = static_cast<int64_t>(static_cast<double>(total) * t / nt);
  int64_t lo = 0, hi = nch;
  while (lo < hi) {  // first ch with cost(ch) >= target
    const int64_t mid = lo + (hi - lo) / 2;
    if (start[mid] + row_cost * 4 * mid < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Boundaries of the pieces a sweep hands to its threads dynamically (schedule(dynamic, 1)):
// contiguous chunk ranges of near-equal work (as sell4_split), about kPieceWork each, at least
// 8 (where there are 8 chunks) and at most 256. A static split of equal work measured balanced
// with each half timed alone, yet a second thread gave kron:17 only 1.55x: the halves do not
// slow alike when they share the memory system (the first holds the long rows, the second
// most of the row updates), and a thread preempted by another process holds every iteration
// back. Pieces taken dynamically absorb both (GAP's pr is schedule(dynamic) too).
inline std::vector<int64_t> sell4_pieces(const int64_t* start, int64_t nch, int64_t row_cost) {
  constexpr int64_t kPieceWork = 16384;
  const int64_t total = start[nch] + row_cost * 4 * nch;
  int64_t np = std::min<int64_t>(256, std::max<int64_t>(8, total / kPieceWork));
  np = std::max<int64_t>(1, std::min(np, nch));
  std::vector<int64_t> b(static_cast<size_t>(np) + 1);
  for (int64_t k = 0; k <= np; ++k)
    b[k] = sell4_split(start, nch, row_cost, static_cast<int>(k), static_cast<int>(np));
  return b;
}

// Whether a sweep of these chunks is worth a parallel region: at least 2^16 units of work
// (padded entries + row_cost a row, ~40 us on one core). Below that the fork, the barriers
// and the join cost about as much as the work, and on a busy machine a descheduled thread
// holds every barrier (p2p-Gnutella08, 21k edges, 2 threads at load 7: 1 s against 7 ms).
inline bool sell4_parallel(const int64_t* start, int64_t nch, int64_t row_cost) {
  return start[nch] + row_cost * 4 * nch >= (int64_t(1) << 16);
}

// The calling OpenMP thread's number (0 outside a parallel region or without OpenMP).
inline int sell4_thread() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace hpc
