// A thread's run of output rows (column indices I and float64 values) staged in L1 and written
// to C's arrays in whole 64-byte lines with non-temporal stores.
//
// Why: where a product's working set (the per-column accumulator and B) exceeds L2, C's arrays
// written with plain stores are read in first (read-for-ownership) and push that working set
// out of L2 as they stream through it. In a standalone model of the one-pass kernel (100,000 x
// 100,000, 4 random columns a row, 1 thread) the rows took 18.4 ms with plain stores, 12.2 ms
// staged and streamed, 11.0 ms writing nothing; with everything in L2 (13,000 rows) streaming
// was 10% slower. In the kernel, denserows-100000 at 1 thread: 33-37 ms plain, 21-23 ms
// streamed. The kernel chooses it from the operands' sizes (spgemm_onepass.cpp: stream_pays)
// and where C's pages are in memory already (pages_resident).
//
// Positions are entries from the arrays' bases (any alignment of their element). Forward runs
// grow up from their start, Back runs down (the one-pass kernel's thread 0). Each array is
// streamed in the whole 64-byte lines of its own that lie inside the run; the partial lines at
// a run's ends are written with plain stores, so two threads' runs may meet inside a line.
// finish() ends with a store fence: call it before the threads synchronise.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace hpc {

// Whether most pages of [p, p + bytes) are in memory (mincore). Streaming pays only into
// pages already there (an array the heap hands back): a fresh page is zeroed by the kernel
// on its first store, which leaves its lines in cache for plain stores to fill, while
// non-temporal stores then write them to memory a second time. Measured, 1 thread, fresh
// pages every call (MALLOC_MMAP_THRESHOLD_=131072): streamed, denserows-100000 ran at 0.96x
// and rectangular-100000 at 0.87x the speed of plain stores (into resident pages: 1.5x, 1.35x).
inline bool pages_resident(const void* p, std::size_t bytes) {
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || bytes == 0) return false;
  const std::uintptr_t lo = reinterpret_cast<std::uintptr_t>(p) / std::uintptr_t(page) * std::uintptr_t(page);
  const std::uintptr_t hi = reinterpret_cast<std::uintptr_t>(p) + bytes;
  const std::size_t pages = (hi - lo + std::uintptr_t(page) - 1) / std::uintptr_t(page);
  std::vector<unsigned char> in(pages);
  if (mincore(reinterpret_cast<void*>(lo), hi - lo, in.data()) != 0) return false;
  std::size_t n = 0;
  for (unsigned char c : in) n += c & 1u;
  return 2 * n >= pages;
}

template <typename I, bool Back>
class StreamRows {
 public:
  static constexpr int64_t kCap = 1024;  // staged entries (12 KiB with int32 columns)
  static constexpr int64_t kLine = 16;   // the most entries of one array in a 64-byte line

  // on: stage and stream (false: every row written directly at its place)
  StreamRows(I* dc, double* dv, int64_t start, bool on)
      : dc_(dc), dv_(dv), e_(start), o_(start), fi_(start), fv_(start), on_(on) {}

  // Where the next row of at most `bound` entries goes, as onepass_row takes it (its start,
  // or where Back its end).
  std::pair<I*, double*> room(int64_t bound) {
    direct_ = !on_ || bound > kCap - kLine;
    if (!direct_ && held() + bound > kCap) flush();
    if (direct_) {
      drain();
      return {dc_ + e_, dv_ + e_};
    }
    const int64_t k = slot(e_);
    return {sc_ + k, sv_ + k};
  }

  // The row written at room() had len entries.
  void wrote(int64_t len) {
    e_ += Back ? -len : len;
    if (direct_) o_ = fi_ = fv_ = e_;
  }

  // Position past the run's last entry (Back: of its first).
  int64_t pos() const { return e_; }

  void finish() {
    drain();
#if defined(__SSE2__)
    if (on_) _mm_sfence();
#endif
  }

 private:
  I* dc_;
  double* dv_;
  int64_t e_;   // the run's end (Back: its lowest position)
  int64_t o_;   // the position at slot 0 (Back: at slot kCap)
  int64_t fi_;  // columns staged: [fi_, e_) (Back: [e_, fi_)); values likewise from fv_
  int64_t fv_;
  bool on_;
  bool direct_ = false;
  alignas(64) I sc_[kCap];
  alignas(64) double sv_[kCap];

