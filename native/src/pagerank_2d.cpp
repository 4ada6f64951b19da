// hpc.pagerank 2D layout kernels: the local block product y = A_ij xc of rank (i, j) in the
// SELL-4 layout of the 1D sweep (rows sorted by length, descending, 4 rows a chunk, threads
// split the chunks by work), and networkx's update with personalization / dangling vectors.
//
// The block is copied and validated once (class Block); it is bound to its input buffer xc
// (ncols values, the all-gather's order) and its output y (rows values, the block's own row
// order), so a product checks nothing and allocates nothing. As the 1D sweep numbers its
// columns by degree, the block renumbers its columns by how often they occur (descending):
// each product first gathers the used columns of xc into that order (one read per column,
// against one per entry after), so the hubs' values share cache lines; on a Kronecker graph
// the product then runs several times faster than over the natural column order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"
#include "hpc/sell4.hpp"

namespace {
using hpc::carray;
using std::int32_t;
using std::int64_t;

class Block {
 public:
  Block(const py::array& indptr, const py::array& indices, const py::array& values, int64_t ncols,
        py::array xc, py::array y)
      : xc_(hpc::exact<double>(xc, "pagerank_2d.Block xc")),
        y_(hpc::exact<double>(y, "pagerank_2d.Block y")) {
    auto ip = hpc::exact<int64_t>(indptr, "pagerank_2d.Block indptr");
    auto ix = hpc::exact<int64_t>(indices, "pagerank_2d.Block indices");
    auto vv = hpc::exact<double>(values, "pagerank_2d.Block values");
    if (ip.ndim() != 1 || ix.ndim() != 1 || vv.ndim() != 1 || ip.shape(0) < 1)
      hpc::fail("pagerank_2d.Block: CSR arrays must be 1-D");
    if (ncols < 0 || ncols >= std::numeric_limits<int32_t>::max())
      hpc::fail("pagerank_2d.Block: ncols must be in [0, 2**31 - 1)");
    rows_ = ip.shape(0) - 1;
    ncols_ = ncols;
    const int64_t nnz = ix.shape(0);
    const int64_t* p = ip.data();
    const int64_t* c = ix.data();
    if (p[0] != 0 || p[rows_] != nnz) hpc::fail("pagerank_2d.Block: indptr does not span the entries");
    if (!hpc::non_decreasing(p, rows_)) hpc::fail("pagerank_2d.Block: indptr is not monotone");
    if (!hpc::all_in_range(c, nnz, ncols)) hpc::fail("pagerank_2d.Block: column index out of range");
    if (vv.shape(0) != 0 && vv.shape(0) != nnz)
      hpc::fail("pagerank_2d.Block: values must be empty (pattern) or one per entry");
    hpc::require_1d(xc_, ncols, "pagerank_2d.Block xc");
    hpc::require_1d(y_, rows_, "pagerank_2d.Block y");
    pxc_ = hpc::mut_ptr(xc_, "pagerank_2d.Block xc");
    py_ = hpc::mut_ptr(y_, "pagerank_2d.Block y");
    // rows by length, descending (stable: equal rows keep their order)
    perm_.resize(rows_);
    std::iota(perm_.begin(), perm_.end(), int64_t{0});
    std::stable_sort(perm_.begin(), perm_.end(), [p](int64_t a, int64_t b) {
      return p[a + 1] - p[a] > p[b + 1] - p[b];
    });
    // columns by occurrence, descending (stable); unused columns are not gathered
    std::vector<int64_t> cnt(static_cast<size_t>(ncols), 0);
    for (int64_t k = 0; k < nnz; ++k) ++cnt[c[k]];
    cperm_.resize(ncols);
    std::iota(cperm_.begin(), cperm_.end(), int64_t{0});
    std::stable_sort(cperm_.begin(), cperm_.end(),
                     [&cnt](int64_t a, int64_t b) { return cnt[a] > cnt[b]; });
    nused_ = 0;
    while (nused_ < ncols && cnt[cperm_[nused_]] > 0) ++nused_;
    cperm_.resize(nused_);
    std::vector<int32_t> cpos(static_cast<size_t>(ncols), 0);
    for (int64_t k = 0; k < nused_; ++k) cpos[cperm_[k]] = static_cast<int32_t>(k);
    xi_.assign(static_cast<size_t>(nused_ + 1), 0.0);   // + the zero slot of the padding
    const int32_t zero = static_cast<int32_t>(nused_);
    nch_ = (rows_ + 3) / 4;
    start_.assign(nch_ + 1, 0);
    width_.assign(nch_, 0);
    for (int64_t ch = 0; ch < nch_; ++ch) {   // sorted: the chunk's first row is its longest
      const int64_t r = perm_[4 * ch];
      width_[ch] = p[r + 1] - p[r];
      start_[ch + 1] = start_[ch] + 4 * width_[ch];
    }
    pieces_ = hpc::sell4_pieces(start_.data(), nch_, 2);
    sell_.assign(static_cast<size_t>(start_[nch_]), zero);
    if (vv.shape(0)) sellv_.assign(sell_.size(), 0.0);
    const double* v = vv.data();
    for (int64_t ch = 0; ch < nch_; ++ch)
      for (int64_t j = 0; j < std::min<int64_t>(4, rows_ - 4 * ch); ++j) {
        const int64_t r = perm_[4 * ch + j];
        for (int64_t k = p[r]; k < p[r + 1]; ++k) {
          const int64_t at = start_[ch] + 4 * (k - p[r]) + j;
          sell_[at] = cpos[c[k]];
          if (!sellv_.empty()) sellv_[at] = v[k];
        }
      }
    // weights that are all exactly floats, or floats times one scale (decimal weights), travel
    // as floats: 8 bytes an entry instead of 12, each row sum times the scale (as the 1D
    // sweep's 'values32' / 'scaled32'; hpc::sell4_float_scale)
    if (!sellv_.empty()) {
      std::vector<double> tab(v, v + nnz);
      tab.push_back(0.0);   // the padding
      std::sort(tab.begin(), tab.end());
      tab.erase(std::unique(tab.begin(), tab.end()), tab.end());
      const double scale = hpc::sell4_float_scale(tab);
      if (scale > 0.0) {
        fscale_ = scale;
        sellf_.resize(sellv_.size());
        for (size_t k = 0; k < sellv_.size(); ++k)
          sellf_[k] = static_cast<float>(scale == 1.0 ? sellv_[k] : std::nearbyint(sellv_[k] / scale));
        std::vector<double>().swap(sellv_);
      }
    }
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return ncols_; }
  int64_t padded() const { return start_[nch_]; }
  bool weighted() const { return !sellv_.empty() || !sellf_.empty(); }

