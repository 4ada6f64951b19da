// Thread count from measured call times: a kernel runs on the thread count that has been the
// fastest per unit of work on this process's previous calls of about the same size. Used by
// the SpGEMM kernels (spgemm.cpp, spgemm_semiring.cpp).
//
// Why measured per size and not predicted from an empty region's cost: a 2-thread call of a
// small product (ani4, dwt_992: 0.2-0.5 ms) was measured 2-10x SLOWER than the 1-thread call
// when the second core was busy (another process, or the spinning workers of another OpenMP
// runtime such as GraphBLAS's), while an empty region, timed back to back, cost ~2 us. Only
// the call itself shows what a second thread costs where it runs.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace hpc {

// A region's fixed cost at t threads: a fork/join and four barriers, measured once per t
// (minimum of 16 empty regions, so a preempted thread does not inflate it). Only the prior for
// a size that no call has measured yet (ThreadModel::choose).
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

// One kernel's thread choice. Calls are classed by the size of their work estimate (a power
// of two: log2 of the units); per class and thread count it keeps the seconds per unit of the
// calls made so (smoothed). The candidates are 1, 2, 4, ... and the thread limit; choose()
// returns the candidate with the least time per unit, trying each until it has two samples
// where a class has not measured it (the better of the two counts: a preempted first call
// must not decide alone), and now and then the one measured longest ago (so a choice made
// while the machine was busy is revisited). A class with no measurement at all
// takes the prior: est x (1-thread rate) / t + region_overhead(t).
//
// Forgetting (a choice learnt under contention must not outlive it). Two things made a
// choice stick: the losing candidate is not run, so its cell keeps the time measured under
// contention while the winner's is refreshed on every call; and when it was revisited, its
// fresh sample moved the cell by a quarter only (a cell at 10x needed ~8 revisits, hundreds
// of calls, to come back). Now (a) a cell's old value keeps the weight 0.75^age, where age is
// the class's calls since the cell's last sample (0.75 on consecutive calls, as before),
// (b) the stalest candidate is revisited when either this class has made kExplore x (its
// time / the best's) calls since, or the wall time since its last sample is kExplore x its
// expected call time (its time per unit x this call's units) and kMinGap calls: a retry
// then costs at most about 1 / kExplore of the calls' time or of the time passed, however
// slow it was and however rarely this class is called (a benchmark calls each product once
// per round of other kernels), and a product called rarely revisits on at most one call in
// kMinGap; (c) a revisit's sample replaces the cell's value (a retry that is itself
// preempted costs one more revisit, kExplore x its ratio later).
//
// Operands named by a key (choose/record with key != 0: their shapes and entry counts) also
// get a class of their own, used once it holds a measurement: repeated products of the same
// operands (a benchmark, a product of the same patterns with new values) then compare thread
// counts on those operands alone. In a size class alone, the cells of different thread counts
// may have last been measured on different matrices of unlike cost per unit (ani4 shares its
// class with uniform-2500, which costs about twice as much per estimated product), and a
// 2-thread cell left from the dearer matrix kept ani4 on one thread.
//
// `now` (seconds, omp_get_wtime() when negative) is a parameter only so that tests can replay
// a sequence of calls deterministically (spgemm_onepass.thread_model_replay).
struct ThreadModel {
  static constexpr int kExplore = 16;
  static constexpr int kFirst = 2;  // samples before a candidate counts as measured
  static constexpr int kMinGap = 4;  // calls between two revisits by wall time, at least

  struct Cell {
    double spu = 0;      // seconds per unit, smoothed; 0: not measured
    int64_t when = -1;   // the class's call count at the last measurement
    double at = 0;       // wall time of the last measurement
    int samples = 0;
    bool revisit = false;  // chosen as the stalest: its next sample replaces the old value
  };
  struct Class {
    int64_t calls = 0;
    std::unordered_map<int, Cell> cells;  // by thread count
  };

  static constexpr size_t kMaxKeys = 4096;  // the keyed classes are dropped beyond this

  std::mutex mu;
  std::unordered_map<int, Class> classes;  // by size class
  std::unordered_map<uint64_t, Class> keyed;  // by operand key
  double rate1 = 0;  // seconds per unit on one thread, over all classes (the prior)

  static int size_class(double units) {
    return units < 1 ? 0 : int(std::ilogb(units)) + 1;
  }

