// The partitioned PowerWalk query engine (hpc/pagerank/ppr.py: partitioned_query drives it):
// each rank holds only the out-edges and the fingerprints of its own vertex block, and all the
// queries of a batch advance together. A push step pushes every owned residual entry that meets
// the rule and returns the shares bound for other vertices grouped by owner rank, as keys
// (query << 32 | vertex) and values, for one Alltoallv; `receive` adds what arrives. The
// combination turns each query's owned estimate and residual rows into a partial vector for the
// query's asking rank, which sums the partial vectors of all ranks (`answer`). The arithmetic is
// the replicated engine's (ppr.cpp), only the order of the floating-point sums differs.
#include <algorithm>
#include <cstdint>
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

constexpr int64_t HEAD = 16;   // entries per residual row in the first pass of the rel cut

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

// Dense accumulator over n entries with a touched-list (acc == 0 marks untouched; every
// contribution is > 0), as the replicated engine's Work.
struct Acc {
  explicit Acc(int64_t n) : acc(static_cast<size_t>(n), 0.0), list(static_cast<size_t>(n) + 1, 0) {}
  std::vector<double> acc;
  std::vector<int32_t> list;
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
  // cand = the top K by (score desc, id asc), as the replicated engine's select
  void select(size_t K) {
    auto better = [](const std::pair<double, int32_t>& a, const std::pair<double, int32_t>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
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
  int32_t v;      // local vertex
  double r;       // its residual
  int64_t start;  // first index entry not yet combined
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
  }

  int64_t n() const { return n_; }
  int64_t lo() const { return lo_; }
  int64_t nlocal() const { return nl_; }

  // Bytes of the stored graph rows and index rows (what the replicated engine holds n rows of).
  py::dict nbytes() const {
    return hpc::ppr_engine_bytes(gptr_, gidx_, fptr_, fidx_, fval_, mass_);
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
          tpush[t] += static_cast<int64_t>(pushed.size());
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
    auto keys = hpc::exact<int64_t>(keys_, "ppr keys");
    auto vals = hpc::exact<double>(vals_, "ppr vals");
    hpc::require_1d(keys, -1, "ppr keys");
    hpc::require_1d(vals, keys.shape(0), "ppr vals");
    const int64_t m = keys.shape(0);
    const int64_t* k = keys.data();
    const double* v = vals.data();
    std::vector<int64_t> ptr;
    std::vector<int64_t> order;
    group(k, m, 0, nq_, lo_, nl_, ptr, order, "ppr receive");
    const int nt = max_threads(threads);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        std::vector<int32_t> pos(static_cast<size_t>(nl_), -1);
#pragma omp for schedule(dynamic, 16)
        for (int64_t q = 0; q < nq_; ++q) {
          if (ptr[q] == ptr[q + 1]) continue;
          auto& R = res_[q];
          for (size_t i = 0; i < R.size(); ++i) pos[R[i].first] = static_cast<int32_t>(i);
          for (int64_t j = ptr[q]; j < ptr[q + 1]; ++j) {
            const int64_t i = order[j];
            const int32_t u = static_cast<int32_t>((k[i] & 0xFFFFFFFFLL) - lo_);
            if (pos[u] >= 0) {
              R[pos[u]].second += v[i];
            } else {
              pos[u] = static_cast<int32_t>(R.size());
              R.emplace_back(u, v[i]);
            }
          }
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
  // HEAD entries of each row when rel > 0; the rest is left to `tails`), as partial vectors
  // for the asking rank of the query (qoff: query blocks per rank). Returns (counts, keys,
  // values, norm: each query's x + sum r(w) mass(w) over the owned part, missing vertex or -1).
  py::tuple combine(const py::array& qoff_, double rel, int threads) {
    auto qoff = hpc::exact<int64_t>(qoff_, "ppr qoff");
    const size_t p = off_.size() - 1;
    hpc::require_1d(qoff, static_cast<py::ssize_t>(p + 1), "ppr qoff");
    const int64_t* qo = qoff.data();
    if (qo[0] != 0 || qo[p] != nq_ || !hpc::non_decreasing(qo, static_cast<int64_t>(p)))
      hpc::fail("ppr combine: qoff must split the batch's queries");
    if (!(rel >= 0.0) || rel > 1e300) hpc::fail("ppr combine: rel must be finite, >= 0");
    std::vector<std::vector<Entry>> out(static_cast<size_t>(nq_));
    py::array_t<double> norm(nq_);
    double* pn = norm.mutable_data();
    int64_t missing = -1;
    const int nt = max_threads(threads);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc a(n_);
        Stats st;
        int64_t miss = -1;
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < nq_; ++q) {
          double nrm = 0.0;
          for (const Entry& e : xs_[q]) {
            a.add(static_cast<int32_t>(e.first + lo_), e.second);
            nrm += e.second;
          }
          auto& T = tails_[q];
          T.clear();
          const auto& R = res_[q];
          for (size_t i = 0; i < R.size(); ++i) {
            const Entry& e = R[i];
            if (i + 2 < R.size()) {
              // the index rows live in DRAM: start fetching a later row while this one is summed
              const int64_t pb = fptr_[R[i + 2].first], pe = fptr_[R[i + 2].first + 1];
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
            const int64_t b = fptr_[v], en = rel > 0.0 ? std::min(fptr_[v + 1], b + HEAD) : fptr_[v + 1];
            for (int64_t j = b; j < en; ++j) a.add(fidx_[j], rv * fval_[j]);
            st.combined_entries += en - b;
            if (en < fptr_[v + 1]) T.push_back({v, rv, en});
          }
          pn[q] = nrm;
          take(a, out[q]);
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
    auto packed = pack(out, qo, p);
    return py::make_tuple(packed[0], packed[1], packed[2], norm, missing);
  }

  // The rest of the residual rows (rel > 0): contributions r(w) F_w(v) >= eps[q] (rows are
  // sorted by value: each stops at the first one below). Returns (counts, keys, values).
  py::tuple tails(const py::array& qoff_, const py::array& eps_, int threads) {
    auto qoff = hpc::exact<int64_t>(qoff_, "ppr qoff");
    auto eps = hpc::exact<double>(eps_, "ppr eps");
    const size_t p = off_.size() - 1;
    hpc::require_1d(qoff, static_cast<py::ssize_t>(p + 1), "ppr qoff");
    hpc::require_1d(eps, nq_, "ppr eps");
    const int64_t* qo = qoff.data();
    if (qo[0] != 0 || qo[p] != nq_ || !hpc::non_decreasing(qo, static_cast<int64_t>(p)))
      hpc::fail("ppr tails: qoff must split the batch's queries");
    const double* pe = eps.data();
    std::vector<std::vector<Entry>> out(static_cast<size_t>(nq_));
    const int nt = max_threads(threads);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc a(n_);
        int64_t combined = 0;
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < nq_; ++q) {
          const auto& TQ = tails_[q];
          for (size_t i = 0; i < TQ.size(); ++i) {
            const Tail& tl = TQ[i];
            if (i + 2 < TQ.size()) {   // as in combine: fetch a later row early
              const int64_t pb = TQ[i + 2].start, pend = fptr_[TQ[i + 2].v + 1];
              for (int64_t j = pb; j < pend && j < pb + 32; j += 8) {
                __builtin_prefetch(&fval_[j]);
                __builtin_prefetch(&fidx_[j]);
              }
            }
            const int64_t e = fptr_[tl.v + 1];
            int64_t j = tl.start;
            for (; j < e; ++j) {
              const double c = tl.r * fval_[j];
              if (c < pe[q]) break;
              a.add(fidx_[j], c);
            }
            combined += j - tl.start;
          }
          take(a, out[q]);
        }
#pragma omp critical
        st_.combined_entries += combined;
      }
    }
    auto packed = pack(out, qo, p);
    return py::make_tuple(packed[0], packed[1], packed[2]);
  }

  // At the asking rank: sum the partial vectors of queries [qlo, qhi) (keys query << 32 |
  // vertex, any order) and report, per query, the top K scaled by 1 / norm; with kth_only,
  // the unscaled K-th largest sum (0 when fewer than K), for the rel cut.
  py::tuple answer(const py::array& keys_, const py::array& vals_, const py::array& norm_,
                   int64_t qlo, int64_t qhi, int64_t topk, bool want_full, bool kth_only,
                   int threads) const {
    auto keys = hpc::exact<int64_t>(keys_, "ppr keys");
    auto vals = hpc::exact<double>(vals_, "ppr vals");
    auto norm = hpc::exact<double>(norm_, "ppr norm");
    if (qlo < 0 || qhi < qlo || qhi > nq_) hpc::fail("ppr answer: query range out of the batch");
    if (topk < 1) hpc::fail("ppr answer: topk must be >= 1");
    const int64_t nq = qhi - qlo;
    hpc::require_1d(keys, -1, "ppr keys");
    hpc::require_1d(vals, keys.shape(0), "ppr vals");
    hpc::require_1d(norm, nq, "ppr norm");
    const int64_t* k = keys.data();
    const double* v = vals.data();
    const double* pn = norm.data();
    std::vector<int64_t> ptr, order;
    group(k, keys.shape(0), qlo, qhi, 0, n_, ptr, order, "ppr answer");
    const size_t K = static_cast<size_t>(topk);
    py::array_t<int64_t> ids({nq, kth_only ? int64_t(1) : topk});
    py::array_t<double> scores({nq, kth_only ? int64_t(1) : topk});
    int64_t* pid = ids.mutable_data();
    double* psc = scores.mutable_data();
    std::vector<std::vector<Entry>> full(want_full ? nq : 0);
    const int nt = max_threads(threads);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(nt)
      {
        Acc a(n_);
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < nq; ++i) {
          for (int64_t j = ptr[i]; j < ptr[i + 1]; ++j) {
            const int64_t e = order[j];
            a.add(static_cast<int32_t>(k[e] & 0xFFFFFFFFLL), v[e]);
          }
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

  size_t owner(int64_t u) const {
    return static_cast<size_t>(std::upper_bound(off_.begin(), off_.end(), u) - off_.begin() - 1);
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

  // Counting sort of keys by query (stable: the order of arrival within a query); checks
  // every query in [qlo, qhi) and every vertex in [vlo, vlo + nv).
  static void group(const int64_t* k, int64_t m, int64_t qlo, int64_t qhi, int64_t vlo,
                    int64_t nv, std::vector<int64_t>& ptr, std::vector<int64_t>& order,
                    const char* what) {
    const int64_t nq = qhi - qlo;
    ptr.assign(static_cast<size_t>(nq) + 1, 0);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t q = (k[i] >> 32) - qlo, u = (k[i] & 0xFFFFFFFFLL) - vlo;
      if (k[i] < 0 || q < 0 || q >= nq || u < 0 || u >= nv)
        hpc::fail(std::string(what) + ": key of another query or vertex");
      ++ptr[q + 1];
    }
    for (int64_t q = 0; q < nq; ++q) ptr[q + 1] += ptr[q];
    order.resize(static_cast<size_t>(m));
    std::vector<int64_t> at(ptr.begin(), ptr.end() - 1);
    for (int64_t i = 0; i < m; ++i) order[at[(k[i] >> 32) - qlo]++] = i;
  }

  // Move the accumulator's entries out (touched order) and reset it.
  static void take(Acc& a, std::vector<Entry>& out) {
    out.resize(a.na);
    for (size_t j = 0; j < a.na; ++j) out[j] = Entry(a.list[j], a.acc[a.list[j]]);
    a.reset();
  }

  // Per-query partial vectors as (counts per asking rank, keys, values); queries are in
  // blocks, so query order is rank order.
  static std::vector<py::array> pack(const std::vector<std::vector<Entry>>& out, const int64_t* qo,
                                     size_t p) {
    py::array_t<int64_t> counts(static_cast<py::ssize_t>(p));
    int64_t total = 0;
    for (size_t r = 0; r < p; ++r) {
      int64_t c = 0;
      for (int64_t q = qo[r]; q < qo[r + 1]; ++q) c += static_cast<int64_t>(out[q].size());
      counts.mutable_data()[r] = c;
      total += c;
    }
    py::array_t<int64_t> keys(total);
    py::array_t<double> vals(total);
    int64_t* pk = keys.mutable_data();
    double* pv = vals.mutable_data();
    int64_t at = 0;
    for (size_t q = 0; q < out.size(); ++q)
      for (const Entry& e : out[q]) {
        pk[at] = key_of(static_cast<int64_t>(q), e.first);
        pv[at++] = e.second;
      }
    return {counts, keys, vals};
  }

  int64_t n_ = 0, lo_ = 0, nl_ = 0, nq_ = 0;
  double c_, d_;
  std::vector<int64_t> off_, gptr_, fptr_;
  std::vector<int32_t> gidx_, fidx_;
  std::vector<double> fval_, mass_;
  std::vector<std::vector<Entry>> res_, xs_;
  std::vector<std::vector<Tail>> tails_;
  Stats st_;
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
      .def("combine", &PartEngine::combine, py::arg("qoff"), py::arg("rel") = 0.0,
           py::arg("threads") = 1,
           "Partial vectors for the asking ranks: (counts, keys, values, norm, missing)")
      .def("tails", &PartEngine::tails, py::arg("qoff"), py::arg("eps"), py::arg("threads") = 1,
           "Residual rows past their head, contributions >= eps: (counts, keys, values)")
      .def("answer", &PartEngine::answer, py::arg("keys"), py::arg("vals"), py::arg("norm"),
           py::arg("qlo"), py::arg("qhi"), py::arg("topk") = 20, py::arg("want_full") = false,
           py::arg("kth_only") = false, py::arg("threads") = 1,
           "Sum partial vectors of queries [qlo, qhi): (ids, scores[, (indptr, ids, values)])")
      .def("stats", &PartEngine::stats, "The batch's totals on this rank");
}
