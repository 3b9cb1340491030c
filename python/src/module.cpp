// SPDX-License-Identifier: Apache-2.0
// kmeans._core: the pybind11 bridge from Python to kmeans::fit/predict/transform/score and model files.
//
// The Python layer (python/kmeans/_estimator.py) validates and lays out the arrays; this module
// takes their addresses (host memory, or device memory for the CUDA backend) and runs the
// library on them in place, with the GIL released. Results come back as NumPy arrays that own
// the library's vectors (moved, not copied).
#include <kmeans/kmeans.hpp>

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#ifdef KMEANS_PY_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace py = pybind11;

namespace {

/// A NumPy array that takes over `v` (no copy): the vector lives in a capsule the array owns.
template <class T>
py::array_t<T> adopt(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule keep(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owned->data(), keep);
}

kmeans::Backend parse_backend(const std::string& s) {
  if (s == "auto") return kmeans::Backend::Auto;
  if (s == "cuda") return kmeans::Backend::Cuda;
  if (s == "cpu") return kmeans::Backend::Cpu;
  if (s == "reference") return kmeans::Backend::Reference;
  throw py::value_error("backend = '" + s + "' is not one of 'auto', 'cuda', 'cpu', 'reference'");
}

kmeans::Metric parse_metric(const std::string& s) {
  if (s == "euclidean") return kmeans::Metric::Euclidean;
  if (s == "cosine") return kmeans::Metric::Cosine;
  throw py::value_error("metric = '" + s + "' is not one of 'euclidean', 'cosine'");
}

kmeans::Algorithm parse_algorithm(const std::string& s) {
  if (s == "lloyd") return kmeans::Algorithm::Lloyd;
  if (s == "elkan") return kmeans::Algorithm::Elkan;
  if (s == "auto") return kmeans::Algorithm::Auto;
  throw py::value_error("algorithm = '" + s + "' is not one of 'lloyd', 'elkan', 'auto'");
}

const char* algorithm_name(kmeans::Algorithm a) {
  return a == kmeans::Algorithm::Elkan ? "elkan" : a == kmeans::Algorithm::Auto ? "auto" : "lloyd";
}

kmeans::Init parse_init(const std::string& s) {
  if (s == "random") return kmeans::Init::Random;
  if (s == "k-means++") return kmeans::Init::KMeansPlusPlus;
  if (s == "k-means||") return kmeans::Init::KMeansParallel;
  if (s == "array") return kmeans::Init::Array;
  throw py::value_error("init = '" + s + "' is not one of 'k-means++', 'random', 'k-means||'");
}

template <class T>
const T* as_ptr(std::uintptr_t address) {
  return reinterpret_cast<const T*>(address);  // NOLINT: addresses come from the Python layer
}

template <class T>
py::dict result_dict(kmeans::Result<T>&& r, std::size_t d);

/// The on_iteration of a call made with the GIL released: takes the GIL back to check for
/// signals and call `callback(iteration, sse, center_shift, seconds)`, whose false return
/// stops the fit; an exception it raises (KeyboardInterrupt included) stops the fit and is kept
/// in `raised` for the caller to raise again.
std::function<bool(const kmeans::IterationInfo&)> iteration_hook(
    const py::object& callback, std::optional<py::error_already_set>& raised) {
  return [&callback, &raised](const kmeans::IterationInfo& it) {
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (callback.is_none()) return true;
      py::object r = callback(it.iteration, it.sse, it.center_shift, it.seconds);
      return r.is_none() || r.cast<bool>();
    } catch (py::error_already_set& e) {
      raised.emplace(std::move(e));
      return false;
    }
  };
}

/// kmeans::fit on n x d values of type T at `data` (host or device memory); the GIL is released
/// while it runs and taken back only to call `callback(iteration, sse, center_shift, seconds)`,
/// whose false return stops the fit. An exception raised by the callback (KeyboardInterrupt
/// included: signals are checked at every iteration) stops the fit and is raised again here.
template <class T>
py::dict fit(std::uintptr_t data, std::size_t n, std::size_t d, int k, const std::string& init,
             std::uintptr_t init_centroids, std::size_t init_size, int n_init, int max_iter,
             double tol, std::uint64_t seed, const std::string& backend, int n_threads,
             std::uintptr_t sample_weight, std::size_t weight_size, py::object callback,
             const std::string& metric, const std::string& algorithm) {
  kmeans::Params<T> p;
  p.metric = parse_metric(metric);
  p.algorithm = parse_algorithm(algorithm);
  p.k = k;
  p.init = parse_init(init);
  p.n_init = n_init;
  p.max_iter = max_iter;
  p.tol = tol;
  p.seed = seed;
  p.backend = parse_backend(backend);
  p.n_threads = n_threads;
  if (init_centroids) p.init_centroids = kmeans::ArrayView<T>(as_ptr<T>(init_centroids), init_size);
  if (sample_weight) p.sample_weight = kmeans::ArrayView<T>(as_ptr<T>(sample_weight), weight_size);
  std::optional<py::error_already_set> raised;
  p.on_iteration = iteration_hook(callback, raised);
  kmeans::Result<T> r;
  {
    py::gil_scoped_release release;
    r = kmeans::fit(as_ptr<T>(data), n, d, p);
  }
  if (raised) throw std::move(*raised);
  return result_dict(std::move(r), d);
}

