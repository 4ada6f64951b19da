// k-medoids ΔTD on the GPU (hpc.kmedoids, cupy back end): the FastPAM1 sweep over a tile of
// candidate columns that already lives in device memory (a CuPy array). One thread per
// candidate; a warp reads consecutive columns of a row, so the tile is read coalesced, and each
// thread owns its output row (no atomics). Pointers come from CuPy (``.data.ptr``); the Python
// wrapper checks every shape and dtype before calling.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>
#include <cstdint>
#include "hpc/cuda_check.hpp"
#include "hpc/registry.hpp"

namespace {
constexpr int kThreads = 128;

__global__ void k_fastpam_delta(const double* __restrict__ D, int64_t ld, int64_t rows,
                                int64_t cols, const int64_t* __restrict__ near_i,
                                const double* __restrict__ near_d,
                                const double* __restrict__ seco_d, int64_t k,
                                double* __restrict__ out) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  double* o = out + c * (k + 1);
  for (int64_t m = 0; m <= k; ++m) o[m] = 0.0;
  double acc = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const double x = D[r * ld + c];
    const double n = near_d[r], s = seco_d[r];
    const int64_t m = near_i[r];
    if (x < n) {
      acc += x - n;
      o[m] += n - s;
    } else if (x < s) {
      o[m] += x - s;
    }
  }
  o[k] = acc;
}

void fastpam_delta(std::uintptr_t D, int64_t ld, int64_t rows, int64_t cols,
                   std::uintptr_t near_i, std::uintptr_t near_d, std::uintptr_t seco_d,
                   int64_t k, std::uintptr_t out) {
  if (rows < 0 || cols < 0 || k < 1 || ld < cols)
    throw pybind11::value_error("kmedoids.fastpam_delta: bad shape");
  if (cols == 0) return;
  const int64_t blocks = (cols + kThreads - 1) / kThreads;
  k_fastpam_delta<<<static_cast<unsigned>(blocks), kThreads>>>(
      reinterpret_cast<const double*>(D), ld, rows, cols, reinterpret_cast<const int64_t*>(near_i),
      reinterpret_cast<const double*>(near_d), reinterpret_cast<const double*>(seco_d), k,
      reinterpret_cast<double*>(out));
  HPC_CUDA_CHECK(cudaGetLastError());
  HPC_CUDA_CHECK(cudaDeviceSynchronize());
}
}  // namespace

HPC_SUBMODULE(kmedoids) {
  m.doc() = "k-medoids ΔTD kernels (CUDA) on device pointers from CuPy";
  m.def("fastpam_delta", &fastpam_delta, pybind11::arg("D"), pybind11::arg("ld"),
        pybind11::arg("rows"), pybind11::arg("cols"), pybind11::arg("near_i"),
        pybind11::arg("near_d"), pybind11::arg("seco_d"), pybind11::arg("k"),
        pybind11::arg("out"));
}
