// One relaxed power-iteration step against the periodic tail of PageRank.
//
// The PageRank map G(x) = d P^T x + (teleport) has the eigenvalues of d P^T on its error, all
// in the disk |z| <= d. A periodic component (a bipartite one: a star, a path, a reciprocal
// pair; a directed cycle) puts eigenvalues on the circle |z| = d other than z = d itself, so
// its error decays only like d^k while the rest has long converged: GAP's Kronecker graph of
// scale 19 takes 64 Jacobi steps to an L1 change of 1e-10, 28 of them for one 3-vertex star
// (its giant component is done at 36). The relaxed step
//
//     x' = (d x + G(x)) / (1 + d),   error factor (d + z) / (1 + d),
//
// removes z = -d exactly, shrinks the other periodic roots (|d + z| < 2d) and contracts
// every mode (|d + z| / (1 + d) <= 2d / (1 + d) < 1); it keeps sum x. It costs a mode at
// z = +d (the mass between two closed classes) a factor 0.92 for that step instead of 0.85.
//
// The policy: a step is relaxed when the last two ratios of successive L1 changes (plain
// steps only) are both within 3% of d, the signature of a tail at rate d, once the change is
// below 1e-4 of the first step's (the asymptotic regime: early ratios can pass d by chance,
// and a solve to a loose tolerance keeps networkx's iterates exactly); the step after a
// relaxed one must then change by less than half d times the change before it, or the tail
// is a z = +d mode the relaxation cannot remove, and no step of this solve is relaxed again.
// Fed only with global changes, the decisions are the same on every rank and at any thread
// count. The stop stays networkx's rule on the Jacobi change of every step (a relaxed step
// measures |G(x) - x| before it relaxes).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace hpc {

class PeriodicRelax {
 public:
  explicit PeriodicRelax(double d = 0.85, bool enabled = true) { reset(d, enabled); }

  // A new solve with damping d (steps count from 1: next(change of step s) decides s + 1).
  void reset(double d, bool enabled = true) {
    d_ = d;
    on_ = enabled && d > 0.0 && d < 1.0;
    step_ = 0;
    last_ = -kGap;
    relaxed_ = 0;
    c_[0] = c_[1] = c_[2] = std::numeric_limits<double>::infinity();
    first_ = 0.0;
  }

  // The global L1 change of the step just done (the Jacobi change |G(x) - x| of its input);
  // returns whether the next step is relaxed.
  bool next(double change) {
    ++step_;
    c_[2] = c_[1];
    c_[1] = c_[0];
    c_[0] = change;
    if (step_ == 1) first_ = change;
    if (!on_) return false;
    // the first Jacobi change of the relaxed iterate against its input's
    if (step_ == last_ + 1 && !(c_[0] < kJudge * d_ * c_[1])) {
      on_ = false;
      return false;
    }
    if (step_ < last_ + kGap) return false;   // ratios of plain steps only
    if (!(c_[2] > 0.0) || !std::isfinite(c_[2]) || !(c_[1] > 0.0)) return false;
    if (!(c_[0] < kDeep * first_)) return false;
    const double q1 = c_[0] / c_[1], q2 = c_[1] / c_[2];
    if (std::fabs(q1 - d_) <= kBand * d_ && std::fabs(q2 - d_) <= kBand * d_) {
      last_ = step_ + 1;
      ++relaxed_;
      return true;
    }
    return false;
  }

  int64_t relaxed() const { return relaxed_; }
  bool enabled() const { return on_; }

 private:
  static constexpr double kBand = 0.03;    // a ratio within 3% of d: a tail at rate d
  static constexpr double kJudge = 0.5;    // a relaxed step that worked: below half of d
  static constexpr double kDeep = 1e-4;    // the asymptotic regime: change / first change
  // steps from a relaxed one (last) until the next may be: the changes of steps last + 1,
  // + 2, + 3 are those of the iterates last, last + 1, last + 2, whose two ratios span plain
  // steps only
  static constexpr int64_t kGap = 3;
  double d_ = 0.85;
  bool on_ = true;
  int64_t step_ = 0;
  int64_t last_ = -kGap;     // the step that relaxed last
  int64_t relaxed_ = 0;
  double c_[3];              // the last three changes, newest first
  double first_ = 0.0;       // the first step's change
};

}  // namespace hpc
