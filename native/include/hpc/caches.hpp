// This machine's cache sizes, read once (one home for the kernels that size their work by them).
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace hpc {

// Cache sizes of this machine (bytes), read once: sysfs, else sysconf, else 32 KiB / 1 MiB /
// 32 MiB. They bound the SpGEMM kernels' accumulators (spgemm.cpp: choose_bin, dense_fits)
// and the one-pass kernel's choice of streamed stores (spgemm_onepass.cpp: stream_pays).
struct Caches {
  int64_t l1 = 32 << 10, l2 = 1 << 20, l3 = 32 << 20;
  int64_t l3_share = 16 << 20;  // l3 / the CPUs that share it (sysfs shared_cpu_list)
};

// CPUs in a sysfs list such as "0-7,16-23"; 0 when unreadable.
inline int64_t count_cpus(const std::string& list) {
  int64_t n = 0;
  size_t i = 0;
  while (i < list.size()) {
    size_t e = list.find(',', i);
    if (e == std::string::npos) e = list.size();
    const std::string part = list.substr(i, e - i);
    const size_t dash = part.find('-');
    if (dash == std::string::npos) n += 1;
    else n += std::atoll(part.c_str() + dash + 1) - std::atoll(part.c_str()) + 1;
    i = e + 1;
  }
  return n;
}

inline int64_t sysfs_l3_sharing() {
  for (int idx = 0; idx < 8; ++idx) {
    const std::string d = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/";
    std::ifstream lv(d + "level"), sh(d + "shared_cpu_list");
    int l = 0;
    std::string list;
    if (!(lv >> l)) break;
    if (l == 3 && (sh >> list)) return count_cpus(list);
  }
  return 0;
}

inline int64_t sysfs_cache(int level) {
  for (int idx = 0; idx < 8; ++idx) {
    const std::string d = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/";
    std::ifstream lv(d + "level"), ty(d + "type"), sz(d + "size");
    int l = 0;
    std::string type, size;
    if (!(lv >> l) || !(ty >> type) || !(sz >> size)) break;
    if (l != level || type == "Instruction" || size.empty()) continue;
    int64_t v = std::atoll(size.c_str());
    const char u = size.back();
    if (u == 'K') v <<= 10;
    else if (u == 'M') v <<= 20;
    return v;
  }
  return 0;
}

inline const Caches& caches() {
  static const Caches c = [] {
    Caches r;
    const int names[3] = {_SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL2_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE};
    int64_t* out[3] = {&r.l1, &r.l2, &r.l3};
    for (int l = 0; l < 3; ++l) {
      int64_t v = sysfs_cache(l + 1);
      if (v <= 0) v = sysconf(names[l]);
      if (v > 0) *out[l] = v;
    }
    int64_t sharing = sysfs_l3_sharing();
    if (sharing <= 0) sharing = std::max<int64_t>(1, sysconf(_SC_NPROCESSORS_ONLN));
    r.l3_share = r.l3 / sharing;
    return r;
  }();
  return c;
}

}  // namespace hpc
