// The eager SWAP loops of FasterPAM and FasterMSC on one rank's full distance matrix (native
// back end, hpc.kmedoids.algorithms / .msc): the candidate scan, the gain, the swap and the
// update of the nearest/second (/third) medoid run here, so Python is entered once per chunk
// of candidates instead of once per candidate block and swap.
//
// The sequential algorithm exactly (the `kmedoids` package's and hpc.kmedoids' Python loop,
// swap for swap): candidates in index order, each evaluated against the current medoids, the
// first improving one swapped at once. A candidate's distances are its column of D, gathered
// a few columns at a time into a contiguous buffer (D need not be symmetric; one pass over the
// rows reads each cache line once); its gain is summed over the points in point order, with
// the same float64 expressions as kmedoids.cpp / kmedoids_msc.cpp, so the sums are those of
// the tile kernels bit for bit. With several OpenMP threads, a group of candidates (one per
// thread) is evaluated at once and the first improving one of the group taken: the result does
// not depend on the thread count; the rest of the group is wasted work (at most threads - 1
// candidates per swap).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>
#include <omp.h>
#include "hpc/checks.hpp"
#include "hpc/kmedoids_tile.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;
constexpr double kInf = std::numeric_limits<double>::infinity();
// Candidate columns gathered per pass over the rows: as many as fit in kSlab bytes (a row's
// entries are then read as one contiguous run: a pass of one cache line per row, 16 float32
// columns, read 3x slower per candidate at n = 20,000), at least one cache line, at most kWide.
constexpr int64_t kSlab = int64_t(8) << 20;
constexpr int64_t kWide = 512;
template <typename T>
constexpr int64_t kGather = 64 / sizeof(T);
constexpr int64_t kAhead = 8;  // rows prefetched ahead in a gather

template <typename T>
int64_t slab_width(int64_t rows) {
  return std::clamp<int64_t>(kSlab / (static_cast<int64_t>(sizeof(T)) * std::max<int64_t>(rows, 1)),
                             kGather<T>, kWide);
}

using hpc::kmedoids::ratio;

// A rank's rows of D (n of them: every row on one rank) x all ncol columns, columns
// contiguous, any row stride.
template <typename T>
struct Mat {
  const T* p;
  int64_t n, ncol, ld;
};

template <typename T>
Mat<T> mat(const py::array& a, int64_t n, int64_t ncol, const char* what) {
  if (a.ndim() != 2 || a.shape(0) != n || a.shape(1) != ncol)
    hpc::fail(std::string("kmedoids_swap: ") + what + " has the wrong shape");
  const auto t = hpc::kmedoids::tile<T>(a, "kmedoids_swap: D");
  return {t.p, n, ncol, t.ld};
}

// Columns [j, j + w) of D into b, column after column (b[c * n + r] = D[r, j + c]).
template <typename T>
void gather_into(const Mat<T>& D, int64_t j, int64_t w, T* b, bool par) {
  const int64_t n = D.n, ld = D.ld;
  const int64_t lines = (w * static_cast<int64_t>(sizeof(T)) + 63) / 64;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t r = 0; r < n; ++r) {
    const T* row = D.p + r * ld + j;
    // strided rows: the hardware prefetchers do not follow them from one row to the next
    if (r + kAhead < n)
      for (int64_t l = 0; l < lines; ++l)
        __builtin_prefetch(reinterpret_cast<const char*>(row + kAhead * ld) + 64 * l, 0, 0);
    for (int64_t c = 0; c < w; ++c) b[c * n + r] = row[c];
  }
}

// Candidate columns of D, contiguous: gathered slab_width at a time, never past `end` (the
// candidates of a sweep come in order up to its end).
template <typename T>
class Columns {
 public:
  Columns(const Mat<T>& D, bool par)
      : D_(D), w_(slab_width<T>(D.n)), buf_(static_cast<size_t>(w_ * D.n)), par_(par) {}
  const T* col(int64_t j, int64_t end) {
    if (j < g0_ || j >= g0_ + gw_) {
      gw_ = std::min(w_, end - j);
      g0_ = j;
      gather_into(D_, j, gw_, buf_.data(), par_);
    }
    return buf_.data() + (j - g0_) * D_.n;
  }
  // candidates from j (gathered) held in the buffer
  int64_t avail(int64_t j) const { return g0_ + gw_ - j; }

