// hpc.pagerank kernels: the SNAP edge-list parser and the pull-based PageRank sweep.
// The graph structure is copied and validated once (class Pull); each iteration then only
// checks vector lengths, so no call can read or write out of range.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"
#include "hpc/pagerank_relax.hpp"
#include "hpc/pagerank_weights.hpp"
#include "hpc/sell4.hpp"

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

using hpc::mul_add;

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
    if (!hpc::non_decreasing(ptr_.data(), rows_)) hpc::fail("pagerank.Pull: indptr is not monotone");
    if (!hpc::all_in_range(idx_.data(), nnz, ncols))
      hpc::fail("pagerank.Pull: column index out of range");
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

// ------------------------------------------------------------------ typed setup results
// exchange_layout's result: where every value of the 1D solver's exchange sits (see there).
struct ExchangeLayout {
  py::array_t<int64_t> sources, dests;                  // neighbour ranks, ascending
  py::array_t<int64_t> recv_counts, recv_displs;        // per source, in values (+2 piggyback)
  py::array_t<int64_t> send_counts, send_displs;        // per destination
  py::array_t<int64_t> ghost_pos;  // receive position of every ghost slot (sorted ghosts)
  py::array_t<int64_t> send_idx;   // local row of every value sent (grouped by destination)
  py::array_t<int64_t> pack_pos;   // its position in the send buffer
  py::array_t<int64_t> part_pos;   // the 2-slot partial blocks in the send buffer
  py::array_t<int64_t> rpart_pos;  // ... and in xg (after the nl owned rows), one per source
  int64_t rank = 0, nl = 0, n_recv = 0, n_send = 0;
  bool piggyback = false;
  // this rank's place among the partial blocks summed in rank order (0 without piggyback)
  int64_t own_block() const { return piggyback ? rank : 0; }
};

// local_order's result: the rows renumbered for the SELL-4 sweep (see there).
struct LocalOrder {
  py::array_t<int64_t> perm, pos, indptr;
  py::array_t<int32_t> indices, pack_idx;
  py::array_t<double> inv_deg;
};

// ------------------------------------------------------------------ SELL-4 sweep with bound buffers
// One rank's share of the 1D pull iteration, for small-latency loops: every buffer is bound once
// (validated here, kept alive by the references this object holds), so an iteration is one call
// without arguments to check. Rows are in the caller's internal order (in-degree descending), so
// chunks of 4 consecutive rows have nearly equal lengths: SELL-4 with 4 independent sums and no
// data-dependent loop exits (the CSR row loop mispredicts on short rows: 4x slower on
// p2p-Gnutella08). Columns index xg = [xs of the owned rows | receive buffer | one zero slot].
//
// step(d, base): x_new = d * (A xg) + base per row, L1 change and dangling mass of x_new (the
// partials), xs = x_new * inv_deg into xg[0:rows], then the send buffer: value slots
// send[pack_pos[k]] = xg[pack_idx[k]] and 2-slot partial blocks at part_pos (change, dangling).
// global_prev(): the global (change, dangling) of the previous step: received partial blocks
// (xg positions rpart_pos, one per other rank, in rank order) plus this rank's own, summed in
// rank order so that every rank gets the same bits (the stopping decision must agree).
class Sweep {
 public:
  // order: local_order's rows; layout: exchange_layout's positions; xg = [xs of the owned rows |
  // receive buffer | zero slot] (length rows + layout.n_recv + 1), x the owned rows, send the
  // send buffer (layout.n_send), part_out the 2 partial sums. Everything is checked here.
  Sweep(const LocalOrder& order, const ExchangeLayout& layout, py::array xg, py::array x,
        py::array send, py::array part_out, const std::string& columns)
      : xg_(hpc::exact<double>(xg, "Sweep xg")), x_(hpc::exact<double>(x, "Sweep x")),
        send_(hpc::exact<double>(send, "Sweep send")),
        out_(hpc::exact<double>(part_out, "Sweep part_out")) {
    auto ip = hpc::exact<int64_t>(order.indptr, "Sweep order.indptr");
    auto ix = hpc::exact<int32_t>(order.indices, "Sweep order.indices");
    const py::array& inv = order.inv_deg;
    const py::array& pack_idx = order.pack_idx;
    const py::array& pack_pos = layout.pack_pos;
    const py::array& part_pos = layout.part_pos;
    const py::array& rpart_pos = layout.rpart_pos;
    const int64_t own_rank = layout.own_block();
    if (ip.ndim() != 1 || ix.ndim() != 1 || ip.shape(0) < 1) hpc::fail("Sweep: CSR arrays must be 1-D");
    rows_ = ip.shape(0) - 1;
    if (layout.nl != rows_) hpc::fail("Sweep: the layout's row count differs from the order's");
    const int64_t ncols = rows_ + layout.n_recv + 1;
    ncols_ = ncols;
    hpc::require_1d(xg_, ncols, "Sweep xg (rows + received values + 1)");
    hpc::require_1d(x_, rows_, "Sweep x");
    hpc::require_1d(send_, layout.n_send, "Sweep send");
    hpc::require_1d(out_, 2, "Sweep part_out");
    pxg_ = hpc::mut_ptr(xg_, "Sweep xg");
    px_ = hpc::mut_ptr(x_, "Sweep x");
    psend_ = hpc::mut_ptr(send_, "Sweep send");
    pout_ = hpc::mut_ptr(out_, "Sweep part_out");
    auto iv = hpc::exact<double>(inv, "Sweep inv_deg");
    hpc::require_1d(iv, rows_, "Sweep inv_deg");
    inv_.assign(iv.data(), iv.data() + rows_);
    const int64_t nnz = ix.shape(0);
    const int64_t* p = ip.data();
    const int32_t* c = ix.data();
    if (p[0] != 0 || p[rows_] != nnz) hpc::fail("Sweep: indptr does not span the entries");
    if (!hpc::non_decreasing(p, rows_)) hpc::fail("Sweep: indptr is not monotone");
    if (!hpc::all_in_range(c, nnz, ncols - 1)) hpc::fail("Sweep: column index out of range");
    zero_ = static_cast<int32_t>(ncols - 1);
    if (ncols - 1 > std::numeric_limits<int32_t>::max()) hpc::fail("Sweep: column space exceeds int32");
    // SELL-4: chunk c holds rows 4c..4c+3, width = the longest of them, entry (l, j) at
    // start[c] + 4 l + j; padding reads the zero slot.
    nch_ = (rows_ + 3) / 4;
    start_.assign(nch_ + 1, 0);
    width_.assign(nch_, 0);
    for (int64_t ch = 0; ch < nch_; ++ch) {
      int64_t w = 0;
      for (int64_t r = 4 * ch; r < std::min(rows_, 4 * ch + 4); ++r) w = std::max(w, p[r + 1] - p[r]);
      width_[ch] = w;
      start_[ch + 1] = start_[ch] + 4 * w;
    }
    nrow_.assign(nch_, 4);
    if (nch_ > 0) nrow_[nch_ - 1] = static_cast<int8_t>(rows_ - 4 * (nch_ - 1));
    pieces_ = hpc::sell4_pieces(start_.data(), nch_, 4);
    par_ = hpc::sell4_parallel(start_.data(), nch_, 4);
    segpc_ = {0, static_cast<int64_t>(pieces_.size()) - 1};
    segrow_ = {0, rows_};
    size_pieces();
    sell_.assign(static_cast<size_t>(start_[nch_]), zero_);
    for (int64_t ch = 0; ch < nch_; ++ch)
      for (int64_t r = 4 * ch; r < std::min(rows_, 4 * ch + 4); ++r)
        for (int64_t k = p[r]; k < p[r + 1]; ++k)
          sell_[start_[ch] + 4 * (k - p[r]) + (r - 4 * ch)] = c[k];
    set_columns(columns);
    // exchange layout
    auto pi = hpc::exact<int32_t>(pack_idx, "Sweep pack_idx");
    auto pp = hpc::exact<int64_t>(pack_pos, "Sweep pack_pos");
    auto qp = hpc::exact<int64_t>(part_pos, "Sweep part_pos");
    auto rp = hpc::exact<int64_t>(rpart_pos, "Sweep rpart_pos");
    hpc::require_1d(pi, -1, "Sweep pack_idx");
    hpc::require_1d(pp, pi.shape(0), "Sweep pack_pos");
    hpc::require_1d(qp, -1, "Sweep part_pos");
    hpc::require_1d(rp, -1, "Sweep rpart_pos");
    const int64_t ns = send_.shape(0);
    if (!hpc::all_in_range(pi.data(), pi.shape(0), rows_)) hpc::fail("Sweep: pack_idx out of range");
    if (!hpc::all_in_range(pp.data(), pp.shape(0), ns)) hpc::fail("Sweep: pack_pos out of range");
    if (!hpc::all_in_range(qp.data(), qp.shape(0), ns - 1)) hpc::fail("Sweep: part_pos out of range");
    for (py::ssize_t k = 0; k < rp.shape(0); ++k)
      if (rp.data()[k] < rows_ || rp.data()[k] + 1 >= ncols - 1) hpc::fail("Sweep: rpart_pos out of range");
    if (own_rank < 0 || own_rank > rp.shape(0)) hpc::fail("Sweep: own_rank out of range");
    pack_idx_.assign(pi.data(), pi.data() + pi.shape(0));
    pack_pos_.assign(pp.data(), pp.data() + pp.shape(0));
    part_pos_.assign(qp.data(), qp.data() + qp.shape(0));
    rpart_pos_.assign(rp.data(), rp.data() + rp.shape(0));
    own_ = own_rank;
    pxg_[zero_] = 0.0;
  }

