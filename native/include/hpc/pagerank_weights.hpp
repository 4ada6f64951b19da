// Edge weights of the 1D PageRank sweep stored narrower than doubles beside its SELL-4
// columns, each row sum multiplied by one scale: 16-bit integers ('int16') or floats
// ('values32' when the weights are floats themselves, 'scaled32' when floats times a scale).
// The layout is chosen from the weights' distinct values (measured, not assumed): the
// narrowest that holds every weight exactly (or, for decimal weights, within 2 ulp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpc/sell4.hpp"

namespace hpc {

class ScaledWeights {
 public:
  bool empty() const { return f_.empty() && h_.empty(); }
  // the factor every row sum takes (1: the stored values are the weights)
  double scale() const { return scale_; }
  std::string layout() const {
    return !h_.empty() ? "int16" : f_.empty() ? "none" : scale_ == 1.0 ? "values32" : "scaled32";
  }
  void clear() {
    f_.clear();
    h_.clear();
    scale_ = 1.0;
  }

  // sv: one weight per SELL-4 entry (padding 0); tab: its distinct values, sorted. Keeps them
  // as integers below 2^16 times one scale where there is one (hpc::sell4_int_scale: 2 bytes an
  // entry), else as floats times one scale (hpc::sell4_float_scale: 4 bytes); false (and empty)
  // when neither holds them.
  bool assign(const std::vector<double>& sv, const std::vector<double>& tab) {
    clear();
    double scale = sell4_int_scale(tab, 65536.0);
    if (scale > 0.0) {
      h_.resize(sv.size());
      for (size_t k = 0; k < sv.size(); ++k)
        h_[k] = static_cast<uint16_t>(std::nearbyint(sv[k] / scale));
      scale_ = scale;
      return true;
    }
    scale = sell4_float_scale(tab);
    if (scale > 0.0) {
      f_.resize(sv.size());
      for (size_t k = 0; k < sv.size(); ++k)
        f_[k] = static_cast<float>(scale == 1.0 ? sv[k] : std::nearbyint(sv[k] / scale));
      scale_ = scale;
      return true;
    }
    return false;
  }

  // The four row sums (before the scale) of the chunk whose entries start at entry off; q its
  // columns. One branch a chunk, taken the same way every time.
  void sums(int64_t off, const int32_t* q, int64_t width, const double* x, double s[4]) const {
    if (!h_.empty()) sell4_chunk_sums_u16(q, h_.data() + off, width, x, s);
    else sell4_chunk_sums<true, float>(q, f_.data() + off, width, x, s);
  }

 private:
  std::vector<float> f_;      // floats (values32 / scaled32)
  std::vector<uint16_t> h_;   // or 16-bit integers (int16)
  double scale_ = 1.0;
};

}  // namespace hpc
