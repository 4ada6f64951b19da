// Edge weights of the 1D PageRank sweep stored narrower than doubles beside its SELL-4
// columns, each row sum multiplied by one scale: 16-bit integers ('int16') or floats
// ('values32' when the weights are floats themselves, 'scaled32' when floats times a scale).
// The layout is chosen from the weights' distinct values (measured, not assumed): the
// narrowest that holds every weight exactly (or, for decimal weights, within 2 ulp).
//
// Weights that none of these holds exactly (at most 256 distinct values: 'coded'; random
// doubles: 'values') can be swept in mixed precision with defect correction (assign_refined,
// as HPL-MxP refines a low-precision solve): the exact weights are kept ('coded' columns or
// doubles) and so are 16-bit integers times a power of two (or floats) rounding them; most
// sweeps ("cheap") read only the narrow weights and add a per-row correction c = (A - A_lo) x_r,
// made by an exact sweep from an earlier iterate x_r; exact sweeps (one each time the change
// has fallen by a measured factor since the last, and every sweep once the change is within
// kNear of tol) are the float64 Jacobi step and refresh c. The stop is only ever taken on an
// exact sweep's change: networkx's rule on the exact Jacobi residual (RefineSchedule).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/sell4.hpp"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace hpc {

// Which sweeps of a solve are exact when the weights are refined (ScaledWeights::refined):
// every one whose previous change c is below kNear * tol (so the sweep whose change stops the
// solve is always an exact Jacobi step), and one each time c has fallen below f times the
// change at the last refresh, f = kSafety times the contraction measured at the last refresh
// (the change of the correction over the iterate's move: see measured), at first from the
// rounding bound (ScaledWeights::rho_bound). Only a rank alone refines (Sweep::run_local: the
// cheap sweeps also need the iterate's total, which several ranks would have to reduce).
struct RefineSchedule {
  static constexpr double kNear = 1.25;     // > 1 / 0.85: one exact sweep before the stop
  static constexpr double kFmax = 0.03;     // at most this change drop between refreshes
  static constexpr double kFmin = 1e-8;
  static constexpr double kSafety = 30.0;   // refresh factor = kSafety * contraction
  // the refined sweep's contraction bound (ScaledWeights::cheap_ok) must be this far under
  // kFmax: the defect a refresh leaves (rho times the error then) stays a small part of it
  static constexpr double kRhoMax = kFmax / kSafety;
  bool enabled = false;      // solves follow the schedule (refined weights, a rank alone)
  bool first = true;         // no sweep since start
  bool refreshed = false;    // an exact sweep since start
  bool last_exact = true;    // the last sweep was exact (only then may its change stop)
  double at = std::numeric_limits<double>::infinity();   // change at the last refresh
  double f = kFmax;          // refresh when the change falls below f * at
  double since = 0.0;        // sum of the changes since the last refresh (>= |x - x_r|_1)
  double prev = std::numeric_limits<double>::infinity();   // the change before c
  int64_t exact = 0, cheap = 0;   // the sweeps since Sweep::start (Sweep::step_auto counts)

  // f0: the refresh factor before any measurement (from the contraction bound)
  void restart(double f0) {
    first = last_exact = true;
    refreshed = false;
    at = std::numeric_limits<double>::infinity();
    f = std::min(kFmax, std::max(kFmin, f0));
    since = 0.0;
    prev = std::numeric_limits<double>::infinity();
  }
  // Whether the next sweep is exact; c: the previous sweep's change. The first is cheap
  // (the correction starts at 0: as good as one made from the uniform start). Near the stop
  // the next change is predicted from the last ratio (c * c / prev): on kron:17:16 (0.34 a
  // sweep) the change went from 2.5 tol to 0.85 tol in one cheap sweep, which then could not
  // stop (23 sweeps against 22); a prediction too low costs an exact sweep, not a sweep.
  bool next(double c, double tol) {
    if (!enabled) return last_exact = true;
    if (first) {
      first = false;
      return last_exact = false;
    }
    since += c;
    if (!(at < std::numeric_limits<double>::infinity()) || last_exact) at = c;
    const double r = prev > 0.0 && prev < std::numeric_limits<double>::infinity() ? std::min(1.0, c / prev) : 1.0;
    prev = c;
    return last_exact = !(c * r >= kNear * tol) || c < at * f;
  }
  // After an exact sweep: dcorr = |change of the correction|_1 in x's units (d times the
  // change of A_lo x_r), over |x_r - x_r'|_1 (at most `since`; 1 = |x_r|_1 at the first,
  // whose previous correction was 0) gives the contraction measured along the iterates'
  // path, rho = dcorr / ((1 - d) |x_r - x_r'|): the next refresh factor is kSafety rho.
  void measured(double dcorr, double d) {
    const double dx = refreshed ? since : 1.0;
    refreshed = true;
    since = 0.0;
    if (dx > 0.0 && d < 1.0) f = std::min(kFmax, std::max(kFmin, kSafety * dcorr / ((1.0 - d) * dx)));
  }
};

