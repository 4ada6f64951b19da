// Multicolour Gauss-Seidel for hpc.amg (order="multicolour"), partition independent:
//
// - colour: the greedy colouring of a symmetric graph in decreasing priority order (each node
//   takes the smallest colour none of its higher-priority neighbours has). Priorities are
//   (key, global id) pairs, key a hash of the global id, so the colouring depends only on the
//   global graph. A node may take its colour as soon as all its higher-priority neighbours
//   have theirs, so each call colours every own row it can; with ghost columns the caller
//   exchanges the ghosts' colours and calls again (Jones-Plassmann rounds).
// - MultiColourGS: Gauss-Seidel colour by colour. Rows of one colour share no edge, so they
//   update independently (in any order, on any thread, on any rank: the result of a colour is
//   the same bits), and a symmetric sweep (colours forward, then backward) is symmetric
//   Gauss-Seidel in one global order: SPD for SPD A. The rows are stored grouped by colour,
//   boundary rows (with ghost columns, or sent to other ranks) before interior ones, so the
//   caller can exchange a colour's boundary values while its interior rows run.
//
// Columns are numbered own rows first [0, n), ghosts after [n, n_ext); each row's entries keep
// the caller's order (the global column order), so a row's sum is the same at any partition.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;


// The smallest colour not in `used` (marks of this node's neighbours, stamped `tag`).
inline int32_t first_free(std::vector<int64_t>& mark, int64_t tag, int32_t limit) {
  int32_t c = 0;
  while (c < limit && mark[size_t(c)] == tag) ++c;
  return c;
}

// colour(indptr, indices, key, gid, colour) -> (coloured now, still uncoloured): see the top.
template <typename I>
py::tuple colour(py::array ptr_, py::array idx_, py::array key_, py::array gid_,
                 py::array colour_) {
  auto kk = hpc::exact<uint64_t>(key_, "colour key");
  auto kg = hpc::exact<int64_t>(gid_, "colour gid");
  auto kc = hpc::exact<int32_t>(colour_, "colour colour");
  hpc::require_1d(kk, -1, "colour key");
  const int64_t ne = kk.shape(0);
  hpc::require_1d(kg, ne, "colour gid");
  hpc::require_1d(kc, ne, "colour colour");
  hpc::CheckedCsr<I> A(ptr_, idx_, -1, ne, "colour");
  const int64_t n = A.n;
  if (n > ne) hpc::fail("colour: more rows than columns");
  const uint64_t* key = kk.data();
  const int64_t* gid = kg.data();
  int32_t* col = hpc::mut_ptr(kc, "colour colour");
  const I* P = A.P;
  const I* J = A.J;
  for (int64_t i = 0; i < n; ++i)
    if (col[i] < -1) hpc::fail("colour colour: own entries must be -1 or a colour");
  int64_t now = 0, left = 0;
  {
    py::gil_scoped_release nogil;
    auto above = [&](int64_t a, int64_t b) {  // priority of a over b
      return key[a] != key[b] ? key[a] > key[b] : gid[a] > gid[b];
    };
    int64_t deg = 0;
    for (int64_t i = 0; i < n; ++i) deg = std::max(deg, int64_t(P[i + 1] - P[i]));
    std::vector<int64_t> mark(size_t(deg + 2), -1);
    auto assign = [&](int64_t i) {
      for (I q = P[i]; q < P[i + 1]; ++q) {
        const int64_t j = J[q], c = col[j];
        if (j != i && c >= 0 && c <= deg) mark[size_t(c)] = i;
      }
      col[i] = first_free(mark, i, int32_t(deg + 1));
    };
    std::vector<int64_t> todo;
    for (int64_t i = 0; i < n; ++i)
      if (col[i] < 0) todo.push_back(i);
    // The greedy colouring, in any order that takes a row after all its higher-priority
    // neighbours (its colour depends on theirs only): Kahn's order, rows visited in row order
    // and each row that becomes ready taken at once (depth first), which keeps the accesses
    // near each other (the priority order itself visits rows at random, ~12 cache misses a
    // row, 5x slower on hpcg:64). Uncoloured ghosts hold their lower-priority neighbours back
    // until a later call, after the caller's exchange: Jones-Plassmann rounds, each one
    // colouring every row it can, so the rounds are the chains that cross rank boundaries.
    std::vector<int32_t> wait(size_t(n), 0);  // uncoloured higher-priority neighbours
    for (int64_t i : todo)
      for (I q = P[i]; q < P[i + 1]; ++q) {
        const int64_t j = J[q];
        wait[size_t(i)] += j != i && col[j] < 0 && above(j, i);
      }
    std::vector<int64_t> stack;
    for (int64_t r : todo) {
      if (col[r] >= 0 || wait[size_t(r)] != 0) continue;
      stack.push_back(r);
      while (!stack.empty()) {
        const int64_t i = stack.back();
        stack.pop_back();
        assign(i);
        ++now;
        for (I q = P[i]; q < P[i + 1]; ++q) {
          const int64_t j = J[q];
          if (j < n && j != i && col[j] < 0 && above(i, j) && --wait[size_t(j)] == 0)
            stack.push_back(j);
        }
      }
    }
    left = int64_t(todo.size()) - now;
  }
  return py::make_tuple(now, left);
}

