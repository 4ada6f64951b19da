// hpc.train's float32 element-wise kernels: the tanh-GeLU forward and the causal softmax
// forward, each one pass with a vectorised exp. numpy's float32 tanh and the exp over the whole
// S x S score matrix (its masked half included) were the largest non-GEMM costs of a CPU step;
// PyTorch fuses both. Built for AVX2/FMA and a baseline clone (GCC target_clones: the default
// build is not -march=native), picked at load time; results agree with numpy's to a few ulp
// (tests/test_train_layers.py). float64 keeps numpy's libm path (its results are unchanged).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <omp.h>
#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

// The kernels' clamps and selects are if-converted (vectorised) only when FP operations may
// not trap; results are unchanged (GCC 12: "control flow in loop" otherwise).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

namespace {
using hpc::carray;
using hpc::exact;
using hpc::fail;
using std::ptrdiff_t;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define HPC_TRAIN_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define HPC_TRAIN_CLONES
#endif

// exp(x) for float32, Cephes' expf: x = n ln2 + r (|r| <= ln2/2, ln2 in two parts), a
// degree-6 polynomial of r, 2^n from the exponent bits. Branch-free, so loops of it
// vectorise; within 2 ulp of expf on [-87.3, 88.7]. Below -87.3 it returns exp(-87.3)
// (1.2e-38, as good as 0 beside the 1-sized terms it is added to); callers never pass more
// than 0 (softmax, after the max) or 0 itself.
inline float exp_f32(float x) {
  x = x < -87.3f ? -87.3f : x;  // (fmin/fmax: libm calls without -ffast-math)
  x = x > 88.7f ? 88.7f : x;
  const float fx = x * 1.44269504088896341f;
  // round to nearest by the 1.5 * 2^23 trick (no call, vectorises)
  const float n = (fx + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)

// y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); t = tanh(u) for the backward.
// tanh(u) = sign(u) (1 - e) / (1 + e), e = exp(-2|u|) in (0, 1]: no overflow anywhere.
HPC_TRAIN_CLONES
void gelu_fwd_f32(const float* __restrict x, float* __restrict y, float* __restrict t,
                  ptrdiff_t n) {
#pragma omp simd
  for (ptrdiff_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = kGeluC * (v + 0.044715f * v * v * v);
    const float e = exp_f32(u < 0.0f ? 2.0f * u : -2.0f * u);
    const float q = (1.0f - e) / (1.0f + e);
    const float th = u < 0.0f ? -q : q;
    t[i] = th;
    y[i] = 0.5f * v * (1.0f + th);
  }
}

// In place on rows of n x n score matrices: p = softmax(scale * s) over keys j <= i of row i,
// 0 above the diagonal. The row's max, exp and sum touch only the i + 1 causal entries.
HPC_TRAIN_CLONES
void causal_softmax_f32(float* __restrict s, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t n,
                        float scale) {
  for (ptrdiff_t r = r0; r < r1; ++r) {
    float* row = s + r * n;
    const ptrdiff_t len = r % n + 1;
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (ptrdiff_t j = 0; j < len; ++j) {
      const float v = row[j] * scale;
      m = v > m ? v : m;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (ptrdiff_t j = 0; j < len; ++j) {
      const float e = exp_f32(row[j] * scale - m);
      row[j] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (ptrdiff_t j = 0; j < len; ++j) row[j] *= inv;
    for (ptrdiff_t j = len; j < n; ++j) row[j] = 0.0f;
  }
}

HPC_TRAIN_CLONES
void exp_f32_array(const float* __restrict x, float* __restrict y, ptrdiff_t n) {
#pragma omp simd
  for (ptrdiff_t i = 0; i < n; ++i) y[i] = exp_f32(x[i]);
}

// The OpenMP split stays outside the cloned kernels (an outlined parallel body would not
// carry their target attribute): each thread runs the clone on its own static chunk.
template <typename F>
void split(ptrdiff_t n, ptrdiff_t grain, F&& f) {
  if (n <= grain) {
    f(0, n);
    return;
  }
#pragma omp parallel
  {
    const ptrdiff_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    const ptrdiff_t lo = n * id / nt, hi = n * (id + 1) / nt;
    if (hi > lo) f(lo, hi);
  }
}

void check_same_size(const py::array& a, const py::array& b, const char* what) {
  if (a.size() != b.size()) fail(std::string(what) + ": sizes differ");
}
}  // namespace

HPC_SUBMODULE(train) {
  m.doc() = "hpc.train's fused float32 element-wise kernels (GeLU, causal softmax).";
  m.def(
      "gelu_fwd",
      [](const py::array& x, py::array& y, py::array& t) {
        auto xa = exact<float>(x, "x");
        auto ya = exact<float>(y, "y");
        auto ta = exact<float>(t, "t");
        check_same_size(x, y, "y");
        check_same_size(x, t, "t");
        const float* xp = xa.data();
        float* yp = hpc::mut_ptr(ya, "y");
        float* tp = hpc::mut_ptr(ta, "t");
        const ptrdiff_t n = x.size();
        py::gil_scoped_release nogil;
        split(n, 1 << 16, [&](ptrdiff_t lo, ptrdiff_t hi) {
          gelu_fwd_f32(xp + lo, yp + lo, tp + lo, hi - lo);
        });
      },
      py::arg("x"), py::arg("y"), py::arg("t"),
      "Tanh-approximate GeLU of float32 x into y, tanh(u) into t (C-contiguous, one size).");
  m.def(
      "causal_softmax",
      [](py::array& s, double scale) {
        auto sa = exact<float>(s, "s");
        if (s.ndim() < 2 || s.shape(s.ndim() - 1) != s.shape(s.ndim() - 2))
          fail("s: expected (..., n, n) score matrices");
        const ptrdiff_t n = s.shape(s.ndim() - 1);
        const ptrdiff_t mats = n ? s.size() / (n * n) : 0;
        float* sp = hpc::mut_ptr(sa, "s");
        py::gil_scoped_release nogil;
        split(mats * n, 64, [&](ptrdiff_t lo, ptrdiff_t hi) {
          causal_softmax_f32(sp, lo, hi, n, static_cast<float>(scale));
        });
      },
      py::arg("s"), py::arg("scale"),
      "In place: softmax(scale * s) over keys j <= i of each row i of float32 (..., n, n) "
      "score matrices, 0 above the diagonal.");
  m.def(
      "exp",
      [](const py::array& x, py::array& y) {
        auto xa = exact<float>(x, "x");
        auto ya = exact<float>(y, "y");
        check_same_size(x, y, "y");
        const float* xp = xa.data();
        float* yp = hpc::mut_ptr(ya, "y");
        const ptrdiff_t n = x.size();
        py::gil_scoped_release nogil;
        split(n, 1 << 16, [&](ptrdiff_t lo, ptrdiff_t hi) {
          exp_f32_array(xp + lo, yp + lo, hi - lo);
        });
      },
      py::arg("x"), py::arg("y"),
      "exp of float32 x into y by the kernels' vectorised exp (for its accuracy test).");
}
