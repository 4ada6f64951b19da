// The _cuda extension: device kernels for every workload; families register as in _core.
#include <cuda_runtime.h>
#include "hpc/registry.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "hpc CUDA kernels";
  m.def("device_count", []() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  });
  for (auto& [name, fn] : hpc::registrars()) {
    auto sub = m.def_submodule(name.c_str());
    fn(sub);
  }
}