  static std::vector<int> candidates(int threads) {
    std::vector<int> c;
    for (int t = 1; t < threads; t *= 2) c.push_back(t);
    c.push_back(threads);
    return c;
  }

  // Mixes operand sizes into a key for choose/record (never 0).
  static uint64_t key_of(std::initializer_list<int64_t> sizes) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int64_t v : sizes) h = (h ^ uint64_t(v)) * 0xBF58476D1CE4E5B9ull + (h >> 29);
    return h | 1;
  }

  static void update(Class& k, int threads, double x, double now) {
    Cell& c = k.cells[threads];
    if (c.spu <= 0 || c.revisit) {
      c.spu = x;  // a first sample, or a revisit's: the old value says nothing about now
    } else if (c.samples < kFirst) {
      c.spu = std::min(c.spu, x);  // the first samples: the better one (noise only adds)
    } else {
      // Aged by the class's calls since this cell's last sample; a single outlier (a
      // preempted call) moves it at most 4x its weight.
      const int64_t age = std::min<int64_t>(std::max<int64_t>(1, k.calls - c.when), 64);
      const double keep = std::pow(0.75, double(age));
      c.spu = keep * c.spu + (1 - keep) * std::min(x, 4 * c.spu);
    }
    ++c.samples;
    c.revisit = false;
    c.when = k.calls;
    c.at = now;
  }

  // `units` and `key`: the same work estimate and key that were passed to choose().
  void record(double seconds, int threads, double units, uint64_t key = 0, double now = -1) {
    if (!(units >= 1) || !(seconds >= 0)) return;
    if (now < 0) now = omp_get_wtime();
    const double x = seconds / units;
    std::lock_guard<std::mutex> g(mu);
    update(classes[size_class(units)], threads, x, now);
    if (key) {
      if (keyed.size() >= kMaxKeys && !keyed.count(key)) keyed.clear();
      update(keyed[key], threads, x, now);
    }
    if (threads == 1) rate1 = rate1 > 0 ? 0.75 * rate1 + 0.25 * x : x;
  }

  int choose(double est, int threads, uint64_t key = 0, double now = -1) {
    if (threads <= 1) return 1;
    if (now < 0) now = omp_get_wtime();
    const std::vector<int> cand = candidates(threads);
    std::lock_guard<std::mutex> g(mu);
    if (key) {
      auto it = keyed.find(key);
      if (it != keyed.end() && !it->second.cells.empty()) return pick(it->second, cand, est, now);
    }
    return pick(classes[size_class(est)], cand, est, now);
  }

 private:
  int pick(Class& k, const std::vector<int>& cand, double est, double now) {
    const int64_t call = ++k.calls;
    int best = 0, unmeasured = 0, oldest = 0, fewest = kFirst;
    double best_spu = 0;
    int64_t oldest_when = INT64_MAX;
    for (int t : cand) {
      auto it = k.cells.find(t);
      if (it == k.cells.end() || it->second.spu <= 0) {
        if (fewest > 0) {
          fewest = 0;
          unmeasured = t;
        }
        continue;
      }
      const Cell& c = it->second;
      if (c.samples < fewest) {  // the candidate with the fewest samples is tried first
        fewest = c.samples;
        unmeasured = t;
      }
      if (!best || c.spu < best_spu) {
        best = t;
        best_spu = c.spu;
      }
      if (c.when < oldest_when) {
        oldest_when = c.when;
        oldest = t;
      }
    }
    if (!best) {  // nothing measured at this size: the prior (one thread before any rate)
      if (rate1 <= 0) return 1;
      const double work = est * rate1;
      int fastest = 1;
      double fastest_t = work;
      for (int t : cand) {
        const double tt = work / t + region_overhead(t);
        if (tt < fastest_t) {
          fastest_t = tt;
          fastest = t;
        }
      }
      return fastest;
    }
    if (unmeasured) return unmeasured;
    // Revisit the stalest candidate after kExplore x (its time / the best's) calls, or after
    // kExplore x its expected call time of wall time: a retry then costs at most about
    // 1 / kExplore of the calls' time or of the time passed, however slow it was.
    if (oldest != best) {
      const Cell& o = k.cells[oldest];
      const int64_t since = call - o.when;
      if (double(since) >= kExplore * (o.spu / best_spu) ||
          (since >= kMinGap && now - o.at >= kExplore * o.spu * std::max(est, 1.0))) {
        k.cells[oldest].revisit = true;
        return oldest;
      }
    }
    return best;
  }
};

}  // namespace hpc
