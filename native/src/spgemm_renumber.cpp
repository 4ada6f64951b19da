// Column renumbering for the distributed SpGEMM (hpc/spgemm/dist.py, hpc/spgemm/ptap.py): the
// sorted distinct columns a block uses, and its indices rewritten as positions in that list.
//
// np.unique + np.searchsorted do this by sorting the nnz indices (O(nnz log nnz), 1.16 s of a
// 1.99 s AMG setup on hpcg:64). Here a marker array over the ncols columns does it in one pass
// over the indices, one over the markers and one more over the indices: O(nnz + ncols). The
// positions come out in column order, so a row's ascending columns stay ascending.
#include <cstdint>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;

template <typename I>
py::tuple renumber(const py::array& indices_, int64_t ncols) {
  if (ncols < 0) hpc::fail("ncols: negative");
  auto idx = hpc::exact<I>(indices_, "indices");
  hpc::require_1d(idx, -1, "indices");
  const int64_t nnz = idx.shape(0);
  const I* J = idx.data();
  if (!hpc::all_in_range(J, nnz, ncols)) hpc::fail("indices: out of range [0, ncols)");
  // positions fit I: there are at most min(nnz, ncols) distinct columns and every index,
  // being an I below ncols, already does
  hpc::carray<I> out(nnz);
  I* R = out.mutable_data();
  std::vector<I> pos;
  int64_t used = 0;
  {
    py::gil_scoped_release nogil;
    pos.assign(size_t(ncols), I(0));
    for (int64_t q = 0; q < nnz; ++q) pos[size_t(J[q])] = I(1);
    for (int64_t c = 0; c < ncols; ++c) {
      const I hit = pos[size_t(c)];
      pos[size_t(c)] = I(used);  // the rank of c among the used columns (c unused: unread)
      used += hit;
    }
    for (int64_t q = 0; q < nnz; ++q) R[q] = pos[size_t(J[q])];
  }
  hpc::carray<int64_t> cols(used);
  int64_t* C = cols.mutable_data();
  {
    py::gil_scoped_release nogil;
    // column c is used iff its rank differs from the next column's (or it is the last used)
    int64_t k = 0;
    for (int64_t c = 0; c < ncols; ++c) {
      const int64_t next = c + 1 < ncols ? int64_t(pos[size_t(c + 1)]) : used;
      if (next != int64_t(pos[size_t(c)])) C[k++] = c;
    }
  }
  return py::make_tuple(cols, out);
}
}  // namespace

HPC_SUBMODULE(spgemm_renumber) {
  m.doc() = "Column renumbering for the distributed SpGEMM: a marker array, O(nnz + ncols)";
  const char* doc =
      "renumber(indices, ncols) -> (used int64, positions): the sorted distinct values of "
      "indices (each in [0, ncols)) and every index replaced by its position among them (same "
      "dtype); what np.unique + np.searchsorted give, without sorting.";
  m.def("renumber_i32", &renumber<int32_t>, doc, py::arg("indices"), py::arg("ncols"));
  m.def("renumber_i64", &renumber<int64_t>, doc, py::arg("indices"), py::arg("ncols"));
}
