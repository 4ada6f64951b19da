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
#include <tuple>
#include <utility>
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

constexpr int64_t kParallelBytes = 1 << 18;     // below this, threads cost more than they save
constexpr int64_t kParallelAllBytes = 1 << 15;  // a plan's blocks split over threads

// One contiguous run. B > 0: a compile-time length (memcpy becomes a few vector moves);
// B == 0: the run-time length `len`.
template <int64_t B>
struct Run {
  int64_t len;
  inline void operator()(unsigned char* __restrict d, const unsigned char* __restrict s) const {
    if constexpr (B > 0) std::memcpy(d, s, B);
    else std::memcpy(d, s, static_cast<size_t>(len));
  }
};

// Packed offset of block b is b * len; the strided offset follows counts[1..] (outermost
// slowest). Unpack swaps source and destination.
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

template <bool Unpack, int64_t B>
void run_fixed(unsigned char* __restrict strided, unsigned char* __restrict packed,
               int64_t start, const Vec& counts, const Vec& strides, int threads) {
  const int64_t len = counts[0];
  const int nd = static_cast<int>(counts.size());
  int64_t nblocks = 1;
  for (int i = 1; i < nd; ++i) nblocks *= counts[i];
  const Run<B> cp{len};
  const bool par = threads > 1 && nblocks * len >= kParallelBytes;
  auto move = [&](int64_t soff, int64_t poff) {
    if constexpr (Unpack) cp(strided + soff, packed + poff);
    else cp(packed + poff, strided + soff);
  };
  const int64_t n1 = counts[1], s1 = strides[1];
  if (nd == 2) {
    split([&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) move(start + j * s1, j * len);
    }, n1, par, threads);
    return;
  }
  if (nd == 3) {
    const int64_t n2 = counts[2], s2 = strides[2];
    split([&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t sk = start + k * s2, pk = k * n1 * len;
        for (int64_t j = 0; j < n1; ++j) move(sk + j * s1, pk + j * len);
      }
    }, n2, par, threads);
    return;
  }
  // N-D: ranges of outer indices (over counts[2..]) walk an odometer; dimension 1 is the
  // tight inner loop.
  split([&](int64_t o0, int64_t o1) {
    Vec idx(nd, 0);
    int64_t rem = o0, soff = start;
    for (int i = 2; i < nd; ++i) {
      idx[i] = rem % counts[i];
      rem /= counts[i];
      soff += idx[i] * strides[i];
    }
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t pbase = o * n1 * len;
      for (int64_t j = 0; j < n1; ++j) move(soff + j * s1, pbase + j * len);
      for (int i = 2; i < nd; ++i) {  // advance the odometer
        soff += strides[i];
        if (++idx[i] < counts[i]) break;
        soff -= counts[i] * strides[i];
        idx[i] = 0;
      }
    }
  }, nblocks / n1, par, threads);
}

