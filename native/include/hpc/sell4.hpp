// One SELL-4 chunk of a pull product: the four row sums of chunk `ch`, each summing x over the
// chunk's column slots (times the edge weight when W). Shared by the 1D and 2D PageRank kernels.
#pragma once

#include <cstdint>

namespace hpc {

template <bool W>
inline void sell4_chunk_sums(const int32_t* q, const double* wv, int64_t width, const double* x,
                             double s[4]) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  if constexpr (W) {
    for (int64_t l = 0; l < width; ++l, q += 4, wv += 4) {
      s0 += wv[0] * x[q[0]];
      s1 += wv[1] * x[q[1]];
      s2 += wv[2] * x[q[2]];
      s3 += wv[3] * x[q[3]];
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

}  // namespace hpc
