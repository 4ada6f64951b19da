// Self-registration of kernel families into the one _core extension: each source file adds a
// submodule without touching a shared list, so a new family is one new file.
#pragma once
#include <pybind11/pybind11.h>
#include <string>
#include <utility>
#include <vector>

namespace hpc {
using Registrar = void (*)(pybind11::module_&);

inline std::vector<std::pair<std::string, Registrar>>& registrars() {
  static std::vector<std::pair<std::string, Registrar>> list;
  return list;
}

inline int add_registrar(const char* name, Registrar fn) {
  registrars().emplace_back(name, fn);
  return 0;
}
}  // namespace hpc

#define HPC_SUBMODULE(name)                                                         \
  static void hpc_register_##name(pybind11::module_& m);                            \
  [[maybe_unused]] static const int hpc_registered_##name =                         \
      ::hpc::add_registrar(#name, hpc_register_##name);                             \
  static void hpc_register_##name(pybind11::module_& m)