 private:
  const Mat<T>& D_;
  int64_t w_;
  std::vector<T> buf_;
  bool par_;
  int64_t g0_ = -1, gw_ = 0;
};

// The state both methods share (arrays owned by the Python solver, updated in place).
struct State {
  int64_t n, k;
  double* DM;      // n x k: d(o, medoid m)
  int64_t* med;    // k
  bool* is_med;    // n
  double* rl;      // k: removal loss (FasterPAM) / removal gain (FasterMSC)
  int64_t *ni, *si, *ti;
  double *nd, *sd, *td;
  // per point: the distance below which a candidate changes its terms (the second (PAM) or
  // third (MSC) nearest, as a max so that the skip never depends on the order invariant)
  std::vector<double> lim;
};

template <typename I>
I* mut(const py::array& a, int64_t n, const char* what) {
  auto c = hpc::exact<I>(a, what);
  hpc::require_1d<I>(c, n, what);
  return hpc::mut_ptr<I>(c, what);
}

State state(const py::array& DM, const py::array& med, const py::array& is_med,
            const py::array& rl, const py::array& ni, const py::array& si, const py::array& nd,
            const py::array& sd, int64_t n) {
  auto dm = hpc::exact<double>(DM, "DM");
  if (dm.ndim() != 2 || dm.shape(0) != n || dm.shape(1) < 2)
    hpc::fail("kmedoids_swap: DM must be n x k with k >= 2");
  const int64_t k = dm.shape(1);
  State s{n, k, hpc::mut_ptr<double>(dm, "DM"), mut<int64_t>(med, k, "med"),
          mut<bool>(is_med, n, "is_med"), mut<double>(rl, k, "rl"),
          mut<int64_t>(ni, n, "near_i"), mut<int64_t>(si, n, "seco_i"), nullptr,
          mut<double>(nd, n, "near_d"), mut<double>(sd, n, "seco_d"), nullptr, {}};
  if (!hpc::all_in_range(s.med, k, n)) hpc::fail("kmedoids_swap: med out of range [0, n)");
  if (!hpc::all_in_range(s.ni, n, k)) hpc::fail("kmedoids_swap: near_i out of range [0, k)");
  return s;
}

// d(o, j) for every point o, written into DM's column b (the new medoid's distances).
template <typename T>
void set_column(const Mat<T>& D, State& s, int64_t b, int64_t j) {
  for (int64_t o = 0; o < s.n; ++o) s.DM[o * s.k + b] = static_cast<double>(D.p[o * D.ld + j]);
}

// The medoid slot of least distance in DM's row o other than `a`, `c` and b (the first of
// equals), or (b, doj) unless it is strictly closer.
inline void nearest_other(const State& s, int64_t o, int64_t a, int64_t c, int64_t b,
                          double doj, int64_t& oi, double& od) {
  const double* row = s.DM + o * s.k;
  double best = kInf;
  int64_t bi = 0;
  for (int64_t m = 0; m < s.k; ++m) {
    if (m == a || m == c || m == b) continue;
    if (row[m] < best) {
      best = row[m];
      bi = m;
    }
  }
  if (best < doj) {
    oi = bi;
    od = best;
  } else {
    oi = b;
    od = doj;
  }
}

