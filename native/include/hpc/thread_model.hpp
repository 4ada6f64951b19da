// Thread count from measured costs: one thread where the work is below a parallel region's
// fixed cost. Used by the SpGEMM kernels (spgemm.cpp, spgemm_semiring.cpp).
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace hpc {

// A region's fixed cost at t threads: a fork/join and four barriers, measured once per t
// (minimum of 16 empty regions, so a preempted thread does not inflate it).
inline double region_overhead(int t) {
  static std::vector<double> cost(1024, -1.0);
  static std::mutex mu;
  if (t <= 1) return 0.0;
  std::lock_guard<std::mutex> g(mu);
  if (t >= int(cost.size())) return 0.0;
  if (cost[t] < 0) {
    double best = 1e30;
    for (int r = 0; r < 16; ++r) {
      const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(t)
      {
#pragma omp barrier
#pragma omp barrier
#pragma omp barrier
#pragma omp barrier
      }
      best = std::min(best, omp_get_wtime() - t0);
    }
    cost[t] = best;
  }
  return cost[t];
}

// One kernel's seconds per unit of work (a scalar product) on one thread, measured on this
// process's previous calls (time x threads / units, smoothed over calls); 0 before the first.
struct ThreadModel {
  std::atomic<double> rate{0.0};

  void record(double seconds, int threads, int64_t units) {
    if (units < 1024) return;  // timer resolution and fixed costs would dominate
    const double x = seconds * threads / double(units);
    const double old = rate.load(std::memory_order_relaxed);
    rate.store(old > 0 ? 0.75 * old + 0.25 * x : x, std::memory_order_relaxed);
  }

  // The t <= threads that minimises est x rate / t + region_overhead(t); before any call has
  // measured the rate, one thread (that call measures it).
  int choose(double est, int threads) const {
    const double r = rate.load(std::memory_order_relaxed);
    if (r <= 0 || threads <= 1) return 1;
    const double work = est * r;
    int best = 1;
    double best_t = work;
    for (int t = 2; t <= threads; ++t) {
      const double tt = work / t + region_overhead(t);
      if (tt < best_t) {
        best_t = tt;
        best = t;
      }
    }
    return best;
  }
};

}  // namespace hpc
