// Matrix Market coordinate entry lines, parsed strictly in one pass: every line holds exactly
// k numerals ("row col [value]") between blanks, indices in range, values finite. Any other
// line makes the whole call return None, and the Python reader's exact parser names the line
// and the fault, so this parser only has to be right about what it accepts. One pass replaces
// fast_matrix_market plus the byte checks that make its prefix parsing safe.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;

inline bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
inline bool digit(char c) { return c >= '0' && c <= '9'; }

// The leading decimal digits of the 8 bytes at p (all readable), at most 8: how many, and
// their value in `value`. SWAR (as fast_float): one 8-byte load, the first non-digit byte
// found by a mask, the digits combined in three multiplies; a loop over the digits of a
// typical value ("-1115853.26223": two runs) paid a dependent multiply-add and a
// mispredicted exit per run.
inline int swar_digits(const char* p, uint64_t& value) {
  constexpr uint64_t kHi = 0xF0F0F0F0F0F0F0F0ull, kZeros = 0x3030303030303030ull;
  uint64_t w;
  std::memcpy(&w, p, 8);  // little-endian (x86-64, AArch64): p[0] is the low byte
  // a byte is a digit iff its high nibble is 3 and adding 6 keeps it 3 (bytes below the
  // first non-digit are digits, so no carry reaches that one)
  const uint64_t non = ((w & kHi) ^ kZeros) | (((w + 0x0606060606060606ull) & kHi) ^ kZeros);
  const int n = non ? __builtin_ctzll(non) >> 3 : 8;
  if (n == 0) return 0;
  // digit values, shifted up so the n digits are the last of eight (leading zeros before)
  uint64_t d = (w - kZeros) << (8 * (8 - n));
  d = d * 10 + (d >> 8);
  d = (((d & 0x000000FF000000FFull) * 0x000F424000000064ull) +
       (((d >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >> 32;
  value = d;
  return n;
}

constexpr uint64_t kPow10u[] = {1,      10,      100,      1000,     10000,
                                100000, 1000000, 10000000, 100000000};

// Decimal digits, at most 18 (no overflow possible): a longer numeral goes to the exact parser.
inline const char* parse_digits(const char* p, const char* e, int64_t& out) {
  if (e - p >= 8) {  // the usual index: fewer than 8 digits, read at once
    uint64_t v = 0;
    const int n = swar_digits(p, v);
    if (n == 0) return nullptr;
    if (n < 8) {
      out = int64_t(v);
      return p + n;
    }
  }
  const char* s = p;
  int64_t v = 0;
  while (p < e && digit(*p) && p - s < 19) v = v * 10 + (*p++ - '0');
  if (p == s || p - s > 18) return nullptr;
  out = v;
  return p;
}

// An index: optionally '+'-signed digits.
inline const char* parse_index(const char* p, const char* e, int64_t& out) {
  if (p < e && *p == '+') ++p;
  return parse_digits(p, e, out);
}

// An optionally signed decimal integer, as a double ('integer' field).
inline const char* parse_integer(const char* p, const char* e, double& out) {
  bool neg = false;
  if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
  int64_t v = 0;
  if (!(p = parse_digits(p, e, v))) return nullptr;
  out = neg ? -double(v) : double(v);
  return p;
}

// The exact powers of ten a double holds (10^22 < 2^53 * 2^22: all exact).
constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Clinger's fast path: "[-]digits[.digits][(e|E)[+-]digits]" whose digits make an integer
// m <= 2^53 and whose decimal exponent q has |q| <= 22 is m * 10^q or m / 10^-q, both exact
// operands, so one IEEE operation rounds it correctly: the value std::from_chars gives. Only
// taken when the numeral ends at a blank, a newline or the end (where from_chars would stop
// too); anything else returns nullptr and goes to from_chars. Most matrix files' values
// (up to 15-16 significant digits, small exponents) take it: from_chars was half the parse.
inline const char* parse_real_fast(const char* p, const char* e, double& out) {
  const bool neg = p < e && *p == '-';
  p += neg;
  uint64_t m = 0;  // wraps on a numeral of over 19 digits (unsigned: defined), then refused
  int digits = 0, frac = 0;
  auto run = [&](int& count) {  // a run of digits into m, 8 at a time where 8 bytes remain
    while (e - p >= 8) {
      uint64_t v = 0;
      const int n = swar_digits(p, v);
      m = m * kPow10u[n] + v;
      p += n;
      count += n;
      if (n < 8) return;
    }
    while (p < e && digit(*p)) m = m * 10 + uint64_t(*p++ - '0'), ++count;
  };
  run(digits);
  if (p < e && *p == '.') {
    ++p;
    int before = digits;
    run(digits);
    frac = digits - before;
  }
  if (digits == 0 || digits > 19) return nullptr;  // no digit, or m may have overflowed
  int q = -frac;
  if (p < e && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool eneg = p < e && *p == '-';
    if (p < e && (*p == '-' || *p == '+')) ++p;
    int x = 0, xd = 0;
    while (p < e && digit(*p) && xd < 4) x = x * 10 + (*p++ - '0'), ++xd;
    if (xd == 0 || (p < e && digit(*p))) return nullptr;
    q += eneg ? -x : x;
  }
  if (p < e && !blank(*p) && *p != '\n') return nullptr;
  if (m > (uint64_t(1) << 53) || q < -22 || q > 22) return nullptr;
  const double v = q >= 0 ? double(m) * kPow10[q] : double(m) / kPow10[-q];
  out = neg ? -v : v;
  return p;
}

// A decimal floating-point numeral ('real' field): std::from_chars, which takes no '+'.
inline const char* parse_real(const char* p, const char* e, double& out) {
  if (p < e && *p == '+') {
    ++p;
    if (p == e || *p == '-' || *p == '+') return nullptr;
  }
  if (const char* q = parse_real_fast(p, e, out)) return q;
  auto [q, ec] = std::from_chars(p, e, out, std::chars_format::general);
  if (ec != std::errc() || !std::isfinite(out)) return nullptr;  // 'inf', 'nan', 1e999
  return q;
}

// The rank whose rows [roff[q], roff[q+1]) hold row r (roff checked: 0 .. rows, non-decreasing).
// Few ranks: a branch-free count of the starts at or below r (a binary search's branches
// mispredict on rows that alternate between owners: 4 lookups an entry at 2 ranks were
// 0.17 ms of a 1.3 ms range).
inline int owner_of(const int64_t* roff, int p, int64_t r) {
  if (p <= 8) {
    int q = 0;
    for (int k = 1; k < p; ++k) q += int(r >= roff[k]);
    return q;
  }
  return int(std::upper_bound(roff + 1, roff + p + 1, r) - (roff + 1));
}

// Where the entries go and what their order proves, gathered while parsing (no second pass):
// `count[q]`, the rows (mirrors included) rank q owns, when a router is given; the order
// stats of order_of below.
struct Route {
  const int64_t* roff = nullptr;  // null: no routing
  int p = 1;
  bool mirror = false;            // symmetric storage: every off-diagonal entry also as (c, r)
  int64_t rows = 0, cols = 0;
};

struct Part {
  std::vector<int64_t> i, j;
  std::vector<double> v;
  std::vector<int64_t> count;  // per owner rank (Route), mirrors included
  bool ok = true;
  // order stats (see order_of): row-major / column-major keys strictly increasing, triangle
  bool any = false, rm = true, cm = true, lower = true, upper = true;
  int64_t f_rm = 0, l_rm = 0, f_cm = 0, l_cm = 0;
  void reset(int p) {
    i.clear();
    j.clear();
    v.clear();
    count.assign(std::size_t(p), 0);
    ok = true;
    any = false;
    rm = cm = lower = upper = true;
    f_rm = l_rm = f_cm = l_cm = 0;
  }
  std::size_t bytes() const {
    return (i.capacity() + j.capacity() + count.capacity()) * sizeof(int64_t) +
           v.capacity() * sizeof(double);
  }
};

// The parser's vectors kept from one call to the next. Fresh ones cost a page fault per 4 KiB
// first touched (a 0.5 MB range, 2 ranks: ~390 faults, parse_route 2.4 -> 1.4 ms of CPU on a
// rank whose heap glibc had trimmed). One call at a time holds them (try_lock: a concurrent
// call uses its own), and they are kept only up to kScratchCap bytes, so a large read (an app
// reads once, then solves) does not pin its memory for the life of the process.
constexpr std::size_t kScratchCap = std::size_t(16) << 20;

struct Scratch {
  std::mutex mu;
  std::vector<Part> parts;
};

Scratch& scratch() {
  static Scratch s;  // never destroyed before the module: a function-local static
  return s;
}

class PartsLease {
 public:
  PartsLease() : lock_(scratch().mu, std::try_to_lock) {}
  ~PartsLease() {
    if (!lock_.owns_lock()) return;
    std::size_t bytes = 0;
    for (const Part& part : scratch().parts) bytes += part.bytes();
    if (bytes > kScratchCap) std::vector<Part>().swap(scratch().parts);
  }
  PartsLease(const PartsLease&) = delete;
  PartsLease& operator=(const PartsLease&) = delete;
  std::vector<Part>& parts() { return lock_.owns_lock() ? scratch().parts : own_; }

 private:
  std::unique_lock<std::mutex> lock_;
  std::vector<Part> own_;
};

// Records a parsed entry (0-based) in the part's routing counts and order stats.
inline void note(Part& o, const Route& rt, int64_t i, int64_t j) {
  if (rt.roff != nullptr) {
    const bool twin = rt.mirror && i != j;
    if (rt.p == 1) {
      o.count[0] += 1 + int64_t(twin);
    } else {
      ++o.count[owner_of(rt.roff, rt.p, i)];
      if (twin) ++o.count[owner_of(rt.roff, rt.p, j)];
    }
  }
  // unsigned: no overflow where rows * cols is too large to key (order_of then ignores them)
  const int64_t kr = int64_t(uint64_t(i) * uint64_t(rt.cols) + uint64_t(j));
  const int64_t kc = int64_t(uint64_t(j) * uint64_t(rt.rows) + uint64_t(i));
  if (!o.any) {
    o.f_rm = kr;
    o.f_cm = kc;
    o.any = true;
  } else {
    o.rm = o.rm && kr > o.l_rm;
    o.cm = o.cm && kc > o.l_cm;
  }
  o.l_rm = kr;
  o.l_cm = kc;
  o.lower = o.lower && i >= j;
  o.upper = o.upper && i <= j;
}

// Parses [p, e): whole lines. k = 2 (pattern) or 3; field 0 real, 1 integer, 2 pattern.
void parse_lines(const char* p, const char* e, int k, int field, const Route& rt, bool skew,
                 Part& out) {
  const int64_t rows = rt.rows, cols = rt.cols;
  const std::size_t guess = std::size_t(e - p) / 16 + 1;
  out.i.reserve(guess);
  out.j.reserve(guess);
  if (k == 3) out.v.reserve(guess);
  while (p < e) {
    while (p < e && blank(*p)) ++p;
    if (p == e) break;
    if (*p == '\n') {  // a blank line
      ++p;
      continue;
    }
    int64_t r = 0, c = 0;
    double v = 1.0;
    if (!(p = parse_index(p, e, r)) || p == e || !blank(*p)) return void(out.ok = false);
    while (p < e && blank(*p)) ++p;
    if (!(p = parse_index(p, e, c))) return void(out.ok = false);
    if (k == 3) {
      if (p == e || !blank(*p)) return void(out.ok = false);
      while (p < e && blank(*p)) ++p;
      p = field == 1 ? parse_integer(p, e, v) : parse_real(p, e, v);
      if (!p) return void(out.ok = false);
    }
    while (p < e && blank(*p)) ++p;
    if (p < e && *p++ != '\n') return void(out.ok = false);  // a fourth token, a stray byte
    if (r < 1 || r > rows || c < 1 || c > cols || (skew && r == c)) return void(out.ok = false);
    out.i.push_back(r - 1);
    out.j.push_back(c - 1);
    if (k == 3) out.v.push_back(v);
    note(out, rt, r - 1, c - 1);
  }
}

// Parses `text` on up to `threads` threads (cut at newlines) into `parts` (resized to the
// threads used, in order): false when any line is not exact.
bool parse_parts(py::buffer text, int k, const std::string& field, const Route& rt, bool skew,
                 int threads, std::vector<Part>& parts) {
  if (k != 2 && k != 3) hpc::fail("k must be 2 or 3");
  const int f = field == "real" ? 0 : field == "integer" ? 1 : field == "pattern" ? 2 : -1;
  if (f < 0 || (f == 2) != (k == 2)) hpc::fail("field must be real, integer (k=3) or pattern (k=2)");
  if (rt.rows < 0 || rt.cols < 0) hpc::fail("rows and cols must be >= 0");
  py::buffer_info info = text.request();
  if (info.ndim != 1 || info.itemsize != 1 || (info.ndim == 1 && info.strides[0] != 1))
    hpc::fail("text must be a contiguous byte buffer");
  const char* base = static_cast<const char*>(info.ptr);
  const int64_t n = info.size;
  // a thread per 256 KiB at most: below that, starting one costs what it saves
  int nt = int(std::max<int64_t>(1, std::min<int64_t>(std::max(threads, 1), n >> 18)));
  parts.resize(std::size_t(nt));
  for (Part& part : parts) part.reset(rt.p);
  {
    py::gil_scoped_release nogil;
    std::vector<int64_t> cut(nt + 1, n);
    cut[0] = 0;
    for (int t = 1; t < nt; ++t) {  // each cut just after a newline
      const char* s = base + n * t / nt;
      const void* nl = std::memchr(s, '\n', std::size_t(base + n - s));
      cut[t] = nl ? static_cast<const char*>(nl) - base + 1 : n;
      if (cut[t] < cut[t - 1]) cut[t] = cut[t - 1];
    }
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; ++t)
      parse_lines(base + cut[t], base + cut[t + 1], k, f, rt, skew, parts[t]);
  }
  for (auto& part : parts)
    if (!part.ok) return false;
  return true;
}

py::object parse_coo(py::buffer text, int k, const std::string& field, int64_t rows,
                     int64_t cols, bool skew, int threads) {
  PartsLease lease;
  std::vector<Part>& parts = lease.parts();
  if (!parse_parts(text, k, field, Route{nullptr, 1, false, rows, cols}, skew, threads, parts))
    return py::none();
  std::size_t total = 0;
  for (auto& part : parts) total += part.i.size();
  hpc::carray<int64_t> I(static_cast<py::ssize_t>(total)), J(static_cast<py::ssize_t>(total));
  hpc::carray<double> V(static_cast<py::ssize_t>(total));
  int64_t* pi = I.mutable_data();
  int64_t* pj = J.mutable_data();
  double* pv = V.mutable_data();
  {
    py::gil_scoped_release nogil;
    for (auto& part : parts) {
      const std::size_t m = part.i.size();
      std::memcpy(pi, part.i.data(), m * sizeof(int64_t));
      std::memcpy(pj, part.j.data(), m * sizeof(int64_t));
      if (k == 3)
        std::memcpy(pv, part.v.data(), m * sizeof(double));
      else
        std::fill(pv, pv + m, 1.0);
      pi += m;
      pj += m;
      pv += m;
    }
  }
  return py::make_tuple(I, J, V);
}

// What the stored entries' order proves, for a reader that must know whether any two are one
// (row, column): (flags, first and last row-major key, first and last column-major key) with
// flags 1: row-major keys (i * cols + j) strictly increasing, 2: column-major keys (j * rows +
// i) strictly increasing, 4: all in the lower triangle (i >= j), 8: all in the upper one,
// 16: not empty. Ranges in file order, each strictly increasing and each first key above the
// previous range's last, hold no duplicates. Keys need rows * cols < 2^62 (else flags 1, 2 off).
// The parts' own stats (note) are joined here in file order.
py::tuple order_of(const std::vector<Part>& parts, int64_t rows, int64_t cols) {
  const bool keyed = rows < (int64_t(1) << 31) && cols < (int64_t(1) << 31);
  bool rm = keyed, cm = keyed, lower = true, upper = true, any = false;
  int64_t f_rm = 0, l_rm = 0, f_cm = 0, l_cm = 0;
  for (const Part& part : parts) {
    if (!part.any) continue;
    rm = rm && part.rm;
    cm = cm && part.cm;
    lower = lower && part.lower;
    upper = upper && part.upper;
    if (!any) {
      f_rm = part.f_rm;
      f_cm = part.f_cm;
      any = true;
    } else {
      rm = rm && part.f_rm > l_rm;
      cm = cm && part.f_cm > l_cm;
    }
    l_rm = part.l_rm;
    l_cm = part.l_cm;
  }
  const int64_t flags = (any && rm ? 1 : 0) | (any && cm ? 2 : 0) | (lower ? 4 : 0) |
                        (upper ? 8 : 0) | (any ? 16 : 0);
  return py::make_tuple(flags, f_rm, l_rm, f_cm, l_cm);
}

// parse_coo, then every entry (and, for symmetric storage, the mirror of every off-diagonal
// one) written once into rows of three int64 (i, j, the bits of v) grouped by the rank that
// owns its row: a counting sort by owner (the counts taken while parsing), so the buffer goes
// to MPI_Alltoallv as it is. With `out` (an (m, 3) int64 C-contiguous array, m large enough)
// the rows are written into out[:n] and that view is returned: a caller reusing one buffer
// from read to read touches no fresh pages.
py::object parse_route(py::buffer text, int k, const std::string& field, int64_t rows,
                       int64_t cols, const std::string& symmetry, py::array row_offsets,
                       int threads, py::object out_obj) {
  const int sym = symmetry == "general" ? 0 : symmetry == "symmetric" ? 1
                  : symmetry == "skew-symmetric" ? 2 : -1;
  if (sym < 0) hpc::fail("symmetry must be general, symmetric or skew-symmetric");
  auto roff_a = hpc::exact<int64_t>(row_offsets, "row_offsets");
  hpc::require_1d(roff_a, -1, "row_offsets");
  const int p = int(roff_a.shape(0)) - 1;
  const int64_t* roff = roff_a.data();
  if (p < 1 || roff[0] != 0 || roff[p] != rows || !hpc::non_decreasing(roff, p))
    hpc::fail("row_offsets must run from 0 to rows, never decreasing");
  py::array given;
  const bool have_out = !out_obj.is_none();
  if (have_out) {
    if (!py::isinstance<py::array>(out_obj)) hpc::fail("out: expected an int64 array");
    auto g = hpc::exact<int64_t>(py::reinterpret_borrow<py::array>(out_obj), "out");
    if (g.ndim() != 2 || g.shape(1) != 3) hpc::fail("out: expected shape (m, 3)");
    hpc::mut_ptr(g, "out");
    given = g;
  }
  PartsLease lease;
  std::vector<Part>& parts = lease.parts();
  if (!parse_parts(text, k, field, Route{roff, p, sym != 0, rows, cols}, sym == 2, threads,
                   parts))
    return py::none();
  std::vector<int64_t> count(p, 0);
  int64_t total = 0, n = 0;
  for (const Part& part : parts) {
    n += int64_t(part.i.size());
    for (int q = 0; q < p; ++q) count[q] += part.count[q];
  }
  for (int q = 0; q < p; ++q) total += count[q];
  py::array packed;
  if (have_out && given.shape(0) >= total)
    packed = given.attr("__getitem__")(py::slice(0, static_cast<py::ssize_t>(total), 1));
  else
    packed = hpc::carray<int64_t>({static_cast<py::ssize_t>(total), py::ssize_t(3)});
  hpc::carray<int64_t> counts(static_cast<py::ssize_t>(p));
  int64_t* out = static_cast<int64_t*>(packed.mutable_data());
  {
    py::gil_scoped_release nogil;
    std::vector<int64_t> at(p, 0);
    for (int q = 1; q < p; ++q) at[q] = at[q - 1] + count[q - 1];
    auto put = [&](int64_t r, int64_t c, double v) {
      int64_t* row = out + 3 * at[p == 1 ? 0 : owner_of(roff, p, r)]++;
      row[0] = r;
      row[1] = c;
      std::memcpy(row + 2, &v, sizeof v);
    };
    for (const Part& part : parts) {
      const int64_t m = int64_t(part.i.size());
      for (int64_t e = 0; e < m; ++e) {
        const int64_t r = part.i[e], c = part.j[e];
        const double v = k == 3 ? part.v[e] : 1.0;
        put(r, c, v);
        if (sym && r != c) put(c, r, sym == 2 ? -v : v);
      }
    }
    std::copy(count.begin(), count.end(), counts.mutable_data());
  }
  return py::make_tuple(packed, counts, n, order_of(parts, rows, cols));
}

// One row's (column, value) pairs sorted by column (stable: duplicates are summed in
// arrival order) and duplicates summed, in place; returns how many are left. Rows arrive
// mostly sorted (a file in row or column order, its mirrors in order): insertion sort is then
// one pass; long unsorted rows go through an index sort.
template <typename I>
int64_t sort_sum_row(I* c, double* v, int64_t m, std::vector<std::pair<I, double>>& scratch) {
  bool sorted = true;
  for (int64_t x = 1; x < m && sorted; ++x) sorted = c[x - 1] <= c[x];
  if (!sorted && m <= 64) {
    for (int64_t x = 1; x < m; ++x) {
      const I kc = c[x];
      const double kv = v[x];
      int64_t y = x;
      for (; y > 0 && c[y - 1] > kc; --y) {
        c[y] = c[y - 1];
        v[y] = v[y - 1];
      }
      c[y] = kc;
      v[y] = kv;
    }
  } else if (!sorted) {
    scratch.resize(std::size_t(m));
    for (int64_t x = 0; x < m; ++x) scratch[x] = {c[x], v[x]};
    std::stable_sort(scratch.begin(), scratch.end(),
                     [](const auto& l, const auto& r) { return l.first < r.first; });
    for (int64_t x = 0; x < m; ++x) std::tie(c[x], v[x]) = scratch[x];
  }
  int64_t w = 0;
  for (int64_t x = 0; x < m; ++x) {
    if (w > 0 && c[w - 1] == c[x]) {
      v[w - 1] += v[x];
    } else {
      c[w] = c[x];
      v[w] = v[x];
      ++w;
    }
  }
  return w;
}

// Scatter by row into indices/data (a counting sort), then sort and sum each row in place and
// close the gaps duplicates leave. Returns the final entry count; ptr gets the final indptr.
template <typename I>
int64_t build_rows(const int64_t* in, int64_t n, int64_t lo, int64_t nrows, I* ptr, I* ind,
                   double* val) {
  std::vector<int64_t> start(nrows + 1, 0);
  for (int64_t e = 0; e < n; ++e) ++start[in[3 * e] - lo + 1];
  for (int64_t r = 0; r < nrows; ++r) start[r + 1] += start[r];
  {
    std::vector<int64_t> at(start.begin(), start.end() - 1);
    for (int64_t e = 0; e < n; ++e) {
      const int64_t w = at[in[3 * e] - lo]++;
      ind[w] = static_cast<I>(in[3 * e + 1]);
      std::memcpy(val + w, in + 3 * e + 2, sizeof(double));
    }
  }
  std::vector<std::pair<I, double>> scratch;
  int64_t w = 0;
  ptr[0] = 0;
  for (int64_t r = 0; r < nrows; ++r) {
    const int64_t b = start[r], m = start[r + 1] - b;
    const int64_t kept = sort_sum_row(ind + b, val + b, m, scratch);
    if (w != b) {  // duplicates earlier: move this row down
      std::memmove(ind + w, ind + b, std::size_t(kept) * sizeof(I));
      std::memmove(val + w, val + b, std::size_t(kept) * sizeof(double));
    }
    w += kept;
    ptr[r + 1] = static_cast<I>(w);
  }
  return w;
}

template <typename I>
py::tuple csr_out(const int64_t* in, int64_t n, int64_t lo, int64_t nrows) {
  hpc::carray<I> indptr(static_cast<py::ssize_t>(nrows + 1));
  hpc::carray<I> indices(static_cast<py::ssize_t>(n));
  hpc::carray<double> data(static_cast<py::ssize_t>(n));
  int64_t nnz;
  {
    py::gil_scoped_release nogil;
    nnz = build_rows<I>(in, n, lo, nrows, indptr.mutable_data(), indices.mutable_data(),
                        data.mutable_data());
  }
  if (nnz == n) return py::make_tuple(indptr, indices, data);
  py::slice keep(0, static_cast<py::ssize_t>(nnz), 1);  // duplicates summed: a prefix
  return py::make_tuple(indptr, py::array(indices[keep]).attr("copy")(),
                        py::array(data[keep]).attr("copy")());
}

// The canonical CSR (sorted columns, duplicates summed, explicit zeros kept, as SciPy's
// sum_duplicates) of packed rows (i, j, bits of v) whose rows lie in [lo, lo + nrows):
// a counting sort by row, then each row sorted by column. int32 indices where they fit.
py::tuple csr_from_packed(py::array packed_a, int64_t lo, int64_t nrows, int64_t ncols) {
  auto packed = hpc::exact<int64_t>(packed_a, "packed");
  if (packed.ndim() != 2 || packed.shape(1) != 3) hpc::fail("packed: expected shape (n, 3)");
  if (nrows < 0 || ncols < 0 || lo < 0) hpc::fail("lo, nrows and ncols must be >= 0");
  const int64_t n = packed.shape(0);
  const int64_t* in = packed.data();
  uint64_t bad = 0;
  {
    py::gil_scoped_release nogil;
    // unsigned: a negative index wraps above any bound (one vectorisable pass)
    for (int64_t e = 0; e < n; ++e)
      bad |= uint64_t(uint64_t(in[3 * e] - lo) >= uint64_t(nrows)) |
             uint64_t(uint64_t(in[3 * e + 1]) >= uint64_t(ncols));
  }
  if (bad) hpc::fail("packed: a row or column index out of range");
  if (ncols <= std::numeric_limits<int32_t>::max() && n <= std::numeric_limits<int32_t>::max())
    return csr_out<int32_t>(in, n, lo, nrows);
  return csr_out<int64_t>(in, n, lo, nrows);
}
}  // namespace

HPC_SUBMODULE(mmio) {
  m.doc() = "Strict one-pass parser of Matrix Market coordinate entry lines.";
  m.def("parse_coo", &parse_coo, py::arg("text"), py::arg("k"), py::arg("field"),
        py::arg("rows"), py::arg("cols"), py::arg("skew"), py::arg("threads") = 1,
        "(i, j, v): 0-based int64 indices and float64 values of the entry lines in `text` "
        "(a bytes-like object), or None when any line is not exactly k numerals of the field "
        "with indices in 1..rows, 1..cols (no diagonal when skew) and finite values.");
  m.def("parse_route", &parse_route, py::arg("text"), py::arg("k"), py::arg("field"),
        py::arg("rows"), py::arg("cols"), py::arg("symmetry"), py::arg("row_offsets"),
        py::arg("threads") = 1, py::arg("out") = py::none(),
        "(packed, counts, lines, order): parse_coo's entries, plus the mirror of every "
        "off-diagonal entry of symmetric (negated: skew-symmetric) storage, as rows (i, j, bits "
        "of v) of an (n, 3) int64 array grouped by the rank owning row i under `row_offsets` "
        "(counts: how many each), the number of entry lines, and what their order proves: "
        "(flags, first/last row-major key, first/last column-major key), flags 1 row-major "
        "strictly increasing, 2 column-major strictly increasing, 4 all i >= j, 8 all i <= j, "
        "16 not empty; None where parse_coo gives None. With `out`, an (m, 3) int64 array with m >= "
        "the rows needed, packed is the view out[:n] (a buffer reused from call to call).");
  m.def("csr_from_packed", &csr_from_packed, py::arg("packed"), py::arg("lo"), py::arg("nrows"),
        py::arg("ncols"),
        "(indptr, indices, data): canonical CSR (columns sorted, duplicates summed in order, "
        "explicit zeros kept) of packed rows (i, j, bits of v) with lo <= i < lo + nrows; int32 "
        "indices where they fit. ValueError on an index out of range.");
}
