// Packers for TEMPI's canonical strided blocks (hpc.halo.canonical.StridedBlock).
//
// A block is: start byte, counts[0] contiguous bytes, then counts[i] repetitions strides[i]
// bytes apart for i >= 1 (outermost slowest, the order MPI_Pack follows). pack() gathers the
// bytes into a contiguous buffer, unpack() scatters them back. 1-, 2- and 3-D blocks have
// their own loops; deeper ones walk an odometer. Block copies of 4/8/16/32/64 bytes are
// fixed-size memcpy (the compiler emits vector moves); others call memcpy. OpenMP splits the
// outermost blocks when there is enough work to pay for the threads.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include <pybind11/stl.h>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {
using std::int64_t;
using Vec = std::vector<int64_t>;

constexpr int64_t kParallelBytes = 1 << 18;  // below this, threads cost more than they save

template <int64_t B>
inline void copy_fixed(unsigned char* __restrict d, const unsigned char* __restrict s) {
  std::memcpy(d, s, B);
}

// One contiguous run of `len` bytes; dispatch on the common sizes so memcpy is inlined.
struct Copier {
  int64_t len;
  inline void operator()(unsigned char* __restrict d, const unsigned char* __restrict s) const {
    switch (len) {
      case 4: copy_fixed<4>(d, s); break;
      case 8: copy_fixed<8>(d, s); break;
      case 16: copy_fixed<16>(d, s); break;
      case 24: copy_fixed<24>(d, s); break;
      case 32: copy_fixed<32>(d, s); break;
      case 48: copy_fixed<48>(d, s); break;
      case 64: copy_fixed<64>(d, s); break;
      default: std::memcpy(d, s, static_cast<size_t>(len));
    }
  }
};

// Packed offset p of block index b is b * len; strided offset follows the odometer over
// counts[1..]. `Unpack` swaps the roles of the two buffers.
template <bool Unpack>
void run(unsigned char* strided, unsigned char* packed, int64_t start, const Vec& counts,
         const Vec& strides, int threads) {
  const int64_t len = counts[0];
  const int nd = static_cast<int>(counts.size());
  int64_t nblocks = 1;
  for (int i = 1; i < nd; ++i) nblocks *= counts[i];
  if (nblocks == 0 || len == 0) return;
  const Copier cp{len};
  auto move = [&](int64_t soff, int64_t poff) {
    if (Unpack) cp(strided + soff, packed + poff);
    else cp(packed + poff, strided + soff);
  };
  const bool par = threads > 1 && nblocks * len >= kParallelBytes;
  if (nd == 1) {  // one contiguous run: split it across threads when large
    if (!par) {
      if (Unpack) std::memcpy(strided + start, packed, static_cast<size_t>(len));
      else std::memcpy(packed, strided + start, static_cast<size_t>(len));
      return;
    }
    const int64_t chunk = (len + threads - 1) / threads;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; ++t) {
      const int64_t lo = std::min(len, t * chunk), hi = std::min(len, lo + chunk);
      if (hi > lo) {
        if (Unpack) std::memcpy(strided + start + lo, packed + lo, static_cast<size_t>(hi - lo));
        else std::memcpy(packed + lo, strided + start + lo, static_cast<size_t>(hi - lo));
      }
    }
    return;
  }
  if (nd == 2) {
    const int64_t n1 = counts[1], s1 = strides[1];
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
    for (int64_t j = 0; j < n1; ++j) move(start + j * s1, j * len);
    return;
  }
  if (nd == 3) {
    const int64_t n1 = counts[1], s1 = strides[1], n2 = counts[2], s2 = strides[2];
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
    for (int64_t k = 0; k < n2; ++k) {
      const int64_t sk = start + k * s2, pk = k * n1 * len;
      for (int64_t j = 0; j < n1; ++j) move(sk + j * s1, pk + j * len);
    }
    return;
  }
  // N-D: each thread takes a contiguous range of block indices and walks an odometer.
  const int nthreads = par ? threads : 1;
#pragma omp parallel num_threads(nthreads) if (par)
  {
    int tid = 0, nt = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    const int64_t per = (nblocks + nt - 1) / nt;
    const int64_t b0 = std::min(nblocks, tid * per), b1 = std::min(nblocks, b0 + per);
    if (b1 > b0) {
      Vec idx(nd, 0);
      int64_t rem = b0, soff = start;
      for (int i = 1; i < nd; ++i) {
        idx[i] = rem % counts[i];
        rem /= counts[i];
        soff += idx[i] * strides[i];
      }
      for (int64_t b = b0; b < b1; ++b) {
        move(soff, b * len);
        for (int i = 1; i < nd; ++i) {  // advance the odometer
          soff += strides[i];
          if (++idx[i] < counts[i]) break;
          soff -= counts[i] * strides[i];
          idx[i] = 0;
        }
      }
    }
  }
}

struct Buf {
  unsigned char* ptr;
  int64_t nbytes;
};

Buf bytes_of(const py::array& a, bool writable, const char* what) {
  if (!(a.flags() & py::array::c_style))
    hpc::fail(std::string("pack: ") + what + " must be C-contiguous");
  if (writable && !a.writeable()) hpc::fail(std::string("pack: ") + what + " is read-only");
  return {static_cast<unsigned char*>(const_cast<void*>(a.data())),
          static_cast<int64_t>(a.nbytes())};
}

// Validates the block against both buffers: every byte touched lies inside them, the packed
// buffer is large enough, and the two do not overlap. Returns the packed size.
int64_t check(const Buf& strided, const Buf& packed, int64_t start, const Vec& counts,
              const Vec& strides) {
  if (counts.empty() || counts.size() != strides.size())
    hpc::fail("pack: counts and strides must be non-empty and of equal length");
  if (strides[0] != 1) hpc::fail("pack: strides[0] must be 1 (dimension 0 is bytes)");
  __int128 total = 1, lo = start, hi = start;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) hpc::fail("pack: negative count");
    total *= counts[i];
    if (total > (__int128(1) << 62)) hpc::fail("pack: block too large");
  }
  if (total == 0) return 0;
  for (size_t i = 1; i < counts.size(); ++i) {
    const __int128 d = __int128(counts[i] - 1) * strides[i];
    if (d < 0) lo += d; else hi += d;
  }
  hi += counts[0];
  if (lo < 0 || hi > strided.nbytes)
    hpc::fail("pack: block touches bytes [" + std::to_string(int64_t(lo)) + ", " +
              std::to_string(int64_t(hi)) + ") outside a buffer of " +
              std::to_string(strided.nbytes) + " bytes");
  if (total > packed.nbytes)
    hpc::fail("pack: packed buffer holds " + std::to_string(packed.nbytes) + " bytes, need " +
              std::to_string(int64_t(total)));
  const unsigned char* s0 = strided.ptr + int64_t(lo);
  const unsigned char* s1 = strided.ptr + int64_t(hi);
  const unsigned char* p0 = packed.ptr;
  const unsigned char* p1 = packed.ptr + int64_t(total);
  if (s0 < p1 && p0 < s1) hpc::fail("pack: strided and packed buffers overlap");
  return int64_t(total);
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
}