  int64_t used() const { return nused_; }

  // y = A xc (the bound buffers)
  void spmv() {
    py::gil_scoped_release nogil;
    const double* xc = pxc_;
    double* xi = xi_.data();
    const int64_t* cp = cperm_.data();
    const int64_t nu = nused_;
#pragma omp parallel for schedule(static) if (nu > 65536)
    for (int64_t k = 0; k < nu; ++k) xi[k] = xc[cp[k]];
    if (!sellf_.empty()) run<true, float>();
    else if (sellv_.empty()) run<false>();
    else run<true>();
  }

 private:
  template <bool W, typename V = double>
  void run() {
    const double* x = xi_.data();
    double* y = py_;
    const int64_t* perm = perm_.data();
    const double fscale = fscale_;
    const int64_t* pb = pieces_.data();
    const int64_t npc = static_cast<int64_t>(pieces_.size()) - 1;
    const bool par = hpc::sell4_parallel(start_.data(), nch_, 2);
    // pieces of equal work (a row costs its store: 2 entries' worth) taken dynamically, as
    // the 1D sweep's (hpc::sell4_pieces)
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int64_t k = 0; k < npc; ++k) {
      for (int64_t ch = pb[k]; ch < pb[k + 1]; ++ch) {
        double s[4];
        const V* wv = nullptr;
        if constexpr (W && std::is_same_v<V, float>) wv = sellf_.data() + start_[ch];
        else if constexpr (W) wv = sellv_.data() + start_[ch];
        hpc::sell4_chunk_sums<W, V>(sell_.data() + start_[ch], wv, width_[ch], x, s);
        const int64_t r0 = 4 * ch, nr = std::min<int64_t>(4, rows_ - r0);
        if constexpr (std::is_same_v<V, float>) {
          for (int64_t j = 0; j < nr; ++j) y[perm[r0 + j]] = s[j] * fscale;
        } else {
          for (int64_t j = 0; j < nr; ++j) y[perm[r0 + j]] = s[j];
        }
      }
    }
  }