class ScaledWeights {
 public:
  bool empty() const { return f_.empty() && h_.empty() && pk_.empty(); }
  // the factor every row sum takes (1: the stored values are the weights)
  double scale() const { return scale_; }
  // refined: the exact weights kept beside the narrow ones ('coded' or 'values')
  bool refined() const { return !corr_.empty(); }
  // the float weights in the SELL-4 order (values32 / scaled32, not packed; else empty)
  const std::vector<float>& floats() const { return f_; }
  std::string layout() const {
    if (refined()) return "values";
    return !h_.empty() || !pk_.empty() ? "int16" : f_.empty() ? "none" : scale_ == 1.0 ? "values32" : "scaled32";
  }
  // the narrow weights of the cheap sweeps of a refined layout ('none': not refined)
  std::string refine() const {
    return !refined() ? "none" : !h_.empty() || !pk_.empty() ? "int16" : "float32";
  }
  // largest relative rounding of a weight in the narrow layout (refined only)
  double eps() const { return eps_; }
  // Whether cheap sweeps may run at damping d: the bound on the contraction of the defect
  // correction, rho = ||(I - d A_lo)^-1 d (A - A_lo)||_1 <= d eps / (1 - d (1 + eps)) (every
  // column sum of A is at most 1, of A - A_lo at most eps times A's), below kRhoMax.
  bool cheap_ok(double d) const { return refined() && rho_bound(d) <= RefineSchedule::kRhoMax; }
  double rho_bound(double d) const { return rho_bound(d, eps_); }
  // the power of two that puts the largest weight wmax in [2^(bits-1), 2^bits) (roundings to
  // integers of at most `bits` bits; 16 by default)
  static double scale_bits(double wmax, int bits = 16) {
    int ex = 0;
    std::frexp(wmax, &ex);   // wmax = mant 2^ex, mant in [0.5, 1)
    double s = std::ldexp(1.0, ex - bits);
    if (std::nearbyint(wmax / s) > std::ldexp(1.0, bits) - 1.0) s *= 2.0;
    return s;
  }
  static double rho_bound(double d, double eps) {
    const double den = 1.0 - d * (1.0 + eps);
    return den > 0.0 ? d * eps / den : std::numeric_limits<double>::infinity();
  }
  // |change of the correction at the last exact sweep|_1, in units of the row sums (times
  // scale(): of the weights' row sums)
  double corr_change() const {
    double t = 0.0;
    for (const double v : dc_) t += v;
    return t * scale_;
  }
  // 'deltaD': the 16-bit weights packed with D-bit column deltas (pack16), else 'none'
  std::string packing() const { return pk_.empty() ? "none" : "delta" + std::to_string(dbits_); }
  // entries of the packed layout (jumps and padding included; 0: not packed)
  int64_t packed_entries() const { return pk_.empty() ? 0 : pstart_.back(); }
  void clear() {
    f_.clear();
    h_.clear();
    pk_.clear();
    pstart_.clear();
    pbase_.clear();
    v_.clear();
    etab_.clear();
    vp_.clear();
    corr_.clear();
    dc_.clear();
    scale_ = 1.0;
    eps_ = 0.0;
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

  // Weights no exact narrow layout holds (assign returned false; the caller keeps at most 256
  // distinct ones 'coded'), for defect correction: the exact ones as doubles ('values'), and
  // their rounding to integers of `bits` bits (16, or fewer: fewer weight bits leave the packed
  // words more delta bits, pack16) times a power of two (the scale that puts the largest weight
  // in [2^(bits-1), 2^bits)) where no weight rounds by more than kRhoMax allows at damping
  // 0.85, else (16 bits only) to floats (weights within the float range). false (and empty)
  // when neither, or HPC_PAGERANK_REFINE=0 (the A/B switch).
  bool assign_refined(const std::vector<double>& sv, const std::vector<double>& tab, int64_t nch,
                      int bits = 16) {
    clear();
    if (const char* e = std::getenv("HPC_PAGERANK_REFINE"); e && std::strcmp(e, "0") == 0) return false;
    if (tab.empty() || tab.front() < 0.0 || !std::isfinite(tab.back()) || !(tab.back() > 0.0)) return false;
    const auto max_rel = [&](auto round) {   // largest |w - round(w)| / w over the positive weights
      double m = 0.0;
      for (const double w : tab)
        if (w > 0.0) m = std::max(m, std::fabs(w - round(w)) / w);
      return m;
    };
    const double sb = scale_bits(tab.back(), bits);
    const double eb = max_rel([&](double w) { return std::nearbyint(w / sb) * sb; });
    const auto ok = [](double eps) {   // cheap_ok at damping 0.85
      return rho_bound(0.85, eps) <= RefineSchedule::kRhoMax;
    };
    const bool in_float = tab.back() <= 3.0e38 && [&] {
      for (const double w : tab)
        if (w > 0.0) return w >= 1.2e-38;
      return true;
    }();
    if (ok(eb)) {
      h_.resize(sv.size());
      for (size_t k = 0; k < sv.size(); ++k) h_[k] = static_cast<uint16_t>(std::nearbyint(sv[k] / sb));
      scale_ = sb;
      eps_ = eb;
    } else if (in_float && bits == 16) {
      const double e32 = max_rel([](double w) { return static_cast<double>(static_cast<float>(w)); });
      if (!ok(e32)) return false;
      f_.resize(sv.size());
      for (size_t k = 0; k < sv.size(); ++k) f_[k] = static_cast<float>(sv[k]);
      scale_ = 1.0;
      eps_ = e32;
    } else {
      return false;
    }
    v_ = sv;
    corr_.assign(static_cast<size_t>(4 * nch), 0.0);
    dc_.assign(static_cast<size_t>(nch), 0.0);
    return true;
  }

  // At most 256 distinct weights ('coded'), for defect correction with the exact weights in a
  // table: each weight gets its own 16-bit integer (its rounding as in assign_refined, moved
  // up past the one below where two would share one), so a packed word's 16-bit weight names
  // its exact weight (etab_: 2^16 doubles, of which the sweeps touch at most 256). The exact
  // sweeps then read the cheap sweeps' packed words (pack16, sums_exact_packed), no doubles.
  // false (and empty) where those integers round a weight by more than kRhoMax allows at
  // damping 0.85, or HPC_PAGERANK_REFINE=0.
  bool assign_table(const std::vector<double>& sv, const std::vector<double>& tab, int64_t nch) {
    clear();
    if (const char* e = std::getenv("HPC_PAGERANK_REFINE"); e && std::strcmp(e, "0") == 0) return false;
    if (tab.empty() || tab.size() > 256 || tab.front() < 0.0 || !std::isfinite(tab.back()) ||
        !(tab.back() > 0.0))
      return false;
    const double s16 = scale_bits(tab.back());
    std::vector<uint16_t> narrow(tab.size());
    double eps = 0.0;
    int64_t prev = -1;
    for (size_t c = 0; c < tab.size(); ++c) {   // tab ascending: the integers ascend too
      const int64_t r = std::max(static_cast<int64_t>(std::nearbyint(tab[c] / s16)), prev + 1);
      if (r > 65535 || (tab[c] == 0.0 && r != 0)) return false;
      if (tab[c] > 0.0) eps = std::max(eps, std::fabs(tab[c] - static_cast<double>(r) * s16) / tab[c]);
      narrow[c] = static_cast<uint16_t>(r);
      prev = r;
    }
    if (!(rho_bound(0.85, eps) <= RefineSchedule::kRhoMax)) return false;
    h_.resize(sv.size());
    for (size_t k = 0; k < sv.size(); ++k)
      h_[k] = narrow[static_cast<size_t>(std::lower_bound(tab.begin(), tab.end(), sv[k]) - tab.begin())];
    etab_.assign(65536, 0.0);
    for (size_t c = 0; c < tab.size(); ++c) etab_[narrow[c]] = tab[c];
    scale_ = s16;
    eps_ = eps;
    corr_.assign(static_cast<size_t>(4 * nch), 0.0);
    dc_.assign(static_cast<size_t>(nch), 0.0);
    return true;
  }

  // 16-bit weights (int16, exact or a refined layout's narrow ones) packed with their columns
  // into one 4-byte word an entry, as the unweighted sweep reads (the int16 layout reads 6: the
  // column and the weight): delta | weight << D, delta the column less the lane's previous
  // one, D = 32 less the bits of the largest weight (16 or more for a refined layout, 28 for
  // weights up to 15: 'deltaD'). Each row's entries are sorted by column and its first column is kept
  // in the chunk's base (4 columns a chunk, 4 bytes a row), so its first delta is 0; a gap of
  // 2^D or more takes jump entries (delta 2^D - 1, weight 0: a product 0 * x, x finite and
  // >= 0, that leaves the sum as it is), and a lane shorter than its chunk's longest ends in
  // (0, 0) entries.
  // sell: the SELL-4 columns (start, width, nch as the sweep's; padding = zero), the weights
  // h_. Packs only where the packed entries are at most max_growth times the SELL-4 ones
  // (measured on the input: jumps cost a word and a gather each); returns whether it packed.
  // The 16-bit weights in the SELL-4 order are then dropped. values_too (a refined layout's
  // doubles): the exact weights are moved into the packed order too (0 at jumps and padding),
  // so the exact sweeps read the packed words as the cheap ones do (sums_exact_packed).
  // HPC_PAGERANK_PACK16=0 turns it off (the A/B switch).
  // (Out of line: set-up code, kept from the inlining budget of the sweeps.)
  [[gnu::noinline]] bool pack16(const int32_t* sell, const int64_t* start, const int64_t* width,
                                int64_t nch, int32_t zero, double max_growth, bool values_too) {
    pk_.clear();
    pstart_.clear();
    pbase_.clear();
    if (h_.empty() || nch <= 0) return false;
    if (const char* e = std::getenv("HPC_PAGERANK_PACK16"); e && std::strcmp(e, "0") == 0) return false;
    uint32_t hmax = 1;
    for (const uint16_t v : h_) hmax = std::max<uint32_t>(hmax, v);
    int wbits = 0;
    while ((hmax >> wbits) != 0) ++wbits;
    const int dbits = std::min(31, 32 - wbits);
    const uint32_t dmax = (1u << dbits) - 1u;
    std::vector<int64_t> ps(static_cast<size_t>(nch) + 1, 0);
    std::vector<uint32_t> base(static_cast<size_t>(4 * nch), 0u);
    const bool vals = values_too && !v_.empty();
    std::vector<std::pair<uint32_t, int64_t>> lane;   // (column, SELL-4 entry)
    double* vout = nullptr;   // the exact weights in the packed order (vals)
    // lane j of chunk ch, sorted by column, as words: emit(l, word) for each (out != nullptr)
    // or only counted; returns its packed length
    const auto pack_lane = [&](int64_t ch, int j, uint32_t* out, int64_t ow) {
      lane.clear();
      for (int64_t l = 0; l < width[ch]; ++l) {
        const int64_t k = start[ch] + 4 * l + j;
        if (sell[k] != zero) lane.emplace_back(static_cast<uint32_t>(sell[k]), k);
      }
      std::stable_sort(lane.begin(), lane.end(),
                       [](const auto& u, const auto& v) { return u.first < v.first; });
      uint32_t prev = lane.empty() ? 0u : lane.front().first;
      base[4 * ch + j] = prev;
      int64_t l = 0;
      for (const auto& [c, k] : lane) {
        for (; c - prev > dmax; prev += dmax, ++l)
          if (out) out[4 * l + j] = dmax;
        if (out) {
          out[4 * l + j] = (c - prev) | (static_cast<uint32_t>(h_[k]) << dbits);
          if (vout) vout[4 * l + j] = v_[k];
        }
        prev = c;
        ++l;
      }
      if (out && l > ow) hpc::fail("ScaledWeights::pack16: a lane outgrew its chunk");
      return l;
    };
    for (int64_t ch = 0; ch < nch; ++ch) {
      int64_t w = 0;
      for (int j = 0; j < 4; ++j) w = std::max(w, pack_lane(ch, j, nullptr, 0));
      ps[ch + 1] = ps[ch] + 4 * w;
    }
    if (static_cast<double>(ps[nch]) > max_growth * static_cast<double>(start[nch])) return false;
    std::vector<uint32_t> pk(static_cast<size_t>(ps[nch]), 0u);
    std::vector<double> vp(vals ? static_cast<size_t>(ps[nch]) : 0u, 0.0);
    for (int64_t ch = 0; ch < nch; ++ch) {
      vout = vals ? vp.data() + ps[ch] : nullptr;
      for (int j = 0; j < 4; ++j) pack_lane(ch, j, pk.data() + ps[ch], (ps[ch + 1] - ps[ch]) / 4);
    }
    pk_.swap(pk);
    pstart_.swap(ps);
    pbase_.swap(base);
    dbits_ = dbits;
    std::vector<uint16_t>().swap(h_);
    if (vals) {
      vp_.swap(vp);
      std::vector<double>().swap(v_);
    }
    return true;
  }

  // The four row sums (before the scale) of the chunk whose entries start at entry off; q its
  // columns. One branch a chunk, taken the same way every time.
  void sums(int64_t off, const int32_t* q, int64_t width, const double* x, double s[4]) const {
    if (!h_.empty()) sell4_chunk_sums_u16(q, h_.data() + off, width, x, s);
    else sell4_chunk_sums_fma(q, f_.data() + off, width, x, s);
  }
  // The same for chunk ch, plus the correction of a refined layout (a cheap sweep). Packed
  // ('delta16'): the chunk's own entries, column deltas and weights in one 4-byte word.
  void sums(int64_t ch, int64_t off, const int32_t* q, int64_t width, const double* x, double s[4]) const {
    if (!pk_.empty())
      sums_delta(pk_.data() + pstart_[ch], pbase_.data() + 4 * ch, (pstart_[ch + 1] - pstart_[ch]) / 4,
                 dbits_, x, s);
    else sums(off, q, width, x, s);
    if (!corr_.empty()) {
      const double* c = corr_.data() + 4 * ch;
      s[0] += c[0];
      s[1] += c[1];
      s[2] += c[2];
      s[3] += c[3];
    }
  }
  // An exact sweep's row sums of chunk ch (refined layouts): the float64 sums of the exact
  // weights, in the order of sell4_chunk_sums<true> (so the same bits as the 'values' sweep),
  // divided by the scale (a power of two or 1: exact), and
  // the chunk's correction: those sums less the narrow weights' sums (one pass, one gather an
  // entry for both).
  void sums_exact(int64_t ch, int64_t off, const int32_t* q, int64_t width, const double* x, double s[4]) {
    double e[4], h[4];
    if (!h_.empty()) exact_values_u16(v_.data() + off, h_.data() + off, q, width, x, e, h);
    else exact_values(v_.data() + off, f_.data() + off, q, width, x, e, h);
    refresh(ch, e, h, s);
  }

  bool exact_table() const { return !etab_.empty(); }
  // A refined layout's correction back to 0, as made: every solve from the same start then
  // runs the same sweeps (a solve after another had kept the last one's, and took 24-26
  // sweeps where the first took 22: kron:17:16).
  void reset_correction() {
    std::fill(corr_.begin(), corr_.end(), 0.0);
    std::fill(dc_.begin(), dc_.end(), 0.0);
  }
  // An exact sweep's row sums of chunk ch of a refined layout read from the packed words
  // (pack16 with values_too, or assign_table): the exact weights' sums and the 16-bit ones',
  // one gather of x an entry for both. Jumps and padding weigh 0 in both.
  void sums_exact_packed(int64_t ch, const double* x, double s[4]) {
    double e[4], h[4];
    if (!etab_.empty()) packed_exact<true>(ch, etab_.data(), x, e, h);
    else packed_exact<false>(ch, vp_.data() + pstart_[ch], x, e, h);
    refresh(ch, e, h, s);
  }
  bool exact_packed() const { return !etab_.empty() || !vp_.empty(); }

 private:
  // Table: the exact weight of an entry is ev[its 16-bit weight]; else ev[its packed position].
  template <bool Table>
  void packed_exact(int64_t ch, const double* ev, const double* x, double e[4], double h[4]) const {
    const uint32_t* p = pk_.data() + pstart_[ch];
    const int64_t width = (pstart_[ch + 1] - pstart_[ch]) / 4;
    const uint32_t dmask = (1u << dbits_) - 1u;
    const int dbits = dbits_;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d ea = _mm256_setzero_pd(), ha = _mm256_setzero_pd();
    __m128i col = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pbase_.data() + 4 * ch));
    const __m128i lo = _mm_set1_epi32(static_cast<int>(dmask)), sh = _mm_set1_epi32(dbits);
    for (int64_t l = 0; l < width; ++l, p += 4) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      col = _mm_add_epi32(col, _mm_and_si128(v, lo));
      const __m128i w = _mm_srlv_epi32(v, sh);
      const __m256d xv = gather4(x, col);
      __m256d ew;
      if constexpr (Table) ew = gather4(ev, w);
      else ew = _mm256_loadu_pd(ev + 4 * l);
      ea = _mm256_fmadd_pd(ew, xv, ea);
      ha = _mm256_fmadd_pd(_mm256_cvtepi32_pd(w), xv, ha);
    }
    _mm256_storeu_pd(e, ea);
    _mm256_storeu_pd(h, ha);
