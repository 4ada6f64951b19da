// PowerWalk's online query (hpc/pagerank/ppr.py documents the method): for every query of a
// batch, push the residual T times (entries >= threshold, or >= threshold x outdeg with the
// per-edge rule), keep what stays below the threshold, combine it with the stored
// fingerprints, normalise by the absorbing walk's total mass and report the top K.
// Same arithmetic as the SciPy path (ppr.decompose + ppr.combine), one query per OpenMP task:
// each thread owns dense accumulators of n entries, touched-lists reset them between queries.
// The graph (out-edge CSR) and the fingerprint index are copied and validated once (Engine).
// Inside, vertices are numbered by popularity (how many index entries name them, most first;
// the rows of graph and index follow): a query's fingerprint entries fall mostly on a few
// hubs, so the hot part of the accumulator is a small prefix (on kron:18 the 16,384 most
// named vertices take 91% of the index entries: 128 KB of accumulator, L2-resident, instead
// of scattered over n), and the hubs' rows sit together. Sources come in and ids go out in
// the caller's numbering; the same additions happen in the same order (rows keep their
// entry order), only where they are stored changes.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>
#include "hpc/checks.hpp"
#include "hpc/ppr_bytes.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int32_t;
using std::int64_t;

struct Stats {
  int64_t pushes = 0, residual_entries = 0, combined_entries = 0, iterations = 0;
  double residual_mass = 0.0;
};

class Engine {
 public:
  Engine(const py::array& out_indptr, const py::array& out_indices, const py::array& fp_indptr,
         const py::array& fp_ids, const py::array& fp_vals, const py::array& fp_mass,
         double damping)
      : c_(1.0 - damping), d_(damping) {
    if (!(damping > 0.0 && damping < 1.0)) hpc::fail("ppr Engine: damping must lie in (0, 1)");
    auto gp = hpc::exact<int64_t>(out_indptr, "ppr out_indptr");
    auto gi = hpc::exact<int64_t>(out_indices, "ppr out_indices");
    auto fp = hpc::exact<int64_t>(fp_indptr, "ppr fp_indptr");
    auto fi = hpc::exact<int64_t>(fp_ids, "ppr fp_ids");
    auto fv = hpc::exact<double>(fp_vals, "ppr fp_vals");
    auto fm = hpc::exact<double>(fp_mass, "ppr fp_mass");
    if (gp.ndim() != 1 || gp.shape(0) < 1) hpc::fail("ppr Engine: out_indptr must be 1-D, n + 1");
    n_ = gp.shape(0) - 1;
    if (n_ > std::numeric_limits<int32_t>::max()) hpc::fail("ppr Engine: more than 2^31 vertices");
    hpc::require_1d(gi, -1, "ppr out_indices");
    hpc::require_1d(fp, n_ + 1, "ppr fp_indptr");
    hpc::require_1d(fi, -1, "ppr fp_ids");
    hpc::require_1d(fv, fi.shape(0), "ppr fp_vals");
    hpc::require_1d(fm, n_, "ppr fp_mass");
    load_csr(gp.data(), gi.data(), gi.shape(0), gptr_, gidx_, "graph");
    load_csr(fp.data(), fi.data(), fi.shape(0), fptr_, fidx_, "fingerprint");
    fval_.assign(fv.data(), fv.data() + fv.shape(0));
    for (double v : fval_)
      if (!(v >= 0.0) || v > 1e300) hpc::fail("ppr Engine: fingerprint values must be finite, >= 0");
    mass_.assign(fm.data(), fm.data() + n_);
    for (double m : mass_)
      if (!(m >= 0.0) || m > 1e300) hpc::fail("ppr Engine: fingerprint masses must be finite, >= 0");
    number_by_popularity();
  }

  int64_t n() const { return n_; }

  // Bytes of the stored graph and index (the partitioned engine holds a block of their rows).
  py::dict nbytes() const {
    py::dict d = hpc::ppr_engine_bytes(gptr_, gidx_, fptr_, fidx_, fval_, mass_);
    d["numbering"] = hpc::vector_bytes(slot_) + hpc::vector_bytes(vertex_);
    return d;
  }