// The sweep from candidate j: candidates in order up to lastswap (or n), at most `budget` of
// them; gain(x, acc, slot) -> value of the candidate with distances x (its best slot in
// `slot`), improves(value, loss), swap(slot, candidate) -> the new loss. A group of candidates
// (one per thread) is evaluated at once and the first improving one of the group is swapped.
// Threads only from par_rows points (below, a fork per candidate group costs more than the
// group). Returns (j, lastswap, swaps, loss).
template <typename T, typename Gain, typename Improves, typename Swap>
py::tuple drive(const Mat<T>& D, State& s, double loss, int64_t j, int64_t lastswap,
                int64_t budget, int64_t par_rows, Gain&& gain, Improves&& improves,
                Swap&& swap) {
  const int64_t n = s.n;
  const int nt = (n >= par_rows) ? std::max(1, omp_get_max_threads()) : 1;
  std::vector<std::vector<double>> accs(nt, std::vector<double>(s.k + 1));
  std::vector<double> vals(nt);
  std::vector<int64_t> slots(nt);
  Columns<T> cols(D, nt > 1);
  int64_t swaps = 0, done = 0;
  {
    py::gil_scoped_release nogil;
    while (j < n && j != lastswap && done < budget) {
      const int64_t end = lastswap > j ? lastswap : n;
      const T* base = cols.col(j, end);
      const int64_t g = std::min<int64_t>({int64_t(nt), end - j, cols.avail(j)});
      const int64_t c0 = j;
#pragma omp parallel for schedule(static, 1) if (g > 1)
      for (int64_t t = 0; t < g; ++t) {
        if (s.is_med[c0 + t]) continue;
        const int th = g > 1 ? omp_get_thread_num() : 0;
        vals[t] = gain(base + t * n, accs[th], slots[t]);
      }
      int64_t hit = -1;
      for (int64_t t = 0; t < g && hit < 0; ++t)
        if (!s.is_med[c0 + t] && improves(vals[t], loss)) hit = t;
      done += g;
      if (hit < 0) {
        j += g;
        continue;
      }
      loss = swap(slots[hit], c0 + hit);
      ++swaps;
      lastswap = c0 + hit;
      j = c0 + hit + 1;
    }
  }
  return py::make_tuple(j, lastswap, swaps, loss);
}

// f(o, x[o]) for every o < n with x[o] < lim[o], in increasing o: the test is vectorised over
// kSkip points at a time (most points are far from a candidate), the calls are not.
constexpr int64_t kSkip = 16;
template <typename T, typename F>
inline void for_hits(const T* x, const double* lim, int64_t n, F&& f) {
  int64_t o0 = 0;
  for (; o0 + kSkip <= n; o0 += kSkip) {
    uint32_t mask = 0;
#pragma omp simd reduction(| : mask)
    for (int64_t i = 0; i < kSkip; ++i)
      mask |= uint32_t(static_cast<double>(x[o0 + i]) < lim[o0 + i]) << i;
    while (mask) {
      const int i = __builtin_ctz(mask);
      mask &= mask - 1;
      f(o0 + i, static_cast<double>(x[o0 + i]));
    }
  }
  for (int64_t o = o0; o < n; ++o) {
    const double d = static_cast<double>(x[o]);
    if (d < lim[o]) f(o, d);
  }
}

// ---------------------------------------------------------------------------------------
// FasterPAM
// ---------------------------------------------------------------------------------------
// A candidate's ΔTD terms (distances x to the n points) into a[0..k] (zeroed first): only
// points closer to it than to their second medoid (x < lim) contribute, a vectorised test per
// kSkip points, the rest in point order (the sums of kmedoids.cpp's fastpam_delta bit for bit)
template <typename T>
void pam_terms(const T* x, int64_t n, int64_t k, const double* lim, const int64_t* ni,
               const double* nd, const double* sd, double* a) {
  std::fill(a, a + k + 1, 0.0);
  for_hits(x, lim, n, [&](int64_t o, double d) {
    const double no = nd[o];
    if (d < no) {
      a[k] += d - no;
      a[ni[o]] += no - sd[o];
    } else {
      a[ni[o]] += d - sd[o];
    }
  });
}

template <typename T>
double pam_gain(const T* x, const State& s, std::vector<double>& acc, int64_t& best) {
  const int64_t k = s.k;
  double* a = acc.data();
  pam_terms(x, s.n, k, s.lim.data(), s.ni, s.nd, s.sd, a);
  // FastPAM1's choice: the first slot of least removal loss + change
  int64_t m = 0;
  double v = s.rl[0] + a[0];
  for (int64_t i = 1; i < k; ++i) {
    const double w = s.rl[i] + a[i];
    if (w < v) {
      v = w;
      m = i;
    }
  }
  best = m;
  return v + a[k];
}