#else
    const uint32_t* b = pbase_.data() + 4 * ch;
    uint32_t c[4] = {b[0], b[1], b[2], b[3]};
    double es[4] = {0.0, 0.0, 0.0, 0.0}, hs[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t l = 0; l < width; ++l, p += 4)
      for (int j = 0; j < 4; ++j) {
        c[j] += p[j] & dmask;
        const uint32_t w = p[j] >> dbits;
        const double xj = x[c[j]];
        es[j] = mul_add(Table ? ev[w] : ev[4 * l + j], xj, es[j]);
        hs[j] = mul_add(static_cast<double>(w), xj, hs[j]);
      }
    for (int j = 0; j < 4; ++j) e[j] = es[j], h[j] = hs[j];
#endif
  }

  // s = the exact sums over the scale (a power of two or 1: exact), the chunk's correction
  // c = s - h (h: the narrow weights' sums) and |its change| kept for corr_change.
  void refresh(int64_t ch, const double e[4], const double h[4], double s[4]) {
    const double inv = 1.0 / scale_;
    double* c = corr_.data() + 4 * ch;
    double dc = 0.0;
    for (int j = 0; j < 4; ++j) {
      s[j] = e[j] * inv;
      const double cn = s[j] - h[j];
      dc += std::fabs(cn - c[j]);
      c[j] = cn;
    }
    dc_[ch] = dc;
  }

  // The four row sums of a packed chunk (pack16): the columns kept in one register, each
  // entry's delta added, its weight converted in registers (as hpc::sell4_chunk_sums_u16).
  static void sums_delta(const uint32_t* p, const uint32_t* base, int64_t width, int dbits,
                         const double* x, double s[4]) {
    const uint32_t dmask = (1u << dbits) - 1u;
#if defined(__AVX2__)
    // the four columns stay in the register the gather takes (no move to general registers)
    __m256d a = _mm256_setzero_pd();
    __m128i col = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base));
    const __m128i lo = _mm_set1_epi32(static_cast<int>(dmask)), sh = _mm_set1_epi32(dbits);
    for (int64_t l = 0; l < width; ++l, p += 4) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      col = _mm_add_epi32(col, _mm_and_si128(v, lo));
      const __m256d xv = gather4(x, col);
      a = _mm256_add_pd(a, _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_srlv_epi32(v, sh)), xv));
    }
    _mm256_storeu_pd(s, a);