  // Answer every query; returns (topk_ids q x K, topk_scores q x K, stats dict[, full CSR]).
  py::tuple query(const py::array& sources_, int64_t iterations, double threshold,
                  bool per_edge, int64_t topk, bool want_full, int threads,
                  double rel) const {
    auto src = hpc::exact<int64_t>(sources_, "ppr sources");
    hpc::require_1d(src, -1, "ppr sources");
    if (iterations < 0) hpc::fail("ppr query: iterations must be >= 0");
    if (!(threshold > 0.0)) hpc::fail("ppr query: threshold must be > 0");
    if (topk < 1) hpc::fail("ppr query: topk must be >= 1");
    if (!(rel >= 0.0) || rel > 1e300) hpc::fail("ppr query: rel must be finite, >= 0");
    const int64_t q = src.shape(0);
    const int64_t* s = src.data();
    if (!hpc::all_in_range(s, q, n_)) hpc::fail("ppr query: source out of range");
    py::array_t<int64_t> ids({q, topk});
    py::array_t<double> scores({q, topk});
    int64_t* pid = ids.mutable_data();
    double* psc = scores.mutable_data();
    std::vector<std::vector<std::pair<int32_t, double>>> full(want_full ? q : 0);
    Stats tot;
    std::atomic<int64_t> missing{-1};
    {
      py::gil_scoped_release nogil;
      if (threads < 1) threads = 1;
#pragma omp parallel num_threads(threads)
      {
        Work w(n_);
        Stats st;
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < q; ++i) {
          const int64_t miss = one(w, slot_[s[i]], iterations, threshold, per_edge, topk, rel,
                                   pid + i * topk, psc + i * topk,
                                   want_full ? &full[i] : nullptr, st);
          if (miss >= 0) missing.store(vertex_[miss]);
        }
#pragma omp critical
        {
          tot.pushes += st.pushes;
          tot.residual_entries += st.residual_entries;
          tot.combined_entries += st.combined_entries;
          tot.iterations = std::max(tot.iterations, st.iterations);
          tot.residual_mass += st.residual_mass;
        }
      }
    }
    if (missing.load() >= 0)
      throw std::runtime_error("ppr query: no fingerprint for residual vertex " +
                               std::to_string(missing.load()));
    py::dict stats;
    stats["pushes"] = tot.pushes;
    stats["residual_entries"] = tot.residual_entries;
    stats["combined_entries"] = tot.combined_entries;
    stats["iterations"] = tot.iterations;
    stats["residual_mass"] = tot.residual_mass;
    if (!want_full) return py::make_tuple(ids, scores, stats);
    py::array_t<int64_t> fptr(q + 1);
    int64_t* fp = fptr.mutable_data();
    fp[0] = 0;
    for (int64_t i = 0; i < q; ++i) fp[i + 1] = fp[i] + static_cast<int64_t>(full[i].size());
    py::array_t<int64_t> fids(fp[q]);
    py::array_t<double> fvals(fp[q]);
    int64_t* a = fids.mutable_data();
    double* b = fvals.mutable_data();
    for (int64_t i = 0; i < q; ++i)
      for (size_t j = 0; j < full[i].size(); ++j) {
        a[fp[i] + static_cast<int64_t>(j)] = full[i][j].first;
        b[fp[i] + static_cast<int64_t>(j)] = full[i][j].second;
      }
    return py::make_tuple(ids, scores, stats, py::make_tuple(fptr, fids, fvals));
  }

  // The vertices whose fingerprints a batch needs (residual support after the pushes), sorted.
  py::array_t<int64_t> residual_support(const py::array& sources_, int64_t iterations,
                                        double threshold, bool per_edge) const {
    auto src = hpc::exact<int64_t>(sources_, "ppr sources");
    hpc::require_1d(src, -1, "ppr sources");
    if (!(threshold > 0.0)) hpc::fail("ppr residual_support: threshold must be > 0");
    const int64_t q = src.shape(0);
    const int64_t* s = src.data();
    for (int64_t i = 0; i < q; ++i)
      if (s[i] < 0 || s[i] >= n_) hpc::fail("ppr residual_support: source out of range");
    std::vector<char> need(static_cast<size_t>(n_), 0);
    {
      py::gil_scoped_release nogil;
      Work w(n_);
      Stats st;
      for (int64_t i = 0; i < q; ++i) {
        push(w, slot_[s[i]], iterations, threshold, per_edge, st);
        for (int32_t v : w.rlist)
          if (w.r[v] != 0.0) need[vertex_[v]] = 1;
        reset(w);
      }
    }
    std::vector<int64_t> out;
    for (int64_t v = 0; v < n_; ++v)
      if (need[v]) out.push_back(v);
    py::array_t<int64_t> a(static_cast<py::ssize_t>(out.size()));
    std::copy(out.begin(), out.end(), a.mutable_data());
    return a;
  }

 private:
  struct Work {
    explicit Work(int64_t n)
        : r(static_cast<size_t>(n), 0.0), acc(static_cast<size_t>(n), 0.0),
          inr(static_cast<size_t>(n), 0), alist(static_cast<size_t>(n) + 1, 0) {}
    std::vector<double> r, acc;
    std::vector<char> inr;
    std::vector<int32_t> rlist;
    std::vector<int32_t> alist;   // n slots, na used: appended without a branch
    size_t na = 0;
    std::vector<std::pair<int32_t, double>> pushed;
    std::vector<std::pair<double, int32_t>> cand;
    std::vector<std::pair<int32_t, int64_t>> rows;   // residual rows left after the head
    double xmass = 0.0;
  };

  // Copy a CSR with n_ rows, checking that it spans its entries and that ids lie in [0, n).
  void load_csr(const int64_t* ptr, const int64_t* idx, int64_t nnz, std::vector<int64_t>& p,
                std::vector<int32_t>& ix, const char* what) const {
    const std::string w = std::string("ppr Engine: ") + what;
    p.assign(ptr, ptr + n_ + 1);
    if (p[0] != 0 || p[static_cast<size_t>(n_)] != nnz) hpc::fail(w + " indptr does not span the entries");
    for (int64_t r = 0; r < n_; ++r)
      if (p[r + 1] < p[r]) hpc::fail(w + " indptr is not monotone");
    ix.resize(static_cast<size_t>(nnz));
    for (int64_t j = 0; j < nnz; ++j) {
      if (idx[j] < 0 || idx[j] >= n_) hpc::fail(w + " vertex out of range");
      ix[j] = static_cast<int32_t>(idx[j]);
    }
  }

  // slot_ / vertex_: caller's vertex -> internal number and back, most named vertices first
  // (stable: ties keep vertex order); graph and index rows renumbered and reordered to match.
  void number_by_popularity() {
    hpc::number_by_popularity(n_, fidx_, vertex_, slot_);
    reorder(gptr_, gidx_, nullptr);
    reorder(fptr_, fidx_, &fval_);
    std::vector<double> m(static_cast<size_t>(n_));
    for (int64_t k = 0; k < n_; ++k) m[k] = mass_[vertex_[k]];
    mass_.swap(m);
  }

  // Row k of the result is row vertex_[k] of (ptr, idx[, val]), its entries renumbered.
  void reorder(std::vector<int64_t>& ptr, std::vector<int32_t>& idx,
               std::vector<double>* val) const {
    std::vector<int64_t> p(static_cast<size_t>(n_) + 1, 0);
    std::vector<int32_t> ix(idx.size());
    std::vector<double> vl(val ? val->size() : 0);
    for (int64_t k = 0; k < n_; ++k) {
      const int64_t b = ptr[vertex_[k]], e = ptr[vertex_[k] + 1];
      int64_t o = p[k];
      for (int64_t j = b; j < e; ++j, ++o) {
        ix[o] = slot_[idx[j]];
        if (val) vl[o] = (*val)[j];
      }
      p[k + 1] = o;
    }
    ptr.swap(p);
    idx.swap(ix);
    if (val) val->swap(vl);
  }

  // acc[u] == 0 marks an untouched entry: every contribution is > 0 (zero ones are skipped,
  // they would not change the sum), so one array serves as value and flag.
  static inline void add(Work& w, int32_t u, double v) {
    if (!(v > 0.0)) return;
    double& a = w.acc[u];
    w.alist[w.na] = u;              // kept only when u was untouched: each u at most once
    w.na += (a == 0.0);
    a += v;
  }

  // T synchronous push iterations (every entry meeting the rule at the start of an iteration
  // is pushed, as the batched SciPy path does); the estimate goes straight into acc.
  void push(Work& w, int64_t s, int64_t iterations, double threshold, bool per_edge,
            Stats& st) const {
    w.r[s] = 1.0;
    w.inr[s] = 1;
    w.rlist.push_back(static_cast<int32_t>(s));
    w.xmass = 0.0;
    for (int64_t t = 0; t < iterations; ++t) {
      w.pushed.clear();
      for (int32_t v : w.rlist) {
        const double rv = w.r[v];
        if (rv == 0.0) continue;
        const double bar = per_edge ? threshold * static_cast<double>(
                                          std::max<int64_t>(gptr_[v + 1] - gptr_[v], 1))
                                    : threshold;
        if (rv >= bar) {
          w.pushed.emplace_back(v, rv);
          w.r[v] = 0.0;
        }
      }
      if (w.pushed.empty()) break;
      st.iterations = std::max(st.iterations, t + 1);
      st.pushes += static_cast<int64_t>(w.pushed.size());
      for (const auto& pr : w.pushed) {
        const int32_t v = pr.first;
        const double rv = pr.second;
        add(w, v, c_ * rv);
        w.xmass += c_ * rv;
        const int64_t b = gptr_[v], e = gptr_[v + 1];
        if (e == b) continue;                      // dangling: the absorbing walk loses d*r
        const double share = d_ * rv / static_cast<double>(e - b);
        for (int64_t j = b; j < e; ++j) {
          const int32_t u = gidx_[j];
          if (!w.inr[u]) {
            w.inr[u] = 1;
            w.rlist.push_back(u);
          }
          w.r[u] += share;
        }
      }
    }
  }

  void reset(Work& w) const {
    for (int32_t v : w.rlist) {
      w.r[v] = 0.0;
      w.inr[v] = 0;
    }
    for (size_t j = 0; j < w.na; ++j) w.acc[w.alist[j]] = 0.0;
    w.rlist.clear();
    w.na = 0;
  }

  // w.cand = the top K of acc by (score desc, id asc), as the SciPy path's lexsort: a bounded
  // heap whose front is the worst kept entry, so most candidates cost one comparison.
  void select(Work& w, size_t K) const {
    auto better = [](const std::pair<double, int32_t>& a, const std::pair<double, int32_t>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    w.cand.clear();
    for (size_t j = 0; j < w.na; ++j) {
      const int32_t u = w.alist[j];
      const std::pair<double, int32_t> e(w.acc[u], vertex_[u]);
      if (w.cand.size() < K) {
        w.cand.push_back(e);
        std::push_heap(w.cand.begin(), w.cand.end(), better);
      } else if (better(e, w.cand.front())) {
        std::pop_heap(w.cand.begin(), w.cand.end(), better);
        w.cand.back() = e;
        std::push_heap(w.cand.begin(), w.cand.end(), better);
      }
    }
    std::sort(w.cand.begin(), w.cand.end(), better);
  }

  // One query; returns -1, or a residual vertex that has no fingerprint.
  // rel > 0: the combination drops contributions r(w) F_w(v) below rel x the K-th score of a
  // first pass over the head (largest HEAD entries) of every residual row; rel = 0 uses
  // every stored entry.
  int64_t one(Work& w, int64_t s, int64_t iterations, double threshold, bool per_edge,
              int64_t topk, double rel, int64_t* out_ids, double* out_sc,
              std::vector<std::pair<int32_t, double>>* full, Stats& st) const {
    constexpr int64_t HEAD = 16;
    push(w, s, iterations, threshold, per_edge, st);
    double norm = w.xmass;
    int64_t missing = -1;
    const size_t nr = w.rlist.size();
    const size_t K = static_cast<size_t>(topk);
    w.rows.clear();
    for (size_t i = 0; i < nr; ++i) {
      const int32_t v = w.rlist[i];
      if (i + 2 < nr) {
        // the index rows live in DRAM: start fetching a later row while this one is summed
        const int64_t pb = fptr_[w.rlist[i + 2]], pe = fptr_[w.rlist[i + 2] + 1];
        for (int64_t j = pb; j < pe && j < pb + 32; j += 8) {
          __builtin_prefetch(&fval_[j]);
          __builtin_prefetch(&fidx_[j]);
        }
      }
      const double rv = w.r[v];
      if (rv == 0.0) continue;
      if (mass_[v] == 0.0) {
        missing = v;
        continue;
      }
      ++st.residual_entries;
      st.residual_mass += rv;
      norm += rv * mass_[v];
      const int64_t b = fptr_[v], e = rel > 0.0 ? std::min(fptr_[v + 1], b + HEAD) : fptr_[v + 1];
      for (int64_t j = b; j < e; ++j) add(w, fidx_[j], rv * fval_[j]);
      st.combined_entries += e - b;
      if (e < fptr_[v + 1]) w.rows.emplace_back(v, e);
    }
    if (!w.rows.empty()) {
      select(w, K);
      const double eps = rel * (w.cand.size() == K ? w.cand.back().first : 0.0);
      for (const auto& rc : w.rows) {
        const double rv = w.r[rc.first];
        const int64_t b = rc.second, e = fptr_[rc.first + 1];
        int64_t j = b;          // rows are sorted by value: stop at the first one below eps
        for (; j < e; ++j) {
          const double a = rv * fval_[j];
          if (a < eps) break;
          add(w, fidx_[j], a);
        }
        st.combined_entries += j - b;
      }
    }
    const double inv = norm > 0.0 ? 1.0 / norm : 0.0;
    select(w, K);
    const size_t k = w.cand.size();
    for (size_t j = 0; j < K; ++j) {
      out_ids[j] = j < k ? w.cand[j].second : -1;
      out_sc[j] = j < k ? w.cand[j].first * inv : 0.0;
    }
    if (full) {
      full->reserve(w.na);
      for (size_t j = 0; j < w.na; ++j)
        full->emplace_back(vertex_[w.alist[j]], w.acc[w.alist[j]] * inv);
    }
    reset(w);
    return missing;
  }

  int64_t n_ = 0;
  double c_, d_;
  std::vector<int64_t> gptr_, fptr_;
  std::vector<int32_t> gidx_, fidx_;
  std::vector<double> fval_, mass_;
  std::vector<int32_t> slot_, vertex_;   // vertex -> accumulator slot, slot -> vertex
};
}  // namespace