/// A fit's result as the dict the Python layer reads (the vectors moved into NumPy arrays).
template <class T>
py::dict result_dict(kmeans::Result<T>&& r, std::size_t d) {
  py::dict out;
  const auto kk = static_cast<py::ssize_t>(r.centroids.size() / d);
  const auto n = r.labels.size();
  out["labels"] = adopt(std::move(r.labels), {static_cast<py::ssize_t>(n)});
  out["centroids"] = adopt(std::move(r.centroids), {kk, static_cast<py::ssize_t>(d)});
  out["inertia"] = r.inertia;
  const auto n_history = static_cast<py::ssize_t>(r.sse_history.size());
  out["sse_history"] = adopt(std::move(r.sse_history), {n_history});
  out["n_iter"] = r.n_iter;
  out["n_steps"] = r.n_steps;
  out["converged"] = r.converged;
  out["n_empty_relocated"] = r.n_empty_relocated;
  out["cluster_sizes"] = adopt(std::move(r.cluster_sizes), {kk});
  out["backend"] = kmeans::to_string(r.backend);
  py::dict t;
  t["init"] = r.timings.init;
  t["assign"] = r.timings.assign;
  t["update"] = r.timings.update;
  t["final_assign"] = r.timings.final_assign;
  out["timings"] = t;
  out["warnings"] = r.warnings;
  return out;
}

template <class T>
py::tuple predict(std::uintptr_t data, std::size_t n, std::size_t d, std::uintptr_t centroids,
                  std::size_t k, const std::string& backend, const std::string& metric) {
  kmeans::Backend used = kmeans::Backend::Auto;
  std::vector<std::int32_t> labels;
  const kmeans::Backend b = parse_backend(backend);
  const kmeans::Metric m = parse_metric(metric);
  {
    py::gil_scoped_release release;
    labels = kmeans::predict(as_ptr<T>(data), n, d, as_ptr<T>(centroids), k, m, b, &used);
  }
  return py::make_tuple(adopt(std::move(labels), {static_cast<py::ssize_t>(n)}),
                        kmeans::to_string(used));
}

/// predict into device memory at `out` (n int32 labels; output="device" for CUDA input):
/// returns the backend that ran.
template <class T>
std::string predict_device(std::uintptr_t data, std::size_t n, std::size_t d,
                           std::uintptr_t centroids, std::size_t k, const std::string& backend,
                           const std::string& metric, std::uintptr_t out) {
  kmeans::Backend used = kmeans::Backend::Auto;
  const kmeans::Backend b = parse_backend(backend);
  const kmeans::Metric m = parse_metric(metric);
  {
    py::gil_scoped_release release;
    kmeans::predict_to_device(as_ptr<T>(data), n, d, as_ptr<T>(centroids), k,
                              reinterpret_cast<std::int32_t*>(out), m, b, &used);
  }
  return kmeans::to_string(used);
}

template <class T>
py::tuple transform(std::uintptr_t data, std::size_t n, std::size_t d, std::uintptr_t centroids,
                    std::size_t k, const std::string& backend, const std::string& metric) {
  kmeans::Backend used = kmeans::Backend::Auto;
  std::vector<T> dist;
  const kmeans::Backend b = parse_backend(backend);
  const kmeans::Metric m = parse_metric(metric);
  {
    py::gil_scoped_release release;
    dist = kmeans::transform(as_ptr<T>(data), n, d, as_ptr<T>(centroids), k, m, b, &used);
  }
  return py::make_tuple(
      adopt(std::move(dist), {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)}),
      kmeans::to_string(used));
}

