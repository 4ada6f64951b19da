// BabelStream's kernels with C++17 parallel algorithms (libstdc++ runs them on TBB): the
// "modern C++" model of the paper, against which the OpenMP loops are compared.
#include <algorithm>
#include <execution>
#include <memory>
#include <numeric>
#include <tbb/global_control.h>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using hpc::carray;
constexpr auto policy = std::execution::par_unseq;

template <typename T>
void bind_for(py::module_& m) {
  auto check = [](carray<T>& a, carray<T>& b, carray<T>& c) {
    if (a.ndim() != 1 || b.ndim() != 1 || c.ndim() != 1) hpc::fail("stream_stdpar: 1-D arrays");
    if (a.shape(0) != b.shape(0) || a.shape(0) != c.shape(0))
      hpc::fail("stream_stdpar: arrays differ in length");
    return static_cast<std::ptrdiff_t>(a.shape(0));
  };
  // py::arg().noconvert() makes a dtype mismatch select the other overload, never a copy.
  m.def("init", [check](carray<T> a, carray<T> b, carray<T> c, double va, double vb, double vc) {
    auto n = check(a, b, c);
    py::gil_scoped_release nogil;
    std::fill(policy, a.mutable_data(), a.mutable_data() + n, T(va));
    std::fill(policy, b.mutable_data(), b.mutable_data() + n, T(vb));
    std::fill(policy, c.mutable_data(), c.mutable_data() + n, T(vc));
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
     py::arg("va"), py::arg("vb"), py::arg("vc"));
  m.def("copy", [check](carray<T> a, carray<T> b, carray<T> c) {
    auto n = check(a, b, c);
    py::gil_scoped_release nogil;
    std::copy(policy, a.data(), a.data() + n, c.mutable_data());
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert());
  m.def("mul", [check](carray<T> a, carray<T> b, carray<T> c, double scalar) {
    auto n = check(a, b, c);
    const T s = T(scalar);
    py::gil_scoped_release nogil;
    std::transform(policy, c.data(), c.data() + n, b.mutable_data(), [s](T x) { return s * x; });
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(), py::arg("scalar"));
  m.def("add", [check](carray<T> a, carray<T> b, carray<T> c) {
    auto n = check(a, b, c);
    py::gil_scoped_release nogil;
    std::transform(policy, a.data(), a.data() + n, b.data(), c.mutable_data(),
                   [](T x, T y) { return x + y; });
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert());
  m.def("triad", [check](carray<T> a, carray<T> b, carray<T> c, double scalar) {
    auto n = check(a, b, c);
    const T s = T(scalar);
    py::gil_scoped_release nogil;
    std::transform(policy, b.data(), b.data() + n, c.data(), a.mutable_data(),
                   [s](T x, T y) { return x + s * y; });
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(), py::arg("scalar"));
  m.def("nstream", [check](carray<T> a, carray<T> b, carray<T> c, double scalar) {
    auto n = check(a, b, c);
    const T s = T(scalar);
    T* pa = a.mutable_data();
    const T* pb = b.data();
    const T* pc = c.data();
    py::gil_scoped_release nogil;
    // One pass: for_each hands out references into `a`, so the index is the element's
    // offset (the std-data idiom needs two transforms and moves 6 arrays instead of 4).
    std::for_each(policy, pa, pa + n, [=](T& x) {
      const auto i = &x - pa;
      x += pb[i] + s * pc[i];
    });
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(), py::arg("scalar"));
  m.def("dot", [check](carray<T> a, carray<T> b, carray<T> c) {
    auto n = check(a, b, c);
    py::gil_scoped_release nogil;
    return std::transform_reduce(policy, a.data(), a.data() + n, b.data(), 0.0, std::plus<>(),
                                 [](T x, T y) { return static_cast<double>(x) * y; });
  }, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert());
}
}  // namespace

HPC_SUBMODULE(stream_stdpar) {
  m.doc() = "BabelStream kernels (C++17 std::execution::par_unseq)";
  // TBB ignores OMP_NUM_THREADS: the thread count is set through its global_control.
  m.def("set_threads", [](int n) {
    static std::unique_ptr<tbb::global_control> limit;
    if (n < 1) hpc::fail("threads must be >= 1");
    limit.reset();
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  static_cast<std::size_t>(n));
  });
  bind_for<double>(m);
  bind_for<float>(m);
}