void pam_limits(State& s) {
  s.lim.resize(s.n);
  for (int64_t o = 0; o < s.n; ++o) s.lim[o] = std::max(s.nd[o], s.sd[o]);
}

double pam_refresh(State& s) {
  std::fill(s.rl, s.rl + s.k, 0.0);
  double loss = 0.0;
  for (int64_t o = 0; o < s.n; ++o) {
    s.rl[s.ni[o]] += s.sd[o] - s.nd[o];
    loss += s.nd[o];
  }
  pam_limits(s);
  return loss;
}

template <typename T>
void pam_swap(const Mat<T>& D, State& s, int64_t b, int64_t j) {
  s.is_med[s.med[b]] = false;
  s.med[b] = j;
  s.is_med[j] = true;
  set_column(D, s, b, j);
  for (int64_t o = 0; o < s.n; ++o) {
    const double doj = s.DM[o * s.k + b];
    int64_t& ni = s.ni[o];
    int64_t& si = s.si[o];
    double& nd = s.nd[o];
    double& sd = s.sd[o];
    if (o == j) {  // the new medoid itself
      if (ni != b) {
        si = ni;
        sd = nd;
      }
      ni = b;
      nd = 0.0;
      continue;
    }
    if (ni == b) {  // its nearest medoid replaced
      if (doj < sd) {
        nd = doj;
      } else {
        ni = si;
        nd = sd;
        nearest_other(s, o, ni, -1, b, doj, si, sd);
      }
    } else if (doj < nd) {
      si = ni;
      sd = nd;
      ni = b;
      nd = doj;
    } else if (doj < sd) {
      si = b;
      sd = doj;
    } else if (si == b) {
      nearest_other(s, o, ni, -1, b, doj, si, sd);
    }
  }
}

template <typename T>
py::tuple pam_sweep_t(const Mat<T>& D, State& s, double loss, int64_t j, int64_t lastswap,
                      int64_t budget, int64_t par_rows) {
  pam_limits(s);
  return drive(
      D, s, loss, j, lastswap, budget, par_rows,
      [&](const T* x, std::vector<double>& acc, int64_t& m) { return pam_gain(x, s, acc, m); },
      [](double v, double) { return v < 0.0; },
      [&](int64_t b, int64_t c) {
        pam_swap(D, s, b, c);
        return pam_refresh(s);
      });
}

py::tuple fasterpam_sweep(const py::array& D, const py::array& DM, const py::array& med,
                          const py::array& is_med, const py::array& rl, const py::array& ni,
                          const py::array& si, const py::array& nd, const py::array& sd,
                          double loss, int64_t j, int64_t lastswap, int64_t budget,
                          int64_t par_rows) {
  const int64_t n = D.ndim() == 2 ? D.shape(0) : -1;
  State s = state(DM, med, is_med, rl, ni, si, nd, sd, n);
  if (!hpc::all_in_range(s.si, n, s.k)) hpc::fail("kmedoids_swap: seco_i out of range [0, k)");
  if (j < 0 || j > n || lastswap < 0 || lastswap > n || budget < 1)
    hpc::fail("fasterpam_sweep: j, lastswap in [0, n], budget >= 1");
  return hpc::visit_real(D, "fasterpam_sweep: D", [&](auto tag) {
    using T = decltype(tag);
    return pam_sweep_t(mat<T>(D, n, n, "D"), s, loss, j, lastswap, budget, par_rows);
  });
}