template <class T>
py::tuple score(std::uintptr_t data, std::size_t n, std::size_t d, std::uintptr_t centroids,
                std::size_t k, std::uintptr_t sample_weight, std::size_t weight_size,
                const std::string& backend, const std::string& metric) {
  kmeans::Backend used = kmeans::Backend::Auto;
  kmeans::ArrayView<T> w;
  if (sample_weight) w = kmeans::ArrayView<T>(as_ptr<T>(sample_weight), weight_size);
  const kmeans::Backend b = parse_backend(backend);
  const kmeans::Metric m = parse_metric(metric);
  double s = 0;
  {
    py::gil_scoped_release release;
    s = kmeans::score(as_ptr<T>(data), n, d, as_ptr<T>(centroids), k, m, w, b, &used);
  }
  return py::make_tuple(s, kmeans::to_string(used));
}

/// Writes a model file (KMeans<T>::save) of fitted centroids (k x d) and the fit's facts in
/// `info`: the params (max_iter, tol, init, n_init, seed, backend, n_threads, metric) and the result
/// (inertia, n_iter, converged, n_empty_relocated, result_backend, sse_history,
/// imbalance_history, cluster_sizes, warnings).
template <class T>
void save_model(const std::string& path, py::array_t<T, py::array::c_style | py::array::forcecast> centers,
                const py::dict& info) {
  if (centers.ndim() != 2) throw py::value_error("cluster_centers_ must be 2-D (n_clusters, n_features)");
  const auto k = static_cast<std::size_t>(centers.shape(0));
  const auto d = static_cast<std::size_t>(centers.shape(1));
  kmeans::Params<T> p;
  p.k = static_cast<int>(std::min<std::size_t>(k, static_cast<std::size_t>(INT32_MAX)));
  p.max_iter = info["max_iter"].cast<int>();
  p.tol = info["tol"].cast<double>();
  p.init = parse_init(info["init"].cast<std::string>());
  p.n_init = info["n_init"].cast<int>();
  p.seed = info["seed"].cast<std::uint64_t>();
  p.backend = parse_backend(info["backend"].cast<std::string>());
  p.n_threads = info["n_threads"].cast<int>();
  if (info.contains("metric")) p.metric = parse_metric(info["metric"].cast<std::string>());
  if (info.contains("algorithm")) p.algorithm = parse_algorithm(info["algorithm"].cast<std::string>());
  kmeans::Result<T> r;
  r.centroids.assign(centers.data(), centers.data() + k * d);
  r.inertia = info["inertia"].cast<double>();
  r.n_iter = info["n_iter"].cast<int>();
  r.converged = info["converged"].cast<bool>();
  r.n_empty_relocated = info["n_empty_relocated"].cast<int>();
  r.backend = parse_backend(info["result_backend"].cast<std::string>());
  r.sse_history = info["sse_history"].cast<std::vector<double>>();
  r.imbalance_history = info["imbalance_history"].cast<std::vector<double>>();
  r.cluster_sizes = info["cluster_sizes"].cast<std::vector<double>>();
  r.warnings = info["warnings"].cast<std::vector<std::string>>();
  const kmeans::KMeans<T> model = kmeans::KMeans<T>::from_result(std::move(p), std::move(r), d);
  py::gil_scoped_release release;
  model.save(path);
}

template <class T>
py::dict load_model_as(const std::string& path) {
  kmeans::KMeans<T> model = kmeans::KMeans<T>::load(path);
  kmeans::Result<T> r = model.result();
  const kmeans::Params<T>& p = model.params();
  const auto d = static_cast<py::ssize_t>(model.n_features());
  const auto k = static_cast<py::ssize_t>(r.centroids.size()) / d;
  py::dict params;
  params["k"] = p.k;
  params["max_iter"] = p.max_iter;
  params["tol"] = p.tol;
  params["init"] = p.init == kmeans::Init::Random ? "random"
                   : p.init == kmeans::Init::KMeansPlusPlus ? "k-means++"
                   : p.init == kmeans::Init::KMeansParallel ? "k-means||" : "array";
  params["n_init"] = p.n_init;
  params["seed"] = p.seed;
  params["backend"] = kmeans::to_string(p.backend);
  params["n_threads"] = p.n_threads;
  params["metric"] = kmeans::to_string(p.metric);
  params["batch_size"] = p.batch_size;
  params["max_no_improvement"] = p.max_no_improvement;
  params["reassignment_ratio"] = p.reassignment_ratio;
  params["algorithm"] = algorithm_name(p.algorithm);
  py::dict out;
  out["params"] = params;
  out["centroids"] = adopt(std::move(r.centroids), {k, d});
  out["inertia"] = r.inertia;
  out["n_iter"] = r.n_iter;
  out["n_steps"] = r.n_steps;
  out["converged"] = r.converged;
  out["n_empty_relocated"] = r.n_empty_relocated;
  out["backend"] = kmeans::to_string(r.backend);
  const auto n_sse = static_cast<py::ssize_t>(r.sse_history.size());
  out["sse_history"] = adopt(std::move(r.sse_history), {n_sse});
  const auto n_imb = static_cast<py::ssize_t>(r.imbalance_history.size());
  out["imbalance_history"] = adopt(std::move(r.imbalance_history), {n_imb});
  const auto n_sizes = static_cast<py::ssize_t>(r.cluster_sizes.size());
  out["cluster_sizes"] = adopt(std::move(r.cluster_sizes), {n_sizes});
  out["warnings"] = r.warnings;
  return out;
}

