// pycnn._core: turns NumPy arrays into pointers and shapes, allocates outputs,
// releases the GIL around every kernel, and does nothing else. Validation of
// shapes and hyper-parameters lives in ops.cpp; Python's pycnn.functional
// converts dtypes and layouts before calling in, so arrays arriving here must
// already be C-contiguous, aligned and of the exact dtype (anything else is a
// bug in the caller and raises TypeError rather than being silently copied).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "buffer_cache.h"
#include "dispatch.h"
#include "gemm/gemm.h"
#include "ops.h"
#include "parallel.h"

namespace py = pybind11;
using pycnn::i64;
using pycnn::ops::Shape;

namespace {

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

template <class T>
const char* dtype_name();
template <>
const char* dtype_name<float>() { return "float32"; }
template <>
const char* dtype_name<int64_t>() { return "int64"; }
template <>
const char* dtype_name<int32_t>() { return "int32"; }

template <class T>
void check_layout(const py::array& a, const char* name) {
  if (!py::array_t<T>::check_(a))
    throw py::type_error(std::string(name) + ": expected a " + dtype_name<T>() + " array, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((flags & need) != need)
    throw py::type_error(std::string(name) + ": expected a C-contiguous, aligned array");
}

template <class T>
const T* in(const py::array& a, const char* name) {
  check_layout<T>(a, name);
  return static_cast<const T*>(a.data());
}

template <class T>
T* inout(py::array& a, const char* name) {
  check_layout<T>(a, name);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<T*>(a.mutable_data());
}

// An array written in place must not share memory with the arrays read.
void check_disjoint(const py::array& out, const char* out_name, const py::array& other, const char* name) {
  auto lo1 = reinterpret_cast<std::uintptr_t>(out.data()), hi1 = lo1 + out.nbytes();
  auto lo2 = reinterpret_cast<std::uintptr_t>(other.data()), hi2 = lo2 + other.nbytes();
  if (out.nbytes() > 0 && other.nbytes() > 0 && lo1 < hi2 && lo2 < hi1)
    throw py::value_error(std::string(out_name) + " must not share memory with " + name);
}

// Output arrays live in blocks from the buffer cache (buffer_cache.h): the
// capsule that owns the block gives it back when NumPy frees the array.
template <class T>
py::array_t<T> new_array_of(const Shape& shape) {
  std::size_t count = 1;
  for (i64 d : shape) count *= static_cast<std::size_t>(d);  // ops checked the shape against overflow
  void* block = pycnn::buffer_acquire(count * sizeof(T));
  py::capsule owner;
  try {
    owner = py::capsule(block, [](void* p) { pycnn::buffer_release(p); });
  } catch (...) {
    pycnn::buffer_release(block);
    throw;
  }
  return py::array_t<T>(shape, static_cast<T*>(block), owner);
}

py::array_t<float> new_array(const Shape& shape) { return new_array_of<float>(shape); }

Shape tuple_shape(const std::vector<i64>& v) { return Shape(v.begin(), v.end()); }

pycnn::ops::Conv2dParams conv_params(std::array<i64, 2> stride, std::array<i64, 4> padding,
                                     std::array<i64, 2> dilation, i64 groups) {
  return {stride[0], stride[1], padding[0], padding[1], padding[2], padding[3], dilation[0], dilation[1], groups};
}

pycnn::ops::Activation parse_activation(const std::string& name) {
  using pycnn::ops::Activation;
  if (name == "relu") return Activation::ReLU;
  if (name == "leaky_relu") return Activation::LeakyReLU;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "tanh") return Activation::Tanh;
  throw py::value_error("unknown activation '" + name + "'");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  namespace ops = pycnn::ops;
  m.doc() = "pycnn's compiled kernels. Private: use pycnn.functional and pycnn.nn.";
  m.attr("__version__") = PYCNN_VERSION;

  m.def("get_num_threads", &pycnn::peek_num_threads);
  m.def("forked_single_threaded", &pycnn::forked_single_threaded,
        "True in a process forked after its parent ran threaded kernels: it stays single-threaded.");
  m.def("set_num_threads", [](i64 n) {
    if (n < 1) throw py::value_error("set_num_threads: expected n >= 1, got " + std::to_string(n));
    if (n > pycnn::max_num_threads())
      throw py::value_error("set_num_threads: expected n <= " + std::to_string(pycnn::max_num_threads()) +
                            " (4 per hardware thread, at least 16), got " + std::to_string(n) +
                            ": more threads only oversubscribe the cores, and a thread OpenMP fails to "
                            "create ends the process");
    pycnn::set_num_threads(static_cast<int>(n));
  });
  m.def("max_num_threads", &pycnn::max_num_threads, "The largest thread count set_num_threads accepts.");
  m.def("buffer_cache_info", []() {
    const auto st = pycnn::buffer_cache_stats();
    py::dict d;
    d["held_bytes"] = st.held_bytes;
    d["limit_bytes"] = st.limit_bytes;
    d["hits"] = st.hits;
    d["misses"] = st.misses;
    return d;
  }, "Bytes the cache of output-array memory holds, its limit, and how often it was reused (hits) or not.");
  m.def("set_buffer_cache_limit", [](i64 bytes) {
    if (bytes < 0) throw py::value_error("set_buffer_cache_limit: expected bytes >= 0, got " + std::to_string(bytes));
    pycnn::set_buffer_cache_limit(static_cast<std::size_t>(bytes));
  }, "Keep at most this many bytes of released output-array memory for reuse (0 keeps none).");
  m.def("build_info", []() {
    py::dict d;
    d["version"] = PYCNN_VERSION;
    d["compiler"] = PYCNN_COMPILER;
    d["build_type"] = PYCNN_BUILD_TYPE;
    d["cxx_flags"] = PYCNN_CXX_FLAGS;
#ifdef PYCNN_HAVE_OPENMP
    d["openmp"] = true;
#else
    d["openmp"] = false;
#endif
    d["max_threads"] = pycnn::max_hardware_threads();
    const auto& cs = pycnn::cache_sizes();
    d["cache_sizes"] = py::make_tuple(cs.l1d, cs.l2, cs.l3);
    d["isa_origin"] = pycnn::isa_origin();
    return d;
  });
  m.def("isa", []() { return std::string(pycnn::isa_name(pycnn::active_isa())); },
        "The instruction set the kernels use now.");
  m.def("supported_isas", []() {
    std::vector<std::string> v;
    for (auto i : pycnn::supported_isas()) v.push_back(pycnn::isa_name(i));
    return v;
  }, "Instruction sets this CPU and build support, lowest first.");
  m.def("set_isa", [](const std::string& name) {
    pycnn::Isa isa;
    if (!pycnn::isa_from_name(name, &isa))
      throw py::value_error("unknown ISA '" + name + "': expected 'scalar', 'avx2' or 'avx512'");
    pycnn::set_isa(isa);
  }, "Switch the kernels to a supported instruction set (for tests and benchmarks).");

  // ------------------------------------------------------------ gemm
  m.def("sgemm", [](const py::array& a, const py::array& b, bool trans_a, bool trans_b, float alpha, float beta,
                    std::optional<py::array> c, bool relu) {
    const float* pa = in<float>(a, "a");
    const float* pb = in<float>(b, "b");
    const Shape sa = shape_of(a), sb = shape_of(b);
    if (sa.size() != 2 || sb.size() != 2)
      throw py::value_error("sgemm: expected 2-D arrays, got " + ops::shape_str(sa) + " and " + ops::shape_str(sb));
    const i64 M = trans_a ? sa[1] : sa[0], K = trans_a ? sa[0] : sa[1];
    const i64 Kb = trans_b ? sb[1] : sb[0], N = trans_b ? sb[0] : sb[1];
    if (K != Kb)
      throw py::value_error("sgemm: inner dimensions differ: op(a) is (" + std::to_string(M) + ", " +
                            std::to_string(K) + "), op(b) is (" + std::to_string(Kb) + ", " + std::to_string(N) + ")");
    ops::checked_numel({M, N}, "sgemm output");
    py::array out;
    if (c) {
      ops::check_shape(shape_of(*c), {M, N}, "sgemm c");
      out = *c;
      check_disjoint(out, "c", a, "a");
      check_disjoint(out, "c", b, "b");
    } else {
      if (beta != 0.0f) throw py::value_error("sgemm: beta != 0 needs c");
      out = new_array({M, N});
    }
    float* pc = inout<float>(out, "c");
    {
      py::gil_scoped_release release;
      pycnn::sgemm(trans_a, trans_b, M, N, K, alpha, pa, sa[1], pb, sb[1], beta, pc, N, pycnn::get_num_threads(),
                   relu);
    }
    return out;
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0f,
     py::arg("beta") = 0.0f, py::arg("c") = py::none(), py::arg("relu") = false,
     "c = relu?(alpha * op(a) @ op(b) + beta * c), row-major float32; c is written in place when given.");

  // ------------------------------------------------------------ conv2d
  m.def("conv2d_fwd", [](const py::array& x, const py::array& w, std::optional<py::array> b,
                         std::array<i64, 2> stride, std::array<i64, 4> padding, std::array<i64, 2> dilation,
                         i64 groups, const std::string& algo, bool relu) {
    const Shape bshape = b ? shape_of(*b) : Shape{};
    const auto s = ops::conv2d_shape(shape_of(x), shape_of(w), b ? &bshape : nullptr,
                                     conv_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float* px = in<float>(x, "input");
    const float* pw = in<float>(w, "weight");
    const float* pb = b ? in<float>(*b, "bias") : nullptr;
    auto y = new_array({s.N, s.K, s.Ho, s.Wo});
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::conv2d_fwd(py_, px, pw, pb, s, a, relu);
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("groups"), py::arg("algo"), py::arg("relu") = false);

  m.def("conv2d_bwd_data", [](const py::array& dy, const py::array& w, std::vector<i64> x_shape,
                              std::array<i64, 2> stride, std::array<i64, 4> padding,
                              std::array<i64, 2> dilation, i64 groups, const std::string& algo) {
    const auto s = ops::conv2d_shape(tuple_shape(x_shape), shape_of(w), nullptr,
                                     conv_params(stride, padding, dilation, groups));
    ops::check_shape(shape_of(dy), {s.N, s.K, s.Ho, s.Wo}, "conv2d grad_output");
    const auto a = ops::parse_conv_algo(algo);
    const float* pdy = in<float>(dy, "grad_output");
    const float* pw = in<float>(w, "weight");
    auto dx = new_array(tuple_shape(x_shape));
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::conv2d_bwd_data(pdx, pdy, pw, s, a);
    return dx;
  });

  m.def("conv2d_bwd_weight", [](const py::array& dy, const py::array& x, py::array dw,
                                std::optional<py::array> db, std::array<i64, 2> stride,
                                std::array<i64, 4> padding, std::array<i64, 2> dilation, i64 groups,
                                const std::string& algo) {
    const Shape dbshape = db ? shape_of(*db) : Shape{};
    const auto s = ops::conv2d_shape(shape_of(x), shape_of(dw), db ? &dbshape : nullptr,
                                     conv_params(stride, padding, dilation, groups));
    ops::check_shape(shape_of(dy), {s.N, s.K, s.Ho, s.Wo}, "conv2d grad_output");
    const auto a = ops::parse_conv_algo(algo);
    const float* pdy = in<float>(dy, "grad_output");
    const float* px = in<float>(x, "input");
    float* pdw = inout<float>(dw, "grad_weight");
    float* pdb = db ? inout<float>(*db, "grad_bias") : nullptr;
    check_disjoint(dw, "grad_weight", dy, "grad_output");
    check_disjoint(dw, "grad_weight", x, "input");
    if (db) {
      check_disjoint(*db, "grad_bias", dy, "grad_output");
      check_disjoint(*db, "grad_bias", x, "input");
      check_disjoint(*db, "grad_bias", dw, "grad_weight");
    }
    py::gil_scoped_release release;
    ops::conv2d_bwd_weight(pdw, pdb, pdy, px, s, a);
  });

  m.def("conv2d_resolve_algo", [](std::vector<i64> x_shape, std::vector<i64> w_shape,
                                  std::array<i64, 2> stride, std::array<i64, 4> padding,
                                  std::array<i64, 2> dilation, i64 groups, const std::string& algo) {
    const auto s = ops::conv2d_shape(tuple_shape(x_shape), tuple_shape(w_shape), nullptr,
                                     conv_params(stride, padding, dilation, groups));
    return std::string(ops::conv_algo_name(ops::conv2d_resolve_algo(s, ops::parse_conv_algo(algo))));
  });

  // ------------------------------------------------------------ pooling
  m.def("max_pool2d_fwd", [](const py::array& x, std::array<i64, 2> k, std::array<i64, 2> stride,
                             std::array<i64, 2> pad) {
    const auto s = ops::pool2d_shape(shape_of(x), k[0], k[1], stride[0], stride[1], pad[0], pad[1], "max_pool2d");
    const float* px = in<float>(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    auto argmax = new_array_of<int32_t>({s.N, s.C, s.Ho, s.Wo});
    float* py_ = y.mutable_data();
    int32_t* pa = argmax.mutable_data();
    {
      py::gil_scoped_release release;
      ops::max_pool2d_fwd(py_, pa, px, s);
    }
    return py::make_tuple(y, argmax);
  });

  m.def("max_pool2d_bwd", [](const py::array& dy, const py::array& argmax, std::vector<i64> x_shape,
                             std::array<i64, 2> k, std::array<i64, 2> stride, std::array<i64, 2> pad,
                             std::optional<py::array> relu_output) {
    const auto s = ops::pool2d_shape(tuple_shape(x_shape), k[0], k[1], stride[0], stride[1], pad[0], pad[1],
                                     "max_pool2d");
    ops::check_shape(shape_of(dy), {s.N, s.C, s.Ho, s.Wo}, "max_pool2d grad_output");
    ops::check_shape(shape_of(argmax), {s.N, s.C, s.Ho, s.Wo}, "max_pool2d indices");
    const float* pdy = in<float>(dy, "grad_output");
    const int32_t* pa = in<int32_t>(argmax, "indices");
    const float* pr = nullptr;
    if (relu_output) {
      ops::check_shape(shape_of(*relu_output), {s.N, s.C, s.Ho, s.Wo}, "max_pool2d relu_output");
      pr = in<float>(*relu_output, "relu_output");
    }
    // The indices come from Python and could have been altered: a wrong one
    // would write outside dx, so they are checked (cheap next to the scatter).
    const i64 plane = s.H * s.W, count = s.N * s.C * s.Ho * s.Wo;
    for (i64 i = 0; i < count; ++i)
      if (pa[i] < 0 || pa[i] >= plane)
        throw py::value_error("max_pool2d: indices hold " + std::to_string(pa[i]) +
                              ", outside the input plane of " + std::to_string(plane) + " elements");
    auto dx = new_array(tuple_shape(x_shape));
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::max_pool2d_bwd(pdx, pdy, pa, pr, s);
    return dx;
  }, py::arg("dy"), py::arg("argmax"), py::arg("x_shape"), py::arg("kernel_size"), py::arg("stride"),
     py::arg("padding"), py::arg("relu_output") = py::none());

  m.def("avg_pool2d_fwd", [](const py::array& x, std::array<i64, 2> k, std::array<i64, 2> stride,
                             std::array<i64, 2> pad, bool count_include_pad) {
    const auto s = ops::pool2d_shape(shape_of(x), k[0], k[1], stride[0], stride[1], pad[0], pad[1], "avg_pool2d");
    const float* px = in<float>(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::avg_pool2d_fwd(py_, px, s, count_include_pad);
    return y;
  });

  m.def("avg_pool2d_bwd", [](const py::array& dy, std::vector<i64> x_shape, std::array<i64, 2> k,
                             std::array<i64, 2> stride, std::array<i64, 2> pad, bool count_include_pad) {
    const auto s = ops::pool2d_shape(tuple_shape(x_shape), k[0], k[1], stride[0], stride[1], pad[0], pad[1],
                                     "avg_pool2d");
    ops::check_shape(shape_of(dy), {s.N, s.C, s.Ho, s.Wo}, "avg_pool2d grad_output");
    const float* pdy = in<float>(dy, "grad_output");
    auto dx = new_array(tuple_shape(x_shape));
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::avg_pool2d_bwd(pdx, pdy, s, count_include_pad);
    return dx;
  });

  m.def("adaptive_avg_pool2d_fwd", [](const py::array& x, std::array<i64, 2> out) {
    const auto s = ops::adaptive_pool2d_shape(shape_of(x), out[0], out[1]);
    const float* px = in<float>(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::adaptive_avg_pool2d_fwd(py_, px, s);
    return y;
  });

  m.def("adaptive_avg_pool2d_bwd", [](const py::array& dy, std::vector<i64> x_shape) {
    const Shape dys = shape_of(dy);
    if (dys.size() != 4) throw py::value_error("adaptive_avg_pool2d: expected grad_output of shape (N, C, Ho, Wo), got " + ops::shape_str(dys));
    const auto s = ops::adaptive_pool2d_shape(tuple_shape(x_shape), dys[2], dys[3]);
    ops::check_shape(dys, {s.N, s.C, s.Ho, s.Wo}, "adaptive_avg_pool2d grad_output");
    const float* pdy = in<float>(dy, "grad_output");
    auto dx = new_array(tuple_shape(x_shape));
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::adaptive_avg_pool2d_bwd(pdx, pdy, s);
    return dx;
  });

  // ------------------------------------------------------------ activations
  m.def("activation_fwd", [](const std::string& name, const py::array& x, float negative_slope) {
    const auto act = parse_activation(name);
    const float* px = in<float>(x, "input");
    const Shape shape = shape_of(x);
    const i64 n = ops::checked_numel(shape, name.c_str());
    auto y = new_array(shape);
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::activation_fwd(act, py_, px, n, negative_slope);
    return y;
  });

  m.def("activation_bwd", [](const std::string& name, const py::array& dy, const py::array& saved,
                             float negative_slope) {
    const auto act = parse_activation(name);
    const Shape shape = shape_of(saved);
    ops::check_shape(shape_of(dy), shape, (name + " grad_output").c_str());
    const float* pdy = in<float>(dy, "grad_output");
    const float* ps = in<float>(saved, "saved tensor");
    const i64 n = ops::checked_numel(shape, name.c_str());
    auto dx = new_array(shape);
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::activation_bwd(act, pdx, pdy, ps, n, negative_slope);
    return dx;
  });

  // ------------------------------------------------------------ linear
  m.def("linear_fwd", [](const py::array& x, const py::array& w, std::optional<py::array> b, bool relu) {
    const Shape bshape = b ? shape_of(*b) : Shape{};
    const auto s = ops::linear_shape(shape_of(x), shape_of(w), b ? &bshape : nullptr);
    const float* px = in<float>(x, "input");
    const float* pw = in<float>(w, "weight");
    const float* pb = b ? in<float>(*b, "bias") : nullptr;
    auto y = new_array({s.N, s.out_features});
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::linear_fwd(py_, px, pw, pb, s, relu);
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("relu") = false);

  m.def("linear_bwd_data", [](const py::array& dy, const py::array& w) {
    const Shape dys = shape_of(dy), ws = shape_of(w);
    if (ws.size() != 2) throw py::value_error("linear: expected weight of shape (out_features, in_features), got " + ops::shape_str(ws));
    if (dys.size() != 2 || dys[1] != ws[0])
      throw py::value_error("linear: expected grad_output of shape (N, " + std::to_string(ws[0]) + "), got " + ops::shape_str(dys));
    const auto s = ops::linear_shape({dys[0], ws[1]}, ws, nullptr);
    const float* pdy = in<float>(dy, "grad_output");
    const float* pw = in<float>(w, "weight");
    auto dx = new_array({s.N, s.in_features});
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::linear_bwd_data(pdx, pdy, pw, s);
    return dx;
  });

  m.def("linear_bwd_weight", [](const py::array& dy, const py::array& x, py::array dw, std::optional<py::array> db) {
    const Shape dbshape = db ? shape_of(*db) : Shape{};
    const auto s = ops::linear_shape(shape_of(x), shape_of(dw), db ? &dbshape : nullptr);
    ops::check_shape(shape_of(dy), {s.N, s.out_features}, "linear grad_output");
    const float* pdy = in<float>(dy, "grad_output");
    const float* px = in<float>(x, "input");
    float* pdw = inout<float>(dw, "grad_weight");
    float* pdb = db ? inout<float>(*db, "grad_bias") : nullptr;
    check_disjoint(dw, "grad_weight", dy, "grad_output");
    check_disjoint(dw, "grad_weight", x, "input");
    if (db) {
      check_disjoint(*db, "grad_bias", dy, "grad_output");
      check_disjoint(*db, "grad_bias", dw, "grad_weight");
    }
    py::gil_scoped_release release;
    ops::linear_bwd_weight(pdw, pdb, pdy, px, s);
  });

  // ------------------------------------------------------------ losses
  m.def("cross_entropy_fwd", [](const py::array& logits, const py::array& labels) {
    const Shape ls = shape_of(logits);
    ops::check_cross_entropy(ls, shape_of(labels));
    const float* pz = in<float>(logits, "logits");
    const int64_t* pl = in<int64_t>(labels, "labels");
    auto probs = new_array(ls);
    float* pp = probs.mutable_data();
    double loss;
    {
      py::gil_scoped_release release;
      loss = ops::cross_entropy_fwd(pp, pz, pl, ls[0], ls[1]);
    }
    return py::make_tuple(loss, probs);
  });

  m.def("cross_entropy_bwd", [](const py::array& probs, const py::array& labels, float scale) {
    const Shape ps = shape_of(probs);
    ops::check_cross_entropy(ps, shape_of(labels));
    const float* pp = in<float>(probs, "probs");
    const int64_t* pl = in<int64_t>(labels, "labels");
    auto d = new_array(ps);
    float* pd = d.mutable_data();
    py::gil_scoped_release release;
    ops::cross_entropy_bwd(pd, pp, pl, ps[0], ps[1], scale);
    return d;
  });

  m.def("mse_fwd", [](const py::array& pred, const py::array& target) {
    const Shape s = shape_of(pred);
    ops::check_shape(shape_of(target), s, "mse_loss target");
    const i64 n = ops::checked_numel(s, "mse_loss input");
    const float* pp = in<float>(pred, "input");
    const float* pt = in<float>(target, "target");
    py::gil_scoped_release release;
    return ops::mse_fwd(pp, pt, n);
  });

  m.def("mse_bwd", [](const py::array& pred, const py::array& target, float scale) {
    const Shape s = shape_of(pred);
    ops::check_shape(shape_of(target), s, "mse_loss target");
    const i64 n = ops::checked_numel(s, "mse_loss input");
    const float* pp = in<float>(pred, "input");
    const float* pt = in<float>(target, "target");
    auto d = new_array(s);
    float* pd = d.mutable_data();
    py::gil_scoped_release release;
    ops::mse_bwd(pd, pp, pt, n, scale);
    return d;
  });

  // ------------------------------------------------------------ optimisers
  m.def("sgd_step", [](py::array param, const py::array& grad, std::optional<py::array> buf, float lr,
                       float momentum, float dampening, float weight_decay, bool nesterov, bool first_step) {
    const Shape s = shape_of(param);
    ops::check_shape(shape_of(grad), s, "sgd gradient");
    if (momentum != 0.0f && !buf) throw py::value_error("sgd_step: momentum needs a momentum buffer");
    if (buf) ops::check_shape(shape_of(*buf), s, "sgd momentum buffer");
    const i64 n = ops::checked_numel(s, "sgd parameter");
    float* pp = inout<float>(param, "param");
    const float* pg = in<float>(grad, "grad");
    float* pb = buf ? inout<float>(*buf, "momentum_buffer") : nullptr;
    check_disjoint(param, "param", grad, "grad");
    if (buf) {
      check_disjoint(*buf, "momentum_buffer", grad, "grad");
      check_disjoint(*buf, "momentum_buffer", param, "param");
    }
    py::gil_scoped_release release;
    ops::sgd_step(pp, pb, pg, n, ops::SgdParams{lr, momentum, dampening, weight_decay, nesterov}, first_step);
  });

  // ============================================================ breadth ops
  // Batch normalisation, ELU/GELU, dropout, Adam/AdamW (see ops.h).
  auto opt_in = [](const std::optional<py::array>& a, const char* name) -> const float* {
    return a ? in<float>(*a, name) : nullptr;
  };
  auto opt_shape = [](const std::optional<py::array>& a) { return a ? shape_of(*a) : Shape{}; };

  // Training: returns (y, save_mean, save_rstd); running_mean/running_var (or
  // None) are updated in place.
  m.def("batchnorm_fwd_train", [=](const py::array& x, std::optional<py::array> weight,
                                   std::optional<py::array> bias, std::optional<py::array> running_mean,
                                   std::optional<py::array> running_var, double eps, double momentum, bool relu) {
    const Shape ws = opt_shape(weight), bs = opt_shape(bias), ms = opt_shape(running_mean),
                vs = opt_shape(running_var);
    if (running_mean.has_value() != running_var.has_value())
      throw py::value_error("batch_norm: running_mean and running_var must both be given or both be None");
    const auto s = ops::batchnorm_shape(shape_of(x), weight ? &ws : nullptr, bias ? &bs : nullptr,
                                        running_mean ? &ms : nullptr, running_var ? &vs : nullptr);
    const float* px = in<float>(x, "input");
    const float* pw = opt_in(weight, "weight");
    const float* pb = opt_in(bias, "bias");
    float* prm = running_mean ? inout<float>(*running_mean, "running_mean") : nullptr;
    float* prv = running_var ? inout<float>(*running_var, "running_var") : nullptr;
    if (running_mean) {
      check_disjoint(*running_mean, "running_mean", x, "input");
      check_disjoint(*running_var, "running_var", x, "input");
      check_disjoint(*running_mean, "running_mean", *running_var, "running_var");
    }
    auto y = new_array(shape_of(x));
    auto mean = new_array({s.C});
    auto rstd = new_array({s.C});
    float *py_ = y.mutable_data(), *pm = mean.mutable_data(), *pr = rstd.mutable_data();
    {
      py::gil_scoped_release release;
      ops::batchnorm_fwd_train(py_, pm, pr, prm, prv, px, pw, pb, s, eps, momentum, relu);
    }
    return py::make_tuple(y, mean, rstd);
  });

  m.def("batchnorm_fwd_eval", [=](const py::array& x, std::optional<py::array> weight,
                                  std::optional<py::array> bias, const py::array& running_mean,
                                  const py::array& running_var, double eps, bool relu) {
    const Shape ws = opt_shape(weight), bs = opt_shape(bias), ms = shape_of(running_mean),
                vs = shape_of(running_var);
    const auto s = ops::batchnorm_shape(shape_of(x), weight ? &ws : nullptr, bias ? &bs : nullptr, &ms, &vs);
    const float* px = in<float>(x, "input");
    const float* pw = opt_in(weight, "weight");
    const float* pb = opt_in(bias, "bias");
    const float* prm = in<float>(running_mean, "running_mean");
    const float* prv = in<float>(running_var, "running_var");
    auto y = new_array(shape_of(x));
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::batchnorm_fwd_eval(py_, px, pw, pb, prm, prv, s, eps, relu);
    return y;
  });

  // Returns dx (None when input_grad is false); accumulates into grad_weight / grad_bias when given.
  m.def("batchnorm_bwd", [=](const py::array& dy, const py::array& x, const py::array& save_mean,
                             const py::array& save_rstd, std::optional<py::array> weight,
                             std::optional<py::array> grad_weight, std::optional<py::array> grad_bias,
                             bool input_grad) {
    const Shape ws = opt_shape(weight), gws = opt_shape(grad_weight), gbs = opt_shape(grad_bias),
                ms = shape_of(save_mean), rs = shape_of(save_rstd);
    const auto s = ops::batchnorm_shape(shape_of(x), weight ? &ws : nullptr, nullptr, &ms, &rs);
    ops::check_shape(shape_of(dy), shape_of(x), "batch_norm grad_output");
    if (grad_weight) ops::check_shape(gws, {s.C}, "batch_norm grad_weight");
    if (grad_bias) ops::check_shape(gbs, {s.C}, "batch_norm grad_bias");
    const float* pdy = in<float>(dy, "grad_output");
    const float* px = in<float>(x, "input");
    const float* pm = in<float>(save_mean, "save_mean");
    const float* pr = in<float>(save_rstd, "save_rstd");
    const float* pw = opt_in(weight, "weight");
    float* pgw = grad_weight ? inout<float>(*grad_weight, "grad_weight") : nullptr;
    float* pgb = grad_bias ? inout<float>(*grad_bias, "grad_bias") : nullptr;
    for (const auto* g : {&grad_weight, &grad_bias})
      if (*g) {
        check_disjoint(**g, "grad_weight/grad_bias", dy, "grad_output");
        check_disjoint(**g, "grad_weight/grad_bias", x, "input");
      }
    if (grad_weight && grad_bias) check_disjoint(*grad_weight, "grad_weight", *grad_bias, "grad_bias");
    py::object result = py::none();
    float* pdx = nullptr;
    if (input_grad) {
      auto dx = new_array(shape_of(x));
      pdx = dx.mutable_data();
      result = dx;
    }
    {
      py::gil_scoped_release release;
      ops::batchnorm_bwd(pdx, pgw, pgb, pdy, px, pm, pr, pw, s);
    }
    return result;
  });

  // name: "elu" (param = alpha) | "gelu" (param != 0: tanh approximation). Backward takes the input x.
  m.def("activation2_fwd", [](const std::string& name, const py::array& x, float param) {
    if (name != "elu" && name != "gelu") throw py::value_error("unknown activation '" + name + "'");
    const float* px = in<float>(x, "input");
    const Shape shape = shape_of(x);
    const i64 n = ops::checked_numel(shape, name.c_str());
    auto y = new_array(shape);
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    if (name == "elu")
      ops::elu_fwd(py_, px, n, param);
    else
      ops::gelu_fwd(py_, px, n, param != 0.0f);
    return y;
  });

  m.def("activation2_bwd", [](const std::string& name, const py::array& dy, const py::array& x, float param) {
    if (name != "elu" && name != "gelu") throw py::value_error("unknown activation '" + name + "'");
    const Shape shape = shape_of(x);
    ops::check_shape(shape_of(dy), shape, (name + " grad_output").c_str());
    const float* pdy = in<float>(dy, "grad_output");
    const float* px = in<float>(x, "input");
    const i64 n = ops::checked_numel(shape, name.c_str());
    auto dx = new_array(shape);
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    if (name == "elu")
      ops::elu_bwd(pdx, pdy, px, n, param);
    else
      ops::gelu_bwd(pdx, pdy, px, n, param != 0.0f);
    return dx;
  });

  // out = x * (mask ? scale : 0); mask uint8 of x's shape, or (N, C) when channelwise.
  m.def("dropout_apply", [](const py::array& x, const py::array& mask, float scale, bool channelwise) {
    if (!py::array_t<uint8_t>::check_(mask))
      throw py::type_error("dropout: expected a uint8 mask, got dtype " + py::str(mask.dtype()).cast<std::string>());
    constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_;
    if ((py::detail::array_proxy(mask.ptr())->flags & need) != need)
      throw py::type_error("dropout: expected a C-contiguous mask");
    const Shape shape = shape_of(x);
    const i64 plane = ops::dropout_plane(shape, shape_of(mask), channelwise);
    const float* px = in<float>(x, "input");
    const auto* pm = static_cast<const uint8_t*>(mask.data());
    const i64 units = mask.size();
    auto y = new_array(shape);
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::dropout_apply(py_, px, pm, units, plane, scale);
    return y;
  });

  m.def("softmax_fwd", [](const py::array& x, i64 axis) {
    const auto s = ops::softmax_shape(shape_of(x), axis);
    const float* px = in<float>(x, "input");
    auto y = new_array(shape_of(x));
    float* py_ = y.mutable_data();
    py::gil_scoped_release release;
    ops::softmax_fwd(py_, px, s);
    return y;
  });

  m.def("softmax_bwd", [](const py::array& dy, const py::array& y, i64 axis) {
    const auto s = ops::softmax_shape(shape_of(y), axis);
    ops::check_shape(shape_of(dy), shape_of(y), "softmax grad_output");
    const float* pdy = in<float>(dy, "grad_output");
    const float* py_ = in<float>(y, "output");
    auto dx = new_array(shape_of(y));
    float* pdx = dx.mutable_data();
    py::gil_scoped_release release;
    ops::softmax_bwd(pdx, pdy, py_, s);
    return dx;
  });

  m.def("adam_step", [](py::array param, const py::array& grad, py::array exp_avg, py::array exp_avg_sq,
                        std::optional<py::array> max_exp_avg_sq, float one_minus_beta1, float beta2,
                        float one_minus_beta2, float eps, float l2, float decay, float neg_step_size,
                        float bc2_sqrt) {
    const Shape s = shape_of(param);
    ops::check_shape(shape_of(grad), s, "adam gradient");
    ops::check_shape(shape_of(exp_avg), s, "adam exp_avg");
    ops::check_shape(shape_of(exp_avg_sq), s, "adam exp_avg_sq");
    if (max_exp_avg_sq) ops::check_shape(shape_of(*max_exp_avg_sq), s, "adam max_exp_avg_sq");
    const i64 n = ops::checked_numel(s, "adam parameter");
    float* pp = inout<float>(param, "param");
    const float* pg = in<float>(grad, "grad");
    float* pm = inout<float>(exp_avg, "exp_avg");
    float* pv = inout<float>(exp_avg_sq, "exp_avg_sq");
    float* pvm = max_exp_avg_sq ? inout<float>(*max_exp_avg_sq, "max_exp_avg_sq") : nullptr;
    std::vector<std::pair<const py::array*, const char*>> arrays = {
        {&param, "param"}, {&grad, "grad"}, {&exp_avg, "exp_avg"}, {&exp_avg_sq, "exp_avg_sq"}};
    if (max_exp_avg_sq) arrays.push_back({&*max_exp_avg_sq, "max_exp_avg_sq"});
    for (std::size_t i = 0; i < arrays.size(); ++i)
      for (std::size_t j = i + 1; j < arrays.size(); ++j)
        check_disjoint(*arrays[i].first, arrays[i].second, *arrays[j].first, arrays[j].second);
    py::gil_scoped_release release;
    ops::adam_step(pp, pm, pv, pvm, pg, n,
                   ops::AdamParams{one_minus_beta1, beta2, one_minus_beta2, eps, l2, decay, neg_step_size, bc2_sqrt});
  });
}
