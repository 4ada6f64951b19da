// The partitioned PowerWalk query engine (hpc/pagerank/ppr.py: partitioned_query drives it):
// each rank holds only the out-edges and the fingerprints of its own vertex block, and all the
// queries of a batch advance together. A push step pushes every owned residual entry that meets
// the rule and returns the shares bound for other vertices grouped by owner rank, as keys
// (query << 32 | vertex) and values, for one Alltoallv; `receive` adds what arrives. The
// combination turns each query's owned estimate and residual rows into a partial vector for the
// query's asking rank, which sums the partial vectors of all ranks (`answer`). The arithmetic is
// the replicated engine's (ppr.cpp), only the order of the floating-point sums differs.
// As there, the accumulator of the combination numbers vertices by how many of this rank's
// index entries name them (most first), so its hot part is a small prefix; the partial
// vectors keep those slots, everything routed the global vertex numbers.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "hpc/checks.hpp"
#include "hpc/ppr_bytes.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int32_t;
using std::int64_t;
using Entry = std::pair<int32_t, double>;

// An entry of a partial vector: (accumulator slot, value), left uninitialized by resize (the
// take_* functions write every entry of the size they set; value-initializing it first took
// a fifth of the tails pass).
// Packed: 12 bytes, not 16; the tails pass writes, and `values` and `more` scan, every entry
// of a batch's partial vectors, so their bytes are the memory traffic.
struct __attribute__((packed)) PEntry {
  int32_t first;
  double second;
};
template <typename T>
struct NoInit : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = NoInit<U>;
  };
  NoInit() = default;
  template <typename U>
  NoInit(const NoInit<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept { ::new (static_cast<void*>(p)) U; }
  template <typename U, typename... A>
  void construct(U* p, A&&... a) { ::new (static_cast<void*>(p)) U{std::forward<A>(a)...}; }
};
using Part = std::vector<PEntry, NoInit<PEntry>>;

constexpr int64_t HEAD = 16;   // entries per residual row in the first pass of the rel cut
// prefetch distances in rows: a head is HEAD adds, far shorter than a DRAM miss, so its rows
// are fetched further ahead than the tails' (whose first 64 entries are fetched)
constexpr size_t AHEAD = 6, TAIL_AHEAD = 3;
// the vertex of the key that carries a rank's floor of a query in `more`'s entries
constexpr int64_t FLOOR = 0xFFFFFFFFLL;

inline int64_t key_of(int64_t q, int64_t v) { return (q << 32) | v; }

int max_threads(int threads) { return threads < 1 ? 1 : threads; }

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

template <typename T>
py::array_t<T> to_array(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// A 1-D array of exactly T read through its stride: the keys and values that `pack` returns
// and `_route` delivers are the two columns of one (m, 2) int64 buffer (key, value bits), so
// they need no copy into separate contiguous arrays on either side.
template <typename T>
struct Col {
  const char* p = nullptr;
  py::ssize_t s = static_cast<py::ssize_t>(sizeof(T));
  int64_t n = 0;
  T operator[](int64_t i) const { return *reinterpret_cast<const T*>(p + i * s); }
};

template <typename T>
Col<T> column(const py::array& a, int64_t n, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 1)
    hpc::fail(std::string(what) + ": wrong dtype or not 1-D");
  if (n >= 0 && a.shape(0) != n)
    hpc::fail(std::string(what) + ": expected length " + std::to_string(n) + ", got " +
              std::to_string(a.shape(0)));
  Col<T> c{static_cast<const char*>(a.data()), a.strides(0), static_cast<int64_t>(a.shape(0))};
  if (c.n > 1 && (c.s <= 0 || c.s % static_cast<py::ssize_t>(sizeof(T)) != 0))
    hpc::fail(std::string(what) + ": stride must be a positive multiple of the item size");
  if (reinterpret_cast<uintptr_t>(c.p) % alignof(T) != 0) hpc::fail(std::string(what) + ": misaligned");
  return c;
}

template <typename T>
Col<T> column(const std::vector<T>& v) {
  return Col<T>{reinterpret_cast<const char*>(v.data()), static_cast<py::ssize_t>(sizeof(T)),
                static_cast<int64_t>(v.size())};
}

// The entries of a keys array (query << 32 | vertex) by query, in arrival order within each
// query. What the ranks route arrives rank after rank, each rank's entries ascending by query:
// then each query's entries are read in place, run by run (few runs: rptr), instead of
// through a stable counting sort (order), whose reads jump all over the arrived buffer.
struct Groups {
  int64_t nq = 0, nr = 0;             // queries; runs (0: the counting sort)
  std::vector<int64_t> ptr, order;    // counting sort: query q's entries order[ptr[q]..ptr[q + 1])
  std::vector<int64_t> rptr;          // run r, query q: entries [rptr[r (nq + 1) + q], ... + 1)
  bool empty(int64_t q) const {
    if (nr == 0) return ptr[q] == ptr[q + 1];
    for (int64_t r = 0; r < nr; ++r)
      if (rptr[r * (nq + 1) + q] != rptr[r * (nq + 1) + q + 1]) return false;
    return true;
  }
  // f(entry) for query q's entries in arrival order
  template <typename F>
  void each(int64_t q, F&& f) const {
    if (nr == 0) {
      for (int64_t j = ptr[q]; j < ptr[q + 1]; ++j) f(order[j]);
      return;
    }
    for (int64_t r = 0; r < nr; ++r) {
      const int64_t* b = rptr.data() + r * (nq + 1) + q;
      for (int64_t j = b[0]; j < b[1]; ++j) f(j);
    }
  }
};

// Groups of the m keys; checks every query in [qlo, qhi) and every vertex in [vlo, vlo + nv).
template <typename KC>
Groups group(const KC& k, int64_t m, int64_t qlo, int64_t qhi, int64_t vlo, int64_t nv,
             const char* what) {
  constexpr size_t MAX_RUNS = 64;
  Groups g;
  const int64_t nq = qhi - qlo;
  g.nq = nq;
  std::vector<int64_t> starts{0};
  int64_t prev = 0;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t q = (k[i] >> 32) - qlo, u = (k[i] & 0xFFFFFFFFLL) - vlo;
    if (k[i] < 0 || q < 0 || q >= nq || u < 0 || u >= nv)
      hpc::fail(std::string(what) + ": key of another query or vertex");
    if (q < prev && starts.size() <= MAX_RUNS) starts.push_back(i);
    prev = q;
  }
  starts.push_back(m);
  if (starts.size() - 1 <= MAX_RUNS) {
    g.nr = static_cast<int64_t>(starts.size()) - 1;
    g.rptr.resize(static_cast<size_t>(g.nr * (nq + 1)));
    for (int64_t r = 0; r < g.nr; ++r) {
      int64_t pos = starts[r];
      const int64_t e = starts[r + 1];
      int64_t* rp = g.rptr.data() + r * (nq + 1);
      for (int64_t q = 0; q <= nq; ++q) {
        while (pos < e && (k[pos] >> 32) - qlo < q) ++pos;
        rp[q] = pos;
      }
    }
    return g;
  }
  g.ptr.assign(static_cast<size_t>(nq) + 1, 0);
  for (int64_t i = 0; i < m; ++i) ++g.ptr[(k[i] >> 32) - qlo + 1];
  for (int64_t q = 0; q < nq; ++q) g.ptr[q + 1] += g.ptr[q];
  g.order.resize(static_cast<size_t>(m));
  std::vector<int64_t> at(g.ptr.begin(), g.ptr.end() - 1);
  for (int64_t i = 0; i < m; ++i) g.order[at[(k[i] >> 32) - qlo]++] = i;
  return g;
}

