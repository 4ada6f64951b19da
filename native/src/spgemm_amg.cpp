// Aggregation for smoothed-aggregation AMG (hpc.amg): the standard three-pass greedy
// aggregation of Vanek, Mandel and Brezina (1996), as pyamg's standard_aggregation does it,
// on one rank's strength graph (its own rows and columns: decoupled aggregation).
//
// Pass 1: a node whose strong neighbours are all free roots a new aggregate with them.
// Pass 2: a free node joins an aggregate of a neighbour aggregated in pass 1.
// Pass 3: the free nodes left root new aggregates with their free neighbours.
// Nodes without neighbours (e.g. Dirichlet rows) join no aggregate (-1).
#include <cstdint>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;

template <typename I>
py::tuple aggregate(py::array ptr_, py::array idx_, int64_t n) {
  if (n < 0) hpc::fail("aggregate: negative size");
  auto ptr = hpc::exact<I>(ptr_, "aggregate indptr");
  auto idx = hpc::exact<I>(idx_, "aggregate indices");
  hpc::require_1d(ptr, n + 1, "aggregate indptr");
  hpc::require_1d(idx, -1, "aggregate indices");
  const I* P = ptr.data();
  const I* J = idx.data();
  if (P[0] != 0 || !hpc::non_decreasing(P, n) || int64_t(P[n]) > int64_t(idx.shape(0)))
    hpc::fail("aggregate indptr: not a CSR row pointer");
  if (!hpc::all_in_range(J, int64_t(P[n]), n)) hpc::fail("aggregate indices: out of range");
  hpc::carray<int64_t> out(n);
  int64_t* x = out.mutable_data();
  // x: 0 free, k > 0 in aggregate k (pass 1), -k joined aggregate k (pass 2), -n-1 isolated
  const int64_t isolated = -n - 1;
  for (int64_t i = 0; i < n; ++i) x[i] = 0;
  int64_t next = 1;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i]) continue;
    bool neighbours = false, taken = false;
    for (I q = P[i]; q < P[i + 1]; ++q) {
      const int64_t j = J[q];
      if (j == i) continue;
      neighbours = true;
      if (x[j]) {
        taken = true;
        break;
      }
    }
    if (!neighbours) {
      x[i] = isolated;
    } else if (!taken) {
      x[i] = next;
      for (I q = P[i]; q < P[i + 1]; ++q) x[J[q]] = next;
      ++next;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (x[i]) continue;
    for (I q = P[i]; q < P[i + 1]; ++q) {
      const int64_t xj = x[J[q]];
      if (xj > 0) {
        x[i] = -xj;
        break;
      }
    }
  }
  // pass 3: the free nodes left root aggregates next, next + 1, ... (encoded as pass 2's -k)
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] != 0) continue;
    x[i] = -next;
    for (I q = P[i]; q < P[i + 1]; ++q)
      if (x[J[q]] == 0) x[J[q]] = -next;
    ++next;
  }
  for (int64_t i = 0; i < n; ++i) {  // decode: aggregate numbers from 0
    const int64_t xi = x[i];
    x[i] = xi == isolated ? -1 : (xi > 0 ? xi - 1 : -xi - 1);
  }
  --next;  // the count
  return py::make_tuple(out, next);
}
}  // namespace

HPC_SUBMODULE(spgemm_amg) {
  m.doc() = "Smoothed-aggregation AMG kernels: standard (three-pass greedy) aggregation";
  const char* doc =
      "aggregate(indptr, indices, n) -> (aggregate of every node int64 (-1: none), count): "
      "standard three-pass aggregation of a symmetric strength graph (pyamg's "
      "standard_aggregation).";
  m.def("aggregate_i32", &aggregate<int32_t>, doc, py::arg("indptr"), py::arg("indices"),
        py::arg("n"));
  m.def("aggregate_i64", &aggregate<int64_t>, doc, py::arg("indptr"), py::arg("indices"),
        py::arg("n"));
}