HPC_SUBMODULE(pagerank_ppr) {
  m.doc() = "hpc.pagerank PowerWalk queries: push, fingerprint combination and top-K per query";
  py::class_<Engine>(m, "Engine", "Validated copy of a graph's out-edge CSR and its fingerprint "
                                  "index (CSR by vertex, with each fingerprint's full mass)")
      .def(py::init<const py::array&, const py::array&, const py::array&, const py::array&,
                    const py::array&, const py::array&, double>(),
           py::arg("out_indptr"), py::arg("out_indices"), py::arg("fp_indptr"), py::arg("fp_ids"),
           py::arg("fp_vals"), py::arg("fp_mass"), py::arg("damping"))
      .def_property_readonly("n", &Engine::n)
      .def("nbytes", &Engine::nbytes, "Bytes held: {'graph': ..., 'index': ...}")
      .def("query", &Engine::query, py::arg("sources"), py::arg("iterations"),
           py::arg("threshold"), py::arg("per_edge") = false, py::arg("topk") = 20,
           py::arg("want_full") = false, py::arg("threads") = 1, py::arg("rel") = 0.0,
           "Answer a batch: (topk_ids, topk_scores, stats[, (indptr, ids, values)])")
      .def("residual_support", &Engine::residual_support, py::arg("sources"),
           py::arg("iterations"), py::arg("threshold"), py::arg("per_edge") = false,
           "Sorted vertices whose fingerprints the batch's residual needs");
}