// ---------------------------------------------------------------------------------------
// FasterMSC (k >= 3: three nearest medoids; k = 2: the package's slot form)
// ---------------------------------------------------------------------------------------
// A point's three nearest medoid slots (i, d), nearest first, after slot b's medoid became
// one at distance doj: b is taken out where it was (a slot outside the three: the third is
// dropped if b now comes before it) and put back before the first strictly farther entry.
// Returns whether the third must be searched again (b ended third no nearer than the old
// third: a slot outside the three may be nearer); msc.py's MSCSolver.swap case by case.
inline bool reinsert3(int64_t b, double doj, int64_t* i, double* d) {
  const bool t3 = i[2] < 0 || doj < d[2];
  int p = 0;
  while (p < 3 && i[p] != b) ++p;
  if (p == 3) {
    if (!t3) return false;  // farther than the three: nothing changes
    p = 2;
  }
  for (int q = p; q < 2; ++q) {
    i[q] = i[q + 1];
    d[q] = d[q + 1];
  }
  int at = 0;
  while (at < 2 && !(doj < d[at])) ++at;
  for (int q = 2; q > at; --q) {
    i[q] = i[q - 1];
    d[q] = d[q - 1];
  }
  i[at] = b;
  d[at] = doj;
  return at == 2 && !t3;
}

struct Msc {
  State& s;
  std::vector<double> r3;  // per point: near/second, second/third, near/third

  void ratios() {
    r3.resize(3 * static_cast<size_t>(s.n));
    s.lim.resize(s.n);
    for (int64_t o = 0; o < s.n; ++o) {
      s.lim[o] = std::max({s.nd[o], s.sd[o], s.td[o]});
      r3[3 * o] = ratio(s.nd[o], s.sd[o]);
      r3[3 * o + 1] = ratio(s.sd[o], s.td[o]);
      r3[3 * o + 2] = ratio(s.nd[o], s.td[o]);
    }
  }

  // One point's terms (d below its limit): the terms of kmedoids_msc.cpp's msc_sweep
  void point(int64_t o, double d, double* oc) const {
    const hpc::kmedoids::MscPoint pt{s.nd[o], s.sd[o], r3[3 * o], r3[3 * o + 1], r3[3 * o + 2],
                                     s.ni[o], s.si[o]};
    pt.add_terms(d, s.k, oc);
  }

  // As kmedoids_msc.cpp's msc_sweep for one column, then the best slot (the first of the
  // largest rl + change) and the gain
  template <typename T>
  double gain(const T* x, std::vector<double>& acc, int64_t& best) const {
    const int64_t k = s.k;
    std::fill(acc.begin(), acc.end(), 0.0);
    double* oc = acc.data();
    // only points closer to the candidate than to their third medoid contribute (a
    // branch-free variant computing every point's terms with vectorised divisions was
    // slower on digits, k = 10: 0.154 s against 0.11 s of CPU time)
    for_hits(x, s.lim.data(), s.n, [&](int64_t o, double d) { point(o, d, oc); });
    int64_t m = 0;
    double v = s.rl[0] + oc[0];
    for (int64_t i = 1; i < k; ++i) {
      const double w = s.rl[i] + oc[i];
      if (w > v) {
        v = w;
        m = i;
      }
    }
    best = m;
    return v + oc[k];
  }

  // The loss L = sum near/second and the removal gains (msc.py's msc_removal)
  double refresh() {
    const int64_t k = s.k;
    std::vector<double> ra(k, 0.0), rb(k, 0.0);
    double loss = 0.0;
    for (int64_t o = 0; o < s.n; ++o) {
      const double ns = ratio(s.nd[o], s.sd[o]);
      ra[s.ni[o]] += ns - ratio(s.sd[o], s.td[o]);
      rb[s.si[o]] += ns - ratio(s.nd[o], s.td[o]);
      loss += ns;
    }
    for (int64_t m = 0; m < k; ++m) s.rl[m] = ra[m] + rb[m];
    ratios();
    return loss;
  }

  // msc.py's MSCSolver.swap (k >= 3), point by point
  template <typename T>
  void swap(const Mat<T>& D, int64_t b, int64_t j) {
    s.is_med[s.med[b]] = false;
    s.med[b] = j;
    s.is_med[j] = true;
    set_column(D, s, b, j);
    for (int64_t o = 0; o < s.n; ++o) {
      const double doj = s.DM[o * s.k + b];
      int64_t &ni = s.ni[o], &si = s.si[o], &ti = s.ti[o];
      double &nd = s.nd[o], &sd = s.sd[o], &td = s.td[o];
      if (o == j) {  // nearest to itself
        if (ni != b) {
          if (si != b) {
            ti = si;
            td = sd;
          }
          si = ni;
          sd = nd;
        }
        ni = b;
        nd = 0.0;
        continue;
      }
      int64_t i3[3] = {ni, si, ti};
      double d3[3] = {nd, sd, td};
      const bool fix = reinsert3(b, doj, i3, d3);
      ni = i3[0], si = i3[1], ti = i3[2];
      nd = d3[0], sd = d3[1], td = d3[2];
      if (fix) nearest_other(s, o, ni, si, b, doj, ti, td);
    }
  }
};

