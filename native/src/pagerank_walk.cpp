// One superstep of hpc.pagerank's random walks, bit-identical to the NumPy reference
// (hpc/pagerank/ppr.py: uniform, build_fingerprints): the same counter-based splitmix64
// stream per (seed, walker, step), so the fingerprints do not depend on the back end.
// The out-edge structure is copied and validated once (class Walker).
#include <cstdint>
#include <vector>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;
using std::uint64_t;

inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline double uniform(uint64_t key, int64_t walker, int64_t step) {
  const uint64_t z = static_cast<uint64_t>(walker) * 0x9E3779B97F4A7C15ULL ^ key ^
                     (static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ULL);
  return static_cast<double>(mix(mix(z)) >> 11) * (1.0 / 9007199254740992.0);
}

class Walker {
 public:
  Walker(const py::array& indptr, const py::array& indices, int64_t lo, int64_t n) : lo_(lo) {
    auto ip = hpc::exact<int64_t>(indptr, "pagerank_walk indptr");
    auto ix = hpc::exact<int64_t>(indices, "pagerank_walk indices");
    if (ip.ndim() != 1 || ix.ndim() != 1 || ip.shape(0) < 1)
      hpc::fail("pagerank_walk: CSR arrays must be 1-D");
    rows_ = ip.shape(0) - 1;
    ptr_.assign(ip.data(), ip.data() + rows_ + 1);
    idx_.assign(ix.data(), ix.data() + ix.shape(0));
    if (ptr_[0] != 0 || ptr_[rows_] != static_cast<int64_t>(idx_.size()))
      hpc::fail("pagerank_walk: indptr does not span the entries");
    if (!hpc::non_decreasing(ptr_.data(), rows_)) hpc::fail("pagerank_walk: indptr is not monotone");
    if (!hpc::all_in_range(idx_.data(), int64_t(idx_.size()), n))
      hpc::fail("pagerank_walk: vertex out of range");
  }

  // Advance every walker (at owned vertex cur) by one step: continue with probability 1 - c
  // (c = teleport) unless its vertex is dangling, to a uniform out-neighbour.
  // Returns (src, wid, next) of the walkers that continue.
  py::tuple step(const py::array& src_, const py::array& wid_, const py::array& cur_,
                 int64_t seed, int64_t step, double c) const {
    auto src = hpc::exact<int64_t>(src_, "pagerank_walk src");
    auto wid = hpc::exact<int64_t>(wid_, "pagerank_walk wid");
    auto cur = hpc::exact<int64_t>(cur_, "pagerank_walk cur");
    const py::ssize_t m = cur.ndim() == 1 ? cur.shape(0) : -1;
    if (m < 0) hpc::fail("pagerank_walk: cur must be 1-D");
    hpc::require_1d(src, m, "pagerank_walk src");
    hpc::require_1d(wid, m, "pagerank_walk wid");
    const int64_t* ps = src.data();
    const int64_t* pw = wid.data();
    const int64_t* pc = cur.data();
    for (py::ssize_t i = 0; i < m; ++i)
      if (pc[i] < lo_ || pc[i] >= lo_ + rows_) hpc::fail("pagerank_walk: walker not at an owned vertex");
    std::vector<int64_t> os, ow, on;
    {
      py::gil_scoped_release nogil;
      os.reserve(static_cast<size_t>(m));
      ow.reserve(static_cast<size_t>(m));
      on.reserve(static_cast<size_t>(m));
      const uint64_t base = static_cast<uint64_t>(seed) * 4u;
      const uint64_t k0 = mix(base), k1 = mix(base + 1u);
      for (py::ssize_t i = 0; i < m; ++i) {
        if (uniform(k0, pw[i], step) < c) continue;          // teleport: the walk ends
        const int64_t li = pc[i] - lo_;
        const int64_t deg = ptr_[li + 1] - ptr_[li];
        if (deg == 0) continue;                              // absorbed at a dangling vertex
        int64_t k = static_cast<int64_t>(uniform(k1, pw[i], step) * static_cast<double>(deg));
        if (k > deg - 1) k = deg - 1;
        os.push_back(ps[i]);
        ow.push_back(pw[i]);
        on.push_back(idx_[ptr_[li] + k]);
      }
    }
    auto out = [](const std::vector<int64_t>& v) {
      py::array_t<int64_t> a(static_cast<py::ssize_t>(v.size()));
      std::copy(v.begin(), v.end(), a.mutable_data());
      return a;
    };
    return py::make_tuple(out(os), out(ow), out(on));
  }

 private:
  int64_t lo_ = 0, rows_ = 0;
  std::vector<int64_t> ptr_, idx_;
};
}  // namespace

HPC_SUBMODULE(pagerank_walk) {
  m.doc() = "hpc.pagerank random-walk superstep (counter-based splitmix64, as the NumPy path)";
  py::class_<Walker>(m, "Walker", "Validated out-edge CSR of the vertices a rank owns")
      .def(py::init<const py::array&, const py::array&, int64_t, int64_t>(), py::arg("indptr"),
           py::arg("indices"), py::arg("lo"), py::arg("n"))
      .def("step", &Walker::step, py::arg("src"), py::arg("wid"), py::arg("cur"), py::arg("seed"),
           py::arg("step"), py::arg("c"));
}
