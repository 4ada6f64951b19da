// The _core extension: OpenMP kernels for every workload, each family in its own submodule.
#include <omp.h>
#include "hpc/registry.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "hpc native kernels (C++17, OpenMP)";
  m.def("omp_max_threads", []() { return omp_get_max_threads(); });
  m.def("omp_set_threads", [](int n) {
    if (n < 1) throw py::value_error("threads must be >= 1");
    omp_set_num_threads(n);
  });
#ifdef HPC_HAVE_STDPAR
  m.attr("has_stdpar") = true;
#else
  m.attr("has_stdpar") = false;
#endif
  for (auto& [name, fn] : hpc::registrars()) {
    auto sub = m.def_submodule(name.c_str());
    fn(sub);
  }
  // hpc._core.build_info(): the build_info.cpp submodule's function, at the top level
  if (py::hasattr(m, "buildinfo")) m.attr("build_info") = m.attr("buildinfo").attr("build_info");
}