// Dense accumulator over n entries with a touched-list (acc == 0 marks untouched; every
// contribution is > 0), as the replicated engine's Work.
struct Acc {
  Acc() = default;
  explicit Acc(int64_t n, const int32_t* ids = nullptr)
      : acc(static_cast<size_t>(n), 0.0), list(static_cast<size_t>(n) + 1, 0), id(ids) {}
  std::vector<double> acc;
  std::vector<int32_t> list;
  const int32_t* id = nullptr;   // slot -> vertex when the slots are renumbered (null: the same)
  size_t na = 0;
  std::vector<std::pair<double, int32_t>> cand;
  inline void add(int32_t u, double v) {
    if (!(v > 0.0)) return;
    double& a = acc[u];
    list[na] = u;
    na += (a == 0.0);
    a += v;
  }
  void reset() {
    for (size_t j = 0; j < na; ++j) acc[list[j]] = 0.0;
    na = 0;
  }
  int32_t vertex(int32_t u) const { return id ? id[u] : u; }
  // cand = the top K (score, slot) by (score desc, vertex asc), as the replicated engine's
  void select(size_t K) {
    auto better = [this](const std::pair<double, int32_t>& a, const std::pair<double, int32_t>& b) {
      return a.first > b.first || (a.first == b.first && vertex(a.second) < vertex(b.second));
    };
    cand.clear();
    for (size_t j = 0; j < na; ++j) {
      const std::pair<double, int32_t> e(acc[list[j]], list[j]);
      if (cand.size() < K) {
        cand.push_back(e);
        std::push_heap(cand.begin(), cand.end(), better);
      } else if (better(e, cand.front())) {
        std::pop_heap(cand.begin(), cand.end(), better);
        cand.back() = e;
        std::push_heap(cand.begin(), cand.end(), better);
      }
    }
    std::sort(cand.begin(), cand.end(), better);
  }
};

struct Tail {
  double r;       // the residual of the row's vertex
  int64_t start;  // first index entry not yet combined
  int64_t end;    // past the row's last entry
};

// One thread's n-sized work arrays, kept by the engine between calls and batches (allocating
// and zeroing them on every call was a page fault per 4 KB, several MB per call). Between
// calls: acc all 0 with na = 0, mask all 0, at all -1, pos all -1.
struct Scratch {
  Acc a;
  std::vector<uint64_t> mask;   // ask_merge: ranks whose entry a vertex's sum holds
  std::vector<int32_t> at;      // values: vertex slot -> position of its request
  std::vector<int32_t> pos;     // receive: owned vertex -> its residual entry
};

class PartEngine {
 public:
  PartEngine(const py::array& offsets, int64_t rank, const py::array& out_indptr,
             const py::array& out_indices, double damping)
      : c_(1.0 - damping), d_(damping) {
    if (!(damping > 0.0 && damping < 1.0)) hpc::fail("ppr PartEngine: damping must lie in (0, 1)");
    auto off = hpc::exact<int64_t>(offsets, "ppr offsets");
    if (off.ndim() != 1 || off.shape(0) < 2) hpc::fail("ppr PartEngine: offsets must be 1-D, p + 1");
    const int64_t p = off.shape(0) - 1;
    off_.assign(off.data(), off.data() + p + 1);
    if (off_[0] != 0 || !hpc::non_decreasing(off_.data(), p))
      hpc::fail("ppr PartEngine: offsets must start at 0 and never decrease");
    if (rank < 0 || rank >= p) hpc::fail("ppr PartEngine: rank out of range");
    n_ = off_[p];
    if (n_ > std::numeric_limits<int32_t>::max()) hpc::fail("ppr PartEngine: more than 2^31 vertices");
    lo_ = off_[rank];
    nl_ = off_[rank + 1] - lo_;
    auto gp = hpc::exact<int64_t>(out_indptr, "ppr out_indptr");
    auto gi = hpc::exact<int64_t>(out_indices, "ppr out_indices");
    hpc::require_1d(gp, nl_ + 1, "ppr out_indptr");
    hpc::require_1d(gi, -1, "ppr out_indices");
    load_csr(gp.data(), gi.data(), gi.shape(0), gptr_, gidx_, "graph");
    fptr_.assign(static_cast<size_t>(nl_) + 1, 0);
    mass_.assign(static_cast<size_t>(nl_), 0.0);
    number_by_popularity();
  }

  // Replace the fingerprints of the owned vertices (CSR over the nl owned rows, global ids).
  void set_index(const py::array& fp_indptr, const py::array& fp_ids, const py::array& fp_vals,
                 const py::array& fp_mass) {
    auto fp = hpc::exact<int64_t>(fp_indptr, "ppr fp_indptr");
    auto fi = hpc::exact<int64_t>(fp_ids, "ppr fp_ids");
    auto fv = hpc::exact<double>(fp_vals, "ppr fp_vals");
    auto fm = hpc::exact<double>(fp_mass, "ppr fp_mass");
    hpc::require_1d(fp, nl_ + 1, "ppr fp_indptr");
    hpc::require_1d(fi, -1, "ppr fp_ids");
    hpc::require_1d(fv, fi.shape(0), "ppr fp_vals");
    hpc::require_1d(fm, nl_, "ppr fp_mass");
    std::vector<int64_t> p;
    std::vector<int32_t> ix;
    load_csr(fp.data(), fi.data(), fi.shape(0), p, ix, "fingerprint");
    std::vector<double> val(fv.data(), fv.data() + fv.shape(0));
    for (double v : val)
      if (!(v >= 0.0) || v > 1e300) hpc::fail("ppr PartEngine: fingerprint values must be finite, >= 0");
    std::vector<double> mass(fm.data(), fm.data() + nl_);
    for (double m : mass)
      if (!(m >= 0.0) || m > 1e300) hpc::fail("ppr PartEngine: fingerprint masses must be finite, >= 0");
    fptr_.swap(p);
    fidx_.swap(ix);
    fval_.swap(val);
    mass_.swap(mass);
    number_by_popularity();
  }

  int64_t n() const { return n_; }
  int64_t lo() const { return lo_; }
  int64_t nlocal() const { return nl_; }

  // Bytes of the stored graph rows and index rows (what the replicated engine holds n rows of).
  py::dict nbytes() const {
    py::dict d = hpc::ppr_engine_bytes(gptr_, gidx_, fptr_, fidx_, fval_, mass_);
    d["numbering"] = hpc::vector_bytes(slot_) + hpc::vector_bytes(vertex_) + hpc::vector_bytes(row_);
    return d;
  }

  // Start a batch: query q's unit mass at its source, on the source's owner.
  void begin(const py::array& sources_) {
    auto src = hpc::exact<int64_t>(sources_, "ppr sources");
    hpc::require_1d(src, -1, "ppr sources");
    const int64_t q = src.shape(0);
    if (q >= std::numeric_limits<int32_t>::max()) hpc::fail("ppr begin: at most 2^31 - 1 queries");
    if (!hpc::all_in_range(src.data(), q, n_)) hpc::fail("ppr begin: source out of range");
    nq_ = q;
    res_.assign(static_cast<size_t>(q), {});
    xs_.assign(static_cast<size_t>(q), {});
    tails_.assign(static_cast<size_t>(q), {});
    st_ = Stats();
    for (int64_t i = 0; i < q; ++i) {
      const int64_t s = src.data()[i];
      if (s >= lo_ && s < lo_ + nl_) res_[i].emplace_back(static_cast<int32_t>(s - lo_), 1.0);
    }
  }

