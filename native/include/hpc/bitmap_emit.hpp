// Sorted columns from a bitmap, shared by the SpGEMM kernels (spgemm.cpp's symbolic phase,
// spgemm_onepass.cpp's long rows).
#pragma once

#include <cstdint>
#if defined(__AVX512VBMI2__)
#include <immintrin.h>
#endif

namespace hpc {

#if defined(__AVX512VBMI2__)
constexpr int kSlack = 16;  // spare temporary entries past a row: one 16-column store per word
#else
constexpr int kSlack = 4;
#endif
constexpr int kEmitStores = 4;  // unconditional stores per word in the portable emission

// Writes the columns of the set bits of x (bitmap word w) at out, ascending, and returns how
// many; may write up to kSlack entries past them. Mesh rows set 2-6 bits per word, in no
// predictable pattern, so a loop over the bits mispredicts its exit on most words:
//   AVX-512 VBMI2: VPCOMPRESSB packs the bit positions into bytes, one VPERMB widens 16 of
//                  them to columns, one store (measured: symbolic phase 20-35 % faster);
//   portable:      kEmitStores unconditional stores (4 beat 8 and a plain loop), then a loop
//                  for the rest.
template <typename I>
inline int64_t emit_word(uint64_t x, int64_t w, I* out) {
#if defined(__AVX512VBMI2__)
  if constexpr (sizeof(I) == 4) {
    const __m512i iota = _mm512_set_epi8(
        63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42,
        41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
        19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i pos = _mm512_maskz_compress_epi8(_cvtu64_mask64(x), iota);
    const __m512i base = _mm512_set1_epi32(static_cast<int>(w << 6));
    // Byte s + u of pos into the low byte of 32-bit lane u, the other bytes zeroed.
    const __mmask64 low = _cvtu64_mask64(0x1111111111111111ULL);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    _mm512_storeu_si512(out, _mm512_add_epi32(base, _mm512_maskz_permutexvar_epi8(low, lane, pos)));
    const int64_t cnt = _mm_popcnt_u64(x);
    for (int64_t s = 16; s < cnt; s += 16) {  // words with more than 16 bits
      const __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(s)));
      _mm512_storeu_si512(out + s, _mm512_add_epi32(base, _mm512_maskz_permutexvar_epi8(low, idx, pos)));
    }
    return cnt;
  }
#endif
  int64_t j = 0;
  const I base = static_cast<I>(w << 6);
  for (int u = 0; u < kEmitStores; ++u) {
    out[u] = base + static_cast<I>(__builtin_ctzll(x | (uint64_t(1) << 63)));
    j += x != 0;
    x &= x - 1;
  }
  while (x) {
    out[j++] = base + static_cast<I>(__builtin_ctzll(x));
    x &= x - 1;
  }
  return j;
}

// The set bits of bitmap words [w0, w1] as ascending columns at out, each word cleared as it
// is read; returns how many. May write up to kSlack entries past them (emit_word).
template <typename I>
inline int64_t emit_words(uint64_t* bits, int64_t w0, int64_t w1, I* out) {
  int64_t j = 0;
  for (int64_t w = w0; w <= w1; ++w) {
    const uint64_t x = bits[w];
    bits[w] = 0;
    j += emit_word(x, w, out + j);
  }
  return j;
}

}  // namespace hpc
