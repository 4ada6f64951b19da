// hpc._core.build_info(): how this extension (and its siblings) were built, recorded at
// configure time into a generated header (CMakeLists.txt: hpc_build_info.hpp), so a result
// record can say which compiler, flags and back ends produced the numbers.
#include <pybind11/pybind11.h>
#include <omp.h>

#include "hpc/registry.hpp"
#include "hpc_build_info.hpp"

namespace py = pybind11;

namespace {
bool on(const char* s) {
  const std::string v(s);
  return v == "1" || v == "ON" || v == "TRUE" || v == "YES";
}

py::dict build_info() {
  py::dict d;
  d["compiler"] = HPC_BI_COMPILER_ID;
  d["compiler_version"] = HPC_BI_COMPILER_VERSION;
  d["compiler_path"] = HPC_BI_COMPILER_PATH;
  d["build_type"] = HPC_BI_BUILD_TYPE;
  d["cxx_flags"] = HPC_BI_CXX_FLAGS;
  d["native_arch"] = on(HPC_BI_NATIVE_ARCH);
  d["openmp"] = true;
  d["openmp_spec"] = static_cast<long>(_OPENMP);  // yyyymm of the OpenMP standard
  d["cmake_version"] = HPC_BI_CMAKE_VERSION;
  d["pybind11_version"] = HPC_BI_PYBIND11_VERSION;
  py::dict ext;
  ext["_core"] = true;
  ext["_kokkos"] = on(HPC_BI_KOKKOS);
  ext["_cuda"] = on(HPC_BI_CUDA);
  d["extensions"] = ext;
  py::dict be;
  be["native"] = true;
  be["stdpar"] = on(HPC_BI_STDPAR);
  be["kokkos"] = on(HPC_BI_KOKKOS);
  be["cuda"] = on(HPC_BI_CUDA);
  d["backends"] = be;
  d["cuda_compiler_version"] = HPC_BI_CUDA_VERSION;
  d["cuda_architectures"] = HPC_BI_CUDA_ARCHS;
  return d;
}
}  // namespace

HPC_SUBMODULE(buildinfo) {
  m.doc() = "how the extensions were built (also hpc._core.build_info())";
  m.def("build_info", &build_info, "compiler, flags, back ends and CUDA architectures");
}
