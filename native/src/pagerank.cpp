// hpc.pagerank kernels: the SNAP edge-list parser and the pull-based PageRank sweep.
// The graph structure is copied and validated once (class Pull); each iteration then only
// checks vector lengths, so no call can read or write out of range.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using hpc::carray;
using std::int32_t;
using std::int64_t;

// ------------------------------------------------------------------ SNAP edge-list parser
// Returns (src, dst, bad_line, code): code 0 ok, 1 malformed line, 2 id exceeds int64;
// bad_line is the 0-based index of the first bad line of the chunk (-1 if none).
struct Parsed {
  std::vector<int64_t> src, dst;
  int64_t bad = -1;
  int code = 0;
};

inline bool blank(char c) { return c == ' ' || c == '\t'; }

Parsed parse(const char* s, int64_t n) {
  Parsed out;
  out.src.reserve(static_cast<size_t>(n / 8));
  out.dst.reserve(static_cast<size_t>(n / 8));
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t i = 0, line = 0;
  while (i <= n) {
    // one line: [i, end)
    int64_t end = i;
    while (end < n && s[end] != '\n') ++end;
    int64_t j = i, e = end;
    if (e > j && s[e - 1] == '\r') --e;
    while (j < e && blank(s[j])) ++j;
    if (j < e && s[j] != '#' && s[j] != '%') {
      int64_t v[2] = {0, 0};
      int k = 0;
      for (; k < 2; ++k) {
        if (k == 1) {
          if (j >= e || !blank(s[j])) break;
          while (j < e && blank(s[j])) ++j;
        }
        if (j >= e || s[j] < '0' || s[j] > '9') break;
        int64_t x = 0;
        while (j < e && s[j] >= '0' && s[j] <= '9') {
          const int d = s[j] - '0';
          if (x > (kMax - d) / 10) {
            out.bad = line;
            out.code = 2;
            return out;
          }
          x = x * 10 + d;
          ++j;
        }
        v[k] = x;
      }
      while (j < e && blank(s[j])) ++j;
      if (k != 2 || j != e) {
        out.bad = line;
        out.code = 1;
        return out;
      }
      out.src.push_back(v[0]);
      out.dst.push_back(v[1]);
    }
    i = end + 1;
    ++line;
  }
  return out;
}

py::array_t<int64_t> to_array(std::vector<int64_t>&& v) {
  auto* heap = new std::vector<int64_t>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<int64_t>*>(p); });
  return py::array_t<int64_t>(static_cast<py::ssize_t>(heap->size()), heap->data(), owner);
}

// ------------------------------------------------------------------ PageRank sweep
// Pattern CSR (all values 1) of the rows this rank owns, columns compressed to 0..ncols-1.
class Pull {
 public:
  Pull(const py::array& indptr, const py::array& indices, int64_t ncols) : ncols_(ncols) {
    auto ip = hpc::exact<int64_t>(indptr, "pagerank.Pull indptr");
    auto ix = hpc::exact<int32_t>(indices, "pagerank.Pull indices");
    if (ip.ndim() != 1 || ix.ndim() != 1 || ip.shape(0) < 1)
      hpc::fail("pagerank.Pull: CSR arrays must be 1-D");
    if (ncols < 0) hpc::fail("pagerank.Pull: ncols must be >= 0");
    rows_ = ip.shape(0) - 1;
    const int64_t nnz = ix.shape(0);
    ptr_.assign(ip.data(), ip.data() + rows_ + 1);
    idx_.assign(ix.data(), ix.data() + nnz);
    if (ptr_[0] != 0 || ptr_[rows_] != nnz) hpc::fail("pagerank.Pull: indptr does not span the entries");
    for (int64_t r = 0; r < rows_; ++r)
      if (ptr_[r + 1] < ptr_[r]) hpc::fail("pagerank.Pull: indptr is not monotone");
    for (int64_t k = 0; k < nnz; ++k)
      if (idx_[k] < 0 || int64_t(idx_[k]) >= ncols) hpc::fail("pagerank.Pull: column index out of range");
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return ncols_; }
  int64_t nnz() const { return static_cast<int64_t>(idx_.size()); }

  // y = A x (or y += A x)
  void spmv(const py::array& x_, py::array& y_, bool acc) const {
    auto x = hpc::exact<double>(x_, "pagerank.spmv x");
    auto y = hpc::exact<double>(y_, "pagerank.spmv y");
    hpc::require_1d(x, ncols_, "pagerank.spmv x");
    hpc::require_1d(y, rows_, "pagerank.spmv y");
    const double* px = x.data();
    double* py_ = hpc::mut_ptr(y, "pagerank.spmv y");
    py::gil_scoped_release nogil;
    const int64_t* p = ptr_.data();
    const int32_t* c = idx_.data();
#pragma omp parallel for schedule(dynamic, 1024)
    for (int64_t i = 0; i < rows_; ++i) {
      double s = 0.0;
      for (int64_t k = p[i]; k < p[i + 1]; ++k) s += px[c[k]];
      py_[i] = acc ? py_[i] + s : s;
    }
  }