// k = 2, the package's form: DM's two columns by slot and the label near_i (ties: slot 1)
template <typename T>
double msc2_gain(const T* x, const State& s, int64_t& best) {
  double p0 = 0.0, p1 = 0.0;
  for (int64_t o = 0; o < s.n; ++o) {
    const double d = static_cast<double>(x[o]);
    const double a = s.DM[2 * o], b = s.DM[2 * o + 1];
    p0 += d < b ? ratio(d, b) : ratio(b, d);  // replaces slot 0
    p1 += d < a ? ratio(d, a) : ratio(a, d);  // replaces slot 1
  }
  best = p1 < p0 ? 1 : 0;
  return best ? p1 : p0;
}

template <typename T>
double msc2_swap(const Mat<T>& D, State& s, int64_t b, int64_t j) {
  s.is_med[s.med[b]] = false;
  s.med[b] = j;
  s.is_med[j] = true;
  const int64_t other = 1 - b;
  double loss = 0.0;
  for (int64_t o = 0; o < s.n; ++o) {
    const double doj = static_cast<double>(D.p[o * D.ld + j]);
    const double dother = s.DM[2 * o + other];
    s.DM[2 * o + b] = o == j ? 0.0 : doj;
    const bool to_b = o == j || doj < dother || (doj == dother && s.ni[o] == b);
    s.ni[o] = to_b ? b : other;
    const double d0 = s.DM[2 * o], d1 = s.DM[2 * o + 1];
    loss += s.ni[o] == 0 ? ratio(d0, d1) : ratio(d1, d0);
  }
  return loss;
}

template <typename T>
py::tuple msc_sweep_t(const Mat<T>& D, State& s, double loss, int64_t j, int64_t lastswap,
                      int64_t budget, int64_t par_rows, bool slot2) {
  if (slot2) {
    return drive(
        D, s, loss, j, lastswap, budget, par_rows,
        [&](const T* x, std::vector<double>&, int64_t& m) { return msc2_gain(x, s, m); },
        [](double v, double l) { return v < l; },
        [&](int64_t b, int64_t c) { return msc2_swap(D, s, b, c); });
  }
  Msc msc{s, {}};
  msc.ratios();
  return drive(
      D, s, loss, j, lastswap, budget, par_rows,
      [&](const T* x, std::vector<double>& acc, int64_t& m) { return msc.gain(x, acc, m); },
      [](double v, double) { return v > 0.0; },
      [&](int64_t b, int64_t c) {
        msc.swap(D, b, c);
        return msc.refresh();
      });
}

py::tuple fastermsc_sweep(const py::array& D, const py::array& DM, const py::array& med,
                          const py::array& is_med, const py::array& rl, const py::array& ni,
                          const py::array& si, const py::array& ti, const py::array& nd,
                          const py::array& sd, const py::array& td, double loss, int64_t j,
                          int64_t lastswap, int64_t budget, bool slot2, int64_t par_rows) {
  const int64_t n = D.ndim() == 2 ? D.shape(0) : -1;
  State s = state(DM, med, is_med, rl, ni, si, nd, sd, n);
  s.ti = mut<int64_t>(ti, n, "third_i");
  s.td = mut<double>(td, n, "third_d");
  if (slot2 && s.k != 2) hpc::fail("fastermsc_sweep: slot2 needs k = 2");
  if (!slot2) {
    if (s.k < 3) hpc::fail("fastermsc_sweep: k must be at least 3 (k = 2: slot2)");
    if (!hpc::all_in_range(s.si, n, s.k) || !hpc::all_in_range(s.ti, n, s.k))
      hpc::fail("kmedoids_swap: seco_i/third_i out of range [0, k)");
  }
  if (j < 0 || j > n || lastswap < 0 || lastswap > n || budget < 1)
    hpc::fail("fastermsc_sweep: j, lastswap in [0, n], budget >= 1");
  return hpc::visit_real(D, "fastermsc_sweep: D", [&](auto tag) {
    using T = decltype(tag);
    return msc_sweep_t(mat<T>(D, n, n, "D"), s, loss, j, lastswap, budget, par_rows, slot2);
  });
}

