// A malloc'd block handed to NumPy: the array views n elements from p, inside the block at
// base, and frees the block when it goes. (A freed chunk raises glibc's mmap threshold to its
// size, so a kernel's next output of that size comes from the heap with its pages present;
// NumPy's own allocation of a large array is mapped afresh each call.)
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace hpc {

// Advises the 2 MiB pages inside a block of 4 MiB or more onto transparent huge pages, as
// NumPy does for its large arrays: with THP 'madvise' (many distributions' default) a fresh
// block over glibc's largest mmap threshold (32 MiB) is mapped anew each call and faulted in
// 4 KiB at a time (uniform-100000's 51 MB of product values: 12,500 faults, 28 ms of system
// time in a 140 ms product on one thread). Advice only: where it is refused nothing changes.
inline void advise_huge(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  if (p == nullptr || bytes < (size_t(4) << 20)) return;
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (e > a) (void)madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

// malloc of max(n, 1) T's for an output block (later handed to NumPy by owned, or freed);
// nullptr where malloc fails. huge: advise_huge, for a block one thread fills. Measured
// (uniform- and unsymmetric-100000, C = A A, 5 interleaved rounds): one thread 70 against 86
// and 55 against 66 ms, but two threads filling one block (they start where their rows meet)
// stalled in some calls (72-119 against 42-48 ms): a huge page is zeroed whole at its first
// touch while the other thread's touch of it waits, and a fragmented heap compacts first.
template <typename T>
T* out_alloc(int64_t n, bool huge) {
  const size_t bytes = sizeof(T) * static_cast<size_t>(std::max<int64_t>(n, 1));
  void* p = std::malloc(bytes);
  if (huge) advise_huge(p, bytes);
  return static_cast<T*>(p);
}

template <typename T>
pybind11::array_t<T, pybind11::array::c_style> owned(T* base, T* p, int64_t n) {
  pybind11::capsule owner(base, [](void* q) { std::free(q); });
  return pybind11::array_t<T, pybind11::array::c_style>(
      {static_cast<pybind11::ssize_t>(n)}, {static_cast<pybind11::ssize_t>(sizeof(T))}, p, owner);
}

}  // namespace hpc
