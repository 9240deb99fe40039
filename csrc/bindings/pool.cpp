#include "bindings/arrays.h"
#include "ops/pool.h"

namespace pycnn::bindings {
namespace {
using Pair = std::array<i64, 2>;
using ops::Triple;
using ops::Window3d;
}

void bind_pool(py::module_& m) {
  m.def("max_pool2d_fwd", [](const py::array& x, Pair k, Pair stride, Pair pad) {
    const auto s = ops::pool2d_shape(shape_of(x), k[0], k[1], stride[0], stride[1], pad[0], pad[1], "max_pool2d");
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    auto argmax = new_array<int32_t>({s.N, s.C, s.Ho, s.Wo});
    float* py_ = data(y);
    int32_t* pa = data(argmax);
    {
      py::gil_scoped_release release;
      ops::max_pool2d_fwd(py_, pa, px, s);
    }
    return py::make_tuple(y, argmax);
  });

  // The forward without argmax (inference: backward never runs), bitwise the same values.
  m.def("max_pool2d_fwd_values", [](const py::array& x, Pair k, Pair stride, Pair pad) {
    const auto s = ops::pool2d_shape(shape_of(x), k[0], k[1], stride[0], stride[1], pad[0], pad[1], "max_pool2d");
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::max_pool2d_fwd(py_, nullptr, px, s);
    return y;
  });

  m.def("max_pool2d_bwd", [](const py::array& dy, const py::array& argmax, std::vector<i64> x_shape, Pair k,
                             Pair stride, Pair pad, OptArray relu_output) {
    const auto rs = shape_of(relu_output);
    const auto s = ops::max_pool2d_bwd_shape(shape_of(dy), shape_of(argmax), ptr(rs), to_shape(x_shape), k[0], k[1],
                                             stride[0], stride[1], pad[0], pad[1]);
    const float *pdy = in(dy, "grad_output"), *pr = in(relu_output, "relu_output");
    const int32_t* pa = in<int32_t>(argmax, "indices");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::max_pool2d_bwd(pdx, pdy, pa, pr, s);
    return dx;
  }, py::arg("dy"), py::arg("argmax"), py::arg("x_shape"), py::arg("kernel_size"), py::arg("stride"),
     py::arg("padding"), py::arg("relu_output") = py::none());

  m.def("avg_pool2d_fwd", [](const py::array& x, Pair k, Pair stride, Pair pad, bool count_include_pad) {
    const auto s = ops::avg_pool2d_shape(shape_of(x), k[0], k[1], stride[0], stride[1], pad[0], pad[1]);
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::avg_pool2d_fwd(py_, px, s, count_include_pad);
    return y;
  });

  m.def("avg_pool2d_bwd", [](const py::array& dy, std::vector<i64> x_shape, Pair k, Pair stride, Pair pad,
                             bool count_include_pad) {
    const auto s = ops::avg_pool2d_bwd_shape(shape_of(dy), to_shape(x_shape), k[0], k[1], stride[0], stride[1],
                                             pad[0], pad[1]);
    const float* pdy = in(dy, "grad_output");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::avg_pool2d_bwd(pdx, pdy, s, count_include_pad);
    return dx;
  });

  m.def("adaptive_avg_pool2d_fwd", [](const py::array& x, Pair out) {
    const auto s = ops::adaptive_pool2d_shape(shape_of(x), out[0], out[1]);
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::adaptive_avg_pool2d_fwd(py_, px, s);
    return y;
  });

  m.def("adaptive_avg_pool2d_bwd", [](const py::array& dy, std::vector<i64> x_shape) {
    const auto s = ops::adaptive_pool2d_bwd_shape(shape_of(dy), to_shape(x_shape));
    const float* pdy = in(dy, "grad_output");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::adaptive_avg_pool2d_bwd(pdx, pdy, s);
    return dx;
  });

  // 3-D pooling of (N, C, D, H, W): window arguments are (d, h, w) triples.
  m.def("max_pool3d_fwd", [](const py::array& x, Triple k, Triple stride, Triple pad, Triple dil, bool ceil_mode,
                             bool with_indices) -> py::object {
    const auto s = ops::pool3d_shape(shape_of(x), Window3d{k, stride, pad, dil, ceil_mode}, "max_pool3d");
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Do, s.Ho, s.Wo});
    float* py_ = data(y);
    if (!with_indices) {  // the inference forward: no argmax, bitwise the same values
      py::gil_scoped_release release;
      ops::max_pool3d_fwd(py_, nullptr, px, s);
      return std::move(y);
    }
    auto argmax = new_array<int32_t>({s.N, s.C, s.Do, s.Ho, s.Wo});
    int32_t* pa = data(argmax);
    {
      py::gil_scoped_release release;
      ops::max_pool3d_fwd(py_, pa, px, s);
    }
    return py::make_tuple(y, argmax);
  });

  m.def("max_pool3d_bwd", [](const py::array& dy, const py::array& argmax, std::vector<i64> x_shape, Triple k,
                             Triple stride, Triple pad, Triple dil, bool ceil_mode, OptArray relu_output) {
    const auto rs = shape_of(relu_output);
    const auto s = ops::max_pool3d_bwd_shape(shape_of(dy), shape_of(argmax), ptr(rs), to_shape(x_shape),
                                             Window3d{k, stride, pad, dil, ceil_mode});
    const float *pdy = in(dy, "grad_output"), *pr = in(relu_output, "relu_output");
    const int32_t* pa = in<int32_t>(argmax, "indices");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::max_pool3d_bwd(pdx, pdy, pa, pr, s);
    return dx;
  }, py::arg("dy"), py::arg("argmax"), py::arg("x_shape"), py::arg("kernel_size"), py::arg("stride"),
     py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"), py::arg("relu_output") = py::none());

  m.def("avg_pool3d_fwd", [](const py::array& x, Triple k, Triple stride, Triple pad, bool ceil_mode,
                             bool count_include_pad) {
    const auto s = ops::avg_pool3d_shape(shape_of(x), Window3d{k, stride, pad, {1, 1, 1}, ceil_mode});
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Do, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::avg_pool3d_fwd(py_, px, s, count_include_pad);
    return y;
  });

  m.def("avg_pool3d_bwd", [](const py::array& dy, std::vector<i64> x_shape, Triple k, Triple stride, Triple pad,
                             bool ceil_mode, bool count_include_pad) {
    const auto s = ops::avg_pool3d_bwd_shape(shape_of(dy), to_shape(x_shape), Window3d{k, stride, pad, {1, 1, 1},
                                                                                        ceil_mode});
    const float* pdy = in(dy, "grad_output");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::avg_pool3d_bwd(pdx, pdy, s, count_include_pad);
    return dx;
  });

  m.def("adaptive_avg_pool3d_fwd", [](const py::array& x, Triple out) {
    const auto s = ops::adaptive_pool3d_shape(shape_of(x), out);
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Do, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::adaptive_avg_pool3d_fwd(py_, px, s);
    return y;
  });

  m.def("adaptive_avg_pool3d_bwd", [](const py::array& dy, std::vector<i64> x_shape) {
    const auto s = ops::adaptive_pool3d_bwd_shape(shape_of(dy), to_shape(x_shape));
    const float* pdy = in(dy, "grad_output");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::adaptive_avg_pool3d_bwd(pdx, pdy, s);
    return dx;
  });
}

}  // namespace pycnn::bindings