// ---------------------------------------------------------------------------------------
// The distributed blocked SWAP's per-rank passes (hpc.kmedoids.algorithms, any rank count)
// ---------------------------------------------------------------------------------------
// Columns [j0, j1) of a rank's rows of D (n_local x n), one candidate per row of the result:
// a slab read once, whose candidates the blocks between reductions then take in any number.
py::array gather(const py::array& D, int64_t j0, int64_t j1) {
  if (D.ndim() != 2) hpc::fail("kmedoids_swap.gather: D must be 2-D");
  const int64_t n = D.shape(0), ncol = D.shape(1);
  if (j0 < 0 || j1 < j0 || j1 > ncol) hpc::fail("kmedoids_swap.gather: need 0 <= j0 <= j1 <= n");
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    const Mat<T> M = mat<T>(D, n, ncol, "D");
    py::array_t<T> out({j1 - j0, n});
    T* b = out.mutable_data();
    py::gil_scoped_release nogil;
    gather_into(M, j0, j1 - j0, b, n * (j1 - j0) >= (int64_t(1) << 20));
    return out;
  };
  return hpc::visit_real(D, "kmedoids_swap.gather: D", run);
}

// out[c] = FasterPAM's ΔTD terms of candidate c (row c of X: its distances to the rank's
// points) over the rank's points, as kmedoids.fastpam_delta's row c, summed in point order.
py::array_t<double> fasterpam_partials(const py::array& X, const py::array& near_i,
                                       const py::array& near_d, const py::array& seco_d,
                                       int64_t k) {
  if (X.ndim() != 2) hpc::fail("fasterpam_partials: X must be candidates x points");
  if (k < 1) hpc::fail("fasterpam_partials: k must be positive");
  const int64_t B = X.shape(0), n = X.shape(1);
  const int64_t* ni = mut<int64_t>(near_i, n, "near_i");
  const double* nd = mut<double>(near_d, n, "near_d");
  const double* sd = mut<double>(seco_d, n, "seco_d");
  if (!hpc::all_in_range(ni, n, k)) hpc::fail("fasterpam_partials: near_i out of range [0, k)");
  py::array_t<double> out({B, k + 1});
  double* o = out.mutable_data();
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const Mat<T> M = mat<T>(X, B, n, "X");
    py::gil_scoped_release nogil;
    std::vector<double> lim(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) lim[i] = std::max(nd[i], sd[i]);
#pragma omp parallel for schedule(static) if (B * n >= (int64_t(1) << 20))
    for (int64_t c = 0; c < B; ++c)
      pam_terms(M.p + c * M.ld, n, k, lim.data(), ni, nd, sd, o + c * (k + 1));
  };
  hpc::visit_real(X, "fasterpam_partials: X", run);
  return out;
}

