// Matrix Market coordinate entry lines, parsed strictly in one pass: every line holds exactly
// k numerals ("row col [value]") between blanks, indices in range, values finite. Any other
// line makes the whole call return None, and the Python reader's exact parser names the line
// and the fault, so this parser only has to be right about what it accepts. One pass replaces
// fast_matrix_market plus the byte checks that make its prefix parsing safe.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "hpc/checks.hpp"
#include "hpc/registry.hpp"

namespace {
using std::int64_t;

inline bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
inline bool digit(char c) { return c >= '0' && c <= '9'; }

// Decimal digits, at most 18 (no overflow possible): a longer numeral goes to the exact parser.
inline const char* parse_digits(const char* p, const char* e, int64_t& out) {
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

// A decimal floating-point numeral ('real' field): std::from_chars, which takes no '+'.
inline const char* parse_real(const char* p, const char* e, double& out) {
  if (p < e && *p == '+') {
    ++p;
    if (p == e || *p == '-' || *p == '+') return nullptr;
  }
  auto [q, ec] = std::from_chars(p, e, out, std::chars_format::general);
  if (ec != std::errc() || !std::isfinite(out)) return nullptr;  // 'inf', 'nan', 1e999
  return q;
}

struct Part {
  std::vector<int64_t> i, j;
  std::vector<double> v;
  bool ok = true;
};

// Parses [p, e): whole lines. k = 2 (pattern) or 3; field 0 real, 1 integer, 2 pattern.
void parse_lines(const char* p, const char* e, int k, int field, int64_t rows, int64_t cols,
                 bool skew, Part& out) {
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
  }
}

py::object parse_coo(py::buffer text, int k, const std::string& field, int64_t rows,
                     int64_t cols, bool skew, int threads) {
  if (k != 2 && k != 3) hpc::fail("k must be 2 or 3");
  const int f = field == "real" ? 0 : field == "integer" ? 1 : field == "pattern" ? 2 : -1;
  if (f < 0 || (f == 2) != (k == 2)) hpc::fail("field must be real, integer (k=3) or pattern (k=2)");
  if (rows < 0 || cols < 0) hpc::fail("rows and cols must be >= 0");
  py::buffer_info info = text.request();
  if (info.ndim != 1 || info.itemsize != 1 || (info.ndim == 1 && info.strides[0] != 1))
    hpc::fail("text must be a contiguous byte buffer");
  const char* base = static_cast<const char*>(info.ptr);
  const int64_t n = info.size;
  // a thread per 256 KiB at most: below that, starting one costs what it saves
  int nt = int(std::max<int64_t>(1, std::min<int64_t>(std::max(threads, 1), n >> 18)));
  std::vector<Part> parts(nt);
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
      parse_lines(base + cut[t], base + cut[t + 1], k, f, rows, cols, skew, parts[t]);
  }
  std::size_t total = 0;
  for (auto& part : parts) {
    if (!part.ok) return py::none();
    total += part.i.size();
  }
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
}  // namespace

HPC_SUBMODULE(mmio) {
  m.doc() = "Strict one-pass parser of Matrix Market coordinate entry lines.";
  m.def("parse_coo", &parse_coo, py::arg("text"), py::arg("k"), py::arg("field"),
        py::arg("rows"), py::arg("cols"), py::arg("skew"), py::arg("threads") = 1,
        "(i, j, v): 0-based int64 indices and float64 values of the entry lines in `text` "
        "(a bytes-like object), or None when any line is not exactly k numerals of the field "
        "with indices in 1..rows, 1..cols (no diagonal when skew) and finite values.");
}