/// A kmeans::KMeans<T> kept between Python calls (MiniBatchKMeans): its fit and partial_fit
/// (which carries counts and generator from call to call), and its model text (pickling) and
/// file. Array params (init centroids, sample weights) are given per call and cleared after
/// it, so nothing dangles between calls.
template <class T>
class Model {
 public:
  /// The scalar params of the next call, from the Python layer's checked values.
  void set_params(int k, const std::string& init, int n_init, int max_iter, double tol,
                  std::uint64_t seed, const std::string& backend, int n_threads, int batch_size,
                  int max_no_improvement, double reassignment_ratio,
                  const std::string& metric) {
    kmeans::Params<T>& p = m_.params();
    p.metric = parse_metric(metric);
    p.k = k;
    p.init = parse_init(init);
    p.n_init = n_init;
    p.max_iter = max_iter;
    p.tol = tol;
    p.seed = seed;
    p.backend = parse_backend(backend);
    p.n_threads = n_threads;
    p.batch_size = batch_size;
    p.max_no_improvement = max_no_improvement;
    p.reassignment_ratio = reassignment_ratio;
  }

  py::dict fit(std::uintptr_t data, std::size_t n, std::size_t d, std::uintptr_t init_centroids,
               std::size_t init_size, std::uintptr_t sample_weight, std::size_t weight_size,
               py::object callback) {
    return call(false, data, n, d, init_centroids, init_size, sample_weight, weight_size, callback);
  }
  py::dict partial_fit(std::uintptr_t data, std::size_t n, std::size_t d,
                       std::uintptr_t init_centroids, std::size_t init_size,
                       std::uintptr_t sample_weight, std::size_t weight_size, py::object callback) {
    return call(true, data, n, d, init_centroids, init_size, sample_weight, weight_size, callback);
  }

  bool fitted() const { return m_.fitted(); }
  std::string to_json() const { return m_.to_json(); }
  void save(const std::string& path) const {
    py::gil_scoped_release release;
    m_.save(path);
  }
  static Model from_json(const std::string& text) { return Model(kmeans::KMeans<T>::from_json(text)); }
  static Model load(const std::string& path) { return Model(kmeans::KMeans<T>::load(path)); }
  /// The kept result (what the model file holds: labels empty after a load).
  py::dict result() const {
    kmeans::Result<T> r = m_.result();
    return result_dict(std::move(r), m_.n_features());
  }

  Model() = default;

 private:
  explicit Model(kmeans::KMeans<T>&& m) : m_(std::move(m)) {}

  py::dict call(bool partial, std::uintptr_t data, std::size_t n, std::size_t d,
                std::uintptr_t init_centroids, std::size_t init_size, std::uintptr_t sample_weight,
                std::size_t weight_size, const py::object& callback) {
    kmeans::Params<T>& p = m_.params();
    p.init_centroids = init_centroids ? kmeans::ArrayView<T>(as_ptr<T>(init_centroids), init_size)
                                      : kmeans::ArrayView<T>();
    p.sample_weight = sample_weight ? kmeans::ArrayView<T>(as_ptr<T>(sample_weight), weight_size)
                                    : kmeans::ArrayView<T>();
    std::optional<py::error_already_set> raised;
    p.on_iteration = iteration_hook(callback, raised);
    struct Clear {  // the arrays and the hook refer to this call's objects
      kmeans::Params<T>& p;
      ~Clear() {
        p.init_centroids = {};
        p.sample_weight = {};
        p.on_iteration = nullptr;
      }
    } clear{p};
    {
      py::gil_scoped_release release;
      if (partial) {
        m_.partial_fit(as_ptr<T>(data), n, d);
      } else {
        m_.fit(as_ptr<T>(data), n, d);
      }
    }
    if (raised) throw std::move(*raised);
    kmeans::Result<T> r = m_.result();
    return result_dict(std::move(r), d);
  }

  kmeans::KMeans<T> m_;
};