  // One synchronous push iteration over every query: (counts per rank, keys, values, pushes).
  py::tuple push(double threshold, bool per_edge, int threads) {
    if (!(threshold > 0.0)) hpc::fail("ppr push: threshold must be > 0");
    const int nt = max_threads(threads);
    const size_t p = off_.size() - 1;
    std::vector<std::vector<std::vector<int64_t>>> tk(nt, std::vector<std::vector<int64_t>>(p));
    std::vector<std::vector<std::vector<double>>> tv(nt, std::vector<std::vector<double>>(p));
    std::vector<int64_t> tpush(nt, 0);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        const int t = thread_id();
        auto& K = tk[t];
        auto& V = tv[t];
        std::vector<Entry> pushed;
        int64_t npush = 0;  // into tpush[t] once: threads' adjacent counters share a line
        // static: each query's messages leave in the same order on every run
#pragma omp for schedule(static)
        for (int64_t q = 0; q < nq_; ++q) {
          auto& R = res_[q];
          pushed.clear();
          size_t keep = 0;
          for (const Entry& e : R) {
            const double bar = per_edge ? threshold * static_cast<double>(std::max<int64_t>(
                                              gptr_[e.first + 1] - gptr_[e.first], 1))
                                        : threshold;
            if (e.second >= bar)
              pushed.push_back(e);
            else
              R[keep++] = e;
          }
          R.resize(keep);
          npush += static_cast<int64_t>(pushed.size());
          for (const Entry& e : pushed) {
            xs_[q].emplace_back(e.first, c_ * e.second);
            const int64_t b = gptr_[e.first], en = gptr_[e.first + 1];
            if (en == b) continue;                 // dangling: the absorbing walk loses d*r
            const double share = d_ * e.second / static_cast<double>(en - b);
            for (int64_t j = b; j < en; ++j) {
              const int64_t u = gidx_[j];
              const size_t dst = owner(u);
              K[dst].push_back(key_of(q, u));
              V[dst].push_back(share);
            }
          }
        }
        tpush[t] = npush;
      }
    }
    py::array_t<int64_t> counts(static_cast<py::ssize_t>(p));
    int64_t total = 0, pushes = 0;
    for (size_t r = 0; r < p; ++r) {
      int64_t c = 0;
      for (int t = 0; t < nt; ++t) c += static_cast<int64_t>(tk[t][r].size());
      counts.mutable_data()[r] = c;
      total += c;
    }
    for (int t = 0; t < nt; ++t) pushes += tpush[t];
    st_.pushes += pushes;
    py::array_t<int64_t> keys(total);
    py::array_t<double> vals(total);
    int64_t* pk = keys.mutable_data();
    double* pv = vals.mutable_data();
    int64_t at = 0;
    for (size_t r = 0; r < p; ++r)
      for (int t = 0; t < nt; ++t) {
        std::copy(tk[t][r].begin(), tk[t][r].end(), pk + at);
        std::copy(tv[t][r].begin(), tv[t][r].end(), pv + at);
        at += static_cast<int64_t>(tk[t][r].size());
      }
    return py::make_tuple(counts, keys, vals, pushes);
  }

  // Add the shares that arrived (keys query << 32 | owned vertex) to the residuals.
  void receive(const py::array& keys_, const py::array& vals_, int threads) {
    const Col<int64_t> k = column<int64_t>(keys_, -1, "ppr keys");
    const Col<double> v = column<double>(vals_, k.n, "ppr vals");
    const int64_t m = k.n;
    const Groups G = group(k, m, 0, nq_, lo_, nl_, "ppr receive");
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        std::vector<int32_t>& pos = scratch(thread_id()).pos;
#pragma omp for schedule(dynamic, 16)
        for (int64_t q = 0; q < nq_; ++q) {
          if (G.empty(q)) continue;
          auto& R = res_[q];
          for (size_t i = 0; i < R.size(); ++i) pos[R[i].first] = static_cast<int32_t>(i);
          G.each(q, [&](int64_t i) {
            const int32_t u = static_cast<int32_t>((k[i] & 0xFFFFFFFFLL) - lo_);
            if (pos[u] >= 0) {
              R[pos[u]].second += v[i];
            } else {
              pos[u] = static_cast<int32_t>(R.size());
              R.emplace_back(u, v[i]);
            }
          });
          for (const Entry& e : R) pos[e.first] = -1;
        }
      }
    }
  }

  // Sorted owned vertices (global numbers) with residual left in some query.
  py::array_t<int64_t> support() const {
    std::vector<char> need(static_cast<size_t>(nl_), 0);
    for (const auto& R : res_)
      for (const Entry& e : R)
        if (e.second != 0.0) need[e.first] = 1;
    std::vector<int64_t> out;
    for (int64_t v = 0; v < nl_; ++v)
      if (need[v]) out.push_back(v + lo_);
    return to_array(out);
  }

  // Each query's owned estimate plus its residual rows times their fingerprints (the first
  // HEAD entries of each row when rel > 0; the rest is left to `tails`): the query's partial
  // vector on this rank, kept for `partial`, `top`/`more`/`values` (the asking rank's exact
  // top K from a few entries, see `ask_begin`). Returns (norm: each query's x + sum r(w)
  // mass(w) over the owned part, missing vertex or -1).
  py::tuple combine(double rel, int64_t topk, int threads) {
    if (!(rel >= 0.0) || rel > 1e300) hpc::fail("ppr combine: rel must be finite, >= 0");
    if (topk < 1) hpc::fail("ppr combine: topk must be >= 1");
    topk_ = topk;
    std::vector<Part>& out = part_;
    out.resize(static_cast<size_t>(nq_));   // each is rewritten; capacity kept between batches
    sent_.assign(static_cast<size_t>(nq_), 0);
    pre_.clear();
    py::array_t<double> norm(nq_);
    double* pn = norm.mutable_data();
    int64_t missing = -1;
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc& a = scratch(thread_id()).a;
        a.id = vertex_.data();
        Stats st;
        int64_t miss = -1;
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < nq_; ++q) {
          double nrm = 0.0;
          for (const Entry& e : xs_[q]) {
            a.add(slot_[e.first + lo_], e.second);
            nrm += e.second;
          }
          auto& T = tails_[q];
          T.clear();
          const auto& R = res_[q];
          for (size_t i = 0; i < R.size(); ++i) {
            const Entry& e = R[i];
            // the index rows live in DRAM: fetch the row pointers of a far row and the head
            // of a nearer one while this one is summed (a head is only HEAD adds long)
            if (i + 2 * AHEAD < R.size()) __builtin_prefetch(&fptr_[row_[R[i + 2 * AHEAD].first]]);
            if (i + AHEAD < R.size()) {
              const int32_t w = row_[R[i + AHEAD].first];
              const int64_t pb = fptr_[w], pe = fptr_[w + 1];
              for (int64_t j = pb; j < pe && j < pb + 32; j += 8) {
                __builtin_prefetch(&fval_[j]);
                __builtin_prefetch(&fidx_[j]);
              }
            }
            const int32_t v = e.first;
            const double rv = e.second;
            if (rv == 0.0) continue;
            if (mass_[v] == 0.0) {
              miss = v + lo_;
              continue;
            }
            ++st.residual_entries;
            st.residual_mass += rv;
            nrm += rv * mass_[v];
            const int64_t b = fptr_[row_[v]], ee = fptr_[row_[v] + 1];
            const int64_t en = rel > 0.0 ? std::min(ee, b + HEAD) : ee;
            for (int64_t j = b; j < en; ++j) a.add(fidx_[j], rv * fval_[j]);
            st.combined_entries += en - b;
            if (en < ee) T.push_back({rv, en, ee});
          }
          pn[q] = nrm;
          // under the rel cut the heads go whole to the asking rank, and tails rebuilds the
          // partial vector: no top K to put first
          if (rel > 0.0)
            take_all(a, out[q]);
          else
            take_top(a, out[q], static_cast<size_t>(topk_));
        }