// Gauss-Seidel colour by colour on a rank's rows (see the top).
template <typename I>
class MultiColourGS {
 public:
  MultiColourGS(py::array ptr_, py::array idx_, py::array data_, py::array diag_,
                py::array colour_, py::array boundary_, int64_t n_ext, int64_t ncolours) {
    hpc::CheckedCsr<I> A(ptr_, idx_, -1, n_ext, "MultiColourGS");
    n_ = A.n;
    ne_ = n_ext;
    if (n_ > ne_) hpc::fail("MultiColourGS: more rows than columns");
    auto kv = hpc::exact<double>(data_, "MultiColourGS data");
    auto kd = hpc::exact<double>(diag_, "MultiColourGS diag");
    auto kc = hpc::exact<int32_t>(colour_, "MultiColourGS colour");
    auto kb = hpc::exact<uint8_t>(boundary_, "MultiColourGS boundary");
    hpc::require_1d(kv, -1, "MultiColourGS data");
    hpc::require_1d(kd, n_, "MultiColourGS diag");
    hpc::require_1d(kc, n_, "MultiColourGS colour");
    hpc::require_1d(kb, n_, "MultiColourGS boundary");
    if (kv.shape(0) < int64_t(A.P[n_])) hpc::fail("MultiColourGS data: shorter than indices");
    const I* P = A.P;
    const I* J = A.J;
    const double* V = kv.data();
    const double* d = kd.data();
    const int32_t* c = kc.data();
    const uint8_t* bd = kb.data();
    // every rank knows all colours (some may have no rows here): the sweeps run in lock step
    if (ncolours < 0) hpc::fail("MultiColourGS: ncolours must be >= 0");
    nc_ = ncolours;
    for (int64_t i = 0; i < n_; ++i) {
      if (c[i] < 0 || c[i] >= nc_)
        hpc::fail("MultiColourGS colour: outside [0, ncolours) in row " + std::to_string(i));
      if (!(d[i] != 0.0)) hpc::fail("MultiColourGS: zero divisor in row " + std::to_string(i));
    }
    // rows grouped by (colour, interior): a counting sort, stable in the row order
    seg_.assign(size_t(2 * nc_ + 1), 0);
    for (int64_t i = 0; i < n_; ++i) ++seg_[size_t(2 * c[i] + (bd[i] ? 0 : 1) + 1)];
    std::partial_sum(seg_.begin(), seg_.end(), seg_.begin());
    std::vector<int64_t> pos(seg_.begin(), seg_.end() - 1);
    row_.resize(size_t(n_));
    for (int64_t i = 0; i < n_; ++i) row_[size_t(pos[size_t(2 * c[i] + (bd[i] ? 0 : 1))]++)] = i;
    // the rows' off-diagonal entries in that order, in each row's own entry order (one pass:
    // at most the stored entries, trimmed after); two own neighbours of one colour would make
    // the colour's result depend on the order of its rows
    ptr_v.assign(size_t(n_ + 1), 0);
    idx_v.resize(size_t(P[n_]));
    val_v.resize(size_t(P[n_]));
    diag_v.resize(size_t(n_));
    int64_t o = 0;
    for (int64_t k = 0; k < n_; ++k) {
      const int64_t i = row_[size_t(k)];
      const int32_t ci = c[i];
      bool clash = false;
      for (I q = P[i]; q < P[i + 1]; ++q) {
        const I j = J[q];
        if (j == I(i)) continue;
        clash |= int64_t(j) < n_ && c[j] == ci;
        idx_v[size_t(o)] = j;
        val_v[size_t(o++)] = V[q];
      }
      if (clash) hpc::fail("MultiColourGS colour: row " + std::to_string(i) +
                           " has an own neighbour of its colour");
      ptr_v[size_t(k + 1)] = o;
      diag_v[size_t(k)] = d[i];
    }
    idx_v.resize(size_t(o));
    val_v.resize(size_t(o));
  }

  // x_i = (b_i - sum_{j != i} a_ij x_j) / a_ii on the rows of colour c: part 0 its boundary
  // rows, 1 its interior rows, 2 both.
  void sweep(py::array b_, py::array x_, int64_t c, int part) const {
    if (c < 0 || c >= nc_) hpc::fail("MultiColourGS.sweep: colour out of range");
    if (part < 0 || part > 2) hpc::fail("MultiColourGS.sweep: part must be 0, 1 or 2");
    hpc::carray<double> kb, kx;
    const double* b = vectors(b_, x_, kb, kx);
    double* x = kx.mutable_data();
    const int64_t s = seg_[size_t(2 * c + (part == 1 ? 1 : 0))];
    const int64_t e = seg_[size_t(2 * c + (part == 0 ? 1 : 2))];
    py::gil_scoped_release nogil;
    rows(b, x, s, e);
  }

