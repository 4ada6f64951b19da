// BabelStream's kernels on Kokkos Views owned by the default execution space (OpenMP, CUDA or
// Serial, whichever the Kokkos in use was built for); the space's name goes into the record.
#include <Kokkos_Core.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <cstdint>
#include <string>

namespace py = pybind11;

namespace {
template <typename T>
class KokkosStream {
 public:
  using View = Kokkos::View<T*>;
  explicit KokkosStream(std::int64_t n) : n_(n), a_("a", n), b_("b", n), c_("c", n) {
    if (n <= 0) throw py::value_error("kokkos stream: array size must be positive");
  }
  void init(double va, double vb, double vc) {
    auto a = a_, b = b_, c = c_;
    const T xa = T(va), xb = T(vb), xc = T(vc);
    Kokkos::parallel_for("init", n_, KOKKOS_LAMBDA(const std::int64_t i) {
      a(i) = xa;
      b(i) = xb;
      c(i) = xc;
    });
    Kokkos::fence();
  }
  void copy() {
    auto a = a_, c = c_;
    Kokkos::parallel_for("copy", n_, KOKKOS_LAMBDA(const std::int64_t i) { c(i) = a(i); });
    Kokkos::fence();
  }
  void mul(double s_) {
    auto b = b_, c = c_;
    const T s = T(s_);
    Kokkos::parallel_for("mul", n_, KOKKOS_LAMBDA(const std::int64_t i) { b(i) = s * c(i); });
    Kokkos::fence();
  }
  void add() {
    auto a = a_, b = b_, c = c_;
    Kokkos::parallel_for("add", n_, KOKKOS_LAMBDA(const std::int64_t i) { c(i) = a(i) + b(i); });
    Kokkos::fence();
  }
  void triad(double s_) {
    auto a = a_, b = b_, c = c_;
    const T s = T(s_);
    Kokkos::parallel_for("triad", n_,
                         KOKKOS_LAMBDA(const std::int64_t i) { a(i) = b(i) + s * c(i); });
    Kokkos::fence();
  }
  void nstream(double s_) {
    auto a = a_, b = b_, c = c_;
    const T s = T(s_);
    Kokkos::parallel_for("nstream", n_,
                         KOKKOS_LAMBDA(const std::int64_t i) { a(i) += b(i) + s * c(i); });
    Kokkos::fence();
  }
  double dot() {
    auto a = a_, b = b_;
    double sum = 0.0;
    Kokkos::parallel_reduce(
        "dot", n_,
        KOKKOS_LAMBDA(const std::int64_t i, double& acc) { acc += double(a(i)) * double(b(i)); },
        sum);
    Kokkos::fence();
    return sum;
  }
  py::tuple read() {
    auto out = [this](const View& v) {
      py::array_t<T> arr(n_);
      Kokkos::View<T*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> host(
          arr.mutable_data(), n_);
      Kokkos::deep_copy(host, v);
      return arr;
    };
    return py::make_tuple(out(a_), out(b_), out(c_));
  }

 private:
  std::int64_t n_;
  View a_, b_, c_;
};

template <typename T>
void bind(py::module_& m, const char* name) {
  py::class_<KokkosStream<T>>(m, name)
      .def(py::init<std::int64_t>())
      .def("init", &KokkosStream<T>::init)
      .def("copy", &KokkosStream<T>::copy)
      .def("mul", &KokkosStream<T>::mul)
      .def("add", &KokkosStream<T>::add)
      .def("triad", &KokkosStream<T>::triad)
      .def("nstream", &KokkosStream<T>::nstream)
      .def("dot", &KokkosStream<T>::dot)
      .def("read", &KokkosStream<T>::read);
}
}  // namespace

PYBIND11_MODULE(_kokkos, m) {
  m.doc() = "BabelStream kernels on Kokkos";
  if (!Kokkos::is_initialized()) {
    Kokkos::initialize();
    // Views die with their Python owners; finalize runs at interpreter exit after them.
    py::module_::import("atexit").attr("register")(py::cpp_function([]() {
      if (Kokkos::is_initialized()) Kokkos::finalize();
    }));
  }
  m.attr("execution_space") = std::string(Kokkos::DefaultExecutionSpace::name());
  m.attr("concurrency") = Kokkos::DefaultExecutionSpace().concurrency();
  bind<double>(m, "StreamF64");
  bind<float>(m, "StreamF32");
}