#elif defined(__SSE2__)
    __m128d a = _mm_setzero_pd(), b = _mm_setzero_pd();
    __m128i col = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base));
    const __m128i lo = _mm_set1_epi32(static_cast<int>(dmask)), sh = _mm_cvtsi32_si128(dbits);
    for (int64_t l = 0; l < width; ++l, p += 4) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      col = _mm_add_epi32(col, _mm_and_si128(v, lo));
      const auto p01 = static_cast<uint64_t>(_mm_cvtsi128_si64(col));
      const auto p23 = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(col, col)));
      const Sse2Quad o = sse2_quad(_mm_srl_epi32(v, sh), p01, p23, x);
      a = _mm_add_pd(a, _mm_mul_pd(o.w01, o.x01));
      b = _mm_add_pd(b, _mm_mul_pd(o.w23, o.x23));
    }
    _mm_storeu_pd(s, a);
    _mm_storeu_pd(s + 2, b);
#else
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    uint32_t c0 = base[0], c1 = base[1], c2 = base[2], c3 = base[3];
    for (int64_t l = 0; l < width; ++l, p += 4) {
      c0 += p[0] & dmask, c1 += p[1] & dmask, c2 += p[2] & dmask, c3 += p[3] & dmask;
      s0 += static_cast<double>(p[0] >> dbits) * x[c0];
      s1 += static_cast<double>(p[1] >> dbits) * x[c1];
      s2 += static_cast<double>(p[2] >> dbits) * x[c2];
      s3 += static_cast<double>(p[3] >> dbits) * x[c3];
    }
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
#endif
  }
  // exact_values with 16-bit narrow weights, in SSE2 as hpc::sell4_chunk_sums_u16 (a scalar
  // conversion an entry doubled the exact sweep's time); the same sums.
  static void exact_values_u16(const double* v, const uint16_t* nv, const int32_t* q, int64_t width,
                               const double* x, double e[4], double h[4]) {
#if defined(__SSE2__)
    __m128d ea = _mm_setzero_pd(), eb = _mm_setzero_pd(), ha = _mm_setzero_pd(), hb = _mm_setzero_pd();
    const __m128i z = _mm_setzero_si128();
    for (int64_t l = 0; l < width; ++l, q += 4, v += 4, nv += 4) {
      uint64_t p01, p23;
      std::memcpy(&p01, q, 8);
      std::memcpy(&p23, q + 2, 8);
      const __m128i m = _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(nv)), z);
      const Sse2Quad o = sse2_quad(m, p01, p23, x);
      ea = _mm_add_pd(ea, _mm_mul_pd(_mm_loadu_pd(v), o.x01));
      eb = _mm_add_pd(eb, _mm_mul_pd(_mm_loadu_pd(v + 2), o.x23));
      ha = _mm_add_pd(ha, _mm_mul_pd(o.w01, o.x01));
      hb = _mm_add_pd(hb, _mm_mul_pd(o.w23, o.x23));
    }
    _mm_storeu_pd(e, ea);
    _mm_storeu_pd(e + 2, eb);
    _mm_storeu_pd(h, ha);
    _mm_storeu_pd(h + 2, hb);