  // `sweeps` symmetric sweeps (colours forward then backward; a colour repeated back to back
  // is skipped: its neighbours did not change, so neither would it), the ghosts held fixed.
  void symmetric(py::array b_, py::array x_, int64_t sweeps) const {
    hpc::carray<double> kb, kx;
    const double* b = vectors(b_, x_, kb, kx);
    double* x = kx.mutable_data();
    py::gil_scoped_release nogil;
    int64_t last = -1;
    auto run = [&](int64_t c) {
      if (c == last) return;
      rows(b, x, seg_[size_t(2 * c)], seg_[size_t(2 * c + 2)]);
      last = c;
    };
    for (int64_t s = 0; s < sweeps; ++s) {
      for (int64_t c = 0; c < nc_; ++c) run(c);
      for (int64_t c = nc_ - 1; c >= 0; --c) run(c);
    }
  }

  int64_t colours() const { return nc_; }

  // rows of each (colour, part): counts[c][0] boundary, counts[c][1] interior
  py::array counts() const {
    hpc::carray<int64_t> out({nc_, int64_t(2)});
    int64_t* o = out.mutable_data();
    for (int64_t k = 0; k < 2 * nc_; ++k) o[k] = seg_[size_t(k + 1)] - seg_[size_t(k)];
    return out;
  }

 private:
  const double* vectors(py::array& b_, py::array& x_, hpc::carray<double>& kb,
                        hpc::carray<double>& kx) const {
    kb = hpc::exact<double>(b_, "MultiColourGS b");
    hpc::require_1d(kb, n_, "MultiColourGS b");
    kx = hpc::exact<double>(x_, "MultiColourGS x");
    hpc::require_1d(kx, ne_, "MultiColourGS x (own then ghost values)");
    hpc::mut_ptr(kx, "MultiColourGS x");
    return kb.data();
  }

  void rows(const double* b, double* x, int64_t s, int64_t e) const {
    const int64_t* P = ptr_v.data();
    const I* J = idx_v.data();
    const double* V = val_v.data();
    const double* d = diag_v.data();
    const int64_t* R = row_.data();
    // rows of one colour are independent: threads where a colour is large enough to pay
#pragma omp parallel for schedule(static) if (e - s > 8192)
    for (int64_t k = s; k < e; ++k) {
      double acc = b[R[k]];
      for (int64_t q = P[k]; q < P[k + 1]; ++q) acc -= V[q] * x[J[q]];
      x[R[k]] = acc / d[k];
    }
  }

  int64_t n_ = 0, ne_ = 0, nc_ = 0;
  std::vector<int64_t> seg_, row_, ptr_v;
  std::vector<I> idx_v;
  std::vector<double> val_v, diag_v;
};

template <typename I>
void bind(py::module_& m, const char* suffix) {
  using G = MultiColourGS<I>;
  m.def((std::string("colour_") + suffix).c_str(), &colour<I>,
        "colour(indptr, indices, key, gid, colour) -> (coloured now, left uncoloured): greedy "
        "colouring in decreasing (key, gid) order of every own row whose higher-priority "
        "neighbours are coloured (all rows without ghost columns; call again after exchanging "
        "the ghosts' colours). colour (int32, own then ghost, -1: none) is updated in place.",
        py::arg("indptr"), py::arg("indices"), py::arg("key"), py::arg("gid"),
        py::arg("colour"));
  py::class_<G>(m, (std::string("MultiColourGS_") + suffix).c_str(),
                "Gauss-Seidel colour by colour on a rank's rows (columns own then ghost)")
      .def(py::init<py::array, py::array, py::array, py::array, py::array, py::array, int64_t,
                    int64_t>(),
           py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("diag"),
           py::arg("colour"), py::arg("boundary"), py::arg("n_ext"), py::arg("ncolours"))
      .def("sweep", &G::sweep, py::arg("b"), py::arg("x"), py::arg("colour"), py::arg("part"),
           "Gauss-Seidel on the rows of one colour: part 0 boundary, 1 interior, 2 both")
      .def("symmetric", &G::symmetric, py::arg("b"), py::arg("x"), py::arg("sweeps"),
           "symmetric sweeps, colours forward then backward, ghost values held fixed")
      .def("colours", &G::colours)
      .def("counts", &G::counts, "rows per colour: (colours, 2) boundary, interior");
}
}  // namespace

HPC_SUBMODULE(amg_colour) {
  m.doc() = "Multicolour Gauss-Seidel for hpc.amg: hashed-priority colouring, colour sweeps";
  bind<int32_t>(m, "i32");
  bind<int64_t>(m, "i64");
}