  // y_i += (A xg)_i, then the PageRank update of row i (see update()).
  std::pair<double, double> spmv_update(const py::array& xg_, py::array& y_, py::array& x_,
                                        py::array& xs_, const py::array& inv_, double d,
                                        double base) const {
    auto xg = hpc::exact<double>(xg_, "pagerank.spmv_update xg");
    hpc::require_1d(xg, ncols_, "pagerank.spmv_update xg");
    auto [py_, px, pxs, pinv] = vectors(y_, x_, xs_, inv_, rows_);
    const double* pg = xg.data();
    double diff = 0.0, dsum = 0.0;
    py::gil_scoped_release nogil;
    const int64_t* p = ptr_.data();
    const int32_t* c = idx_.data();
#pragma omp parallel for schedule(dynamic, 1024) reduction(+ : diff, dsum)
    for (int64_t i = 0; i < rows_; ++i) {
      double s = py_[i];
      for (int64_t k = p[i]; k < p[i + 1]; ++k) s += pg[c[k]];
      const double xn = d * s + base;
      diff += std::fabs(xn - px[i]);
      px[i] = xn;
      pxs[i] = xn * pinv[i];
      if (pinv[i] == 0.0) dsum += xn;
    }
    return {diff, dsum};
  }

  // x_new = d*y + base; returns (|x_new - x|_1, sum of x_new over dangling rows) and sets
  // x = x_new, xs = x_new * inv_deg (inv_deg = 0 marks a dangling vertex).
  static std::pair<double, double> update(py::array& y_, py::array& x_, py::array& xs_,
                                          const py::array& inv_, double d, double base) {
    auto y = hpc::exact<double>(y_, "pagerank.update y");
    const int64_t n = y.ndim() == 1 ? y.shape(0) : -1;
    if (n < 0) hpc::fail("pagerank.update: y must be 1-D");
    auto [py_, px, pxs, pinv] = vectors(y_, x_, xs_, inv_, n);
    double diff = 0.0, dsum = 0.0;
    py::gil_scoped_release nogil;
#pragma omp parallel for schedule(static) reduction(+ : diff, dsum)
    for (int64_t i = 0; i < n; ++i) {
      const double xn = d * py_[i] + base;
      diff += std::fabs(xn - px[i]);
      px[i] = xn;
      pxs[i] = xn * pinv[i];
      if (pinv[i] == 0.0) dsum += xn;
    }
    return {diff, dsum};
  }

 private:
  struct Vecs {
    double* y;
    double* x;
    double* xs;
    const double* inv;
  };
  static Vecs vectors(py::array& y_, py::array& x_, py::array& xs_, const py::array& inv_,
                      int64_t n) {
    auto y = hpc::exact<double>(y_, "pagerank y");
    auto x = hpc::exact<double>(x_, "pagerank x");
    auto xs = hpc::exact<double>(xs_, "pagerank xs");
    auto inv = hpc::exact<double>(inv_, "pagerank inv_deg");
    hpc::require_1d(y, n, "pagerank y");
    hpc::require_1d(x, n, "pagerank x");
    hpc::require_1d(xs, n, "pagerank xs");
    hpc::require_1d(inv, n, "pagerank inv_deg");
    return {hpc::mut_ptr(y, "pagerank y"), hpc::mut_ptr(x, "pagerank x"),
            hpc::mut_ptr(xs, "pagerank xs"), inv.data()};
  }

  int64_t rows_ = 0, ncols_ = 0;
  std::vector<int64_t> ptr_;
  std::vector<int32_t> idx_;
};
}  // namespace

HPC_SUBMODULE(pagerank) {
  m.doc() = "hpc.pagerank kernels: SNAP parser, pull-based PageRank sweep (OpenMP)";
  m.def("parse_edges", [](py::bytes data) {
    char* buf = nullptr;
    Py_ssize_t len = 0;
    if (PyBytes_AsStringAndSize(data.ptr(), &buf, &len) != 0) throw py::error_already_set();
    Parsed r;
    {
      py::gil_scoped_release nogil;  // `data` stays referenced by the caller's frame
      r = parse(buf, static_cast<int64_t>(len));
    }
    const int64_t bad = r.bad;
    const int code = r.code;
    if (bad >= 0) {
      r.src.clear();
      r.dst.clear();
    }
    return py::make_tuple(to_array(std::move(r.src)), to_array(std::move(r.dst)), bad, code);
  }, py::arg("data"), "Parse SNAP text: (src, dst, bad_line, code 0 ok/1 malformed/2 overflow)");

  py::class_<Pull>(m, "Pull", "Validated pattern CSR for the pull sweep (copied once)")
      .def(py::init<const py::array&, const py::array&, int64_t>(), py::arg("indptr"),
           py::arg("indices"), py::arg("ncols"))
      .def_property_readonly("rows", &Pull::rows)
      .def_property_readonly("cols", &Pull::cols)
      .def_property_readonly("nnz", &Pull::nnz)
      .def("spmv", [](const Pull& a, const py::array& x, py::array y, bool acc) { a.spmv(x, y, acc); },
           py::arg("x"), py::arg("y"), py::arg("accumulate") = false)
      .def("spmv_update", &Pull::spmv_update, py::arg("xg"), py::arg("y"), py::arg("x"),
           py::arg("xs"), py::arg("inv_deg"), py::arg("d"), py::arg("base"));
  m.def("update", [](py::array y, py::array x, py::array xs, const py::array& inv, double d,
                     double base) { return Pull::update(y, x, xs, inv, d, base); },
        py::arg("y"), py::arg("x"), py::arg("xs"), py::arg("inv_deg"), py::arg("d"),
        py::arg("base"));
}
