// CUDA packers for TEMPI's canonical strided blocks, and the buffers of the three GPU paths.
//
// A block: start byte, counts[0] contiguous bytes, then counts[i] repetitions strides[i]
// bytes apart (outermost slowest, MPI_Pack's order). One thread moves one word of the packed
// buffer; the word is the widest of 16/8/4/2/1 bytes that divides the start, the run length,
// every stride and both pointers, so rows of doubles move as 16-byte loads.
//
// Paths (hpc.halo.gpu drives them):
//   one-shot: pack straight into mapped pinned host memory (PinnedBuffer.device_ptr);
//   device:   pack into device memory (DeviceBuffer), handed to a CUDA-aware MPI;
//   staged:   pack into device memory, then copy to pinned host memory.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>
#include "hpc/cuda_check.hpp"
#include "hpc/registry.hpp"

namespace py = pybind11;

namespace {
constexpr int kMaxDims = 8;
constexpr int kThreads = 256;

struct Geo {
  int nd;
  int64_t start;
  int64_t counts[kMaxDims];
  int64_t strides[kMaxDims];
  int64_t words;       // packed size in words
  int64_t row_words;   // words per contiguous run
};

struct alignas(16) W16 {
  uint64_t a, b;
};

template <typename W, bool Unpack>
__global__ void k_move(unsigned char* strided, unsigned char* packed, Geo g) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t w = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; w < g.words; w += step) {
    int64_t b = w / g.row_words;
    int64_t off = g.start + (w - b * g.row_words) * int64_t(sizeof(W));
    for (int i = 1; i < g.nd; ++i) {
      const int64_t c = b % g.counts[i];
      b /= g.counts[i];
      off += c * g.strides[i];
    }
    W* s = reinterpret_cast<W*>(strided + off);
    W* p = reinterpret_cast<W*>(packed + w * int64_t(sizeof(W)));
    if (Unpack) *s = *p;
    else *p = *s;
  }
}

[[noreturn]] void fail(const std::string& m) { throw py::value_error(m); }

// Validates the block against both buffers; returns the geometry (word chosen).
Geo geometry(uintptr_t strided, int64_t strided_bytes, uintptr_t packed, int64_t packed_bytes,
             int64_t start, const std::vector<int64_t>& counts,
             const std::vector<int64_t>& strides) {
  if (counts.empty() || counts.size() != strides.size())
    fail("cuda pack: counts and strides must be non-empty and of equal length");
  if (counts.size() > size_t(kMaxDims)) fail("cuda pack: at most 8 dimensions");
  if (strides[0] != 1) fail("cuda pack: strides[0] must be 1 (dimension 0 is bytes)");
  Geo g{};
  g.nd = int(counts.size());
  g.start = start;
  __int128 total = 1, lo = start, hi = start;
  for (int i = 0; i < g.nd; ++i) {
    if (counts[i] < 0) fail("cuda pack: negative count");
    total *= counts[i];
    if (total > (__int128(1) << 62)) fail("cuda pack: block too large");
    g.counts[i] = counts[i];
    g.strides[i] = strides[i];
  }
  if (total == 0) {
    g.words = 0;
    g.row_words = 1;
    return g;
  }
  for (int i = 1; i < g.nd; ++i) {
    const __int128 d = __int128(counts[i] - 1) * strides[i];
    if (d < 0) lo += d; else hi += d;
  }
  hi += counts[0];
  if (lo < 0 || hi > strided_bytes)
    fail("cuda pack: block touches bytes outside the strided buffer of " +
         std::to_string(strided_bytes) + " bytes");
  if (total > packed_bytes) fail("cuda pack: packed buffer too small");
  if (!strided || !packed) fail("cuda pack: null pointer");
  uint64_t bits = uint64_t(start) | uint64_t(counts[0]) | uint64_t(strided) | uint64_t(packed);
  for (int i = 1; i < g.nd; ++i) bits |= uint64_t(strides[i]);
  int word = 16;
  while (word > 1 && (bits & uint64_t(word - 1))) word /= 2;
  g.row_words = counts[0] / word;
  g.words = int64_t(total) / word;
  return g;
}