  carray<double> xc_, y_;   // bound buffers (the references keep them alive)
  double *pxc_ = nullptr, *py_ = nullptr;
  int64_t rows_ = 0, ncols_ = 0, nch_ = 0, nused_ = 0;
  std::vector<int64_t> perm_, start_, width_;
  std::vector<int64_t> pieces_;  // chunk ranges of equal work, taken by the threads dynamically
  std::vector<int64_t> cperm_;   // xc position of each internal column (the used ones)
  std::vector<double> xi_;       // xc in the internal column order, + the zero slot
  std::vector<int32_t> sell_;
  std::vector<double> sellv_;   // edge weights in the SELL-4 layout (empty: all 1)
  std::vector<float> sellf_;    // or as floats, where every weight is exactly one
  double fscale_ = 1.0;         // ... times this scale (hpc::sell4_float_scale)
};

// networkx's update with personalization p and dangling distribution q (vectors):
// x_new = d*y + ddm*q + c*p (ddm = d * dangling mass, c = 1 - d); sets x = x_new and
// xs = x_new * inv; returns (|x_new - x|_1, sum of x_new over the dangling rows, inv = 0).
std::pair<double, double> update_teleport(const py::array& y_, py::array& x_, py::array& xs_,
                                          const py::array& inv_, double d, double ddm, double c,
                                          const py::array& p_, const py::array& q_) {
  auto y = hpc::exact<double>(y_, "pagerank_2d.update_teleport y");
  if (y.ndim() != 1) hpc::fail("pagerank_2d.update_teleport: y must be 1-D");
  const int64_t n = y.shape(0);
  auto x = hpc::exact<double>(x_, "pagerank_2d.update_teleport x");
  auto xs = hpc::exact<double>(xs_, "pagerank_2d.update_teleport xs");
  auto inv = hpc::exact<double>(inv_, "pagerank_2d.update_teleport inv");
  auto p = hpc::exact<double>(p_, "pagerank_2d.update_teleport p");
  auto q = hpc::exact<double>(q_, "pagerank_2d.update_teleport q");
  hpc::require_1d(x, n, "pagerank_2d.update_teleport x");
  hpc::require_1d(xs, n, "pagerank_2d.update_teleport xs");
  hpc::require_1d(inv, n, "pagerank_2d.update_teleport inv");
  hpc::require_1d(p, n, "pagerank_2d.update_teleport p");
  hpc::require_1d(q, n, "pagerank_2d.update_teleport q");
  const double* py = y.data();
  double* px = hpc::mut_ptr(x, "pagerank_2d.update_teleport x");
  double* pxs = hpc::mut_ptr(xs, "pagerank_2d.update_teleport xs");
  const double *pi = inv.data(), *pp = p.data(), *pq = q.data();
  double diff = 0.0, dsum = 0.0;
  py::gil_scoped_release nogil;
#pragma omp parallel for schedule(static) reduction(+ : diff, dsum) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const double xn = d * py[i] + ddm * pq[i] + c * pp[i];
    diff += std::fabs(xn - px[i]);
    px[i] = xn;
    pxs[i] = xn * pi[i];
    if (pi[i] == 0.0) dsum += xn;
  }
  return {diff, dsum};
}
}  // namespace

HPC_SUBMODULE(pagerank_2d) {
  m.doc() = "hpc.pagerank 2D layout: SELL-4 block product and the teleport-vector update";
  py::class_<Block>(m, "Block", "Validated CSR block of a 2D rank in SELL-4, bound to xc and y")
      .def(py::init<const py::array&, const py::array&, const py::array&, int64_t, py::array,
                    py::array>(),
           py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("ncols"),
           py::kw_only(), py::arg("xc"), py::arg("y"))
      .def_property_readonly("rows", &Block::rows)
      .def_property_readonly("cols", &Block::cols)
      .def_property_readonly("padded", &Block::padded)
      .def_property_readonly("weighted", &Block::weighted)
      .def_property_readonly("used", &Block::used, "columns that occur in the block")
      .def("spmv", &Block::spmv, "y = A xc (the bound buffers)");
  m.def("update_teleport", &update_teleport, py::arg("y"), py::arg("x"), py::arg("xs"),
        py::arg("inv"), py::arg("d"), py::arg("ddm"), py::arg("c"), py::arg("p"), py::arg("q"),
        "x_new = d*y + ddm*q + c*p; sets x, xs = x_new*inv; returns (L1 change, dangling sum)");
}