#pragma omp critical
        {
          st_.residual_entries += st.residual_entries;
          st_.residual_mass += st.residual_mass;
          st_.combined_entries += st.combined_entries;
          if (miss >= 0) missing = miss;
        }
      }
    }
    return py::make_tuple(norm, missing);
  }

  // The rest of the residual rows (rel > 0): contributions r(w) F_w(v) >= eps[q] (rows are
  // sorted by value: each stops at the first one below), added to the partial vectors. With
  // thr (the threshold `more` will be given), each partial vector is split as `more` splits
  // it, its entries >= thr[q] first, so that `more` only packs them; else its top K first.
  void tails(const py::array& eps_, const py::object& thr_, int threads) {
    auto eps = hpc::exact<double>(eps_, "ppr eps");
    const size_t K = static_cast<size_t>(topk_);
    hpc::require_1d(eps, nq_, "ppr eps");
    if (part_.size() != static_cast<size_t>(nq_)) hpc::fail("ppr tails: combine first");
    std::fill(sent_.begin(), sent_.end(), 0);   // the partial vectors are rebuilt
    const double* pe = eps.data();
    const double* pt = nullptr;
    hpc::carray<double> thr;
    pre_.clear();
    if (!thr_.is_none()) {
      thr = hpc::exact<double>(thr_.cast<py::array>(), "ppr thr");
      hpc::require_1d(thr, nq_, "ppr thr");
      pt = thr.data();
      for (int64_t q = 0; q < nq_; ++q)
        if (!(pt[q] >= 0.0) || pt[q] > 1e300) hpc::fail("ppr tails: thr must be finite, >= 0");
      pre_.assign(static_cast<size_t>(nq_), 0);
      pre_thr_.assign(pt, pt + nq_);
      pre_floor_.assign(static_cast<size_t>(nq_), 0.0);
    }
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc& a = scratch(thread_id()).a;
        a.id = vertex_.data();
        int64_t combined = 0;
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < nq_; ++q) {
          const auto& TQ = tails_[q];
          if (TQ.empty()) {
            if (pt) {   // the heads are the partial vector: split it in place
              auto& P = part_[q];
              const double t = pt[q];
              auto mid = std::partition(P.begin(), P.end(), [t](const PEntry& e) { return e.second >= t; });
              double f = 0.0;
              for (auto it = mid; it != P.end(); ++it) f = std::max(f, it->second);
              pre_[q] = mid - P.begin();
              pre_floor_[q] = f;
            } else {
              take_top_of(part_[q], K);
            }
            continue;
          }
          const double cut = pe[q];
          for (const PEntry& e : part_[q]) a.add(e.first, e.second);   // slots already
          for (size_t i = 0; i < TQ.size(); ++i) {
            const Tail& tl = TQ[i];
            if (i + TAIL_AHEAD < TQ.size()) {   // as in combine: fetch a later row early
              const int64_t pb = TQ[i + TAIL_AHEAD].start, pend = TQ[i + TAIL_AHEAD].end;
              for (int64_t j = pb; j < pend && j < pb + 64; j += 8) __builtin_prefetch(&fval_[j]);
              for (int64_t j = pb; j < pend && j < pb + 64; j += 16) __builtin_prefetch(&fidx_[j]);
            }
            const int64_t e = tl.end;
            int64_t j = tl.start;
            for (; j < e; ++j) {
              const double c = tl.r * fval_[j];
              if (c < cut) break;
              a.add(fidx_[j], c);
            }
            combined += j - tl.start;
          }
          if (pt)
            take_split(a, part_[q], pt[q], pre_[q], pre_floor_[q]);
          else
            take_top(a, part_[q], K);
        }
