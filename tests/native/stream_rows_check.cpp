// Standalone check of hpc::StreamRows (native/include/hpc/stream_rows.hpp), built by
// tests/test_stream_rows.py with and without AVX-512: runs of random rows (short ones staged,
// some longer than the staging buffer, written directly), forwards and backwards, into arrays
// misaligned by whole elements; every position of the run must hold its row's entry and
// nothing outside the run may be written. Prints "errors N".
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "hpc/stream_rows.hpp"

template <typename I, bool Back>
int64_t check(unsigned seed) {
  std::mt19937 g(seed);
  const int64_t n = 200000, margin = 3100;
  std::vector<I> cols(n + 16, I(-1));
  std::vector<double> vals(n + 16, -1.0);
  I* dc = cols.data() + g() % 8;
  double* dv = vals.data() + g() % 8;
  const int64_t start = Back ? n - 1000 + int64_t(g() % 500) : int64_t(g() % 500);
  hpc::StreamRows<I, Back> w(dc, dv, start, true);
  int64_t e = start, errors = 0;
  while (Back ? e > margin : e < n - margin) {
    const int64_t bound = g() % 10 == 0 ? 1000 + int64_t(g() % 2000) : int64_t(g() % 40);
    const int64_t len = int64_t(g() % (bound + 1));
    auto [oc, ov] = w.room(bound);
    const int64_t first = Back ? e - len : e;  // the row's first position
    if (Back) {
      oc -= len;
      ov -= len;
    }
    for (int64_t j = 0; j < len; ++j) {
      oc[j] = I(7 * (first + j) + 1);
      ov[j] = 0.5 * double(first + j);
    }
    w.wrote(len);
    e += Back ? -len : len;
    errors += w.pos() != e;
  }
  w.finish();
  const int64_t lo = Back ? e : start, hi = Back ? start : e;
  for (int64_t p = 0; p < n; ++p) {
    const bool in = p >= lo && p < hi;
    errors += dc[p] != (in ? I(7 * p + 1) : I(-1));
    errors += dv[p] != (in ? 0.5 * double(p) : -1.0);
  }
  return errors;
}

int main() {
  int64_t errors = 0;
  for (unsigned s = 0; s < 40; ++s)
    errors += check<int32_t, false>(s) + check<int32_t, true>(s) + check<int64_t, false>(s) +
              check<int64_t, true>(s);
  std::printf("errors %lld\n", static_cast<long long>(errors));
  return errors != 0;
}