template <class T>
void bind_model(py::module_& m, const char* name) {
  py::class_<Model<T>>(m, name)
      .def(py::init<>())
      .def("set_params", &Model<T>::set_params)
      .def("fit", &Model<T>::fit)
      .def("partial_fit", &Model<T>::partial_fit)
      .def("fitted", &Model<T>::fitted)
      .def("result", &Model<T>::result)
      .def("to_json", &Model<T>::to_json)
      .def("save", &Model<T>::save)
      .def_static("from_json", &Model<T>::from_json)
      .def_static("load", &Model<T>::load);
}

/// Reads a model file of either dtype: a dict of its params, centroids and result.
py::dict load_model(const std::string& path) {
  return kmeans::model_dtype(path) == "float32" ? load_model_as<float>(path)
                                                : load_model_as<double>(path);
}

/// The layout of a DLPack tensor (dlpack.h, ABI version 0.x "dltensor" capsules): only the
/// fields read here, in the order the specification fixes.
struct DLDevice {
  std::int32_t device_type;  // kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13
  std::int32_t device_id;
};
struct DLDataType {
  std::uint8_t code;  // kDLInt = 0, kDLUInt = 1, kDLFloat = 2
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // in elements; null means C-contiguous
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};

/// What a "dltensor" capsule describes: (address, shape, strides or None, dtype code, bits,
/// lanes, device type, device id). The capsule stays unconsumed: its owner (the caller keeps
/// it alive for the duration of the call) frees the tensor.
py::tuple dlpack_info(py::capsule cap) {
  if (std::string(cap.name() ? cap.name() : "") != "dltensor")
    throw py::value_error("not an unconsumed DLPack capsule (name '" +
                          std::string(cap.name() ? cap.name() : "") + "')");
  const auto* m = static_cast<const DLManagedTensor*>(cap.get_pointer());
  const DLTensor& t = m->dl_tensor;
  py::list shape, strides;
  for (int i = 0; i < t.ndim; ++i) {
    shape.append(t.shape[i]);
    if (t.strides) strides.append(t.strides[i]);
  }
  const auto address = reinterpret_cast<std::uintptr_t>(t.data) + t.byte_offset;
  return py::make_tuple(address, py::tuple(shape),
                        t.strides ? py::object(py::tuple(strides)) : py::object(py::none()),
                        t.dtype.code, t.dtype.bits, t.dtype.lanes, t.device.device_type,
                        t.device.device_id);
}

/// Waits for the work queued on a CUDA stream (a cudaStream_t given as an integer, as in
/// __cuda_array_interface__'s "stream"), so that the library reads data that is complete.
void stream_synchronize(std::uintptr_t stream) {
#ifdef KMEANS_PY_WITH_CUDA
  cudaError_t e;
  {
    py::gil_scoped_release release;
    e = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream));  // NOLINT
  }
  if (e != cudaSuccess)
    throw py::value_error(std::string("cudaStreamSynchronize failed: ") + cudaGetErrorString(e));
#else
  (void)stream;
  throw py::value_error(
      "kmeans was built without the CUDA backend: device arrays are not supported");
#endif
}

py::tuple cuda_available() {
  std::string why;
  const bool ok = kmeans::cuda_available(&why);
  return py::make_tuple(ok, why);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "kmeans' compiled core: thin bindings of kmeans::fit/predict/transform/score";
  // Every kmeans::Error is bad input or an unusable backend: a ValueError with its message.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const kmeans::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("fit_float32", &fit<float>);
  m.def("fit_float64", &fit<double>);
  m.def("predict_float32", &predict<float>);
  m.def("predict_float64", &predict<double>);
  m.def("predict_device_float32", &predict_device<float>);
  m.def("predict_device_float64", &predict_device<double>);
  m.def("transform_float32", &transform<float>);
  m.def("transform_float64", &transform<double>);
  m.def("score_float32", &score<float>);
  m.def("score_float64", &score<double>);
  m.def("save_model_float32", &save_model<float>);
  m.def("save_model_float64", &save_model<double>);
  m.def("load_model", &load_model);
  bind_model<float>(m, "Model_float32");
  bind_model<double>(m, "Model_float64");
  m.def("max_abs_value_float32", &kmeans::max_abs_value<float>);
  m.def("max_abs_value_float64", &kmeans::max_abs_value<double>);
  m.def("dlpack_info", &dlpack_info);
  m.def("stream_synchronize", &stream_synchronize);
  m.def("cuda_available", &cuda_available);
  m.def("version", [] { return std::string(kmeans::version()); });
#ifdef KMEANS_PY_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