#pragma omp critical
        st_.combined_entries += combined;
      }
    }
  }

  // Every partial vector, for the asking ranks (qoff: query blocks per rank): (counts per
  // rank, keys query << 32 | vertex, values).
  py::tuple partial(const py::array& qoff_) const {
    const std::vector<int64_t> qo = check_qoff(qoff_, "ppr partial");
    if (part_.size() != static_cast<size_t>(nq_)) hpc::fail("ppr partial: combine first");
    auto packed = pack(part_, qo, off_.size() - 1, nullptr, nullptr);
    return py::make_tuple(packed[0], packed[1], packed[2]);
  }

  // The exact top K of the sums over the ranks without sending every partial vector (Cao and
  // Wang's three-phase uniform threshold, TPUT): `top` sends each query's K largest entries;
  // the asking rank's `ask_begin` finds tau1, the K-th largest of those sums (a lower bound of
  // the true K-th score: every entry is > 0); `more` sends the entries >= thr = tau1 / p, and
  // each rank's largest unsent entry (its floor, < thr); `ask_more` bounds every vertex by
  // lower = the sum received, upper = lower + the floors of the ranks that did not send it,
  // tau2 = the K-th largest lower bound; a vertex whose upper bound is below tau2 cannot be in
  // the top K (a vertex no rank sent has upper < p thr <= tau1 <= tau2); it asks the ranks that
  // did not send a candidate for its entry (`values`), and `ask_finish` ranks the exact sums.
  py::tuple top(const py::array& qoff_, int64_t topk, int threads) {
    const std::vector<int64_t> qo = check_qoff(qoff_, "ppr top");
    if (topk < 1) hpc::fail("ppr top: topk must be >= 1");
    if (part_.size() != static_cast<size_t>(nq_)) hpc::fail("ppr top: combine first");
    const int nt = max_threads(threads);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
      for (int64_t q = 0; q < nq_; ++q) {
        auto& P = part_[q];
        const size_t k = std::min(P.size(), static_cast<size_t>(topk));
        if (topk != topk_)   // combine / tails put their top K first
          std::nth_element(P.begin(), P.begin() + static_cast<std::ptrdiff_t>(k), P.end(),
                           [](const PEntry& a, const PEntry& b) { return a.second > b.second; });
        sent_[q] = static_cast<int64_t>(k);
      }
    }
    std::vector<int64_t> from(static_cast<size_t>(nq_), 0);
    auto packed = pack(part_, qo, off_.size() - 1, from.data(), sent_.data());
    return py::make_tuple(packed[0], packed[1], packed[2]);
  }

  // The entries not yet sent that are >= thr[q], each query's followed by its floor (its
  // largest entry left unsent, 0 when none) as the key query << 32 | FLOOR: (counts, keys,
  // values) for one route; the asking rank's `ask_more` takes the floors out.
  py::tuple more(const py::array& qoff_, const py::array& thr_, int threads) {
    const std::vector<int64_t> qo = check_qoff(qoff_, "ppr more");
    auto thr = hpc::exact<double>(thr_, "ppr thr");
    hpc::require_1d(thr, nq_, "ppr thr");
    if (sent_.size() != static_cast<size_t>(nq_)) hpc::fail("ppr more: combine first");
    const double* th = thr.data();
    for (int64_t q = 0; q < nq_; ++q)
      if (!(th[q] >= 0.0) || th[q] > 1e300) hpc::fail("ppr more: thr must be finite, >= 0");
    std::vector<int64_t> from(sent_);
    std::vector<double> fl(static_cast<size_t>(nq_));
    const int nt = max_threads(threads);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
      for (int64_t q = 0; q < nq_; ++q) {
        auto& P = part_[q];
        const double t = th[q];
        if (!pre_.empty() && sent_[q] == 0 && t == pre_thr_[q]) {   // tails split it so
          fl[q] = pre_floor_[q];
          sent_[q] = pre_[q];
          continue;
        }
        auto mid = std::partition(P.begin() + sent_[q], P.end(),
                                  [t](const PEntry& e) { return e.second >= t; });
        double f = 0.0;
        for (auto it = mid; it != P.end(); ++it) f = std::max(f, it->second);
        fl[q] = f;
        sent_[q] = mid - P.begin();
      }
    }
    auto packed = pack(part_, qo, off_.size() - 1, from.data(), sent_.data(), fl.data());
    return py::make_tuple(packed[0], packed[1], packed[2]);
  }

  // This rank's entries of the asked (query << 32 | vertex) keys among those it has not sent,
  // 0 where it has none (the asking rank asks only for entries a rank did not send).
  py::array_t<double> values(const py::array& keys_, int threads) const {
    const Col<int64_t> k = column<int64_t>(keys_, -1, "ppr keys");
    if (part_.size() != static_cast<size_t>(nq_)) hpc::fail("ppr values: combine first");
    const int64_t m = k.n;
    const Groups G = group(k, m, 0, nq_, 0, n_, "ppr values");
    py::array_t<double> out(m);
    double* po = out.mutable_data();
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        // requests are for entries this rank did not send: look in the unsent part only
        std::vector<int32_t>& at = scratch(thread_id()).at;
        std::vector<int64_t> asked;   // query q's requests (entries of the keys)
#pragma omp for schedule(dynamic, 16)
        for (int64_t q = 0; q < nq_; ++q) {
          if (G.empty(q)) continue;
          asked.clear();
          G.each(q, [&](int64_t e) {
            po[e] = 0.0;
            at[slot_[k[e] & 0xFFFFFFFFLL]] = static_cast<int32_t>(asked.size());
            asked.push_back(e);
          });
          const auto& P = part_[q];
          for (size_t j = static_cast<size_t>(sent_[q]); j < P.size(); ++j) {
            const int32_t i = at[P[j].first];
            if (i >= 0) po[asked[static_cast<size_t>(i)]] = P[j].second;
          }
          for (int64_t e : asked) at[slot_[k[e] & 0xFFFFFFFFLL]] = -1;
        }
      }
    }
    return out;
  }

  // At the asking rank, queries [qlo, qhi): the entries of `top` from every rank (src: how
  // many came from each rank, in rank order). Returns tau1 per query (0: fewer than K).
  py::array_t<double> ask_begin(const py::array& keys_, const py::array& vals_,
                                const py::array& src_, int64_t qlo, int64_t qhi, int64_t topk,
                                int threads) {
    if (qlo < 0 || qhi < qlo || qhi > nq_) hpc::fail("ppr ask_begin: query range out of the batch");
    if (topk < 1) hpc::fail("ppr ask_begin: topk must be >= 1");
    if (off_.size() - 1 > 64) hpc::fail("ppr ask_begin: at most 64 ranks");
    qlo_ = qlo;
    ask_.assign(static_cast<size_t>(qhi - qlo), {});
    const Col<int64_t> k = column<int64_t>(keys_, -1, "ppr keys");
    const Col<double> v = column<double>(vals_, k.n, "ppr vals");
    auto src = hpc::exact<int64_t>(src_, "ppr src");
    const size_t p = off_.size() - 1;
    hpc::require_1d(src, static_cast<py::ssize_t>(p), "ppr src");
    return ask_merge(k, v, k.n, src.data(), nullptr, nullptr, topk, threads);
  }

  // The entries of `more` (src: how many came from each rank, in rank order; each rank's
  // floor of every asked query among them) and `lower`, a lower bound of each asked query's
  // K-th score known beforehand (0: none): keeps the candidates and returns the requests for
  // the entries not sent, (counts per rank, keys).
  py::tuple ask_more(const py::array& keys_, const py::array& vals_, const py::array& src_,
                     const py::array& lower_, int64_t topk, int threads) {
    const int64_t nql = static_cast<int64_t>(ask_.size());
    const size_t p = off_.size() - 1;
    const Col<int64_t> k = column<int64_t>(keys_, -1, "ppr keys");
    const Col<double> v = column<double>(vals_, k.n, "ppr vals");
    auto src = hpc::exact<int64_t>(src_, "ppr src");
    auto lower = hpc::exact<double>(lower_, "ppr lower");
    hpc::require_1d(src, static_cast<py::ssize_t>(p), "ppr src");
    hpc::require_1d(lower, nql, "ppr lower");
    for (int64_t i = 0; i < nql; ++i)
      if (!(lower.data()[i] >= 0.0) || lower.data()[i] > 1e300)
        hpc::fail("ppr ask_more: lower must be finite, >= 0");
    // take the floors out: exactly one per (rank, asked query)
    const int64_t m = k.n;
    std::vector<double> floors(p * static_cast<size_t>(nql), -1.0);
    std::vector<int64_t> ek, es(p, 0);
    std::vector<double> ev;
    ek.reserve(static_cast<size_t>(m));
    ev.reserve(static_cast<size_t>(m));
    int64_t at = 0;
    for (size_t r = 0; r < p; ++r) {
      const int64_t c = src.data()[r];
      if (c < 0 || at + c > m) hpc::fail("ppr ask_more: src counts do not split the entries");
      for (int64_t j = at; j < at + c; ++j) {
        if ((k[j] & 0xFFFFFFFFLL) != FLOOR) {
          ek.push_back(k[j]);
          ev.push_back(v[j]);
          ++es[r];
          continue;
        }
        const int64_t i = (k[j] >> 32) - qlo_;
        if (k[j] < 0 || i < 0 || i >= nql) hpc::fail("ppr ask_more: floor of another query");
        double& f = floors[r * static_cast<size_t>(nql) + static_cast<size_t>(i)];
        if (f >= 0.0 || !(v[j] >= 0.0) || v[j] > 1e300)
          hpc::fail("ppr ask_more: floors must be finite, >= 0, one per rank and query");
        f = v[j];
      }
      at += c;
    }
    if (at != m) hpc::fail("ppr ask_more: src counts do not split the entries");
    for (double f : floors)
      if (f < 0.0) hpc::fail("ppr ask_more: a rank sent no floor for a query");
    ask_merge(column(ek), column(ev), static_cast<int64_t>(ek.size()), es.data(), floors.data(),
              lower.data(), topk, threads);
    std::vector<std::vector<int64_t>> req(p);
    req_.assign(p, {});
    for (int64_t i = 0; i < nql; ++i) {
      const double* fl = floors.data() + i;
      const auto& A = ask_[static_cast<size_t>(i)];
      for (size_t j = 0; j < A.size(); ++j)
        for (size_t r = 0; r < p; ++r)
          if (!(A[j].mask >> r & 1ULL) && fl[r * static_cast<size_t>(nql)] > 0.0) {
            req[r].push_back(key_of(i + qlo_, A[j].v));
            req_[r].emplace_back(static_cast<int32_t>(i), static_cast<int32_t>(j));
          }
    }
    py::array_t<int64_t> counts(static_cast<py::ssize_t>(p));
    int64_t total = 0;
    for (size_t r = 0; r < p; ++r) total += counts.mutable_data()[r] = static_cast<int64_t>(req[r].size());
    py::array_t<int64_t> out(total);
    int64_t put = 0;
    for (size_t r = 0; r < p; ++r) {
      std::copy(req[r].begin(), req[r].end(), out.mutable_data() + put);
      put += static_cast<int64_t>(req[r].size());
    }
    return py::make_tuple(counts, out);
  }

  // The answers to `ask_more`'s requests (in its order): the top K of the exact sums scaled
  // by 1 / norm, or with kth_only the unscaled K-th largest sum (0 when fewer than K).
  py::tuple ask_finish(const py::array& vals_, const py::array& norm_, int64_t topk,
                       bool kth_only, int threads) {
    auto vals = hpc::exact<double>(vals_, "ppr vals");
    auto norm = hpc::exact<double>(norm_, "ppr norm");
    const int64_t nq = static_cast<int64_t>(ask_.size());
    hpc::require_1d(norm, nq, "ppr norm");
    int64_t want = 0;
    for (const auto& R : req_) want += static_cast<int64_t>(R.size());
    hpc::require_1d(vals, want, "ppr vals");
    if (topk < 1) hpc::fail("ppr ask_finish: topk must be >= 1");
    const double* v = vals.data();
    int64_t at = 0;
    for (const auto& R : req_)
      for (const auto& ij : R) {
        const double x = v[at++];
        if (!(x >= 0.0) || x > 1e300) hpc::fail("ppr ask_finish: values must be finite, >= 0");
        ask_[static_cast<size_t>(ij.first)][static_cast<size_t>(ij.second)].s += x;
      }
    const double* pn = norm.data();
    const size_t K = static_cast<size_t>(topk);
    py::array_t<int64_t> ids({nq, kth_only ? int64_t(1) : topk});
    py::array_t<double> scores({nq, kth_only ? int64_t(1) : topk});
    int64_t* pid = ids.mutable_data();
    double* psc = scores.mutable_data();
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc& a = scratch(thread_id()).a;
        a.id = nullptr;
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < nq; ++i) {
          for (const Ask& e : ask_[static_cast<size_t>(i)]) a.add(e.v, e.s);
          a.select(K);
          const size_t got = a.cand.size();
          if (kth_only) {
            pid[i] = got == K ? a.cand.back().second : -1;
            psc[i] = got == K ? a.cand.back().first : 0.0;
          } else {
            const double inv = pn[i] > 0.0 ? 1.0 / pn[i] : 0.0;
            for (size_t j = 0; j < K; ++j) {
              pid[i * topk + j] = j < got ? a.cand[j].second : -1;
              psc[i * topk + j] = j < got ? a.cand[j].first * inv : 0.0;
            }
          }
          a.reset();
        }
      }
    }
    return py::make_tuple(ids, scores);
  }

  // At the asking rank: sum the partial vectors of queries [qlo, qhi) (keys query << 32 |
  // vertex, any order) and report, per query, the top K scaled by 1 / norm; with kth_only,
  // the unscaled K-th largest sum (0 when fewer than K), for the rel cut.
  py::tuple answer(const py::array& keys_, const py::array& vals_, const py::array& norm_,
                   int64_t qlo, int64_t qhi, int64_t topk, bool want_full, bool kth_only,
                   int threads) const {
    const Col<int64_t> k = column<int64_t>(keys_, -1, "ppr keys");
    const Col<double> v = column<double>(vals_, k.n, "ppr vals");
    auto norm = hpc::exact<double>(norm_, "ppr norm");
    if (qlo < 0 || qhi < qlo || qhi > nq_) hpc::fail("ppr answer: query range out of the batch");
    if (topk < 1) hpc::fail("ppr answer: topk must be >= 1");
    const int64_t nq = qhi - qlo;
    hpc::require_1d(norm, nq, "ppr norm");
    const double* pn = norm.data();
    const Groups G = group(k, k.n, qlo, qhi, 0, n_, "ppr answer");
    const size_t K = static_cast<size_t>(topk);
    py::array_t<int64_t> ids({nq, kth_only ? int64_t(1) : topk});
    py::array_t<double> scores({nq, kth_only ? int64_t(1) : topk});
    int64_t* pid = ids.mutable_data();
    double* psc = scores.mutable_data();
    std::vector<std::vector<Entry>> full(want_full ? nq : 0);
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc& a = scratch(thread_id()).a;
        a.id = nullptr;
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < nq; ++i) {
          G.each(i, [&](int64_t e) { a.add(static_cast<int32_t>(k[e] & 0xFFFFFFFFLL), v[e]); });
          a.select(K);
          const size_t got = a.cand.size();
          if (kth_only) {
            pid[i] = got == K ? a.cand.back().second : -1;
            psc[i] = got == K ? a.cand.back().first : 0.0;
            a.reset();
            continue;
          }
          const double inv = pn[i] > 0.0 ? 1.0 / pn[i] : 0.0;
          for (size_t j = 0; j < K; ++j) {
            pid[i * topk + j] = j < got ? a.cand[j].second : -1;
            psc[i * topk + j] = j < got ? a.cand[j].first * inv : 0.0;
          }
          if (want_full) {
            full[i].reserve(a.na);
            for (size_t j = 0; j < a.na; ++j) full[i].emplace_back(a.list[j], a.acc[a.list[j]] * inv);
          }
          a.reset();
        }
      }
    }
    if (!want_full) return py::make_tuple(ids, scores);
    py::array_t<int64_t> fptr(nq + 1);
    int64_t* fp = fptr.mutable_data();
    fp[0] = 0;
    for (int64_t i = 0; i < nq; ++i) fp[i + 1] = fp[i] + static_cast<int64_t>(full[i].size());
    py::array_t<int64_t> fids(fp[nq]);
    py::array_t<double> fvals(fp[nq]);
    for (int64_t i = 0; i < nq; ++i)
      for (size_t j = 0; j < full[i].size(); ++j) {
        fids.mutable_data()[fp[i] + static_cast<int64_t>(j)] = full[i][j].first;
        fvals.mutable_data()[fp[i] + static_cast<int64_t>(j)] = full[i][j].second;
      }
    return py::make_tuple(ids, scores, py::make_tuple(fptr, fids, fvals));
  }

  // The batch's totals on this rank so far.
  py::dict stats() const {
    py::dict d;
    d["pushes"] = st_.pushes;
    d["residual_entries"] = st_.residual_entries;
    d["combined_entries"] = st_.combined_entries;
    d["residual_mass"] = st_.residual_mass;
    return d;
  }

 private:
  struct Stats {
    int64_t pushes = 0, residual_entries = 0, combined_entries = 0;
    double residual_mass = 0.0;
  };

  // The first nt threads' work arrays, allocated once (see Scratch); call outside the
  // parallel region.
  void prepare_scratch(int nt) const {
    if (scratch_.size() < static_cast<size_t>(nt)) scratch_.resize(static_cast<size_t>(nt));
    for (int t = 0; t < nt; ++t) {
      Scratch& sc = scratch_[static_cast<size_t>(t)];
      if (sc.a.acc.size() == static_cast<size_t>(n_)) continue;
      sc.a = Acc(n_);
      sc.mask.assign(static_cast<size_t>(n_), 0);
      sc.at.assign(static_cast<size_t>(n_), -1);
      sc.pos.assign(static_cast<size_t>(nl_), -1);
    }
  }
  Scratch& scratch(int t) const { return scratch_[static_cast<size_t>(t)]; }

  size_t owner(int64_t u) const {
    return static_cast<size_t>(std::upper_bound(off_.begin(), off_.end(), u) - off_.begin() - 1);
  }

  // slot_ / vertex_: vertex -> accumulator slot and back, the vertices this rank's index
  // entries name most often first (stable: ties keep vertex order); fidx_ holds slots.
  // The index rows are stored in the same order (row_: owned vertex -> its row): residual
  // rows fall mostly on hubs, which are named most, so the rows a batch reads lie in a
  // compact, cache-friendly prefix instead of all over the index (the replicated engine
  // reorders its rows alike). Nothing else changes: the same additions in the same order.
  void number_by_popularity() {
    hpc::number_by_popularity(n_, fidx_, vertex_, slot_);
    for (int32_t& u : fidx_) u = slot_[u];
    std::vector<int32_t> order(static_cast<size_t>(nl_));
    for (int64_t v = 0; v < nl_; ++v) order[v] = static_cast<int32_t>(v);
    std::sort(order.begin(), order.end(),
              [this](int32_t a, int32_t b) { return slot_[a + lo_] < slot_[b + lo_]; });
    std::vector<int64_t> p(static_cast<size_t>(nl_) + 1, 0);
    std::vector<int32_t> ix(fidx_.size());
    std::vector<double> vl(fval_.size());
    row_.assign(static_cast<size_t>(nl_), 0);
    for (int64_t k = 0; k < nl_; ++k) {
      const int32_t v = order[k];
      row_[v] = static_cast<int32_t>(k);
      const int64_t b = fptr_[v], e = fptr_[v + 1];
      std::copy(fidx_.begin() + b, fidx_.begin() + e, ix.begin() + p[k]);
      std::copy(fval_.begin() + b, fval_.begin() + e, vl.begin() + p[k]);
      p[k + 1] = p[k] + (e - b);
    }
    fptr_.swap(p);
    fidx_.swap(ix);
    fval_.swap(vl);
  }

  void load_csr(const int64_t* ptr, const int64_t* idx, int64_t nnz, std::vector<int64_t>& p,
                std::vector<int32_t>& ix, const char* what) const {
    const std::string w = std::string("ppr PartEngine: ") + what;
    p.assign(ptr, ptr + nl_ + 1);
    if (p[0] != 0 || p[static_cast<size_t>(nl_)] != nnz) hpc::fail(w + " indptr does not span the entries");
    if (!hpc::non_decreasing(p.data(), nl_)) hpc::fail(w + " indptr is not monotone");
    if (!hpc::all_in_range(idx, nnz, n_)) hpc::fail(w + " vertex out of range");
    ix.assign(idx, idx + nnz);
  }

  // Move the accumulator's entries out, its top K first (the first `top` sends them), and
  // reset it. The partial vectors keep accumulator slots (tails adds them back without a
  // lookup); `pack` turns them into vertices as they leave.
  static void take_top(Acc& a, Part& out, size_t K) {
    a.select(K);
    out.clear();
    out.reserve(a.na);
    for (const auto& c : a.cand) {
      out.emplace_back(c.second, c.first);
      a.acc[c.second] = -1.0;   // taken
    }
    for (size_t j = 0; j < a.na; ++j) {
      const int32_t u = a.list[j];
      if (a.acc[u] > 0.0) out.emplace_back(u, a.acc[u]);
    }
    a.reset();
  }

  // Move the accumulator's entries out in any order, and reset it (one pass).
  static void take_all(Acc& a, Part& out) {
    const size_t na = a.na;
    out.resize(na);
    PEntry* o = out.data();
    for (size_t j = 0; j < na; ++j) {
      const int32_t u = a.list[j];
      o[j] = PEntry{u, a.acc[u]};
      a.acc[u] = 0.0;
    }
    a.na = 0;
  }

  // Move the accumulator's entries out, those >= thr first (n of them; floor: the largest of
  // the others, 0 when none), and reset it, in one pass: the others fill from the back.
  static void take_split(Acc& a, Part& out, double thr, int64_t& n, double& floor) {
    const size_t na = a.na;
    out.resize(na);
    PEntry* o = out.data();
    size_t lo = 0, hi = na;
    double f = 0.0;
    for (size_t j = 0; j < na; ++j) {
      const int32_t u = a.list[j];
      const double x = a.acc[u];
      a.acc[u] = 0.0;
      if (x >= thr) {
        o[lo++] = PEntry{u, x};
      } else {
        o[--hi] = PEntry{u, x};
        f = std::max(f, x);
      }
    }
    a.na = 0;
    n = static_cast<int64_t>(lo);
    floor = f;
  }

  // A partial vector's K largest entries first (by value; `top` sends them).
  static void take_top_of(Part& P, size_t K) {
    const size_t k = std::min(P.size(), K);
    std::nth_element(P.begin(), P.begin() + static_cast<std::ptrdiff_t>(k), P.end(),
                     [](const PEntry& a, const PEntry& b) { return a.second > b.second; });
  }

  // Per-query partial vectors, entries [from[q], to[q]) of each (all when from is null), as
  // (counts per asking rank, keys, values); queries are in blocks, so query order is rank order.
  // With floor, each query's entries are followed by one (q, FLOOR) entry of value floor[q].
  std::vector<py::array> pack(const std::vector<Part>& out,
                              const std::vector<int64_t>& qo, size_t p, const int64_t* from,
                              const int64_t* to, const double* floor = nullptr) const {
    auto lo = [&](size_t q) { return from ? from[q] : int64_t(0); };
    auto hi = [&](size_t q) { return to ? to[q] : static_cast<int64_t>(out[q].size()); };
    py::array_t<int64_t> counts(static_cast<py::ssize_t>(p));
    int64_t total = 0;
    for (size_t r = 0; r < p; ++r) {
      int64_t c = 0;
      for (int64_t q = qo[r]; q < qo[r + 1]; ++q) c += hi(q) - lo(q) + (floor ? 1 : 0);
      counts.mutable_data()[r] = c;
      total += c;
    }
    // one (total, 2) buffer of (key, value bits) rows, keys and values its column views:
    // `_route` sends the buffer as it is
    py::array_t<int64_t> buf({total, int64_t(2)});
    int64_t* pb = buf.mutable_data();
    auto put = [&pb](int64_t key, double val) {
      pb[0] = key;
      std::memcpy(pb + 1, &val, sizeof(double));
      pb += 2;
    };
    for (size_t q = 0; q < out.size(); ++q) {
      for (int64_t j = lo(q); j < hi(q); ++j)
        put(key_of(static_cast<int64_t>(q), vertex_[out[q][j].first]), out[q][j].second);
      if (floor) put(key_of(static_cast<int64_t>(q), FLOOR), floor[q]);
    }
    const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(total)}, stride{16};
    py::array keys(py::dtype::of<int64_t>(), shape, stride, buf.data(), buf);
    py::array vals(py::dtype::of<double>(), shape, stride,
                   reinterpret_cast<const double*>(buf.data()) + 1, buf);
    return {counts, keys, vals};
  }

  // qoff (query blocks per asking rank) checked against the batch.
  std::vector<int64_t> check_qoff(const py::array& qoff_, const char* what) const {
    auto qoff = hpc::exact<int64_t>(qoff_, "ppr qoff");
    const size_t p = off_.size() - 1;
    hpc::require_1d(qoff, static_cast<py::ssize_t>(p + 1), "ppr qoff");
    const int64_t* qo = qoff.data();
    if (qo[0] != 0 || qo[p] != nq_ || !hpc::non_decreasing(qo, static_cast<int64_t>(p)))
      hpc::fail(std::string(what) + ": qoff must split the batch's queries");
    return std::vector<int64_t>(qo, qo + p + 1);
  }

  // Merge arrived (query << 32 | vertex, value) entries, src[r] of them from rank r in rank
  // order, into the asked queries' sums and sender masks. Without floors: returns each query's
  // K-th largest sum (tau1). With floors (p x asked queries): keeps only the candidates, the
  // vertices whose upper bound reaches the K-th largest lower bound (returns an empty array).
  py::array_t<double> ask_merge(const Col<int64_t>& k, const Col<double>& v, int64_t m,
                                const int64_t* src, const double* floors, const double* lower,
                                int64_t topk, int threads) {
    const size_t p = off_.size() - 1;
    if (topk < 1) hpc::fail("ppr ask: topk must be >= 1");
    std::vector<uint8_t> from(static_cast<size_t>(m));
    int64_t at = 0;
    for (size_t r = 0; r < p; ++r) {
      const int64_t c = src[r];
      if (c < 0 || at + c > m) hpc::fail("ppr ask: src counts do not split the entries");
      std::fill(from.begin() + at, from.begin() + at + c, static_cast<uint8_t>(r));
      at += c;
    }
    if (at != m) hpc::fail("ppr ask: src counts do not split the entries");
    for (int64_t j = 0; j < m; ++j)
      if (!(v[j] > 0.0) || v[j] > 1e300) hpc::fail("ppr ask: values must be finite, > 0");
    const int64_t nql = static_cast<int64_t>(ask_.size());
    const Groups G = group(k, m, qlo_, qlo_ + nql, 0, n_, "ppr ask");
    py::array_t<double> tau(floors ? 0 : nql);
    double* pt = tau.mutable_data();
    const size_t K = static_cast<size_t>(topk);
    bool broken = false;
    const int nt = max_threads(threads);
    prepare_scratch(nt);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Scratch& sc = scratch(thread_id());
        Acc& a = sc.a;
        a.id = nullptr;
        std::vector<uint64_t>& mask = sc.mask;
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < nql; ++i) {
          auto& A = ask_[static_cast<size_t>(i)];
          for (const Ask& e : A) {
            a.add(e.v, e.s);
            mask[e.v] = e.mask;
          }
          G.each(i, [&](int64_t e) {
            const int32_t u = static_cast<int32_t>(k[e] & 0xFFFFFFFFLL);
            a.add(u, v[e]);
            mask[u] |= 1ULL << from[e];
          });
          a.select(K);
          const double t = a.cand.size() == K ? a.cand.back().first : 0.0;
          A.clear();
          if (!floors) {
            pt[i] = t;
            for (size_t j = 0; j < a.na; ++j) A.push_back({a.list[j], a.acc[a.list[j]], mask[a.list[j]]});
          } else {
            double fl[64], unseen = 0.0;
            for (size_t r = 0; r < p; ++r) unseen += fl[r] = floors[r * static_cast<size_t>(nql) + i];
            // the K-th score is at least the K-th lower bound and the bound known before
            const double tk = std::max(t, lower[i]);
            // a vertex no rank sent is bounded by the sum of the floors: it must be out
            if (unseen > 0.0 && !(unseen < tk)) {
#pragma omp atomic write
              broken = true;
            }
            const double cut = tk * (1.0 - 1e-12);   // rounding of the bounds only adds candidates
            for (size_t j = 0; j < a.na; ++j) {
              const int32_t u = a.list[j];
              double up = a.acc[u];
              for (size_t r = 0; r < p; ++r)
                if (!(mask[u] >> r & 1ULL)) up += fl[r];
              if (up >= cut) A.push_back({u, a.acc[u], mask[u]});
            }
          }
          for (size_t j = 0; j < a.na; ++j) mask[a.list[j]] = 0;
          a.reset();
        }
      }
    }
    if (broken) hpc::fail("ppr ask_more: floors not below the K-th lower bound (thr > tau / p?)");
    return tau;
  }

  int64_t n_ = 0, lo_ = 0, nl_ = 0, nq_ = 0;
  double c_, d_;
  std::vector<int64_t> off_, gptr_, fptr_;
  std::vector<int32_t> gidx_, fidx_;   // fidx_: accumulator slots (number_by_popularity)
  std::vector<double> fval_, mass_;
  std::vector<int32_t> slot_, vertex_, row_;   // row_: owned vertex -> its index row
  std::vector<std::vector<Entry>> res_, xs_;
  std::vector<std::vector<Tail>> tails_;
  Stats st_;
  // the partial vectors of the combination as (slot, value) (entries [0, sent_) already sent
  // by top/more)
  std::vector<Part> part_;
  std::vector<int64_t> sent_;
  // tails' split of the partial vectors at pre_thr_ (empty: none): pre_[q] entries >= it
  // first, the largest of the others pre_floor_[q]
  std::vector<int64_t> pre_;
  std::vector<double> pre_thr_, pre_floor_;
  // the asking rank's queries [qlo_, qlo_ + ask_.size()): sums so far, candidates after
  // ask_more, and its requests per rank as (query, candidate) positions
  struct Ask {
    int32_t v;
    double s;
    uint64_t mask;   // ranks whose entry is in s
  };
  int64_t qlo_ = 0, topk_ = 20;
  std::vector<std::vector<Ask>> ask_;
  std::vector<std::vector<std::pair<int32_t, int32_t>>> req_;
  mutable std::vector<Scratch> scratch_;   // per thread, kept between calls
};
}  // namespace

