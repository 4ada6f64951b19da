// Gauss-Seidel sweep of hpc.pagerank's power iteration inside one rank's block (as GAP's pr):
// rows are updated in order and each row pulls the scores its block has already updated in
// this sweep (owned columns); ghost columns contribute through yg, computed by the caller from
// the last exchange. The update is networkx's, with the dangling mass of the previous sweep:
//     x_i = d * (yg_i + sum_j A_ij xs_j) + d * dm * q_i + (1 - d) * p_i,   xs_i = x_i * inv_i
// p and q are vectors or single values (uniform). The block's CSR (owned columns only, local
// numbering; optional values = edge weights) is copied and validated once (class GaussSeidel).
#include <cmath>
#include <cstdint>
#include <vector>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;

class GaussSeidel {
 public:
  GaussSeidel(const py::array& indptr, const py::array& indices, const py::array& values) {
    auto ip = hpc::exact<int64_t>(indptr, "pagerank_gs indptr");
    auto ix = hpc::exact<int64_t>(indices, "pagerank_gs indices");
    auto vv = hpc::exact<double>(values, "pagerank_gs values");
    if (ip.ndim() != 1 || ix.ndim() != 1 || vv.ndim() != 1 || ip.shape(0) < 1)
      hpc::fail("pagerank_gs: CSR arrays must be 1-D");
    rows_ = ip.shape(0) - 1;
    ptr_.assign(ip.data(), ip.data() + rows_ + 1);
    idx_.assign(ix.data(), ix.data() + ix.shape(0));
    if (vv.shape(0) != 0 && vv.shape(0) != ix.shape(0))
      hpc::fail("pagerank_gs: values must be empty (pattern) or one per entry");
    val_.assign(vv.data(), vv.data() + vv.shape(0));
    if (ptr_[0] != 0 || ptr_[rows_] != static_cast<int64_t>(idx_.size()))
      hpc::fail("pagerank_gs: indptr does not span the entries");
    if (!hpc::non_decreasing(ptr_.data(), rows_)) hpc::fail("pagerank_gs: indptr is not monotone");
    if (!hpc::all_in_range(idx_.data(), int64_t(idx_.size()), rows_))
      hpc::fail("pagerank_gs: column outside the block (owned columns only)");
  }

  // One sweep; returns (L1 change, dangling mass of the new x).
  py::tuple sweep(const py::array& xs_, const py::array& yg_, const py::array& x_,
                  const py::array& inv_, double d, double dm, const py::array& p_,
                  const py::array& q_) const {
    auto xs = hpc::exact<double>(xs_, "pagerank_gs xs");
    auto yg = hpc::exact<double>(yg_, "pagerank_gs yg");
    auto x = hpc::exact<double>(x_, "pagerank_gs x");
    auto inv = hpc::exact<double>(inv_, "pagerank_gs inv");
    auto p = hpc::exact<double>(p_, "pagerank_gs p");
    auto q = hpc::exact<double>(q_, "pagerank_gs q");
    hpc::require_1d(xs, rows_, "pagerank_gs xs");
    hpc::require_1d(yg, rows_, "pagerank_gs yg");
    hpc::require_1d(x, rows_, "pagerank_gs x");
    hpc::require_1d(inv, rows_, "pagerank_gs inv");
    if (p.ndim() != 1 || (p.shape(0) != 1 && p.shape(0) != rows_))
      hpc::fail("pagerank_gs: p must hold one value or one per row");
    if (q.ndim() != 1 || (q.shape(0) != 1 && q.shape(0) != rows_))
      hpc::fail("pagerank_gs: q must hold one value or one per row");
    double* pxs = hpc::mut_ptr(xs, "pagerank_gs xs");
    double* px = hpc::mut_ptr(x, "pagerank_gs x");
    const double* pyg = yg.data();
    const double* pinv = inv.data();
    const double* pp = p.data();
    const double* pq = q.data();
    const bool pvec = p.shape(0) == rows_ && rows_ != 1, qvec = q.shape(0) == rows_ && rows_ != 1;
    const bool weighted = !val_.empty();
    double change = 0.0, dang = 0.0;
    {
      py::gil_scoped_release nogil;
      const double c = 1.0 - d, ddm = d * dm;
      for (int64_t i = 0; i < rows_; ++i) {
        double s = pyg[i];
        if (weighted) {
          for (int64_t k = ptr_[i]; k < ptr_[i + 1]; ++k) s += val_[k] * pxs[idx_[k]];
        } else {
          for (int64_t k = ptr_[i]; k < ptr_[i + 1]; ++k) s += pxs[idx_[k]];
        }
        const double xn = d * s + ddm * (qvec ? pq[i] : pq[0]) + c * (pvec ? pp[i] : pp[0]);
        change += std::fabs(xn - px[i]);
        px[i] = xn;
        pxs[i] = xn * pinv[i];
        if (pinv[i] == 0.0) dang += xn;
      }
    }
    return py::make_tuple(change, dang);
  }

 private:
  int64_t rows_ = 0;
  std::vector<int64_t> ptr_, idx_;
  std::vector<double> val_;
};
}  // namespace

HPC_SUBMODULE(pagerank_gs) {
  m.doc() = "hpc.pagerank Gauss-Seidel sweep inside a rank's block (as GAP's pr)";
  py::class_<GaussSeidel>(m, "GaussSeidel", "Validated owned-column CSR block of a rank")
      .def(py::init<const py::array&, const py::array&, const py::array&>(), py::arg("indptr"),
           py::arg("indices"), py::arg("values"))
      .def("sweep", &GaussSeidel::sweep, py::arg("xs"), py::arg("yg"), py::arg("x"),
           py::arg("inv"), py::arg("d"), py::arg("dm"), py::arg("p"), py::arg("q"));
}