// After a swap inside a block: the terms of the block's remaining candidates (rows of X, their
// partials in `part`, updated in place) for the points S whose (near_i, near_d, seco_d)
// changed: each point's old terms taken out, its new ones added (the other points' terms are
// unchanged), instead of a new pass over all points. The same values up to rounding (the
// sums are no longer in point order).
void fasterpam_correct(const py::array& X, const py::array& S, const py::array& old_i,
                       const py::array& old_nd, const py::array& old_sd, const py::array& near_i,
                       const py::array& near_d, const py::array& seco_d, const py::array& part) {
  if (X.ndim() != 2) hpc::fail("fasterpam_correct: X must be candidates x points");
  const int64_t B = X.shape(0), n = X.shape(1);
  auto pc = hpc::exact<double>(part, "part");
  if (pc.ndim() != 2 || pc.shape(0) != B || pc.shape(1) < 2)
    hpc::fail("fasterpam_correct: part must be candidates x (k + 1)");
  const int64_t k = pc.shape(1) - 1;
  double* o = hpc::mut_ptr<double>(pc, "part");
  auto sc = hpc::exact<int64_t>(S, "S");
  if (sc.ndim() != 1) hpc::fail("fasterpam_correct: S must be 1-D");
  const int64_t ns = sc.shape(0);
  const int64_t* si = sc.data();
  if (!hpc::all_in_range(si, ns, n)) hpc::fail("fasterpam_correct: S out of range [0, n)");
  const int64_t* oi = mut<int64_t>(old_i, n, "old_i");
  const int64_t* ni = mut<int64_t>(near_i, n, "near_i");
  if (!hpc::all_in_range(oi, n, k) || !hpc::all_in_range(ni, n, k))
    hpc::fail("fasterpam_correct: old_i/near_i out of range [0, k)");
  const double* od = mut<double>(old_nd, n, "old_nd");
  const double* os = mut<double>(old_sd, n, "old_sd");
  const double* nd = mut<double>(near_d, n, "near_d");
  const double* sd = mut<double>(seco_d, n, "seco_d");
  // one point's terms with sign g (the kernel's expressions)
  auto add = [k](double* a, double d, int64_t m, double no, double so, double g) {
    if (d < no) {
      a[k] += g * (d - no);
      a[m] += g * (no - so);
    } else if (d < so) {
      a[m] += g * (d - so);
    }
  };
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const Mat<T> M = mat<T>(X, B, n, "X");
    py::gil_scoped_release nogil;
#pragma omp parallel for schedule(static) if (B * ns >= (int64_t(1) << 20))
    for (int64_t c = 0; c < B; ++c) {
      const T* x = M.p + c * M.ld;
      double* a = o + c * (k + 1);
      for (int64_t q = 0; q < ns; ++q) {
        const int64_t p = si[q];
        const double d = static_cast<double>(x[p]);
        add(a, d, oi[p], od[p], os[p], -1.0);
        add(a, d, ni[p], nd[p], sd[p], 1.0);
      }
    }
  };
  hpc::visit_real(X, "fasterpam_correct: X", run);
}
}  // namespace

HPC_SUBMODULE(kmedoids_swap) {
  m.doc() = "FasterPAM/FasterMSC eager SWAP loops on one rank's full matrix (in place)";
  m.def("fasterpam_sweep", &fasterpam_sweep, py::arg("D"), py::arg("DM"), py::arg("med"),
        py::arg("is_med"), py::arg("rl"), py::arg("near_i"), py::arg("seco_i"),
        py::arg("near_d"), py::arg("seco_d"), py::arg("loss"), py::arg("j"),
        py::arg("lastswap"), py::arg("budget"), py::arg("par_rows") = 16384);
  m.def("fastermsc_sweep", &fastermsc_sweep, py::arg("D"), py::arg("DM"), py::arg("med"),
        py::arg("is_med"), py::arg("rl"), py::arg("near_i"), py::arg("seco_i"),
        py::arg("third_i"), py::arg("near_d"), py::arg("seco_d"), py::arg("third_d"),
        py::arg("loss"), py::arg("j"), py::arg("lastswap"), py::arg("budget"),
        py::arg("slot2"), py::arg("par_rows") = 16384);
  m.def("gather", &gather, py::arg("D"), py::arg("j0"), py::arg("j1"));
  m.def("fasterpam_partials", &fasterpam_partials, py::arg("X"), py::arg("near_i"),
        py::arg("near_d"), py::arg("seco_d"), py::arg("k"));
  m.def("fasterpam_correct", &fasterpam_correct, py::arg("X"), py::arg("S"), py::arg("old_i"),
        py::arg("old_nd"), py::arg("old_sd"), py::arg("near_i"), py::arg("near_d"),
        py::arg("seco_d"), py::arg("part"));
}
