// BabelStream's kernels in CUDA, on device arrays owned by a DeviceStream object.
#include <algorithm>
#include <cstdint>
#include "hpc/cuda_check.hpp"
#include "hpc/registry.hpp"
#include <pybind11/numpy.h>

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

template <typename T>
class DeviceStream {
 public:
  explicit DeviceStream(int64_t n) : n_(n) {
    if (n <= 0) throw pybind11::value_error("cuda stream: array size must be positive");
    HPC_CUDA_CHECK(cudaMalloc(&a_, sizeof(T) * n));
    HPC_CUDA_CHECK(cudaMalloc(&b_, sizeof(T) * n));
    HPC_CUDA_CHECK(cudaMalloc(&c_, sizeof(T) * n));
    HPC_CUDA_CHECK(cudaMalloc(&partial_, sizeof(double) * kDotBlocks));
    int dev = 0, sms = 0;
    HPC_CUDA_CHECK(cudaGetDevice(&dev));
    HPC_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    grid_ = static_cast<int>(std::min<int64_t>((n + kBlock - 1) / kBlock, int64_t(sms) * 32));
  }
  ~DeviceStream() { cudaFree(a_); cudaFree(b_); cudaFree(c_); cudaFree(partial_); }
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  void init(double va, double vb, double vc) { k_init<<<grid_, kBlock>>>(a_, b_, c_, T(va), T(vb), T(vc), n_); sync(); }
  void copy() { k_copy<<<grid_, kBlock>>>(a_, c_, n_); sync(); }
  void mul(double s) { k_mul<<<grid_, kBlock>>>(b_, c_, T(s), n_); sync(); }
  void add() { k_add<<<grid_, kBlock>>>(a_, b_, c_, n_); sync(); }
  void triad(double s) { k_triad<<<grid_, kBlock>>>(a_, b_, c_, T(s), n_); sync(); }
  void nstream(double s) { k_nstream<<<grid_, kBlock>>>(a_, b_, c_, T(s), n_); sync(); }
  double dot() {
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
      HPC_CUDA_CHECK(cudaMemcpy(h.mutable_data(), d, sizeof(T) * n_, cudaMemcpyDeviceToHost));
      return h;
    };
    return pybind11::make_tuple(out(a_), out(b_), out(c_));
  }

 private:
  void sync() {
    HPC_CUDA_CHECK(cudaGetLastError());
    HPC_CUDA_CHECK(cudaDeviceSynchronize());
  }
  int64_t n_;
  int grid_ = 1;
  T *a_ = nullptr, *b_ = nullptr, *c_ = nullptr;
  double* partial_ = nullptr;
};

template <typename T>
void bind(pybind11::module_& m, const char* name) {
  pybind11::class_<DeviceStream<T>>(m, name)
      .def(pybind11::init<int64_t>())
      .def("init", &DeviceStream<T>::init)
      .def("copy", &DeviceStream<T>::copy)
      .def("mul", &DeviceStream<T>::mul)
      .def("add", &DeviceStream<T>::add)
      .def("triad", &DeviceStream<T>::triad)
      .def("nstream", &DeviceStream<T>::nstream)
      .def("dot", &DeviceStream<T>::dot)
      .def("read", &DeviceStream<T>::read);
}
}  // namespace

HPC_SUBMODULE(stream) {
  m.doc() = "BabelStream kernels (CUDA)";
  bind<double>(m, "StreamF64");
  bind<float>(m, "StreamF32");
}
