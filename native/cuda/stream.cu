// BabelStream's kernels in CUDA, on arrays owned by a DeviceStream object.
//
// Memory (BabelStream's CUDA options): "device" (cudaMalloc), "managed" (cudaMallocManaged,
// migrated on demand) or "pagefault" (plain host malloc the GPU reads through page faults /
// ATS / HMM; refused where the device cannot access pageable memory). Every kernel is timed
// with CUDA events around its launch (last_seconds()), not with the host clock.
// devices() lists the CUDA devices; copy_bandwidth() measures host<->device and
// device<->device copies as nvbandwidth does (copy engines and copy kernels, each direction
// and bidirectional).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>
#include "hpc/cuda_check.hpp"
#include "hpc/registry.hpp"
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

namespace {
constexpr int kBlock = 1024;
constexpr int kDotBlocks = 1024;

template <typename T> __global__ void k_init(T* a, T* b, T* c, T va, T vb, T vc, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    a[i] = va; b[i] = vb; c[i] = vc;
  }
}
template <typename T> __global__ void k_copy(const T* a, T* c, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) c[i] = a[i];
}
template <typename T> __global__ void k_mul(T* b, const T* c, T s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) b[i] = s * c[i];
}
template <typename T> __global__ void k_add(const T* a, const T* b, T* c, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) c[i] = a[i] + b[i];
}
template <typename T> __global__ void k_triad(T* a, const T* b, const T* c, T s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) a[i] = b[i] + s * c[i];
}
template <typename T> __global__ void k_nstream(T* a, const T* b, const T* c, T s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) a[i] += b[i] + s * c[i];
}
template <typename T> __global__ void k_dot(const T* a, const T* b, double* partial, int64_t n) {
  __shared__ double sm[kBlock];
  double acc = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    acc += double(a[i]) * double(b[i]);
  sm[threadIdx.x] = acc;
  __syncthreads();
  for (int off = blockDim.x / 2; off > 0; off /= 2) {
    if (threadIdx.x < off) sm[threadIdx.x] += sm[threadIdx.x + off];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sm[0];
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void select_device(int device) {
  const int n = device_count();
  if (device < 0 || device >= n)
    throw pybind11::value_error("cuda stream: device " + std::to_string(device) + " of " +
                                std::to_string(n) + " (valid: 0.." + std::to_string(n - 1) + ")");
  HPC_CUDA_CHECK(cudaSetDevice(device));
}

template <typename T>
class DeviceStream {
 public:
  DeviceStream(int64_t n, int device, const std::string& mem) : n_(n), mem_(mem) {
    if (n <= 0) throw pybind11::value_error("cuda stream: array size must be positive");
    if (mem != "device" && mem != "managed" && mem != "pagefault")
      throw pybind11::value_error("cuda stream: mem must be device, managed or pagefault");
    select_device(device);
    if (mem == "pagefault") {
      int pageable = 0;
      HPC_CUDA_CHECK(cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, device));
      if (!pageable)
        throw pybind11::value_error("cuda stream: this device cannot access pageable host "
                                    "memory (no HMM/ATS): --mem pagefault is unavailable");
    }
    a_ = alloc();
    b_ = alloc();
    c_ = alloc();
    HPC_CUDA_CHECK(cudaMalloc(&partial_, sizeof(double) * kDotBlocks));
    HPC_CUDA_CHECK(cudaEventCreate(&start_));
    HPC_CUDA_CHECK(cudaEventCreate(&stop_));
    int sms = 0;
    HPC_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    grid_ = static_cast<int>(std::min<int64_t>((n + kBlock - 1) / kBlock, int64_t(sms) * 32));
  }
  ~DeviceStream() {
    release(a_);
    release(b_);
    release(c_);
    cudaFree(partial_);
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  void init(double va, double vb, double vc) { go(); k_init<<<grid_, kBlock>>>(a_, b_, c_, T(va), T(vb), T(vc), n_); sync(); }
  void copy() { go(); k_copy<<<grid_, kBlock>>>(a_, c_, n_); sync(); }
  void mul(double s) { go(); k_mul<<<grid_, kBlock>>>(b_, c_, T(s), n_); sync(); }
  void add() { go(); k_add<<<grid_, kBlock>>>(a_, b_, c_, n_); sync(); }
  void triad(double s) { go(); k_triad<<<grid_, kBlock>>>(a_, b_, c_, T(s), n_); sync(); }
  void nstream(double s) { go(); k_nstream<<<grid_, kBlock>>>(a_, b_, c_, T(s), n_); sync(); }
  // seconds of the last kernel between its two CUDA events
  double last_seconds() const { return last_s_; }
  const std::string& mem() const { return mem_; }
  double dot() {
    go();
    k_dot<<<kDotBlocks, kBlock>>>(a_, b_, partial_, n_);
    sync();
    double host[kDotBlocks];
    HPC_CUDA_CHECK(cudaMemcpy(host, partial_, sizeof(host), cudaMemcpyDeviceToHost));
    double s = 0.0;
    for (double x : host) s += x;
    return s;
  }
  pybind11::tuple read() {
    auto out = [this](const T* d) {
      pybind11::array_t<T> h(n_);
      HPC_CUDA_CHECK(cudaMemcpy(h.mutable_data(), d, sizeof(T) * n_, cudaMemcpyDefault));
      return h;
    };
    return pybind11::make_tuple(out(a_), out(b_), out(c_));
  }

 private:
  T* alloc() {
    void* p = nullptr;
    const size_t bytes = sizeof(T) * size_t(n_);
    if (mem_ == "device") HPC_CUDA_CHECK(cudaMalloc(&p, bytes));
    else if (mem_ == "managed") HPC_CUDA_CHECK(cudaMallocManaged(&p, bytes));
    else if (posix_memalign(&p, 2 << 20, bytes) != 0) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void release(T* p) {
    if (!p) return;
    if (mem_ == "pagefault") std::free(p);
    else cudaFree(p);
  }
  void go() { HPC_CUDA_CHECK(cudaEventRecord(start_)); }
  void sync() {
    HPC_CUDA_CHECK(cudaGetLastError());
    HPC_CUDA_CHECK(cudaEventRecord(stop_));
    HPC_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.f;
    HPC_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    last_s_ = double(ms) * 1e-3;
    HPC_CUDA_CHECK(cudaDeviceSynchronize());
  }
  int64_t n_;
  std::string mem_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  double last_s_ = 0.0;
  int grid_ = 1;
  T *a_ = nullptr, *b_ = nullptr, *c_ = nullptr;
  double* partial_ = nullptr;
};

template <typename T>
void bind(pybind11::module_& m, const char* name) {
  pybind11::class_<DeviceStream<T>>(m, name)
      .def(pybind11::init<int64_t, int, const std::string&>(), pybind11::arg("n"),
           pybind11::arg("device") = 0, pybind11::arg("mem") = "device")
      .def("last_seconds", &DeviceStream<T>::last_seconds,
           "Seconds of the last kernel, between CUDA events around its launch")
      .def_property_readonly("mem", &DeviceStream<T>::mem)
      .def("init", &DeviceStream<T>::init)
      .def("copy", &DeviceStream<T>::copy)
      .def("mul", &DeviceStream<T>::mul)
      .def("add", &DeviceStream<T>::add)
      .def("triad", &DeviceStream<T>::triad)
      .def("nstream", &DeviceStream<T>::nstream)
      .def("dot", &DeviceStream<T>::dot)
      .def("read", &DeviceStream<T>::read);
}

__global__ void k_copy_words(const uint4* __restrict src, uint4* __restrict dst, int64_t n) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += step)
    dst[i] = src[i];
}

// One figure of nvbandwidth's table: GB/s of `what` with `nbytes` per copy, best of `repeat`,
// timed with CUDA events. what: h2d_ce, d2h_ce, bidir_ce (both directions at once on two
// streams: the sum), d2d_ce (device -> peer), h2d_sm, d2h_sm (a copy kernel reading or
// writing mapped pinned host memory), d2d_sm (a kernel writing the peer's memory).
double copy_bandwidth(const std::string& what, int64_t nbytes, int device, int peer,
                      int repeat) {
  if (nbytes <= 0 || nbytes % 16) throw pybind11::value_error("copy_bandwidth: nbytes > 0, a multiple of 16");
  if (repeat < 1) throw pybind11::value_error("copy_bandwidth: repeat >= 1");
  const bool d2d = what == "d2d_ce" || what == "d2d_sm";
  if (!(what == "h2d_ce" || what == "d2h_ce" || what == "bidir_ce" || what == "h2d_sm" ||
        what == "d2h_sm" || d2d))
    throw pybind11::value_error("copy_bandwidth: unknown copy " + what);
  select_device(device);
  if (d2d) {
    select_device(peer);
    select_device(device);
    int ok = 0;
    HPC_CUDA_CHECK(cudaDeviceCanAccessPeer(&ok, device, peer));
    if (!ok || peer == device)
      throw pybind11::value_error("copy_bandwidth: device " + std::to_string(device) +
                                  " cannot reach peer " + std::to_string(peer));
    cudaError_t e = cudaDeviceEnablePeerAccess(peer, 0);
    if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) HPC_CUDA_CHECK(e);
    cudaGetLastError();
  }
  void *dev = nullptr, *host = nullptr, *host2 = nullptr, *dev2 = nullptr, *other = nullptr;
  HPC_CUDA_CHECK(cudaMalloc(&dev, nbytes));
  HPC_CUDA_CHECK(cudaMalloc(&dev2, nbytes));
  HPC_CUDA_CHECK(cudaHostAlloc(&host, nbytes, cudaHostAllocMapped));
  HPC_CUDA_CHECK(cudaHostAlloc(&host2, nbytes, cudaHostAllocMapped));
  if (d2d) {
    select_device(peer);
    HPC_CUDA_CHECK(cudaMalloc(&other, nbytes));
    select_device(device);
  }
  cudaStream_t s1, s2;
  cudaEvent_t e0, e1;
  HPC_CUDA_CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
  HPC_CUDA_CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  HPC_CUDA_CHECK(cudaEventCreate(&e0));
  HPC_CUDA_CHECK(cudaEventCreate(&e1));
  void *hd = nullptr, *hd2 = nullptr;
  HPC_CUDA_CHECK(cudaHostGetDevicePointer(&hd, host, 0));
  HPC_CUDA_CHECK(cudaHostGetDevicePointer(&hd2, host2, 0));
  int sms = 0;
  HPC_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t words = nbytes / 16;
  const int grid = int(std::min<int64_t>((words + 511) / 512, int64_t(sms) * 8));
  auto kcopy = [&](const void* src, void* dst, cudaStream_t st) {
    k_copy_words<<<grid, 512, 0, st>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), words);
  };
  double best = 0.0;
  for (int r = 0; r < repeat + 1; ++r) {  // the first is a warm-up
    HPC_CUDA_CHECK(cudaEventRecord(e0, s1));
    if (what == "h2d_ce") HPC_CUDA_CHECK(cudaMemcpyAsync(dev, host, nbytes, cudaMemcpyHostToDevice, s1));
    else if (what == "d2h_ce") HPC_CUDA_CHECK(cudaMemcpyAsync(host, dev, nbytes, cudaMemcpyDeviceToHost, s1));
    else if (what == "bidir_ce") {
      HPC_CUDA_CHECK(cudaStreamWaitEvent(s2, e0, 0));
      HPC_CUDA_CHECK(cudaMemcpyAsync(dev, host, nbytes, cudaMemcpyHostToDevice, s1));
      HPC_CUDA_CHECK(cudaMemcpyAsync(host2, dev2, nbytes, cudaMemcpyDeviceToHost, s2));
      cudaEvent_t j;
      HPC_CUDA_CHECK(cudaEventCreate(&j));
      HPC_CUDA_CHECK(cudaEventRecord(j, s2));
      HPC_CUDA_CHECK(cudaStreamWaitEvent(s1, j, 0));
      HPC_CUDA_CHECK(cudaEventDestroy(j));
    } else if (what == "d2d_ce") HPC_CUDA_CHECK(cudaMemcpyPeerAsync(other, peer, dev, device, nbytes, s1));
    else if (what == "h2d_sm") kcopy(hd, dev, s1);
    else if (what == "d2h_sm") kcopy(dev, hd, s1);
    else kcopy(dev, other, s1);  // d2d_sm: this device's SMs write the peer's memory
    HPC_CUDA_CHECK(cudaGetLastError());
    HPC_CUDA_CHECK(cudaEventRecord(e1, s1));
    HPC_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0.f;
    HPC_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    const double moved = double(nbytes) * (what == "bidir_ce" ? 2.0 : 1.0);
    if (r > 0 && ms > 0) best = std::max(best, moved / (double(ms) * 1e-3) / 1e9);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s1);
  cudaStreamDestroy(s2);
  cudaFree(dev);
  cudaFree(dev2);
  cudaFreeHost(host);
  cudaFreeHost(host2);
  if (other) {
    select_device(peer);
    cudaFree(other);
    select_device(device);
  }
  return best;
}