HPC_SUBMODULE(pagerank_ppr_part) {
  m.doc() = "hpc.pagerank partitioned PowerWalk queries: owned rows of graph and index, "
            "batched push rounds and partial vectors routed between ranks";
  py::class_<PartEngine>(m, "PartEngine", "Validated out-edge rows and fingerprints of one "
                                          "rank's vertex block, and the state of a batch")
      .def(py::init<const py::array&, int64_t, const py::array&, const py::array&, double>(),
           py::arg("offsets"), py::arg("rank"), py::arg("out_indptr"), py::arg("out_indices"),
           py::arg("damping"))
      .def_property_readonly("n", &PartEngine::n)
      .def_property_readonly("lo", &PartEngine::lo)
      .def_property_readonly("nlocal", &PartEngine::nlocal)
      .def("set_index", &PartEngine::set_index, py::arg("fp_indptr"), py::arg("fp_ids"),
           py::arg("fp_vals"), py::arg("fp_mass"),
           "Replace the fingerprints of the owned vertices")
      .def("nbytes", &PartEngine::nbytes, "Bytes held: {'graph': ..., 'index': ...}")
      .def("begin", &PartEngine::begin, py::arg("sources"),
           "Start a batch (sources: every query's global vertex, the same on every rank)")
      .def("push", &PartEngine::push, py::arg("threshold"), py::arg("per_edge") = false,
           py::arg("threads") = 1,
           "One push iteration: (counts per rank, keys, values, pushes)")
      .def("receive", &PartEngine::receive, py::arg("keys"), py::arg("vals"),
           py::arg("threads") = 1, "Add arrived shares to the residuals")
      .def("support", &PartEngine::support,
           "Sorted owned vertices with residual left in some query")
      .def("combine", &PartEngine::combine, py::arg("rel") = 0.0, py::arg("topk") = 20,
           py::arg("threads") = 1,
           "Keep each query's partial vector on this rank, its top K first: (norm, missing)")
      .def("tails", &PartEngine::tails, py::arg("eps"), py::arg("thr") = py::none(),
           py::arg("threads") = 1,
           "Add the residual rows past their head, contributions >= eps, to the partial vectors")
      .def("partial", &PartEngine::partial, py::arg("qoff"),
           "Every partial vector for the asking ranks: (counts, keys, values)")
      .def("top", &PartEngine::top, py::arg("qoff"), py::arg("topk") = 20, py::arg("threads") = 1,
           "Each partial vector's K largest entries: (counts, keys, values)")
      .def("more", &PartEngine::more, py::arg("qoff"), py::arg("thr"), py::arg("threads") = 1,
           "Unsent entries >= thr per query, then its floor: (counts, keys, values)")
      .def("values", &PartEngine::values, py::arg("keys"), py::arg("threads") = 1,
           "This rank's partial-vector entries of the asked keys (0 where none)")
      .def("ask_begin", &PartEngine::ask_begin, py::arg("keys"), py::arg("vals"), py::arg("src"),
           py::arg("qlo"), py::arg("qhi"), py::arg("topk") = 20, py::arg("threads") = 1,
           "At the asking rank: merge the top entries, return tau1 per query")
      .def("ask_more", &PartEngine::ask_more, py::arg("keys"), py::arg("vals"), py::arg("src"),
           py::arg("lower"), py::arg("topk") = 20, py::arg("threads") = 1,
           "Merge the entries >= thr and the floors, keep the candidates: requests (counts, keys)")
      .def("ask_finish", &PartEngine::ask_finish, py::arg("vals"), py::arg("norm"),
           py::arg("topk") = 20, py::arg("kth_only") = false, py::arg("threads") = 1,
           "The requested values in: (ids, scores) of the exact top K")
      .def("answer", &PartEngine::answer, py::arg("keys"), py::arg("vals"), py::arg("norm"),
           py::arg("qlo"), py::arg("qhi"), py::arg("topk") = 20, py::arg("want_full") = false,
           py::arg("kth_only") = false, py::arg("threads") = 1,
           "Sum partial vectors of queries [qlo, qhi): (ids, scores[, (indptr, ids, values)])")
      .def("stats", &PartEngine::stats, "The batch's totals on this rank");
}
