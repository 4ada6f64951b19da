// Hash SpGEMM on the GPU, nsparse-style (Nagasaka et al.): rows are binned by their count of
// intermediate products; each bin is one launch with one thread block per row and the row's
// hash table in shared memory, sized to the bin (32 .. 4096 slots); rows heavier than the
// largest shared table use a table in global memory. Symbolic (count) and numeric (fill)
// phases; within a block, warps take A's entries and lanes B's row (coalesced reads), keys are
// inserted with atomicCAS and values added with atomicAdd; every row is then compacted and
// sorted by a counting rank in the block.
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hpc/cuda_check.hpp"
#include "hpc/registry.hpp"

namespace py = pybind11;

namespace {
constexpr int kMaxShared = 4096;  // slots: 4096 x (4 + 8) bytes = 48 KiB of shared memory

__device__ __forceinline__ int slot(int c, int mask) {
  return static_cast<int>((static_cast<unsigned>(c) * 2654435761u) & static_cast<unsigned>(mask));
}

// Linear probing from slot(c): the slot holding key c, claiming an empty one with CAS;
// *fresh says whether this thread's claim inserted c.
__device__ __forceinline__ int insert(int* keys, int c, int mask, bool* fresh) {
  int h = slot(c, mask);
  *fresh = false;
  while (true) {
    int old = keys[h];
    if (old == c) return h;
    if (old == -1) {
      old = atomicCAS(&keys[h], -1, c);
      if (old == -1) {
        *fresh = true;
        return h;
      }
      if (old == c) return h;
    }
    h = (h + 1) & mask;
  }
}

// One block per row in `rows`; table of `size` slots in shared memory or at gkeys + goff[b].
__global__ void k_symbolic(const int* rows, const int64_t* ap, const int* ai, const int64_t* bp,
                           const int* bi, int size, int* gkeys, const int64_t* goff,
                           int64_t* rnnz) {
  extern __shared__ int sh[];
  __shared__ int count;
  const int row = rows[blockIdx.x];
  int* keys = gkeys ? gkeys + goff[blockIdx.x] : sh;
  const int mask = size - 1;
  for (int s = threadIdx.x; s < size; s += blockDim.x) keys[s] = -1;
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  int mine = 0;
  for (int64_t p = ap[row] + warp; p < ap[row + 1]; p += nwarps) {
    const int k = ai[p];
    for (int64_t q = bp[k] + lane; q < bp[k + 1]; q += 32) {
      bool fresh;
      insert(keys, bi[q], mask, &fresh);
      mine += fresh;
    }
  }
  atomicAdd(&count, mine);
  __syncthreads();
  if (threadIdx.x == 0) rnnz[row] = count;
}

__global__ void k_numeric(const int* rows, const int64_t* ap, const int* ai, const double* ad,
                          const int64_t* bp, const int* bi, const double* bd, int size,
                          int* gkeys, double* gvals, const int64_t* goff, const int64_t* cp,
                          int* ci, double* cv) {
  extern __shared__ int sh[];
  __shared__ int count;
  const int row = rows[blockIdx.x];
  int* keys = gkeys ? gkeys + goff[blockIdx.x] : sh;
  double* vals = gkeys ? gvals + goff[blockIdx.x] : reinterpret_cast<double*>(sh + size);
  const int mask = size - 1;
  for (int s = threadIdx.x; s < size; s += blockDim.x) {
    keys[s] = -1;
    vals[s] = 0.0;
  }
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  for (int64_t p = ap[row] + warp; p < ap[row + 1]; p += nwarps) {
    const int k = ai[p];
    const double a = ad[p];
    for (int64_t q = bp[k] + lane; q < bp[k + 1]; q += 32) {
      bool fresh;
      const int h = insert(keys, bi[q], mask, &fresh);
      atomicAdd(&vals[h], a * bd[q]);
    }
  }
  __syncthreads();
  // Compact into the output row (unsorted), then place every entry at its rank.
  const int64_t base = cp[row];
  const int nnz = static_cast<int>(cp[row + 1] - base);
  for (int s = threadIdx.x; s < size; s += blockDim.x)
    if (keys[s] != -1) {
      const int pos = atomicAdd(&count, 1);
      ci[base + pos] = keys[s];
      cv[base + pos] = vals[s];
    }
  __syncthreads();
  for (int j = threadIdx.x; j < nnz; j += blockDim.x) {
    const int c = ci[base + j];
    int rank = 0;
    for (int x = 0; x < nnz; ++x) rank += ci[base + x] < c;
    keys[rank] = c;  // the table is free now and holds >= 2 nnz slots
    vals[rank] = cv[base + j];
  }
  __syncthreads();
  for (int j = threadIdx.x; j < nnz; j += blockDim.x) {
    ci[base + j] = keys[j];
    cv[base + j] = vals[j];
  }
}

template <typename T>
struct DevBuf {
  T* p = nullptr;
  explicit DevBuf(size_t n) {
    if (n) HPC_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  }
  DevBuf(const T* host, size_t n) : DevBuf(n) {
    if (n) HPC_CUDA_CHECK(cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DevBuf() { if (p) cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

int pow2_at_least(int64_t x) {
  int p = 32;
  while (p < x) p <<= 1;
  return p;
}

struct Bin {
  int size;                 // table slots
  std::vector<int> rows;
  std::vector<int64_t> off;  // global-memory table offsets (heavy bin only)
  int64_t slots = 0;
};

template <typename T>
const T* cptr(const py::array_t<T, py::array::c_style>& a) { return a.data(); }

py::tuple multiply(py::array_t<int64_t, py::array::c_style> ap, py::array_t<int, py::array::c_style> ai,
                   py::array_t<double, py::array::c_style> ad, int64_t n, int64_t k,
                   py::array_t<int64_t, py::array::c_style> bp, py::array_t<int, py::array::c_style> bi,
                   py::array_t<double, py::array::c_style> bd, int64_t m) {
  if (ap.ndim() != 1 || ap.shape(0) != n + 1) throw py::value_error("cuda spgemm: bad A indptr");
  if (bp.ndim() != 1 || bp.shape(0) != k + 1) throw py::value_error("cuda spgemm: bad B indptr");
  if (m >= (int64_t(1) << 31) || k >= (int64_t(1) << 31) || n >= (int64_t(1) << 31))
    throw py::value_error("cuda spgemm: dimensions must fit in int32");
  const int64_t* AP = ap.data();
  const int* AI = ai.data();
  const int64_t* BP = bp.data();
  const int* BI = bi.data();
  const int64_t annz = AP[n], bnnz = BP[k];
  if (ai.shape(0) < annz || ad.shape(0) < annz || bi.shape(0) < bnnz || bd.shape(0) < bnnz)
    throw py::value_error("cuda spgemm: arrays shorter than indptr says");
  for (int64_t p = 0; p < annz; ++p)
    if (AI[p] < 0 || AI[p] >= k) throw py::value_error("cuda spgemm: A column out of range");
  for (int64_t p = 0; p < bnnz; ++p)
    if (BI[p] < 0 || BI[p] >= m) throw py::value_error("cuda spgemm: B column out of range");
  // Bins by product count (host: one pass over A).
  std::vector<Bin> bins;
  for (int s = 32; s <= kMaxShared; s <<= 1) bins.push_back(Bin{s, {}, {}, 0});
  Bin heavy{0, {}, {}, 0};
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t prod = 0;
    for (int64_t p = AP[i]; p < AP[i + 1]; ++p) prod += BP[AI[p] + 1] - BP[AI[p]];
    total += prod;
    if (prod == 0) continue;
    const int64_t want = 2 * std::min<int64_t>(prod, m);
    if (want <= kMaxShared) {
      const int size = pow2_at_least(want);
      bins[__builtin_ctz(size) - 5].rows.push_back(int(i));
    } else {
      heavy.rows.push_back(int(i));
      heavy.off.push_back(heavy.slots);
      heavy.slots += pow2_at_least(want);
    }
  }
  DevBuf<int64_t> dap(AP, n + 1), dbp(BP, k + 1), drnnz(n);
  DevBuf<int> dai(AI, annz), dbi(BI, bnnz);
  DevBuf<double> dad(ad.data(), annz), dbd(bd.data(), bnnz);
  if (n) HPC_CUDA_CHECK(cudaMemset(drnnz.p, 0, sizeof(int64_t) * n));
  // the largest bin's numeric table is 48 KiB of dynamic shared memory plus the static counter
  HPC_CUDA_CHECK(cudaFuncSetAttribute(k_numeric, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(kMaxShared * (sizeof(int) + sizeof(double)))));
  DevBuf<int> gkeys(heavy.slots);
  DevBuf<double> gvals(heavy.slots);
  DevBuf<int64_t> goff(heavy.off.data(), heavy.off.size());
  std::vector<std::unique_ptr<DevBuf<int>>> drows;
  auto block_for = [](int size) { return std::min(1024, std::max(32, size / 4)); };
  for (auto& b : bins) {
    drows.emplace_back(new DevBuf<int>(b.rows.data(), b.rows.size()));
    if (b.rows.empty()) continue;
    k_symbolic<<<int(b.rows.size()), block_for(b.size), b.size * sizeof(int)>>>(
        drows.back()->p, dap.p, dai.p, dbp.p, dbi.p, b.size, nullptr, nullptr, drnnz.p);
    HPC_CUDA_CHECK(cudaGetLastError());
  }
  DevBuf<int> dheavy(heavy.rows.data(), heavy.rows.size());
  // heavy rows: one launch per row (their table sizes differ)
  for (size_t r = 0; r < heavy.rows.size(); ++r) {
    const int64_t size = (r + 1 < heavy.rows.size() ? heavy.off[r + 1] : heavy.slots) - heavy.off[r];
    k_symbolic<<<1, 1024, 0>>>(dheavy.p + r, dap.p, dai.p, dbp.p, dbi.p, int(size), gkeys.p,
                               goff.p + r, drnnz.p);
    HPC_CUDA_CHECK(cudaGetLastError());
  }
  std::vector<int64_t> rnnz(n);
  if (n) HPC_CUDA_CHECK(cudaMemcpy(rnnz.data(), drnnz.p, sizeof(int64_t) * n, cudaMemcpyDeviceToHost));
  py::array_t<int64_t> cp(n + 1);
  int64_t* CP = cp.mutable_data();
  CP[0] = 0;
  for (int64_t i = 0; i < n; ++i) CP[i + 1] = CP[i] + rnnz[i];
  const int64_t cnnz = CP[n];
  DevBuf<int64_t> dcp(CP, n + 1);
  DevBuf<int> dci(cnnz);
  DevBuf<double> dcv(cnnz);
  for (size_t bi_ = 0; bi_ < bins.size(); ++bi_) {
    auto& b = bins[bi_];
    if (b.rows.empty()) continue;
    k_numeric<<<int(b.rows.size()), block_for(b.size), b.size * (sizeof(int) + sizeof(double))>>>(
        drows[bi_]->p, dap.p, dai.p, dad.p, dbp.p, dbi.p, dbd.p, b.size, nullptr, nullptr,
        nullptr, dcp.p, dci.p, dcv.p);
    HPC_CUDA_CHECK(cudaGetLastError());
  }
  for (size_t r = 0; r < heavy.rows.size(); ++r) {
    const int64_t size = (r + 1 < heavy.rows.size() ? heavy.off[r + 1] : heavy.slots) - heavy.off[r];
    k_numeric<<<1, 1024, 0>>>(dheavy.p + r, dap.p, dai.p, dad.p, dbp.p, dbi.p, dbd.p, int(size),
                              gkeys.p, gvals.p, goff.p + r, dcp.p, dci.p, dcv.p);
    HPC_CUDA_CHECK(cudaGetLastError());
  }
  HPC_CUDA_CHECK(cudaDeviceSynchronize());
  py::array_t<int> ci(cnnz);
  py::array_t<double> cv(cnnz);
  if (cnnz) {
    HPC_CUDA_CHECK(cudaMemcpy(ci.mutable_data(), dci.p, sizeof(int) * cnnz, cudaMemcpyDeviceToHost));
    HPC_CUDA_CHECK(cudaMemcpy(cv.mutable_data(), dcv.p, sizeof(double) * cnnz, cudaMemcpyDeviceToHost));
  }
  py::dict stats;
  stats["products"] = total;
  for (auto& b : bins) stats[("rows_shared_" + std::to_string(b.size)).c_str()] = int64_t(b.rows.size());
  stats["rows_global"] = int64_t(heavy.rows.size());
  return py::make_tuple(cp, ci, cv, stats);
}
}  // namespace

HPC_SUBMODULE(spgemm) {
  m.doc() = "nsparse-style hash SpGEMM (CUDA)";
  m.def("multiply", &multiply,
        "multiply(a_indptr int64, a_indices int32, a_data float64, n, k, b_indptr, b_indices, "
        "b_data, m) -> (indptr int64, indices int32, data, stats); host arrays in and out",
        py::arg("a_indptr"), py::arg("a_indices"), py::arg("a_data"), py::arg("n"), py::arg("k"),
        py::arg("b_indptr"), py::arg("b_indices"), py::arg("b_data"), py::arg("m"));
}