template <bool Unpack>
void launch(unsigned char* strided, unsigned char* packed, const Geo& g, int word,
            cudaStream_t stream) {
  if (g.words == 0) return;
  int dev = 0, sms = 0;
  HPC_CUDA_CHECK(cudaGetDevice(&dev));
  HPC_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int blocks = int(std::min<int64_t>((g.words + kThreads - 1) / kThreads, int64_t(sms) * 32));
  switch (word) {
    case 16: k_move<W16, Unpack><<<blocks, kThreads, 0, stream>>>(strided, packed, g); break;
    case 8: k_move<uint64_t, Unpack><<<blocks, kThreads, 0, stream>>>(strided, packed, g); break;
    case 4: k_move<uint32_t, Unpack><<<blocks, kThreads, 0, stream>>>(strided, packed, g); break;
    case 2: k_move<uint16_t, Unpack><<<blocks, kThreads, 0, stream>>>(strided, packed, g); break;
    default: k_move<uint8_t, Unpack><<<blocks, kThreads, 0, stream>>>(strided, packed, g); break;
  }
  HPC_CUDA_CHECK(cudaGetLastError());
}

int64_t move(bool unpack, uintptr_t strided, int64_t strided_bytes, uintptr_t packed,
             int64_t packed_bytes, int64_t start, const std::vector<int64_t>& counts,
             const std::vector<int64_t>& strides, bool sync) {
  const Geo g = geometry(strided, strided_bytes, packed, packed_bytes, start, counts, strides);
  const int word = g.words ? int(counts[0] / g.row_words) : 1;
  {
    py::gil_scoped_release nogil;
    auto* s = reinterpret_cast<unsigned char*>(strided);
    auto* p = reinterpret_cast<unsigned char*>(packed);
    if (unpack) launch<true>(s, p, g, word, 0);
    else launch<false>(s, p, g, word, 0);
    if (sync) HPC_CUDA_CHECK(cudaDeviceSynchronize());
  }
  return g.words * word;
}

// A fixed list of blocks (a halo's 26 faces) packed or unpacked in ONE kernel launch: block
// k goes to packed bytes [offs[k], offs[k+1]). One thread moves one word of the packed
// buffer, finds its block by binary search over offs (26 entries: a few compares), then
// walks that block's odometer as k_move does. The word is the widest that divides every
// block's start, run length and strides, every offset and both pointers.
struct PlanGeo {
  int64_t start;
  int nd;
  int64_t counts[kMaxDims];
  int64_t strides[kMaxDims];
};

template <typename W, bool Unpack>
__global__ void k_move_all(unsigned char* strided, unsigned char* packed, const PlanGeo* geos,
                           const int64_t* offs, int nblocks, int64_t words) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t w = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; w < words; w += step) {
    const int64_t pb = w * int64_t(sizeof(W));
    int lo = 0, hi = nblocks - 1;  // the last block whose offset is <= pb
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (offs[mid] <= pb) lo = mid; else hi = mid - 1;
    }
    const PlanGeo& g = geos[lo];
    const int64_t row_words = g.counts[0] / int64_t(sizeof(W));
    const int64_t local = (pb - offs[lo]) / int64_t(sizeof(W));
    int64_t b = local / row_words;
    int64_t off = g.start + (local - b * row_words) * int64_t(sizeof(W));
    for (int i = 1; i < g.nd; ++i) {
      const int64_t c = b % g.counts[i];
      b /= g.counts[i];
      off += c * g.strides[i];
    }
    W* s = reinterpret_cast<W*>(strided + off);
    W* p = reinterpret_cast<W*>(packed + pb);
    if (Unpack) *s = *p;
    else *p = *s;
  }
}