#else
    exact_values(v, nv, q, width, x, e, h);
#endif
  }
  template <typename N>
  static void exact_values(const double* v, const N* nv, const int32_t* q, int64_t width,
                           const double* x, double e[4], double h[4]) {
    double e0 = 0.0, e1 = 0.0, e2 = 0.0, e3 = 0.0, h0 = 0.0, h1 = 0.0, h2 = 0.0, h3 = 0.0;
    for (int64_t l = 0; l < width; ++l, q += 4, v += 4, nv += 4) {
      const double x0 = x[q[0]], x1 = x[q[1]], x2 = x[q[2]], x3 = x[q[3]];
      e0 += v[0] * x0;
      e1 += v[1] * x1;
      e2 += v[2] * x2;
      e3 += v[3] * x3;
      h0 += static_cast<double>(nv[0]) * x0;
      h1 += static_cast<double>(nv[1]) * x1;
      h2 += static_cast<double>(nv[2]) * x2;
      h3 += static_cast<double>(nv[3]) * x3;
    }
    e[0] = e0, e[1] = e1, e[2] = e2, e[3] = e3;
    h[0] = h0, h[1] = h1, h[2] = h2, h[3] = h3;
  }
  std::vector<float> f_;      // floats (values32 / scaled32; refined: float32)
  std::vector<uint16_t> h_;   // or 16-bit integers (int16)
  std::vector<uint32_t> pk_;  // or the 16-bit weights packed with column deltas (pack16)
  std::vector<int64_t> pstart_;   // ... each chunk's first packed entry
  std::vector<uint32_t> pbase_;   // ... and the first column of each of its rows
  int dbits_ = 16;                // ... the bits of a delta (the weight's above them)
  std::vector<double> v_;     // refined: the exact weights as doubles
  std::vector<double> etab_;  // or (assign_table) the exact weight of each 16-bit one
  std::vector<double> vp_;    // or (pack16 values_too) the doubles in the packed order
  std::vector<double> corr_;  // refined: the correction of each row (4 a chunk), in 1 / scale
  std::vector<double> dc_;    // |change of the correction| of each chunk at its last exact sweep
  double scale_ = 1.0;
  double eps_ = 0.0;
};

}  // namespace hpc