  int64_t slot(int64_t p) const { return Back ? kCap - (o_ - p) : p - o_; }
  int64_t held() const { return Back ? o_ - e_ : e_ - o_; }

  // The positions p where a + p starts a 64-byte line (every 64 / sizeof(T)).
  template <typename T>
  static int64_t down(const T* a, int64_t p) {  // the greatest such position <= p
    const int64_t m = int64_t((reinterpret_cast<std::uintptr_t>(a + p) % 64) / sizeof(T));
    return p - m;
  }
  template <typename T>
  static int64_t up(const T* a, int64_t p) {  // the least such position >= p
    const int64_t d = down(a, p);
    return d == p ? p : d + 64 / int64_t(sizeof(T));
  }

  template <typename T>
  void plain(T* dst, const T* buf, int64_t lo, int64_t hi) {  // positions [lo, hi)
    if (hi > lo) std::memcpy(dst + lo, buf + slot(lo), sizeof(T) * std::size_t(hi - lo));
  }

  template <typename T>
  void line(T* dst, const T* buf, int64_t p) {  // the 64-byte line of dst starting at p
#if defined(__AVX512F__)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + p),
                        _mm512_loadu_si512(reinterpret_cast<const void*>(buf + slot(p))));
#elif defined(__SSE2__)
    const __m128i* src = reinterpret_cast<const __m128i*>(buf + slot(p));
    for (int u = 0; u < 4; ++u)
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + p) + u, _mm_loadu_si128(src + u));
#else
    plain(dst, buf, p, p + 64 / int64_t(sizeof(T)));
#endif
  }

  // One array's staged positions [lo, hi) written, but for a part of a line at the far end:
  // first the part before its first line boundary (plain stores; the written entries lie on
  // its other side), then whole lines (streamed). Returns the new end of the written part
  // (Back: its new low end).
  template <typename T>
  int64_t flush_one(T* dst, const T* buf, int64_t lo, int64_t hi) {
    constexpr int64_t u = 64 / int64_t(sizeof(T));
    if (Back) {
      int64_t p = std::max(down(dst, hi), lo);
      plain(dst, buf, p, hi);
      for (; p - u >= lo; p -= u) line(dst, buf, p - u);
      return p;
    }
    int64_t p = std::min(up(dst, lo), hi);
    plain(dst, buf, lo, p);
    for (; p + u <= hi; p += u) line(dst, buf, p);
    return p;
  }

  // Each array written but for under a line at the run's end; what stays staged moved to the
  // slots' origin (slot 0, Back: kCap).
  void flush() {
    if (Back) {
      fi_ = flush_one(dc_, sc_, e_, fi_);
      fv_ = flush_one(dv_, sv_, e_, fv_);
      const int64_t o = fi_ > fv_ ? fi_ : fv_;  // the highest position still staged + 1
      if (o == o_) return;
      std::memmove(sc_ + kCap - (o - e_), sc_ + slot(e_), sizeof(I) * std::size_t(o - e_));
      std::memmove(sv_ + kCap - (o - e_), sv_ + slot(e_), sizeof(double) * std::size_t(o - e_));
      o_ = o;
    } else {
      fi_ = flush_one(dc_, sc_, fi_, e_);
      fv_ = flush_one(dv_, sv_, fv_, e_);
      const int64_t o = fi_ < fv_ ? fi_ : fv_;  // the lowest position still staged
      if (o == o_) return;
      std::memmove(sc_, sc_ + slot(o), sizeof(I) * std::size_t(e_ - o));
      std::memmove(sv_, sv_ + slot(o), sizeof(double) * std::size_t(e_ - o));
      o_ = o;
    }
  }

  void drain() {  // everything staged written
    if (!on_) return;
    flush();
    if (Back) {
      plain(dc_, sc_, e_, fi_);
      plain(dv_, sv_, e_, fv_);
    } else {
      plain(dc_, sc_, fi_, e_);
      plain(dv_, sv_, fv_, e_);
    }
    o_ = fi_ = fv_ = e_;
  }
};

}  // namespace hpc