template <bool Unpack>
void run(unsigned char* strided, unsigned char* packed, int64_t start, const Vec& counts,
         const Vec& strides, int threads) {
  const int64_t len = counts[0];
  const int nd = static_cast<int>(counts.size());
  int64_t nblocks = 1;
  for (int i = 1; i < nd; ++i) nblocks *= counts[i];
  if (nblocks == 0 || len == 0) return;
  if (nd == 1) {  // one contiguous run: split it across threads when large
    split([&](int64_t lo, int64_t hi) {
      if (Unpack) std::memcpy(strided + start + lo, packed + lo, static_cast<size_t>(hi - lo));
      else std::memcpy(packed + lo, strided + start + lo, static_cast<size_t>(hi - lo));
    }, len, threads > 1 && len >= kParallelBytes, threads);
    return;
  }
  switch (len) {  // the common element and row sizes get fixed-size copies
    case 1: return run_fixed<Unpack, 1>(strided, packed, start, counts, strides, threads);
    case 2: return run_fixed<Unpack, 2>(strided, packed, start, counts, strides, threads);
    case 4: return run_fixed<Unpack, 4>(strided, packed, start, counts, strides, threads);
    case 8: return run_fixed<Unpack, 8>(strided, packed, start, counts, strides, threads);
    case 12: return run_fixed<Unpack, 12>(strided, packed, start, counts, strides, threads);
    case 16: return run_fixed<Unpack, 16>(strided, packed, start, counts, strides, threads);
    case 24: return run_fixed<Unpack, 24>(strided, packed, start, counts, strides, threads);
    case 32: return run_fixed<Unpack, 32>(strided, packed, start, counts, strides, threads);
    case 40: return run_fixed<Unpack, 40>(strided, packed, start, counts, strides, threads);
    case 48: return run_fixed<Unpack, 48>(strided, packed, start, counts, strides, threads);
    case 64: return run_fixed<Unpack, 64>(strided, packed, start, counts, strides, threads);
    case 128: return run_fixed<Unpack, 128>(strided, packed, start, counts, strides, threads);
    default: return run_fixed<Unpack, 0>(strided, packed, start, counts, strides, threads);
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
int64_t check_geometry(const Buf& strided, const Buf& packed, int64_t start,
                       const Vec& counts, const Vec& strides) {
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
  return int64_t(total);
}

int64_t check(const Buf& strided, const Buf& packed, int64_t start, const Vec& counts,
              const Vec& strides) {
  const int64_t total = check_geometry(strided, packed, start, counts, strides);
  if (total == 0) return 0;
  __int128 lo = start, hi = start;
  for (size_t i = 1; i < counts.size(); ++i) {
    const __int128 d = __int128(counts[i] - 1) * strides[i];
    if (d < 0) lo += d; else hi += d;
  }
  hi += counts[0];
  const unsigned char* s0 = strided.ptr + int64_t(lo);
  const unsigned char* s1 = strided.ptr + int64_t(hi);
  const unsigned char* p0 = packed.ptr;
  const unsigned char* p1 = packed.ptr + int64_t(total);
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
// size, then packed one at a time or all together with no per-call list conversions.
class Plan {
 public:
  struct Block {
    int64_t start;
    Vec counts, strides;
    int64_t size, lo, hi;
  };

  Plan(const std::vector<std::tuple<int64_t, Vec, Vec>>& blocks, int64_t strided_bytes)
      : strided_bytes_(strided_bytes) {
    int64_t off = 0;
    for (const auto& [start, counts, strides] : blocks) {
      Buf fake_s{nullptr, strided_bytes}, fake_p{nullptr, int64_t(1) << 62};
      // check() with null pointers validates the geometry (no overlap test possible yet)
      const int64_t n = check_geometry(fake_s, fake_p, start, counts, strides);
      Block b{start, counts, strides, n, 0, 0};
      span(b);
      blocks_.push_back(b);
      offsets_.push_back(off);
      off += n;
    }
    total_ = off;
    order_.resize(blocks_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    std::stable_sort(order_.begin(), order_.end(),
                     [this](size_t a, size_t b) { return blocks_[a].size > blocks_[b].size; });
  }
  int64_t total() const { return total_; }
  const Vec& offsets() const { return offsets_; }
  size_t size() const { return blocks_.size(); }
  int64_t block_bytes(size_t i) const { return at(i).size; }

  int64_t pack_one(size_t i, const py::array& src, py::array& dst, int threads) const {
    return one<false>(i, src, dst, 0, threads);
  }
  int64_t unpack_one(size_t i, const py::array& src, py::array& dst, int threads) const {
    return one<true>(i, src, dst, 0, threads);
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
  static void span(Block& b) {
    __int128 lo = b.start, hi = b.start;
    for (size_t k = 1; k < b.counts.size(); ++k) {
      const __int128 d = __int128(b.counts[k] - 1) * b.strides[k];
      if (d < 0) lo += d; else hi += d;
    }
    b.lo = int64_t(lo);
    b.hi = int64_t(hi) + b.counts[0];
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
  int64_t one(size_t i, const py::array& src, py::array& dst, int64_t, int threads) const {
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
  int64_t all(const py::array& src, py::array& dst, int threads) const {
    auto [s, p] = bufs<Unpack>(src, dst);
    if (p.nbytes < total_)
      hpc::fail("pack.Plan: packed buffer holds " + std::to_string(p.nbytes) +
                " bytes, the plan needs " + std::to_string(total_));
    no_overlap(s, p, total_);
    const int nt = threads_or_default(threads);
    py::gil_scoped_release nogil;
    const int64_t nb = static_cast<int64_t>(blocks_.size());
    if (nt > 1 && total_ >= kParallelAllBytes) {
      // many independent blocks: threads take whole blocks (largest first balances best)
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
      for (int64_t k = 0; k < nb; ++k) {
        const size_t i = order_[k];
        run<Unpack>(s.ptr, p.ptr + offsets_[i], blocks_[i].start, blocks_[i].counts,
                    blocks_[i].strides, 1);
      }
    } else {
      for (int64_t i = 0; i < nb; ++i)
        run<Unpack>(s.ptr, p.ptr + offsets_[i], blocks_[i].start, blocks_[i].counts,
                    blocks_[i].strides, nt);
    }
    return total_;
  }

  std::vector<Block> blocks_;
  std::vector<size_t> order_;
  Vec offsets_;
  int64_t total_ = 0;
  int64_t strided_bytes_;
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
                              "one by one or all into one buffer at offsets()")
      .def(py::init<const std::vector<std::tuple<int64_t, Vec, Vec>>&, int64_t>(),
           py::arg("blocks"), py::arg("strided_bytes"))
      .def_property_readonly("total", &Plan::total)
      .def_property_readonly("offsets", &Plan::offsets)
      .def("__len__", &Plan::size)
      .def("block_bytes", &Plan::block_bytes)
      .def("pack_one", &Plan::pack_one, py::arg("i"), py::arg("src"), py::arg("dst"),
           py::arg("threads") = 0)
      .def("unpack_one", &Plan::unpack_one, py::arg("i"), py::arg("src"), py::arg("dst"),
           py::arg("threads") = 0)
      .def("pack_all", &Plan::pack_all, py::arg("src"), py::arg("dst"), py::arg("threads") = 0)
      .def("unpack_all", &Plan::unpack_all, py::arg("src"), py::arg("dst"),
           py::arg("threads") = 0);
}