  int64_t rows() const { return rows_; }
  int64_t padded() const { return start_[nch_]; }
  std::string column_layout() const {
    return d16_ ? "delta16" : sorted_ ? "sorted32" : "int32";
  }
  bool column_choice() const { return both_; }
  int64_t column_bytes() const {
    return d16_ ? static_cast<int64_t>(2 * zk_.size() + 4 * zbase_.size())
                        : static_cast<int64_t>(4 * sell_.size());
  }
  int64_t pieces() const { return static_cast<int64_t>(pieces_.size()) - 1; }
  std::string schedule() const { return dynamic_ ? "dynamic" : "static"; }
  void set_schedule(const std::string& how) {
    if (how != "dynamic" && how != "static")
      hpc::fail("Sweep.schedule: expected 'dynamic' or 'static', got '" + how + "'");
    dynamic_ = how == "dynamic";
  }
  std::string weight_layout() const {
    return !sellc_.empty() || sellf_.exact_table() ? "coded"
           : !sellf_.empty() ? sellf_.layout()
           : sellv_.empty()  ? "none"
                             : "values";
  }

  // x = x0 (owned rows), xs into xg, own partials (0, dangling mass), send buffer packed.
  void start(const py::array& x0_) {
    auto x0 = hpc::exact<double>(x0_, "Sweep.start x0");
    hpc::require_1d(x0, rows_, "Sweep.start x0");
    const double* q = x0.data();
    double dsum = 0.0;
    own_s_ = 0.0;
    std::copy(q, q + rows_, px_);
    // the dangling mass summed per segment (each a rank's block, see set_segments), then the
    // segments' sums in order, as global_prev adds the ranks' (one segment: one sum)
    for (size_t sg = 0; sg + 1 < segrow_.size(); sg += 2) {
      double ds = 0.0;
      for (int64_t i = segrow_[sg]; i < segrow_[sg] + segrow_[sg + 1]; ++i) {
        own_s_ += q[i];
        if (inv_[i] == 0.0) ds += q[i];
      }
      dsum += ds;
    }
    refine_.first = true;   // the schedule restarts at the first step
    refine_.exact = refine_.cheap = 0;
    sellf_.reset_correction();
    relax_fresh_ = true;    // and the relaxation policy (reset with the solve's damping)
    relax_w_ = 0.0;
    finish(0.0, dsum);
  }

  void step(double d, double base) {
    if (sellf_.refined()) run<false, 4>(d * fscale_, base, 0.0, 0.0);   // coded or values
    else if (!sellc_.empty()) run<false, 2>(d, base, 0.0, 0.0);
    else if (!sellf_.empty()) run<false, 3>(d * fscale_, base, 0.0, 0.0);
    else if (sellv_.empty()) run<false, 0>(d, base, 0.0, 0.0);
    else run<false, 1>(d, base, 0.0, 0.0);
  }