class DevicePlan {
 public:
  DevicePlan(const std::vector<std::tuple<int64_t, std::vector<int64_t>, std::vector<int64_t>>>&
                 blocks,
             int64_t strided_bytes)
      : strided_bytes_(strided_bytes) {
    std::vector<PlanGeo> geos;
    std::vector<int64_t> offs;
    int64_t off = 0;
    for (const auto& [start, counts, strides] : blocks) {
      // validated as a single block (fake non-null pointers: only the geometry is checked)
      const Geo g = geometry(1, strided_bytes, 1, int64_t(1) << 62, start, counts, strides);
      const int64_t n = g.words * (g.words ? counts[0] / g.row_words : 1);
      if (n == 0) continue;  // empty blocks take no packed bytes and no threads
      PlanGeo pg{};
      pg.start = start;
      pg.nd = int(counts.size());
      for (int i = 0; i < pg.nd; ++i) {
        pg.counts[i] = counts[i];
        pg.strides[i] = strides[i];
        if (i) bits_ |= uint64_t(strides[i]);
      }
      bits_ |= uint64_t(start) | uint64_t(counts[0]) | uint64_t(off);
      geos.push_back(pg);
      offs.push_back(off);
      offsets_.push_back(off);
      off += n;
    }
    total_ = off;
    nblocks_ = int(geos.size());
    if (nblocks_) {
      HPC_CUDA_CHECK(cudaMalloc(&geos_, sizeof(PlanGeo) * geos.size()));
      HPC_CUDA_CHECK(cudaMalloc(&offs_, sizeof(int64_t) * offs.size()));
      HPC_CUDA_CHECK(cudaMemcpy(geos_, geos.data(), sizeof(PlanGeo) * geos.size(),
                                cudaMemcpyHostToDevice));
      HPC_CUDA_CHECK(cudaMemcpy(offs_, offs.data(), sizeof(int64_t) * offs.size(),
                                cudaMemcpyHostToDevice));
    }
  }
  ~DevicePlan() {
    cudaFree(geos_);
    cudaFree(offs_);
  }
  DevicePlan(const DevicePlan&) = delete;
  DevicePlan& operator=(const DevicePlan&) = delete;
  int64_t total() const { return total_; }
  const std::vector<int64_t>& offsets() const { return offsets_; }

  // strided: the device field; packed: device or mapped pinned memory (device pointers)
  int64_t run(bool unpack, uintptr_t strided, int64_t strided_bytes, uintptr_t packed,
              int64_t packed_bytes, bool sync) const {
    if (strided_bytes < strided_bytes_)
      fail("cuda DevicePlan: strided buffer has " + std::to_string(strided_bytes) +
           " bytes, the plan needs " + std::to_string(strided_bytes_));
    if (packed_bytes < total_)
      fail("cuda DevicePlan: packed buffer holds " + std::to_string(packed_bytes) +
           " bytes, the plan needs " + std::to_string(total_));
    if (!strided || !packed) fail("cuda DevicePlan: null pointer");
    if (total_ == 0) return 0;
    const uint64_t bits = bits_ | uint64_t(strided) | uint64_t(packed);
    int word = 16;
    while (word > 1 && (bits & uint64_t(word - 1))) word /= 2;
    auto* s = reinterpret_cast<unsigned char*>(strided);
    auto* p = reinterpret_cast<unsigned char*>(packed);
    py::gil_scoped_release nogil;
    int dev = 0, sms = 0;
    HPC_CUDA_CHECK(cudaGetDevice(&dev));
    HPC_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int64_t words = total_ / word;
    const int blocks =
        int(std::min<int64_t>((words + kThreads - 1) / kThreads, int64_t(sms) * 32));
    if (unpack) launch_all<true>(s, p, word, words, blocks);
    else launch_all<false>(s, p, word, words, blocks);
    HPC_CUDA_CHECK(cudaGetLastError());
    if (sync) HPC_CUDA_CHECK(cudaDeviceSynchronize());
    return total_;
  }

 private:
  template <bool Unpack>
  void launch_all(unsigned char* s, unsigned char* p, int word, int64_t words,
                  int blocks) const {
    switch (word) {
      case 16: k_move_all<W16, Unpack><<<blocks, kThreads>>>(s, p, geos_, offs_, nblocks_, words); break;
      case 8: k_move_all<uint64_t, Unpack><<<blocks, kThreads>>>(s, p, geos_, offs_, nblocks_, words); break;
      case 4: k_move_all<uint32_t, Unpack><<<blocks, kThreads>>>(s, p, geos_, offs_, nblocks_, words); break;
      case 2: k_move_all<uint16_t, Unpack><<<blocks, kThreads>>>(s, p, geos_, offs_, nblocks_, words); break;
      default: k_move_all<uint8_t, Unpack><<<blocks, kThreads>>>(s, p, geos_, offs_, nblocks_, words); break;
    }
  }
  PlanGeo* geos_ = nullptr;
  int64_t* offs_ = nullptr;
  std::vector<int64_t> offsets_;
  int64_t total_ = 0;
  int64_t strided_bytes_;
  int nblocks_ = 0;
  uint64_t bits_ = 0;
};