pybind11::list devices() {
  pybind11::list out;
  for (int i = 0, n = device_count(); i < n; ++i) {
    cudaDeviceProp p{};
    HPC_CUDA_CHECK(cudaGetDeviceProperties(&p, i));
    int pageable = 0, managed = 0, clock_khz = 0, bus_bits = 0;
    cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, i);
    cudaDeviceGetAttribute(&managed, cudaDevAttrManagedMemory, i);
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, i);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, i);
    pybind11::dict d;
    d["index"] = i;
    d["name"] = std::string(p.name);
    d["memory_bytes"] = int64_t(p.totalGlobalMem);
    d["multiprocessors"] = p.multiProcessorCount;
    d["compute_capability"] = std::to_string(p.major) + "." + std::to_string(p.minor);
    d["peak_GBps"] = 2.0 * clock_khz * 1e3 * (bus_bits / 8) / 1e9;
    d["managed_memory"] = bool(managed);
    d["pageable_memory_access"] = bool(pageable);
    out.append(d);
  }
  return out;
}
}  // namespace

HPC_SUBMODULE(stream) {
  m.doc() = "BabelStream kernels (CUDA)";
  bind<double>(m, "StreamF64");
  bind<float>(m, "StreamF32");
  m.def("devices", &devices, "The CUDA devices: index, name, memory, peak GB/s, memory modes");
  m.def("copy_bandwidth", &copy_bandwidth, pybind11::arg("what"), pybind11::arg("nbytes"),
        pybind11::arg("device") = 0, pybind11::arg("peer") = 1, pybind11::arg("repeat") = 5,
        "GB/s of one copy as nvbandwidth measures it (best of repeat, CUDA events): h2d_ce, "
        "d2h_ce, bidir_ce, d2d_ce (copy engines), h2d_sm, d2h_sm, d2d_sm (copy kernels)");
}