  // Edge weights (a weighted graph): one value per entry of the order's CSR (internal row
  // order, entries as in local_order's indices), laid out as the SELL-4 columns; the caller
  // sets inv_deg to 1 / (sum of out-weights) before building the Sweep.
  // indices: the order's columns (needed where the rows were sorted: each row's weights follow
  // its columns' sort, equal columns in the order's order).
  void set_weights(const py::array& indptr_, const py::array& values_, const py::object& indices_) {
    if (d16_ || both_) hpc::fail("Sweep.set_weights: the columns are packed (use columns='sorted')");
    if (sorted_ && indices_.is_none())
      hpc::fail("Sweep.set_weights: the rows were sorted: pass the order's indices");
    auto ip = hpc::exact<int64_t>(indptr_, "Sweep.set_weights indptr");
    auto vv = hpc::exact<double>(values_, "Sweep.set_weights values");
    hpc::require_1d(ip, rows_ + 1, "Sweep.set_weights indptr");
    const int64_t* p = ip.data();
    hpc::require_1d(vv, p[rows_], "Sweep.set_weights values");
    if (p[0] != 0 || !hpc::non_decreasing(p, rows_)) hpc::fail("Sweep.set_weights: bad indptr");
    const double* v = vv.data();
    std::vector<double> sv(sell_.size(), 0.0);
    const int32_t* c = nullptr;
    hpc::carray<int32_t> ixa;
    if (sorted_) {
      ixa = hpc::exact<int32_t>(indices_.cast<py::array>(), "Sweep.set_weights indices");
      hpc::require_1d(ixa, p[rows_], "Sweep.set_weights indices");
      c = ixa.data();
    }
    std::vector<std::pair<int32_t, double>> row;
    for (int64_t ch = 0; ch < nch_; ++ch)
      for (int64_t r = 4 * ch; r < std::min(rows_, 4 * ch + 4); ++r) {
        if (p[r + 1] - p[r] > width_[ch]) hpc::fail("Sweep.set_weights: indptr differs from the order's");
        double* out = sv.data() + start_[ch] + (r - 4 * ch);
        if (!sorted_) {
          for (int64_t k = p[r]; k < p[r + 1]; ++k) out[4 * (k - p[r])] = v[k];
          continue;
        }
        row.clear();
        for (int64_t k = p[r]; k < p[r + 1]; ++k) row.emplace_back(c[k], v[k]);
        std::stable_sort(row.begin(), row.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        const int32_t* q = sell_.data() + start_[ch] + (r - 4 * ch);
        for (size_t l = 0; l < row.size(); ++l) {
          if (q[4 * l] != row[l].first) hpc::fail("Sweep.set_weights: indices differ from the order's");
          out[4 * l] = row[l].second;
        }
      }
    sellc_.clear();
    sellf_.clear();
    std::vector<double> tab(sv.begin(), sv.end());
    std::sort(tab.begin(), tab.end());
    tab.erase(std::unique(tab.begin(), tab.end()), tab.end());
    // Every weight an integer below 2^16 times one scale (integer weights, halves, tenths):
    // 2 bytes beside each column; else exactly a float (short binary fractions), or a float
    // times one scale: 4 bytes (hpc::ScaledWeights); each row sum times the scale. Measured
    // faster than the coded columns below though they read 2-4 bytes more an entry (decoding
    // costs more than the traffic): kron:17:16, 1 thread, step min over 300, load 8-9: floats
    // 1.16-1.26x the unweighted step against 1.33-1.35x; kron:20:16 1.27x against 1.58x.
    if (sellf_.assign(sv, tab)) {
      sellf_.pack16(sell_.data(), start_.data(), width_.data(), nch_, zero_, kPackGrowth, false);
      fscale_ = sellf_.scale();
      sellv_.clear();
      refine_.enabled = false;
      pack_float_weights();
      return;
    }
    refine_.enabled = false;
    fscale_ = 1.0;
    const bool alone = pack_idx_.empty() && rpart_pos_.empty() && part_pos_.empty();
    // Otherwise at most 256 distinct weights and fewer than 2^24 columns (a padding entry
    // reads the zero slot with code 0): each weight goes into its column index as a code and
    // the sweep reads 4 bytes an entry, as the unweighted one (12 with double weights).
    if (tab.size() <= 256 && ncols_ <= (int64_t(1) << 24)) {
      std::vector<int32_t> sc(sell_.size());
      for (size_t k = 0; k < sv.size(); ++k) {
        const uint32_t code = static_cast<uint32_t>(
            std::lower_bound(tab.begin(), tab.end(), sv[k]) - tab.begin());
        sc[k] = static_cast<int32_t>(static_cast<uint32_t>(sell_[k]) | (code << 24));
      }
      tab_.assign(256, 0.0);
      std::copy(tab.begin(), tab.end(), tab_.begin());
      sellc_.swap(sc);
      sellv_.clear();
      // On a rank alone also refined: cheap sweeps on 16-bit weights packed with the column
      // deltas, exact ones on the same words with the exact weights from a table
      // (hpc::ScaledWeights::assign_table). The coded sweep decodes a weight an entry from
      // its table: measured on kron:17:16 (1 thread, quiet) 1.30x the unweighted step, a
      // packed cheap one 1.06-1.15x, a table exact one ~1.6x.
      if (alone && sellf_.assign_table(sv, tab, nch_) &&
          sellf_.pack16(sell_.data(), start_.data(), width_.data(), nch_, zero_, kPackGrowth, false)) {
        fscale_ = sellf_.scale();
        refine_.enabled = true;
        std::vector<int32_t>().swap(sellc_);   // every sweep reads the packed words
      } else {
        sellf_.clear();
      }
      return;
    }
    // Else (random doubles) mixed precision with defect correction
    // (hpc::ScaledWeights::assign_refined): the exact weights as doubles, most sweeps of
    // run_local on 16-bit integers or floats rounding them. Only on a rank alone (the cheap
    // sweeps need the iterate's total).
    if (alone && sellf_.assign_refined(sv, tab, nch_)) {
      // Packed where the deltas fit: 16-bit weights leave 16-bit deltas, too few for a graph
      // whose rows' columns lie far apart (uniform:18:8's average gap is 2^15), so fewer
      // weight bits are tried while their rounding still passes cheap_ok: each bit less
      // doubles the defect a refresh leaves, each one more of delta halves the jumps.
      // Measured: uniform:18:8 (1 thread) packs at 15 bits ('delta17'): cheap sweeps 2.8 ->
      // 2.4 ms (plain 2.1), exact ones 5.2 -> 4.4 (packed_exact's gathers, not SSE2).
      const bool narrow = sellf_.refine() == "int16";   // floats do not pack
      for (int bits = 16; !sellf_.pack16(sell_.data(), start_.data(), width_.data(), nch_, zero_,
                                         kPackGrowth, true);) {
        if (!narrow || --bits < kMinRefineBits || !sellf_.assign_refined(sv, tab, nch_, bits)) {
          if (bits != 16) sellf_.assign_refined(sv, tab, nch_);   // unpacked 16-bit weights
          break;
        }
      }
      fscale_ = sellf_.scale();
      sellv_.clear();
      refine_.enabled = true;
      return;
    }
    sellv_.swap(sv);
  }

  // networkx's personalization p and dangling distribution q (owned rows, internal order;
  // empty arrays: uniform again): x_new = d * (A xg) + d * dm * q + (1 - d) * p.
  void set_teleport(const py::array& p_, const py::array& q_) {
    auto p = hpc::exact<double>(p_, "Sweep.set_teleport p");
    auto q = hpc::exact<double>(q_, "Sweep.set_teleport q");
    if (p.ndim() == 1 && p.shape(0) == 0 && q.ndim() == 1 && q.shape(0) == 0) {
      tp_.clear();
      tq_.clear();
      return;
    }
    hpc::require_1d(p, rows_, "Sweep.set_teleport p");
    hpc::require_1d(q, rows_, "Sweep.set_teleport q");
    tp_.assign(p.data(), p.data() + rows_);
    // networkx's default dangling distribution is the personalization: then one vector, one
    // stream of 8 bytes a row fewer for the sweep (the same values, so the same bits)
    if (std::equal(tp_.begin(), tp_.end(), q.data())) tq_.clear();
    else tq_.assign(q.data(), q.data() + rows_);
  }

  // Segments (a rank alone that iterates the whole graph in place of p ranks: the replicated
  // mode): segment q holds internal rows [starts[q], starts[q] + rows[q]), starts[q] a multiple
  // of 4, followed by empty padding rows up to the next multiple of 4 (the next segment's
  // start; the last one's end is the sweep's). Each segment's chunks get the pieces a sweep of
  // that segment alone would have; a padding row is neither updated nor summed; the partial
  // sums are taken per segment and the segments' sums added in order. Rows laid out as
  // segmented_order does for blocks [offsets[q], offsets[q+1]), the (change, dangling) sums,
  // and so every bit of the iteration, are those of p ranks with those blocks, each with its
  // local_order, and global_prev's rank-order sum.
  void set_segments(const py::array& starts_, const py::array& rows_in) {
    if (sorted_)
      hpc::fail("Sweep.set_segments: the rows were sorted (the ranks' order needs columns='as-given')");
    auto st = hpc::exact<int64_t>(starts_, "Sweep.set_segments starts");
    auto rw = hpc::exact<int64_t>(rows_in, "Sweep.set_segments rows");
    hpc::require_1d(st, -1, "Sweep.set_segments starts");
    const int64_t ns = st.shape(0);
    hpc::require_1d(rw, ns, "Sweep.set_segments rows");
    if (ns < 1) hpc::fail("Sweep.set_segments: at least one segment");
    if (!pack_idx_.empty() || !rpart_pos_.empty() || !part_pos_.empty())
      hpc::fail("Sweep.set_segments: this sweep exchanges with other ranks");
    const int64_t *s = st.data(), *r = rw.data();
    for (int64_t q = 0; q < ns; ++q) {
      const int64_t end = q + 1 < ns ? s[q + 1] : rows_;
      if (s[q] % 4 != 0 || r[q] < 0 || (q == 0 && s[0] != 0) || s[q] + (r[q] + 3) / 4 * 4 != end)
        hpc::fail("Sweep.set_segments: segments must tile the rows, each from a multiple of 4");
      for (int64_t i = s[q] + r[q]; i < end; ++i)   // padding rows: no entry
        for (int64_t l = 0; l < width_[i / 4]; ++l)
          if (sell_[start_[i / 4] + 4 * l + (i % 4)] != zero_)
            hpc::fail("Sweep.set_segments: a padding row has entries");
    }
    std::vector<int64_t> pieces{0}, segpc{0}, segrow;
    for (int64_t q = 0; q < ns; ++q) {
      const int64_t c0 = s[q] / 4, nc = (r[q] + 3) / 4;
      for (int64_t c = c0; c < c0 + nc; ++c)
        nrow_[c] = static_cast<int8_t>(std::min<int64_t>(4, s[q] + r[q] - 4 * c));
      std::vector<int64_t> ls(static_cast<size_t>(nc) + 1);
      for (int64_t c = 0; c <= nc; ++c) ls[c] = start_[c0 + c] - start_[c0];
      const std::vector<int64_t> pc = hpc::sell4_pieces(ls.data(), nc, 4);
      for (size_t k = 1; k < pc.size(); ++k) pieces.push_back(c0 + pc[k]);
      segpc.push_back(static_cast<int64_t>(pieces.size()) - 1);
      segrow.push_back(s[q]);
      segrow.push_back(r[q]);
    }
    pieces_.swap(pieces);
    segpc_.swap(segpc);
    segrow_.swap(segrow);
    size_pieces();
  }
  int64_t segments() const { return static_cast<int64_t>(segpc_.size()) - 1; }

  // Threads of the sweep: 'auto' (the first run_local measures the team against one thread,
  // see there), 'team' (the OpenMP team where the sweep has enough work) or 'one'.
  std::string threads() const { return threads_ == 0 ? "auto" : threads_ == 1 ? "team" : "one"; }
  void set_threads(const std::string& how) {
    if (how != "auto" && how != "team" && how != "one")
      hpc::fail("Sweep.threads: expected 'auto', 'team' or 'one', got '" + how + "'");
    threads_ = how == "auto" ? 0 : how == "team" ? 1 : 2;
    team_ = threads_ != 2;
    decided_ = false;
  }
  // whether the last step ran on the thread team (false: one thread or too little work)
  bool team_used() const { return par_ && team_; }
  // Steps the next run_local spends measuring the team against one thread (0: nothing to
  // decide), so a caller can run them at setup and keep them out of a timed solve.
  int64_t probe_steps() const {
    return par_ && threads_ == 0 && !decided_ && max_threads() > 1 ? 1 + 2 * kProbe : 0;
  }

  // One step from the global dangling mass dm of the current x (n vertices).
  void step_dm(double d, double dm, double n) {
    if (tp_.empty()) step(d, mul_add(d, dm, 1.0 - d) / n);
    else if (sellf_.refined()) run<true, 4>(d * fscale_, 0.0, d * dm, 1.0 - d);
    else if (!sellc_.empty()) run<true, 2>(d, 0.0, d * dm, 1.0 - d);
    else if (!sellf_.empty()) run<true, 3>(d * fscale_, 0.0, d * dm, 1.0 - d);
    else if (sellv_.empty()) run<true, 0>(d, 0.0, d * dm, 1.0 - d);
    else run<true, 1>(d, 0.0, d * dm, 1.0 - d);
  }

  // The next step of a solve with stopping tolerance tol, c the previous step's global change:
  // exact (step_dm) or, where the refine schedule says so, cheap (refined weights' narrow
  // layout plus the correction). Returns whether it was exact: only then may its change stop.
  bool step_auto(double d, double dm, double n, double c, double tol) {
    if (refine_.first) refine_.restart(hpc::RefineSchedule::kSafety * sellf_.rho_bound(d));
    if (refine_.next(c, tol) || !sellf_.refined() || !sellf_.cheap_ok(d)) {
      step_dm(d, dm, n);
      ++refine_.exact;
      if (sellf_.refined()) refine_.measured(d * sellf_.corr_change(), d);
      return true;
    }
    ++refine_.cheap;
    // The narrow weights' columns do not sum to exactly 1, so a cheap sweep moves the iterate's
    // total off 1 and the exact map only damps that by d a sweep (a tail at rate 0.85 after
    // each refresh, measured on kron:10 with random weights: 71 sweeps against 23). The missing
    // total (1 - sum x, own_s_: this rank is alone) goes out with the dangling mass (p and q sum
    // to 1), which damps it by 1 - d instead; at the fixed point it is 0.
    const double dmc = dm + (1.0 - own_s_) / d;
    if (tp_.empty()) run<false, 3>(d * fscale_, (d * dmc + (1.0 - d)) / n, 0.0, 0.0);
    else run<true, 3>(d * fscale_, 0.0, d * dmc, 1.0 - d);
    return false;
  }
  std::string refine() const { return sellf_.refine(); }

  // Sorted rows with float weights (values32 / scaled32, not packed with 16-bit weights): the
  // columns also as 16-bit deltas with the floats in their order (6 bytes an entry, not 8),
  // both kept for the caller to time (column_choice), as the unweighted 'auto'. AVX2 only.
  void pack_float_weights() {
#if defined(__AVX2__) && defined(__FMA__)
    const std::vector<float>& f = sellf_.floats();
    if (!sorted_ || f.empty() || sellf_.refined() || sellf_.packed_entries() > 0) return;
    std::vector<uint16_t> zk;
    std::vector<int64_t> zs;
    std::vector<uint32_t> zb;
    std::vector<float> wz;
    const int64_t np = hpc::sell4_pack_d16(sell_.data(), start_.data(), width_.data(), nch_, zero_,
                                           zk, zs, zb, f.data(), &wz);
    if (np < 0 || !d16_pays(np, 6.0, 8.0)) return;
    adopt_d16(zk, zs, zb);
    wz_.swap(wz);
    both_ = true;
#endif
  }
  std::string weight_packing() const { return sellf_.packing(); }
  int64_t packed_entries() const { return sellf_.packed_entries(); }
  bool refine_schedule() const { return refine_.enabled; }
  std::pair<int64_t, int64_t> refine_counts() const { return {refine_.exact, refine_.cheap}; }

 private:
  // W: 0 unweighted, 1 a weight beside every column, 2 weights coded into the columns,
  // 3 a 16-bit integer or float weight beside every column (times fscale_, folded into d;
  // refined weights: plus the row's correction), 4 an exact sweep of refined weights
  template <bool VEC, int W>
  void run(double d, double base, double ddm, double c) {
    double diff = 0.0, dsum = 0.0;
    {
      py::gil_scoped_release nogil;
      double* xg = pxg_;
      double* x = px_;
      const double* inv = inv_.data();
      const double* tp = tp_.data();
      const double* tq = tq_.empty() ? tp : tq_.data();   // empty: the personalization
      const int64_t* pb = pieces_.data();
      const int8_t* nrow = nrow_.data();
      PieceSums* part = ppart_.data();
      const int64_t npc = static_cast<int64_t>(pieces_.size()) - 1;
      const bool dyn = dynamic_;
      // Pieces of chunks of equal work (padded entries + 4 a row: at that weight the two
      // halves of kron:17 took equal time, each on one thread alone), taken dynamically (see
      // hpc::sell4_pieces) or, with schedule 'static', a contiguous run of pieces a thread.
      // Each piece keeps its own (change, dangling) sums, added in piece order afterwards:
      // the same bits whatever the thread count or which thread took which piece.
      const bool par = par_ && team_;   // enough work, and the team not measured slower
#pragma omp parallel if (par)
      {
        const int t = hpc::sell4_thread();
        // The piece's sums in 4 lanes (lane j: row j of each chunk), added once at its end,
        // instead of one chain of dependent adds a row; with the scalars below as locals the
        // step of p2p-Gnutella08 (6301 rows, 3.3 entries a row) went from ~20 to ~15-17 us of
        // CPU time (1 thread, load 5-10). Only the sums' order changes, per piece as before.
        auto sweep = [&](int64_t k) {
          // the scalars as locals: captured by reference they are reloaded, and x checked for
          // overlap with them, at every chunk
          const double dd = d, bb = base, dm_ = ddm, cc = c;
          // a relaxed step writes (rw x + G(x)) / (1 + rw), its change still |G(x) - x|
          const double rw = relax_w_, rs = 1.0 / (1.0 + rw);
          double d0 = 0.0, d1 = 0.0, d2 = 0.0, d3 = 0.0;
          for (int64_t ch = pb[k]; ch < pb[k + 1]; ++ch) {
            double s[4];
            if constexpr (W == 2)
              hpc::sell4_chunk_sums_coded(sellc_.data() + start_[ch], tab_.data(), width_[ch], xg, s);
            else if constexpr (W == 3) {
              if (d16_)   // float weights on the 16-bit delta columns (pack_float_weights)
                hpc::sell4_chunk_sums_d16_f32(zk_.data() + zstart_[ch], zbase_.data() + 4 * ch,
                                              wz_.data() + zstart_[ch],
                                              (zstart_[ch + 1] - zstart_[ch]) / 4, xg, s);
              else
                sellf_.sums(ch, start_[ch], sell_.data() + start_[ch], width_[ch], xg, s);
            }
            else if constexpr (W == 4) {
              if (sellf_.exact_packed())   // the same branch every chunk
                sellf_.sums_exact_packed(ch, xg, s);
              else
                sellf_.sums_exact(ch, start_[ch], sell_.data() + start_[ch], width_[ch], xg, s);
            }
            else if (W == 0 && d16_)
              hpc::sell4_chunk_sums_d16(zk_.data() + zstart_[ch], zbase_.data() + 4 * ch,
                                        (zstart_[ch + 1] - zstart_[ch]) / 4, xg, s);
            else
              hpc::sell4_chunk_sums<W == 1>(sell_.data() + start_[ch],
                                            W == 1 ? sellv_.data() + start_[ch] : nullptr,
                                            width_[ch], xg, s);
            const int64_t r0 = 4 * ch, nr = nrow[ch];
            double* __restrict xr = x + r0;
            auto row = [&](int64_t j, double& acc) {
              double xn;
              if constexpr (VEC) xn = mul_add(dd, s[j], mul_add(dm_, tq[r0 + j], cc * tp[r0 + j]));
              else xn = mul_add(dd, s[j], bb);
              acc += std::fabs(xn - xr[j]);
              xr[j] = rw == 0.0 ? xn : mul_add(rw, xr[j], xn) * rs;
            };
            if (nr == 4) {   // named lanes stay in registers (an array went through the stack)
              row(0, d0);
              row(1, d1);
              row(2, d2);
              row(3, d3);
            } else {
              for (int64_t j = 0; j < nr; ++j) row(j, d0);
            }
          }
          part[k].change = (d0 + d1) + (d2 + d3);
          part[k].owner = t;
        };
        // xs = x_new * inv_deg and the dangling mass (inv_deg 0) of the rows this thread
        // updated (still in its cache), once every thread has read the old xs: one parallel
        // region an iteration, not two.
        auto scale = [&](int64_t k) {
          // the piece's rows (its last chunk may end a segment with fewer than 4)
          const int64_t r_hi = pb[k + 1] > pb[k] ? 4 * (pb[k + 1] - 1) + nrow[pb[k + 1] - 1]
                                                 : 4 * pb[k];
          double mk[4] = {0.0, 0.0, 0.0, 0.0}, sk[4] = {0.0, 0.0, 0.0, 0.0};
          int64_t i = 4 * pb[k];
          for (; i + 4 <= r_hi; i += 4)
            for (int j = 0; j < 4; ++j) {
              const double xi = x[i + j], w = inv[i + j];
              xg[i + j] = xi * w;
              mk[j] += w == 0.0 ? xi : 0.0;
              if constexpr (W >= 3) sk[j] += xi;
            }
          for (; i < r_hi; ++i) {
            const double xi = x[i], w = inv[i];
            xg[i] = xi * w;
            mk[0] += w == 0.0 ? xi : 0.0;
            if constexpr (W >= 3) sk[0] += xi;
          }
          part[k].dangling = (mk[0] + mk[1]) + (mk[2] + mk[3]);
          // the rows' total, read by the cheap sweeps of refined weights (layouts 3 and 4 only)
          if constexpr (W >= 3) part[k].total = (sk[0] + sk[1]) + (sk[2] + sk[3]);
        };
        if (!par) {    // one thread (par is the same on every thread): no worksharing loop
          for (int64_t k = 0; k < npc; ++k) sweep(k);
          for (int64_t k = 0; k < npc; ++k) scale(k);
        } else {
          if (dyn) {
#pragma omp for schedule(dynamic, 1) nowait
            for (int64_t k = 0; k < npc; ++k) sweep(k);
          } else {
#pragma omp for schedule(static) nowait
            for (int64_t k = 0; k < npc; ++k) sweep(k);
          }
#pragma omp barrier
          for (int64_t k = 0; k < npc; ++k)
            if (part[k].owner == t) scale(k);
        }
      }
      if constexpr (W >= 3) own_s_ = 0.0;
      // each segment's pieces in order, then the segments' sums in order (global_prev's order
      // of the ranks' partials when the segments are the ranks' blocks)
      for (size_t sg = 0; sg + 1 < segpc_.size(); ++sg) {
        double c = 0.0, m = 0.0;
        for (int64_t k = segpc_[sg]; k < segpc_[sg + 1]; ++k) {
          c += part[k].change;
          m += part[k].dangling;
          if constexpr (W >= 3) own_s_ += part[k].total;
        }
        diff += c;
        dsum += m;
      }
    }
    finish(diff, dsum, false);
  }

 public:

  // Up to max_iter steps of a rank alone (no exchange, the partial sums are the global ones),
  // stopping after the first whose L1 change is below tol, as the Python loop over step_dm
  // would but without its ~10 us an iteration (the whole solve of p2p-Gnutella08 is ~0.3 ms).
  // Returns (steps, last change, converged); starts from the dangling mass of the current x.
  py::tuple run_local(double d, double n, double tol, int64_t max_iter) {
    if (!pack_idx_.empty() || !rpart_pos_.empty() || !part_pos_.empty())
      hpc::fail("Sweep.run_local: this sweep exchanges with other ranks");
    int64_t it = 0;
    double change = std::numeric_limits<double>::infinity();
    bool converged = false;
    // threads 'auto' (a sweep with enough work for a parallel region, more than one thread
    // allowed), the first call only: its first step on one thread (it warms the caches, and
    // bounds the team's), then kProbe steps on the thread team, then kProbe on one thread;
    // from then on this sweep takes the one whose median step was shorter (one thread at
    // once when a team step takes over twice the first step: a loaded machine, where a
    // preempted thread holds the team's barrier for milliseconds). Pieces and their
    // sums do not depend on it: the bits are the same either way, only the speed differs (a
    // loaded machine, a short step).
    bool probe = par_ && threads_ == 0 && !decided_ && max_threads() > 1;
    // relaxed steps where every step is exact (not with the refine schedule's cheap sweeps,
    // whose changes are not Jacobi changes)
    hpc::PeriodicRelax* rl = relax_on_ && !refine_.enabled ? &relax(d) : nullptr;
    double tt[2][kProbe], warm = 0.0;
    int nt[2] = {0, 0};
    if (probe) team_ = false;
    while (it < max_iter) {
      int which = -1;   // 0: one thread, 1: the team, timed
      if (probe && it > 0) {
        which = nt[1] < kProbe ? 1 : 0;
        team_ = which == 1;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const bool exact = step_auto(d, own_m_, n, own_c_, tol);
      if (probe) {
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (which < 0) warm = t;
        else tt[which][nt[which]++] = t;
        if (which == 1 && t > 2.0 * warm) {   // the team cannot win here
          team_ = false;
          probe = false;
          decided_ = true;
        } else if (nt[0] == kProbe && nt[1] == kProbe) {
          std::sort(tt[0], tt[0] + kProbe);
          std::sort(tt[1], tt[1] + kProbe);
          team_ = tt[1][kProbe / 2] < tt[0][kProbe / 2];
          probe = false;
          decided_ = true;
        }
      }
      change = own_c_;
      ++it;
      relax_w_ = 0.0;
      if (change < tol && exact) {
        converged = true;
        break;
      }
      if (rl && rl->next(change)) relax_w_ = d;
    }
    return py::make_tuple(it, change, converged);
  }

  // Global (change, dangling) of the previous step, summed in rank order.
  std::pair<double, double> global_prev() const {
    double c = 0.0, m = 0.0;
    const int64_t others = static_cast<int64_t>(rpart_pos_.size());
    for (int64_t k = 0; k <= others; ++k) {
      if (k == own_) {
        c += own_c_;
        m += own_m_;
      }
      if (k < others) {
        c += pxg_[rpart_pos_[k]];
        m += pxg_[rpart_pos_[k] + 1];
      }
    }
    return {c, m};
  }

  // The piggy-backed iteration: (stopped, change, dangling) of the previous step; stops
  // (without stepping) when check and change < tol.
  py::tuple step_pb(double d, double n, double tol, bool check) {
    const auto [c, m] = global_prev();
    if (check && c < tol) return py::make_tuple(true, c, m);
    // the previous step's global change decides this one, as in run_local
    relax_w_ = check && relax_on_ && relax(d).next(c) ? d : 0.0;
    step_dm(d, m, n);
    relax_w_ = 0.0;
    return py::make_tuple(false, c, m);
  }

  // One step from the global dangling mass dm, relaxed where relax (a caller's own loop with
  // its own hpc::PeriodicRelax; step_dm itself never relaxes).
  void step_relax(double d, double dm, double n, bool relax) {
    relax_w_ = relax ? d : 0.0;
    step_dm(d, dm, n);
    relax_w_ = 0.0;
  }

  bool relax_enabled() const { return relax_on_; }
  void set_relax(bool on) { relax_on_ = on; }
  // steps relaxed since start (run_local and step_pb; 0 with relax off)
  int64_t relaxed_steps() const { return relax_fresh_ ? 0 : relax_.relaxed(); }

 private:
  // the policy of the solve begun at start(), reset with its damping at its first use
  hpc::PeriodicRelax& relax(double d) {
    if (relax_fresh_) {
      relax_.reset(d);
      relax_fresh_ = false;
    }
    return relax_;
  }

  // xs = x * inv_deg into xg (unless the sweep did), pack the send buffer, record the partials.
  void finish(double diff, double dsum, bool xs = true) {
    double* xg = pxg_;
    const double* x = px_;
    const double* inv = inv_.data();
    const int64_t rows = rows_;
    if (xs) {
#pragma omp parallel for schedule(static) if (rows > 65536)
      for (int64_t i = 0; i < rows; ++i) xg[i] = x[i] * inv[i];
    }
    const int64_t np_ = static_cast<int64_t>(pack_idx_.size());
    for (int64_t k = 0; k < np_; ++k) psend_[pack_pos_[k]] = pxg_[pack_idx_[k]];
    for (const int64_t q : part_pos_) {
      psend_[q] = diff;
      psend_[q + 1] = dsum;
    }
    own_c_ = diff;
    own_m_ = dsum;
    pout_[0] = diff;
    pout_[1] = dsum;
  }

  static int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  }
  static constexpr int kProbe = 3;   // timed steps of each kind (run_local, threads 'auto')

  // columns: 'as-given' (each row's entries in the order's order, 32-bit columns), 'sorted'
  // (each row's entries by column: the sums' order, so the bits, follow), 'delta16' (sorted,
  // then 16-bit deltas, hpc::sell4_pack_d16: half the index bytes) or 'auto' ('sorted', and
  // both kept where this build gathers with AVX2, jumps add at most kD16Growth entries and
  // the bytes drop, for the caller to time (column_choice);
  // the scalar decode of the deltas measured 1.6x slower than the 32-bit sweep on kron:17).
  // The same bits whether packed or not: the rows' order decides them.
  void set_columns(const std::string& how) {
    if (how != "as-given" && how != "sorted" && how != "delta16" && how != "auto")
      hpc::fail("Sweep columns: expected 'as-given', 'sorted', 'delta16' or 'auto', got '" + how + "'");
    if (how == "as-given") return;
    std::vector<int32_t> lane;
    for (int64_t ch = 0; ch < nch_; ++ch)
      for (int64_t j = 0; j < 4; ++j) {   // padding is the zero slot, the largest column: last
        int32_t* q = sell_.data() + start_[ch] + j;
        lane.resize(static_cast<size_t>(width_[ch]));
        for (int64_t l = 0; l < width_[ch]; ++l) lane[l] = q[4 * l];
        std::sort(lane.begin(), lane.end());
        for (int64_t l = 0; l < width_[ch]; ++l) q[4 * l] = lane[l];
      }
    sorted_ = true;
#if defined(__AVX2__)
    constexpr bool fast = true;
#else
    constexpr bool fast = false;
#endif
    if (how == "sorted" || (how == "auto" && !fast)) return;
    std::vector<uint16_t> zk;
    std::vector<int64_t> zs;
    std::vector<uint32_t> zb;
    const int64_t np = hpc::sell4_pack_d16(sell_.data(), start_.data(), width_.data(), nch_, zero_, zk, zs, zb);
    if (np < 0) hpc::fail("Sweep: sorted columns decrease (internal error)");
    if (how == "auto" && !d16_pays(np, 2.0, 4.0)) return;
    adopt_d16(zk, zs, zb);
    // auto: both kept until the caller has timed steps with each (set_column_layout,
    // keep_column_layout): the same sums either way. On graphs whose vector stays in cache the
    // 32-bit loads beat the gathers (email-Eu-core, one thread: 0.76 against 0.90 ms a
    // solve); on larger ones the halved index traffic wins (GAP's kron:17: 1.12x). A pass of
    // the row sums alone, timed, ranked them the other way on kron:17: only whole steps tell.
    if (how == "auto") {
      both_ = true;
      return;
    }
    std::vector<int32_t>().swap(sell_);   // the deltas replace the columns
  }

  // Whether np packed entries of b16 bytes (sell4_pack_d16's, jumps and padding included) are
  // worth timing against the sorted 32-bit layout's b32 bytes an entry: fewer bytes (the chunk
  // bases add 16 a chunk) and at most kD16Growth entries (a jump costs a gather); the timed
  // steps decide the rest.
  bool d16_pays(int64_t np, double b16, double b32) const {
    const auto padded = static_cast<double>(start_[nch_]), n = static_cast<double>(np);
    return n <= kD16Growth * padded && b16 * n + 16.0 * static_cast<double>(nch_) < b32 * padded;
  }
  // The sweeps read the 16-bit deltas from now on (zk, zs, zb: sell4_pack_d16's).
  void adopt_d16(std::vector<uint16_t>& zk, std::vector<int64_t>& zs, std::vector<uint32_t>& zb) {
    zk_.swap(zk);
    zstart_.swap(zs);
    zbase_.swap(zb);
    d16_ = true;
  }

 public:
  // With both column layouts kept (columns 'auto'): the one the sweeps read, and dropping
  // the other.
  void set_column_layout(const std::string& how) {
    if (!both_) hpc::fail("Sweep.column_layout: only one layout is kept");
    if (how != "sorted32" && how != "delta16")
      hpc::fail("Sweep.column_layout: expected 'sorted32' or 'delta16', got '" + how + "'");
    d16_ = how == "delta16";
  }
  void keep_column_layout() {
    if (!both_) return;
    both_ = false;
    if (d16_) {
      std::vector<int32_t>().swap(sell_);
    } else {
      std::vector<uint16_t>().swap(zk_);
      std::vector<int64_t>().swap(zstart_);
      std::vector<uint32_t>().swap(zbase_);
      std::vector<float>().swap(wz_);
    }
  }

 private:
  static constexpr double kD16Growth = 1.5;   // packed entries / SELL-4 entries, at most

  void size_pieces() { ppart_.assign(pieces_.size() - 1, PieceSums{}); }

  carray<double> xg_, x_, send_, out_;  // bound buffers (references keep them alive)
  double *pxg_ = nullptr, *px_ = nullptr, *psend_ = nullptr, *pout_ = nullptr;
  std::vector<double> inv_;         // 1 / out-degree (0: a dangling row)
  std::vector<int64_t> pieces_;     // chunk ranges handed to the threads (sell4_pieces)
  std::vector<int8_t> nrow_;        // rows in each chunk (4, fewer at a segment's end)
  std::vector<int64_t> segpc_;      // first piece of each segment, then the number of pieces
  std::vector<int64_t> segrow_;     // (first row, rows) of each segment
  // Each piece's sums and the thread that swept it this iteration, a cache line a piece:
  // pieces taken dynamically go to alternate threads, which had written adjacent slots of
  // shared arrays (the sums 4 pieces a line, the owners 16).
  struct alignas(64) PieceSums {
    double change = 0.0, dangling = 0.0;
    double total = 0.0;   // the piece's total of x (refined weights' cheap sweeps)
    int32_t owner = 0;
  };
  std::vector<PieceSums> ppart_;
  bool dynamic_ = true;             // pieces taken dynamically, else one static share a thread
  bool par_ = false;                // enough work for a parallel region (sell4_parallel)
  int threads_ = 0;                 // 0 'auto', 1 'team', 2 'one' (see set_threads)
  bool team_ = true;                // the team, where par_ (run_local's choice under 'auto')
  bool decided_ = false;            // run_local has measured (threads 'auto')
  // teleport / dangling distributions (both empty: uniform; tq_ alone empty: q = p)
  std::vector<double> tp_, tq_;
  std::vector<double> sellv_;     // edge weights in the SELL-4 layout (empty: all 1)
  hpc::ScaledWeights sellf_;      // or 16-bit integers / floats times one scale
  // 16-bit weights are packed with column deltas (ScaledWeights::pack16) where that takes at
  // most this many entries per SELL-4 entry (jumps and longer padding included): each jump
  // costs a gather as an entry does. Measured (1 thread, CPU time a step, alternated):
  // kron:17:16 packs into 1.005x the entries and its step went from 1.24x the unweighted one
  // to 1.00x; uniform:18:8 (gaps of 2^16 in 2^18 columns) takes 1.17x and lost (1.38x
  // against 1.30x), so only where jumps and padding add at most 5%.
  static constexpr double kPackGrowth = 1.05;
  // the fewest weight bits a refined layout's cheap sweeps are tried at (cheap_ok decides)
  static constexpr int kMinRefineBits = 10;
  hpc::RefineSchedule refine_;    // exact and cheap sweeps of refined weights
  double fscale_ = 1.0;           // ... that scale (1: the weights themselves)
  std::vector<int32_t> sellc_;    // or the columns with weight codes (col | code << 24)
  std::vector<double> tab_;       // the weight of each code
  int64_t rows_ = 0, ncols_ = 0, nch_ = 0, own_ = 0;
  int32_t zero_ = 0;
  std::vector<int64_t> start_, width_;
  std::vector<int32_t> sell_;
  bool sorted_ = false;           // each row's entries sorted by column (set_columns)
  bool d16_ = false;              // the sweeps read zk_ (else sell_)
  bool both_ = false;             // zk_ and sell_ both kept (columns 'auto', until chosen)
  std::vector<uint16_t> zk_;      // the columns as 16-bit deltas (sell4_pack_d16; empty: none)
  std::vector<float> wz_;         // float weights in zk_'s order (pack_float_weights)
  std::vector<int64_t> zstart_;
  std::vector<uint32_t> zbase_;
  std::vector<int32_t> pack_idx_;
  std::vector<int64_t> pack_pos_, part_pos_, rpart_pos_;
  double own_c_ = 0.0, own_m_ = 0.0;
  double own_s_ = 0.0;            // this rank's total of x
  // the relaxed steps of a solve (hpc/pagerank_relax.hpp): the policy, whether a solve uses
  // it, and the weight d of the old x in the step being run (0: a plain step)
  hpc::PeriodicRelax relax_;
  bool relax_on_ = false, relax_fresh_ = true;
  double relax_w_ = 0.0;
};

// ------------------------------------------------------------------ the sweep's local numbering
// Part of the setup of a millisecond solve, so in two native calls rather than NumPy/SciPy
// passes (a sort for np.unique, a binary search per entry):
//
// ghost_columns(indices, nlo, nhi, n, offsets): the sorted distinct columns outside [nlo, nhi),
// per entry the slot of its column among them (-1 for an owned column), and how many ghost
// columns each rank (blocks ``offsets``) owns. With n <= 4 nnz + 4096 a
// dense marker over the n columns (O(n + nnz), memory of the order of the indices); otherwise
// a sort of the ghost entries (O(nnz log nnz), no O(n) memory on a large graph).
py::tuple ghost_columns(const py::array& indices_, int64_t nlo, int64_t nhi, int64_t n,
                        const py::array& offsets_) {
  auto ix = hpc::exact<int64_t>(indices_, "ghost_columns indices");
  auto of = hpc::exact<int64_t>(offsets_, "ghost_columns offsets");
  hpc::require_1d(ix, -1, "ghost_columns indices");
  hpc::require_1d(of, -1, "ghost_columns offsets");
  if (nlo < 0 || nhi < nlo || n < nhi) hpc::fail("ghost_columns: bad range");
  const int64_t p = of.shape(0) - 1;
  const int64_t* o = of.data();
  if (p < 1 || o[0] != 0 || o[p] != n) hpc::fail("ghost_columns: offsets must run from 0 to n");
  for (int64_t q = 0; q < p; ++q)
    if (o[q + 1] < o[q]) hpc::fail("ghost_columns: offsets are not monotone");
  const int64_t nnz = ix.shape(0);
  const int64_t* c = ix.data();
  py::array_t<int32_t> slot_(nnz);
  int32_t* slot = slot_.mutable_data();
  std::vector<int64_t> gc;
  bool bad = false;
  {
    py::gil_scoped_release nogil;
    for (int64_t k = 0; k < nnz; ++k)
      if (c[k] < 0 || c[k] >= n) bad = true;
    if (!bad && n <= 4 * nnz + 4096) {
      std::vector<int32_t> mark(static_cast<size_t>(n), -1);
      for (int64_t k = 0; k < nnz; ++k) mark[c[k]] = 0;
      std::fill(mark.begin() + nlo, mark.begin() + nhi, -1);   // owned columns are no ghosts
      for (int64_t v = 0; v < n; ++v)
        if (mark[v] == 0) {
          mark[v] = static_cast<int32_t>(gc.size());
          gc.push_back(v);
        }
      for (int64_t k = 0; k < nnz; ++k) slot[k] = (c[k] < nlo || c[k] >= nhi) ? mark[c[k]] : -1;
    } else if (!bad) {
      std::vector<std::pair<int64_t, int64_t>> e;  // (column, entry)
      for (int64_t k = 0; k < nnz; ++k) {
        slot[k] = -1;
        if (c[k] < nlo || c[k] >= nhi) e.emplace_back(c[k], k);
      }
      std::sort(e.begin(), e.end());
      for (const auto& [col, k] : e) {
        if (gc.empty() || gc.back() != col) gc.push_back(col);
        slot[k] = static_cast<int32_t>(gc.size() - 1);
      }
    }
  }
  if (bad) hpc::fail("ghost_columns: a column is outside [0, n)");
  if (static_cast<int64_t>(gc.size()) > std::numeric_limits<int32_t>::max())
    hpc::fail("ghost_columns: too many ghost columns for int32");
  std::vector<int64_t> counts(static_cast<size_t>(p), 0);  // per owner rank (gc is sorted)
  int64_t q = 0;
  for (const int64_t v : gc) {
    while (v >= o[q + 1]) ++q;
    ++counts[q];
  }
  return py::make_tuple(to_array(std::move(gc)), slot_, to_array(std::move(counts)));
}

// exchange_layout(recv_counts, send_counts, send_idx, rank, nl, piggyback): where every value
// of the exchange sits. Neighbours: every other rank (piggyback: each message also carries 2
// partial sums at its end) or the ranks with data, ascending. The result (ExchangeLayout) holds
// per-neighbour counts/displacements; the receive position of every ghost slot (sorted, so
// grouped by owner); the local row (send_idx, the ghost plan's, checked < nl) and send position
// of every requested value (grouped by destination); the partial blocks in the send buffer and
// in xg (after the nl owned rows).
ExchangeLayout exchange_layout(const py::array& rcnt_, const py::array& scnt_,
                               const py::array& sidx_, int64_t rank, int64_t nl, bool piggyback) {
  auto rcn = hpc::exact<int64_t>(rcnt_, "exchange_layout recv_counts");
  auto scn = hpc::exact<int64_t>(scnt_, "exchange_layout send_counts");
  auto si = hpc::exact<int64_t>(sidx_, "exchange_layout send_idx");
  hpc::require_1d(rcn, -1, "exchange_layout recv_counts");
  const int64_t p = rcn.shape(0);
  hpc::require_1d(scn, p, "exchange_layout send_counts");
  hpc::require_1d(si, -1, "exchange_layout send_idx");
  if (rank < 0 || rank >= p || nl < 0) hpc::fail("exchange_layout: bad rank or row count");
  const int64_t *rq = rcn.data(), *sq = scn.data(), *sidx = si.data();
  int64_t ng = 0, ns = 0;
  for (int64_t q = 0; q < p; ++q) {
    if (rq[q] < 0 || sq[q] < 0) hpc::fail("exchange_layout: negative count");
    ng += rq[q];
    ns += sq[q];
  }
  if (ns != si.shape(0)) hpc::fail("exchange_layout: send_idx does not match send_counts");
  if (rq[rank] != 0 || sq[rank] != 0) hpc::fail("exchange_layout: a rank exchanges with itself");
  if (!hpc::all_in_range(sidx, ns, nl))
    hpc::fail("ghost plan: a rank asked for a row it does not own");
  const int64_t extra = piggyback ? 2 : 0;
  std::vector<int64_t> srcs, dsts, rc, rd, sc, sd, rd_of(p, 0), sd_of(p, 0);
  int64_t R = 0, S = 0;
  for (int64_t q = 0; q < p; ++q) {
    if (q != rank && (piggyback || rq[q] > 0)) {
      srcs.push_back(q);
      rc.push_back(rq[q] + extra);
      rd.push_back(R);
      rd_of[q] = R;
      R += rq[q] + extra;
    }
    if (q != rank && (piggyback || sq[q] > 0)) {
      dsts.push_back(q);
      sc.push_back(sq[q] + extra);
      sd.push_back(S);
      sd_of[q] = S;
      S += sq[q] + extra;
    }
  }
  std::vector<int64_t> gpos(static_cast<size_t>(ng)), send_idx(sidx, sidx + ns),
      pack_pos(static_cast<size_t>(ns)), part_pos, rpart_pos;
  for (int64_t q = 0, k = 0; q < p; ++q)
    for (int64_t j = 0; j < rq[q]; ++j, ++k) gpos[k] = rd_of[q] + j;
  for (int64_t q = 0, k = 0; q < p; ++q)
    for (int64_t j = 0; j < sq[q]; ++j, ++k) pack_pos[k] = sd_of[q] + j;
  if (piggyback) {
    for (size_t i = 0; i < dsts.size(); ++i) part_pos.push_back(sd[i] + sc[i] - 2);
    for (size_t i = 0; i < srcs.size(); ++i) rpart_pos.push_back(nl + rd[i] + rc[i] - 2);
  }
  ExchangeLayout L;
  L.sources = to_array(std::move(srcs));
  L.dests = to_array(std::move(dsts));
  L.recv_counts = to_array(std::move(rc));
  L.recv_displs = to_array(std::move(rd));
  L.send_counts = to_array(std::move(sc));
  L.send_displs = to_array(std::move(sd));
  L.ghost_pos = to_array(std::move(gpos));
  L.send_idx = to_array(std::move(send_idx));
  L.pack_pos = to_array(std::move(pack_pos));
  L.part_pos = to_array(std::move(part_pos));
  L.rpart_pos = to_array(std::move(rpart_pos));
  L.rank = rank;
  L.nl = nl;
  L.n_recv = R;
  L.n_send = S;
  L.piggyback = piggyback;
  return L;
}

// The sweep's internal row order: rows [lo, hi) of CSR row pointers p by descending degree,
// stable (a counting sort), placed from internal row `base`: perm[base + i] = r, pos[r] = base + i.
// local_order and segmented_order both use it, so the replicated mode's blocks are in exactly
// the order each rank's own block has (the bit-identity of the two modes rests on it).
void degree_order(const int64_t* p, int64_t lo, int64_t hi, int64_t base, int64_t* perm,
                  int64_t* pos) {
  int64_t maxdeg = 0;
  for (int64_t r = lo; r < hi; ++r) maxdeg = std::max(maxdeg, p[r + 1] - p[r]);
  std::vector<int64_t> cnt(static_cast<size_t>(maxdeg) + 2, 0);   // bucket maxdeg - degree
  for (int64_t r = lo; r < hi; ++r) ++cnt[maxdeg - (p[r + 1] - p[r]) + 1];
  for (int64_t b = 1; b <= maxdeg + 1; ++b) cnt[b] += cnt[b - 1];
  for (int64_t r = lo; r < hi; ++r) {
    const int64_t i = base + cnt[maxdeg - (p[r + 1] - p[r])]++;
    perm[i] = r;
    pos[r] = i;
  }
}

inline double inv_degree(int64_t d) { return d > 0 ? 1.0 / static_cast<double>(d) : 0.0; }

// local_order(indptr, indices, nlo, nhi, slot, gpos): rows renumbered by in-degree, descending
// (a stable counting sort: equal degrees keep their order), columns to the sweep's numbering:
// owned column c -> pos[c - nlo], ghost entry k -> nl + gpos[slot[k]]. Entries keep their order
// within a row (the sums, and so the bits, are those of the original row order). Returns
// a LocalOrder: perm, pos, indptr, indices of the permuted rows (perm[i] = original row of
// internal row i), pack_idx = pos[send_idx] (int32) and inv_deg = 1/outdeg in internal order
// (0: dangling).
LocalOrder local_order(const py::array& indptr_, const py::array& indices_, int64_t nlo,
                      int64_t nhi, const py::array& slot_, const py::array& gpos_,
                      const py::array& send_idx_, const py::array& outdeg_) {
  auto si = hpc::exact<int64_t>(send_idx_, "local_order send_idx");
  auto od = hpc::exact<int64_t>(outdeg_, "local_order outdeg");
  hpc::require_1d(si, -1, "local_order send_idx");
  auto ip = hpc::exact<int64_t>(indptr_, "local_order indptr");
  auto ix = hpc::exact<int64_t>(indices_, "local_order indices");
  auto sl = hpc::exact<int32_t>(slot_, "local_order slot");
  auto gp = hpc::exact<int64_t>(gpos_, "local_order gpos");
  if (nhi < nlo || nlo < 0) hpc::fail("local_order: bad row range");
  const int64_t nl = nhi - nlo;
  if (nl > std::numeric_limits<int32_t>::max()) hpc::fail("local_order: too many rows for int32");
  hpc::require_1d(ip, nl + 1, "local_order indptr");
  hpc::require_1d(ix, -1, "local_order indices");
  hpc::require_1d(sl, ix.shape(0), "local_order slot");
  hpc::require_1d(gp, -1, "local_order gpos");
  hpc::require_1d(od, nl, "local_order outdeg");
  if (!hpc::all_in_range(si.data(), si.shape(0), nl)) hpc::fail("local_order: send_idx out of range");
  const int64_t nnz = ix.shape(0), ng = gp.shape(0);
  const int64_t *p = ip.data(), *c = ix.data(), *q = gp.data();
  const int32_t* s = sl.data();
  if (p[0] != 0 || p[nl] != nnz) hpc::fail("local_order: indptr does not span the entries");
  if (!hpc::non_decreasing(p, nl)) hpc::fail("local_order: indptr is not monotone");
  if (!hpc::all_in_range(q, ng, int64_t(std::numeric_limits<int32_t>::max()) - nl))
    hpc::fail("local_order: gpos out of range");
  for (int64_t k = 0; k < nnz; ++k) {
    const bool own = c[k] >= nlo && c[k] < nhi;
    if (own ? s[k] != -1 : (s[k] < 0 || s[k] >= ng)) hpc::fail("local_order: slot out of range");
  }
  py::array_t<int64_t> perm_(nl), pos_(nl), optr_(nl + 1);
  py::array_t<int32_t> oidx_(nnz);
  int64_t *perm = perm_.mutable_data(), *pos = pos_.mutable_data(), *optr = optr_.mutable_data();
  int32_t* oidx = oidx_.mutable_data();
  {
    py::gil_scoped_release nogil;
    degree_order(p, 0, nl, 0, perm, pos);
    optr[0] = 0;
    for (int64_t i = 0; i < nl; ++i) {
      const int64_t r = perm[i], b = p[r], e = p[r + 1];
      int32_t* out = oidx + optr[i];
      for (int64_t k = b; k < e; ++k)
        out[k - b] = static_cast<int32_t>(s[k] < 0 ? pos[c[k] - nlo] : nl + q[s[k]]);
      optr[i + 1] = optr[i] + (e - b);
    }
  }
  // the send buffer's rows in internal numbering; 1/outdeg (0: dangling) in internal order
  const int64_t ns = si.shape(0);
  py::array_t<int32_t> pidx_(ns);
  py::array_t<double> inv_(nl);
  int32_t* pidx = pidx_.mutable_data();
  double* inv = inv_.mutable_data();
  for (int64_t k = 0; k < ns; ++k) pidx[k] = static_cast<int32_t>(pos[si.data()[k]]);
  for (int64_t i = 0; i < nl; ++i) {
    const int64_t d = od.data()[perm[i]];
    inv[i] = inv_degree(d);
  }
  return LocalOrder{perm_, pos_, optr_, oidx_, pidx_, inv_};
}

// segmented_order(indptr, indices, outdeg, offsets): the whole graph (rows and columns 0..n-1)
// laid out for a rank alone that iterates as p ranks with blocks [offsets[q], offsets[q+1])
// would (Sweep.set_segments): block q's rows in local_order's order (in-degree descending,
// stable), from internal row starts[q] (a multiple of 4), then empty padding rows up to the
// next multiple of 4. Entries keep their order within a row (sort_rows: in the order block q's
// rank sorts them: its own columns by position, then others by vertex); column c -> pos[c]. perm is -1
// and inv_deg 0 on a padding row; pack_idx is empty. Returns (LocalOrder, starts).
py::tuple segmented_order(const py::array& indptr_, const py::array& indices_,
                          const py::array& outdeg_, const py::array& offsets_, bool sort_rows) {
  auto ip = hpc::exact<int64_t>(indptr_, "segmented_order indptr");
  auto ix = hpc::exact<int64_t>(indices_, "segmented_order indices");
  auto od = hpc::exact<int64_t>(outdeg_, "segmented_order outdeg");
  auto of = hpc::exact<int64_t>(offsets_, "segmented_order offsets");
  hpc::require_1d(ip, -1, "segmented_order indptr");
  hpc::require_1d(ix, -1, "segmented_order indices");
  hpc::require_1d(of, -1, "segmented_order offsets");
  if (ip.shape(0) < 1) hpc::fail("segmented_order: indptr is empty");
  const int64_t n = ip.shape(0) - 1, nnz = ix.shape(0), ns = of.shape(0) - 1;
  hpc::require_1d(od, n, "segmented_order outdeg");
  const int64_t *p = ip.data(), *c = ix.data(), *o = of.data();
  if (ns < 1 || o[0] != 0 || o[ns] != n) hpc::fail("segmented_order: offsets must run from 0 to n");
  for (int64_t q = 0; q < ns; ++q)
    if (o[q + 1] < o[q]) hpc::fail("segmented_order: offsets are not monotone");
  if (p[0] != 0 || p[n] != nnz) hpc::fail("segmented_order: indptr does not span the entries");
  if (!hpc::non_decreasing(p, n)) hpc::fail("segmented_order: indptr is not monotone");
  if (!hpc::all_in_range(c, nnz, n)) hpc::fail("segmented_order: column index out of range");
  py::array_t<int64_t> starts_(ns);
  int64_t* starts = starts_.mutable_data();
  int64_t rows = 0;
  for (int64_t q = 0; q < ns; ++q) {
    starts[q] = rows;
    rows += (o[q + 1] - o[q] + 3) / 4 * 4;
  }
  if (rows > std::numeric_limits<int32_t>::max()) hpc::fail("segmented_order: too many rows for int32");
  py::array_t<int64_t> perm_(rows), pos_(n), optr_(rows + 1);
  py::array_t<int32_t> oidx_(nnz), pidx_(0);
  py::array_t<double> inv_(rows);
  int64_t *perm = perm_.mutable_data(), *pos = pos_.mutable_data(), *optr = optr_.mutable_data();
  int32_t* oidx = oidx_.mutable_data();
  double* inv = inv_.mutable_data();
  {
    py::gil_scoped_release nogil;
    std::fill(perm, perm + rows, int64_t(-1));
    for (int64_t q = 0; q < ns; ++q)   // each block in its rank's local_order order
      degree_order(p, o[q], o[q + 1], starts[q], perm, pos);
    optr[0] = 0;
    std::vector<int64_t> key;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t r = perm[i];
      if (r < 0) {
        optr[i + 1] = optr[i];
        inv[i] = 0.0;
        continue;
      }
      const int64_t b = p[r], e = p[r + 1];
      if (sort_rows) {   // as block q's rank sorts its row (Sweep columns 'sorted'): its own
                         // columns by position, then the ghosts by vertex (their receive order)
        const int64_t q = std::upper_bound(o, o + ns + 1, r) - o - 1;
        key.clear();
        for (int64_t k = b; k < e; ++k)
          key.push_back(c[k] >= o[q] && c[k] < o[q + 1] ? pos[c[k]] : rows + c[k]);
        std::sort(key.begin(), key.end());
        for (int64_t k = b; k < e; ++k) {
          const int64_t v = key[k - b];
          oidx[optr[i] + k - b] = static_cast<int32_t>(v < rows ? v : pos[v - rows]);
        }
      } else {
        for (int64_t k = b; k < e; ++k) oidx[optr[i] + k - b] = static_cast<int32_t>(pos[c[k]]);
      }
      optr[i + 1] = optr[i] + (e - b);
      const int64_t d = od.data()[r];
      inv[i] = inv_degree(d);
    }
  }
  return py::make_tuple(LocalOrder{perm_, pos_, optr_, oidx_, pidx_, inv_}, starts_);
}
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

  m.def("ghost_columns", &ghost_columns, py::arg("indices"), py::arg("nlo"), py::arg("nhi"),
        py::arg("n"), py::arg("offsets"),
        "Sorted distinct columns outside [nlo, nhi), each entry's slot among them, counts per owner");
  py::class_<ExchangeLayout>(m, "ExchangeLayout",
                             "Where every value of the 1D exchange sits (exchange_layout's result)")
      .def_readonly("sources", &ExchangeLayout::sources, "neighbour ranks received from, ascending")
      .def_readonly("dests", &ExchangeLayout::dests, "neighbour ranks sent to, ascending")
      .def_readonly("recv_counts", &ExchangeLayout::recv_counts, "values per source (+2 piggyback)")
      .def_readonly("recv_displs", &ExchangeLayout::recv_displs, "start of each source's values")
      .def_readonly("send_counts", &ExchangeLayout::send_counts, "values per destination")
      .def_readonly("send_displs", &ExchangeLayout::send_displs, "start of each destination's")
      .def_readonly("ghost_pos", &ExchangeLayout::ghost_pos, "receive position of each ghost slot")
      .def_readonly("send_idx", &ExchangeLayout::send_idx, "local row of each value sent")
      .def_readonly("pack_pos", &ExchangeLayout::pack_pos, "send-buffer position of each value sent")
      .def_readonly("part_pos", &ExchangeLayout::part_pos, "partial blocks in the send buffer")
      .def_readonly("rpart_pos", &ExchangeLayout::rpart_pos, "partial blocks received, in xg")
      .def_readonly("rank", &ExchangeLayout::rank)
      .def_readonly("nl", &ExchangeLayout::nl, "rows this rank owns")
      .def_readonly("n_recv", &ExchangeLayout::n_recv, "length of the receive buffer")
      .def_readonly("n_send", &ExchangeLayout::n_send, "length of the send buffer")
      .def_readonly("piggyback", &ExchangeLayout::piggyback)
      .def_property_readonly("own_block", &ExchangeLayout::own_block,
                             "this rank's place among the partial blocks (0 without piggyback)");
  py::class_<LocalOrder>(m, "LocalOrder", "The sweep's row order (local_order's result)")
      .def_readonly("perm", &LocalOrder::perm, "original row of each internal row")
      .def_readonly("pos", &LocalOrder::pos, "internal row of each original row")
      .def_readonly("indptr", &LocalOrder::indptr)
      .def_readonly("indices", &LocalOrder::indices, "int32 columns in the sweep's numbering")
      .def_readonly("pack_idx", &LocalOrder::pack_idx, "internal row of each value sent (int32)")
      .def_readonly("inv_deg", &LocalOrder::inv_deg, "1/outdeg in internal order (0: dangling)");
  m.def("exchange_layout", &exchange_layout, py::arg("recv_counts"), py::arg("send_counts"),
        py::arg("send_idx"), py::arg("rank"), py::arg("nl"), py::arg("piggyback"),
        "Positions of every exchanged value (an ExchangeLayout) from the ghost plan's counts "
        "per rank and requested local rows");
  m.def("local_order", &local_order, py::arg("indptr"), py::arg("indices"), py::arg("nlo"),
        py::arg("nhi"), py::arg("slot"), py::arg("ghost_pos"), py::arg("send_idx"),
        py::arg("outdeg"),
        "Rows by in-degree descending, columns to the sweep's numbering (a LocalOrder)");
  m.def("segmented_order", &segmented_order, py::arg("indptr"), py::arg("indices"),
        py::arg("outdeg"), py::arg("offsets"), py::arg("sort_rows") = false,
        "The whole graph laid out as p ranks' local orders (blocks offsets), each block padded "
        "to a multiple of 4 rows: (LocalOrder, starts) for Sweep.set_segments; sort_rows: each "
        "row's entries as its rank's Sweep(columns='sorted') orders them");
  py::class_<hpc::PeriodicRelax>(
      m, "PeriodicRelax",
      "The relaxed-step policy of the PageRank loops (native/include/hpc/pagerank_relax.hpp): "
      "fed each step's global L1 change, it says whether the next step is relaxed, "
      "x' = (d x + G(x)) / (1 + d), which removes the rate-d tail of periodic components")
      .def(py::init<double, bool>(), py::arg("d") = 0.85, py::arg("enabled") = true)
      .def("next", &hpc::PeriodicRelax::next, py::arg("change"),
           "the step just done changed x by change (L1); returns whether the next is relaxed")
      .def_property_readonly("relaxed", &hpc::PeriodicRelax::relaxed, "steps relaxed so far")
      .def_property_readonly("enabled", &hpc::PeriodicRelax::enabled,
                             "False once a relaxed step did not pay (or made disabled)");
  py::class_<Sweep>(m, "Sweep",
                    "SELL-4 pull sweep with bound buffers (rows in-degree descending), fused "
                    "update, send-buffer packing and rank-ordered partial sums")
      .def(py::init<const LocalOrder&, const ExchangeLayout&, py::array, py::array, py::array,
                    py::array, const std::string&>(),
           py::arg("order"), py::arg("layout"), py::kw_only(), py::arg("xg"), py::arg("x"),
           py::arg("send"), py::arg("part_out"), py::arg("columns") = "as-given")
      .def_property("column_layout", &Sweep::column_layout, &Sweep::set_column_layout,
                    "'int32' (the order's entry order), 'sorted32' (each row sorted by column) or "
                    "'delta16' (sorted, 16-bit column deltas); settable to either of the last two "
                    "while column_choice (the same bits)")
      .def_property_readonly("column_choice", &Sweep::column_choice,
                             "both sorted32 and delta16 kept (columns 'auto') until "
                             "keep_column_layout")
      .def("keep_column_layout", &Sweep::keep_column_layout,
           "keep the column layout set now and free the other")
      .def_property_readonly("column_bytes", &Sweep::column_bytes,
                             "bytes of the column indices a sweep reads")
      .def_property_readonly("rows", &Sweep::rows)
      .def_property_readonly("padded", &Sweep::padded)
      .def_property_readonly("pieces", &Sweep::pieces,
                             "chunk ranges of equal work the threads take dynamically")
      .def_property("schedule", &Sweep::schedule, &Sweep::set_schedule,
                    "'dynamic' (pieces taken by the free thread; default) or 'static' (one "
                    "contiguous share of equal work a thread)")
      .def_property_readonly("weight_layout", &Sweep::weight_layout,
                             "'none', 'int16' (integers below 2^16 times one scale beside the "
                             "columns), 'values32' (floats: every weight exactly a float), "
                             "'scaled32' (floats times one scale), 'coded' (at most 256 distinct "
                             "weights, coded into the columns) or 'values' (doubles)")
      .def("start", &Sweep::start, py::arg("x0"))
      .def("step", &Sweep::step, py::arg("d"), py::arg("base"))
      .def("set_teleport", &Sweep::set_teleport, py::arg("p"), py::arg("q"))
      .def("set_weights", &Sweep::set_weights, py::arg("indptr"), py::arg("values"),
           py::arg("indices") = py::none())
      .def_property_readonly("refine", &Sweep::refine,
                             "narrow weights of the cheap sweeps of a refined 'values' layout "
                             "(mixed precision with defect correction): 'int16', 'float32' or "
                             "'none'")
      .def_property_readonly("weight_packing", &Sweep::weight_packing,
                             "'deltaD': 16-bit weights packed with D-bit column deltas in one "
                             "4-byte word an entry (rows sorted by column; D = 32 less the "
                             "largest weight's bits), else 'none'")
      .def_property_readonly("packed_entries", &Sweep::packed_entries,
                             "entries of the packed layout, jumps and padding included (0: none)")
      .def_property_readonly("refine_schedule", &Sweep::refine_schedule,
                             "whether run_local follows the exact/cheap sweep schedule (refined "
                             "weights on a rank alone; with several ranks every sweep is exact)")
      .def_property_readonly("refine_counts", &Sweep::refine_counts,
                             "(exact, cheap) sweeps of this rank since start (solves that follow the "
                             "schedule; exact: with the exact weights)")
      .def("set_segments", &Sweep::set_segments, py::arg("starts"), py::arg("rows"),
           "iterate as ranks with these row blocks would, bit for bit (segmented_order's "
           "layout: block q from row starts[q], rows[q] rows, padded to a multiple of 4)")
      .def_property_readonly("segments", &Sweep::segments)
      .def_property("threads", &Sweep::threads, &Sweep::set_threads,
                    "'auto' (the first run_local times steps on the thread team and on one "
                    "thread, and the sweep keeps the faster; default), 'team' or 'one': the "
                    "same bits")
      .def_property_readonly("team_used", &Sweep::team_used,
                             "whether the last step ran on the thread team")
      .def_property_readonly("probe_steps", &Sweep::probe_steps,
                             "steps the next run_local times to choose its threads (threads "
                             "'auto', not yet measured; 0: nothing to choose)")
      .def("step_dm", &Sweep::step_dm, py::arg("d"), py::arg("dm"), py::arg("n"))
      .def("run_local", &Sweep::run_local, py::arg("d"), py::arg("n"), py::arg("tol"),
           py::arg("max_iter"),
           "up to max_iter steps of a rank alone, stopping at L1 change < tol: "
           "(steps, change, converged)")
      .def("global_prev", &Sweep::global_prev)
      .def("step_pb", &Sweep::step_pb, py::arg("d"), py::arg("n"), py::arg("tol"), py::arg("check"))
      .def("step_relax", &Sweep::step_relax, py::arg("d"), py::arg("dm"), py::arg("n"),
           py::arg("relax"), "step_dm, the step relaxed where relax (see PeriodicRelax)")
      .def_property("relax", &Sweep::relax_enabled, &Sweep::set_relax,
                    "whether run_local and step_pb relax a step where PeriodicRelax says so "
                    "(default False)")
      .def_property_readonly("relaxed_steps", &Sweep::relaxed_steps,
                             "steps relaxed since start");
}