// Device memory, exposed through __cuda_array_interface__ so mpi4py hands the device
// pointer to a CUDA-aware MPI.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t nbytes) : n_(nbytes) {
    if (nbytes < 0) fail("DeviceBuffer: negative size");
    HPC_CUDA_CHECK(cudaMalloc(&p_, std::max<int64_t>(nbytes, 1)));
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(p_); }
  int64_t nbytes() const { return n_; }
  void upload(const py::array& a) {
    if (!(a.flags() & py::array::c_style)) fail("DeviceBuffer.upload: array not C-contiguous");
    if (int64_t(a.nbytes()) != n_) fail("DeviceBuffer.upload: size mismatch");
    HPC_CUDA_CHECK(cudaMemcpy(p_, a.data(), n_, cudaMemcpyHostToDevice));
  }
  void download(py::array& a) const {
    if (!(a.flags() & py::array::c_style) || !a.writeable())
      fail("DeviceBuffer.download: array not C-contiguous and writeable");
    if (int64_t(a.nbytes()) != n_) fail("DeviceBuffer.download: size mismatch");
    HPC_CUDA_CHECK(cudaMemcpy(a.mutable_data(), p_, n_, cudaMemcpyDeviceToHost));
  }
  py::dict cai() const {
    py::dict d;
    d["shape"] = py::make_tuple(n_);
    d["typestr"] = "|u1";
    d["data"] = py::make_tuple(ptr(), false);
    d["version"] = 3;
    d["strides"] = py::none();
    d["stream"] = 1;  // the legacy default stream: kernels are synchronised before use
    return d;
  }

 private:
  void* p_ = nullptr;
  int64_t n_;
};

