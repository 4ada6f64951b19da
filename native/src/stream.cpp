// BabelStream's six kernels with OpenMP: static schedule so each thread touches the same
// slice every kernel (first-touch placement stays valid across kernels).
#include <cstddef>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::ptrdiff_t;

template <typename T>
struct Kernels {
  static void copy(const T* __restrict a, T* __restrict c, ptrdiff_t n) {
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i) c[i] = a[i];
  }
  static void mul(T* __restrict b, const T* __restrict c, T s, ptrdiff_t n) {
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i) b[i] = s * c[i];
  }
  static void add(const T* __restrict a, const T* __restrict b, T* __restrict c, ptrdiff_t n) {
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
  }
  static void triad(T* __restrict a, const T* __restrict b, const T* __restrict c, T s,
                    ptrdiff_t n) {
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
  }
  static void nstream(T* __restrict a, const T* __restrict b, const T* __restrict c, T s,
                      ptrdiff_t n) {
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i) a[i] += b[i] + s * c[i];
  }
  // Accumulates in double: a float accumulator over 2^25 equal terms loses every digit.
  static double dot(const T* __restrict a, const T* __restrict b, ptrdiff_t n) {
    double sum = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum)
    for (ptrdiff_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
    return sum;
  }
  static void init(T* a, T* b, T* c, T va, T vb, T vc, ptrdiff_t n) {
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i) {
      a[i] = va;
      b[i] = vb;
      c[i] = vc;
    }
  }
};

template <typename T>
T* P(py::array& x) {
  return static_cast<T*>(x.mutable_data());
}

// Checks that every array is 1-D, C-contiguous, writeable, of one dtype (float32 or float64)
// and one length, then runs f(T{}, a, b, c, n) on their data with the GIL released.
template <typename F>
decltype(auto) with_arrays(py::array a, py::array b, py::array c, F&& f) {
  for (auto* x : {&a, &b, &c}) {
    if (x->ndim() != 1) hpc::fail("stream: arrays must be 1-D");
    if (!(x->flags() & py::array::c_style)) hpc::fail("stream: arrays must be contiguous");
    if (!x->writeable()) hpc::fail("stream: arrays must be writeable");
  }
  if (a.shape(0) != b.shape(0) || a.shape(0) != c.shape(0))
    hpc::fail("stream: arrays differ in length");
  return hpc::visit_real(a, "stream: dtype", [&](auto t) {
    using T = decltype(t);
    for (auto* x : {&b, &c})
      if (x->dtype().not_equal(a.dtype())) hpc::fail("stream: arrays differ in dtype");
    const auto n = static_cast<ptrdiff_t>(a.shape(0));
    T *pa = P<T>(a), *pb = P<T>(b), *pc = P<T>(c);
    py::gil_scoped_release nogil;
    return f(t, pa, pb, pc, n);
  });
}
}  // namespace

HPC_SUBMODULE(stream) {
  m.doc() = "BabelStream kernels (OpenMP)";
  m.def("init", [](py::array a, py::array b, py::array c, double va, double vb, double vc) {
    with_arrays(a, b, c, [&](auto t, auto* pa, auto* pb, auto* pc, ptrdiff_t n) {
      using T = decltype(t);
      Kernels<T>::init(pa, pb, pc, T(va), T(vb), T(vc), n);
    });
  });
  m.def("copy", [](py::array a, py::array b, py::array c) {
    with_arrays(a, b, c, [](auto t, auto* pa, auto*, auto* pc, ptrdiff_t n) {
      Kernels<decltype(t)>::copy(pa, pc, n);
    });
  });
  m.def("mul", [](py::array a, py::array b, py::array c, double scalar) {
    with_arrays(a, b, c, [&](auto t, auto*, auto* pb, auto* pc, ptrdiff_t n) {
      using T = decltype(t);
      Kernels<T>::mul(pb, pc, T(scalar), n);
    });
  });
  m.def("add", [](py::array a, py::array b, py::array c) {
    with_arrays(a, b, c, [](auto t, auto* pa, auto* pb, auto* pc, ptrdiff_t n) {
      Kernels<decltype(t)>::add(pa, pb, pc, n);
    });
  });
  m.def("triad", [](py::array a, py::array b, py::array c, double scalar) {
    with_arrays(a, b, c, [&](auto t, auto* pa, auto* pb, auto* pc, ptrdiff_t n) {
      using T = decltype(t);
      Kernels<T>::triad(pa, pb, pc, T(scalar), n);
    });
  });
  m.def("nstream", [](py::array a, py::array b, py::array c, double scalar) {
    with_arrays(a, b, c, [&](auto t, auto* pa, auto* pb, auto* pc, ptrdiff_t n) {
      using T = decltype(t);
      Kernels<T>::nstream(pa, pb, pc, T(scalar), n);
    });
  });
  m.def("dot", [](py::array a, py::array b, py::array c) {
    return with_arrays(a, b, c, [](auto t, auto* pa, auto* pb, auto*, ptrdiff_t n) {
      return Kernels<decltype(t)>::dot(pa, pb, n);
    });
  });
}
