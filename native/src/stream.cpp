// BabelStream's six kernels with OpenMP: static schedule so each thread touches the same
// slice every kernel (first-touch placement stays valid across kernels).
#include <cstddef>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using hpc::carray;
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

// Checks that every array is 1-D, C-contiguous, writeable, of one dtype and one length.
struct Arrays {
  py::array a, b, c;
  bool is_f32;
  ptrdiff_t n;
};

Arrays check(py::array a, py::array b, py::array c) {
  for (auto* x : {&a, &b, &c}) {
    if (x->ndim() != 1) hpc::fail("stream: arrays must be 1-D");
    if (!(x->flags() & py::array::c_style)) hpc::fail("stream: arrays must be contiguous");
    if (!x->writeable()) hpc::fail("stream: arrays must be writeable");
  }
  if (a.shape(0) != b.shape(0) || a.shape(0) != c.shape(0))
    hpc::fail("stream: arrays differ in length");
  const bool f32 = py::isinstance<carray<float>>(a);
  const bool f64 = py::isinstance<carray<double>>(a);
  if (!f32 && !f64) hpc::fail("stream: dtype must be float32 or float64");
  for (auto* x : {&b, &c})
    if (x->dtype().not_equal(a.dtype())) hpc::fail("stream: arrays differ in dtype");
  return {a, b, c, f32, static_cast<ptrdiff_t>(a.shape(0))};
}

template <typename T>
T* P(py::array& x) {
  return static_cast<T*>(x.mutable_data());
}

template <typename F>
auto dispatch(Arrays& s, F&& f) {
  if (s.is_f32) return f(float{}, P<float>(s.a), P<float>(s.b), P<float>(s.c));
  return f(double{}, P<double>(s.a), P<double>(s.b), P<double>(s.c));
}
}  // namespace

HPC_SUBMODULE(stream) {
  m.doc() = "BabelStream kernels (OpenMP)";
  m.def("init", [](py::array a, py::array b, py::array c, double va, double vb, double vc) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    dispatch(s, [&](auto t, auto* pa, auto* pb, auto* pc) {
      using T = decltype(t);
      Kernels<T>::init(pa, pb, pc, T(va), T(vb), T(vc), s.n);
      return 0;
    });
  });
  m.def("copy", [](py::array a, py::array b, py::array c) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    dispatch(s, [&](auto t, auto* pa, auto*, auto* pc) {
      Kernels<decltype(t)>::copy(pa, pc, s.n);
      return 0;
    });
  });
  m.def("mul", [](py::array a, py::array b, py::array c, double scalar) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    dispatch(s, [&](auto t, auto*, auto* pb, auto* pc) {
      using T = decltype(t);
      Kernels<T>::mul(pb, pc, T(scalar), s.n);
      return 0;
    });
  });
  m.def("add", [](py::array a, py::array b, py::array c) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    dispatch(s, [&](auto t, auto* pa, auto* pb, auto* pc) {
      Kernels<decltype(t)>::add(pa, pb, pc, s.n);
      return 0;
    });
  });
  m.def("triad", [](py::array a, py::array b, py::array c, double scalar) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    dispatch(s, [&](auto t, auto* pa, auto* pb, auto* pc) {
      using T = decltype(t);
      Kernels<T>::triad(pa, pb, pc, T(scalar), s.n);
      return 0;
    });
  });
  m.def("nstream", [](py::array a, py::array b, py::array c, double scalar) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    dispatch(s, [&](auto t, auto* pa, auto* pb, auto* pc) {
      using T = decltype(t);
      Kernels<T>::nstream(pa, pb, pc, T(scalar), s.n);
      return 0;
    });
  });
  m.def("dot", [](py::array a, py::array b, py::array c) {
    auto s = check(a, b, c);
    py::gil_scoped_release nogil;
    return dispatch(s, [&](auto t, auto* pa, auto* pb, auto*) {
      return Kernels<decltype(t)>::dot(pa, pb, s.n);
    });
  });
}