// Mapped pinned host memory: the host sees it as a numpy array, kernels through device_ptr.
class PinnedBuffer {
 public:
  explicit PinnedBuffer(int64_t nbytes) : n_(nbytes) {
    if (nbytes < 0) fail("PinnedBuffer: negative size");
    HPC_CUDA_CHECK(cudaHostAlloc(&h_, std::max<int64_t>(nbytes, 1), cudaHostAllocMapped));
    HPC_CUDA_CHECK(cudaHostGetDevicePointer(&d_, h_, 0));
  }
  ~PinnedBuffer() { cudaFreeHost(h_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  uintptr_t device_ptr() const { return reinterpret_cast<uintptr_t>(d_); }
  int64_t nbytes() const { return n_; }
  unsigned char* host() const { return static_cast<unsigned char*>(h_); }

 private:
  void* h_ = nullptr;
  void* d_ = nullptr;
  int64_t n_;
};
}  // namespace

HPC_SUBMODULE(pack) {
  m.doc() = "CUDA pack/unpack of canonical strided blocks; device and mapped pinned buffers";
  m.def("pack",
        [](uintptr_t src, int64_t src_bytes, uintptr_t dst, int64_t dst_bytes, int64_t start,
           const std::vector<int64_t>& counts, const std::vector<int64_t>& strides, bool sync) {
          return move(false, src, src_bytes, dst, dst_bytes, start, counts, strides, sync);
        },
        py::arg("src"), py::arg("src_bytes"), py::arg("dst"), py::arg("dst_bytes"),
        py::arg("start"), py::arg("counts"), py::arg("strides"), py::arg("sync") = true,
        "Gather a strided block of device memory src into dst (device or mapped pinned "
        "memory, given as a device pointer); returns the packed byte count.");
  m.def("unpack",
        [](uintptr_t src, int64_t src_bytes, uintptr_t dst, int64_t dst_bytes, int64_t start,
           const std::vector<int64_t>& counts, const std::vector<int64_t>& strides, bool sync) {
          return move(true, dst, dst_bytes, src, src_bytes, start, counts, strides, sync);
        },
        py::arg("src"), py::arg("src_bytes"), py::arg("dst"), py::arg("dst_bytes"),
        py::arg("start"), py::arg("counts"), py::arg("strides"), py::arg("sync") = true,
        "Scatter the contiguous src (device pointer) into the strided block of device "
        "memory dst; returns the byte count.");
  m.def("synchronize", []() {
    py::gil_scoped_release nogil;
    HPC_CUDA_CHECK(cudaDeviceSynchronize());
  });
  m.def("copy_device",
        [](uintptr_t dst, uintptr_t src, int64_t nbytes, bool sync) {
          if (nbytes < 0 || (!dst && nbytes) || (!src && nbytes))
            fail("copy_device: null pointer or negative size");
          py::gil_scoped_release nogil;
          HPC_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst),
                                         reinterpret_cast<const void*>(src), nbytes,
                                         cudaMemcpyDeviceToDevice, 0));
          if (sync) HPC_CUDA_CHECK(cudaDeviceSynchronize());
        },
        py::arg("dst"), py::arg("src"), py::arg("nbytes"), py::arg("sync") = true,
        "Contiguous device-to-device copy (the baseline a device pack is measured against).");
  m.def("copy_to_host",
        [](py::array host, uintptr_t src, int64_t nbytes) {
          if (!(host.flags() & py::array::c_style) || !host.writeable() ||
              int64_t(host.nbytes()) < nbytes)
            fail("copy_to_host: host array too small, not contiguous or read-only");
          py::gil_scoped_release nogil;
          HPC_CUDA_CHECK(cudaMemcpy(host.mutable_data(), reinterpret_cast<void*>(src), nbytes,
                                    cudaMemcpyDeviceToHost));
        },
        py::arg("host"), py::arg("src"), py::arg("nbytes"));
  m.def("copy_to_device",
        [](uintptr_t dst, py::array host, int64_t nbytes) {
          if (!(host.flags() & py::array::c_style) || int64_t(host.nbytes()) < nbytes)
            fail("copy_to_device: host array too small or not contiguous");
          py::gil_scoped_release nogil;
          HPC_CUDA_CHECK(cudaMemcpy(reinterpret_cast<void*>(dst), host.data(), nbytes,
                                    cudaMemcpyHostToDevice));
        },
        py::arg("dst"), py::arg("host"), py::arg("nbytes"));
  py::class_<DevicePlan>(m, "DevicePlan",
                         "A fixed list of strided blocks packed or unpacked in ONE kernel "
                         "launch (block k at packed byte offsets()[k])")
      .def(py::init<const std::vector<std::tuple<int64_t, std::vector<int64_t>,
                                                 std::vector<int64_t>>>&, int64_t>(),
           py::arg("blocks"), py::arg("strided_bytes"))
      .def_property_readonly("total", &DevicePlan::total)
      .def_property_readonly("offsets", &DevicePlan::offsets)
      .def("pack_all",
           [](const DevicePlan& p, uintptr_t src, int64_t src_bytes, uintptr_t dst,
              int64_t dst_bytes, bool sync) {
             return p.run(false, src, src_bytes, dst, dst_bytes, sync);
           },
           py::arg("src"), py::arg("src_bytes"), py::arg("dst"), py::arg("dst_bytes"),
           py::arg("sync") = true,
           "Gather every block of the device field src into dst (device pointers), one launch.")
      .def("unpack_all",
           [](const DevicePlan& p, uintptr_t src, int64_t src_bytes, uintptr_t dst,
              int64_t dst_bytes, bool sync) {
             return p.run(true, dst, dst_bytes, src, src_bytes, sync);
           },
           py::arg("src"), py::arg("src_bytes"), py::arg("dst"), py::arg("dst_bytes"),
           py::arg("sync") = true,
           "Scatter the packed src into every block of the device field dst, one launch.");
  py::class_<DeviceBuffer>(m, "DeviceBuffer", "cudaMalloc'd bytes (freed with the object)")
      .def(py::init<int64_t>(), py::arg("nbytes"))
      .def_property_readonly("ptr", &DeviceBuffer::ptr)
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
      .def("upload", &DeviceBuffer::upload)
      .def("download", &DeviceBuffer::download)
      .def_property_readonly("__cuda_array_interface__", &DeviceBuffer::cai);
  py::class_<PinnedBuffer>(m, "PinnedBuffer", "mapped pinned host bytes (cudaHostAllocMapped)")
      .def(py::init<int64_t>(), py::arg("nbytes"))
      .def_property_readonly("device_ptr", &PinnedBuffer::device_ptr)
      .def_property_readonly("nbytes", &PinnedBuffer::nbytes)
      .def_property_readonly("array", [](py::object self) {
        auto& b = self.cast<PinnedBuffer&>();
        // a numpy view whose base keeps the buffer alive
        return py::array(py::dtype("uint8"), {b.nbytes()}, {int64_t(1)}, b.host(), self);
      });
}
