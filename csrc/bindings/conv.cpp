#include "bindings/arrays.h"
#include "ops/conv.h"

namespace pycnn::bindings {
namespace {

using Pair = std::array<i64, 2>;
using Pads = std::array<i64, 4>;  // top, bottom, left, right
using Triple = std::array<i64, 3>;
using Pads3 = std::array<i64, 6>;  // front, back, top, bottom, left, right

ops::Conv2dParams conv_params(Pair stride, Pads padding, Pair dilation, i64 groups) {
  return {stride[0], stride[1], padding[0], padding[1], padding[2], padding[3], dilation[0], dilation[1], groups};
}

ops::Conv3dParams conv3d_params(Triple stride, Pads3 padding, Triple dilation, i64 groups) {
  return {stride[0],  stride[1],  stride[2],   padding[0], padding[1], padding[2], padding[3],
          padding[4], padding[5], dilation[0], dilation[1], dilation[2], groups};
}

ops::ConvTranspose2dParams conv_transpose_params(Pair stride, Pair padding, Pair output_padding, Pair dilation,
                                                 i64 groups) {
  return {stride[0], stride[1], padding[0], padding[1], output_padding[0], output_padding[1],
          dilation[0], dilation[1], groups};
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_fwd", [](const py::array& x, const py::array& w, OptArray b, Pair stride, Pads padding,
                         Pair dilation, i64 groups, const std::string& algo, bool relu) {
    const auto bs = shape_of(b);
    const auto s = ops::conv2d_shape(shape_of(x), shape_of(w), ptr(bs), conv_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *px = in(x, "input"), *pw = in(w, "weight"), *pb = in(b, "bias");
    auto y = new_array({s.N, s.K, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::conv2d_fwd(py_, px, pw, pb, s, a, relu);
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("groups"), py::arg("algo"), py::arg("relu") = false);

  m.def("conv2d_bwd_data", [](const py::array& dy, const py::array& w, std::vector<i64> x_shape, Pair stride,
                              Pads padding, Pair dilation, i64 groups, const std::string& algo) {
    const auto s = ops::conv2d_bwd_shape(shape_of(dy), to_shape(x_shape), shape_of(w), nullptr,
                                         conv_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *pdy = in(dy, "grad_output"), *pw = in(w, "weight");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::conv2d_bwd_data(pdx, pdy, pw, s, a);
    return dx;
  });

  m.def("conv2d_bwd_weight", [](const py::array& dy, const py::array& x, py::array dw, OptArray db, Pair stride,
                                Pads padding, Pair dilation, i64 groups, const std::string& algo) {
    const auto dbs = shape_of(db);
    const auto s = ops::conv2d_bwd_shape(shape_of(dy), shape_of(x), shape_of(dw), ptr(dbs),
                                         conv_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *pdy = in(dy, "grad_output"), *px = in(x, "input");
    float *pdw = inout(dw, "grad_weight"), *pdb = inout(db, "grad_bias");
    py::gil_scoped_release release;
    ops::conv2d_bwd_weight(pdw, pdb, pdy, px, s, a);
  });

  py::class_<ops::PreparedConv2d, std::shared_ptr<ops::PreparedConv2d>>(
      m, "PreparedConv2d",
      "A convolution's weights and bias copied once and packed, on first use, for the algorithm each forward "
      "resolves to (inference; see pycnn.nn's eval-mode fusion).")
      .def(py::init([](const py::array& w, OptArray b, Pair stride, Pads padding, Pair dilation, i64 groups,
                       const std::string& algo) {
             const auto a = ops::parse_conv_algo(algo);
             const auto bs = shape_of(b);
             const float *pw = in(w, "weight"), *pb = in(b, "bias");
             return std::make_shared<ops::PreparedConv2d>(shape_of(w), pw, ptr(bs), pb,
                                                          conv_params(stride, padding, dilation, groups), a);
           }),
           py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
           py::arg("algo") = "auto")
      .def("forward", [](const ops::PreparedConv2d& p, const py::array& x, OptArray residual, bool relu) {
             const auto s = p.shape(shape_of(x));
             const Shape y_shape{s.N, s.K, s.Ho, s.Wo};
             if (residual) ops::check_shape(shape_of(*residual), y_shape, "conv2d residual");
             const float *px = in(x, "input"), *pr = in(residual, "residual");
             auto y = new_array(y_shape);
             float* py_ = data(y);
             py::gil_scoped_release release;
             p.forward(py_, px, s, pr, relu);
             return y;
           }, py::arg("x"), py::arg("residual") = py::none(), py::arg("relu") = false,
           "y = conv(x) + bias (+ residual, an array of y's shape) (then ReLU), in one output write.")
      .def("resolve_algo", [](const ops::PreparedConv2d& p, std::vector<i64> x_shape) {
             return std::string(ops::conv_algo_name(p.resolve(p.shape(to_shape(x_shape)))));
           }, py::arg("x_shape"))
      .def_property_readonly("packed_bytes", &ops::PreparedConv2d::packed_bytes,
                             "Bytes of packed weights held now (0 until the first forward).");

  m.def("conv2d_resolve_algo", [](std::vector<i64> x_shape, std::vector<i64> w_shape, Pair stride, Pads padding,
                                  Pair dilation, i64 groups, const std::string& algo) {
    const auto s = ops::conv2d_shape(to_shape(x_shape), to_shape(w_shape), nullptr,
                                     conv_params(stride, padding, dilation, groups));
    return std::string(ops::conv_algo_name(ops::conv2d_algo_for(s, ops::parse_conv_algo(algo))));
  });

  // Transposed convolution: x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw), b (C_out,).
  m.def("conv_transpose2d_fwd", [](const py::array& x, const py::array& w, OptArray b, Pair stride, Pair padding,
                                   Pair output_padding, Pair dilation, i64 groups, const std::string& algo) {
    const auto bs = shape_of(b);
    const auto s = ops::conv_transpose2d_shape(
        shape_of(x), shape_of(w), ptr(bs), conv_transpose_params(stride, padding, output_padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *px = in(x, "input"), *pw = in(w, "weight"), *pb = in(b, "bias");
    auto y = new_array({s.N, s.C, s.H, s.W});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::conv_transpose2d_fwd(py_, px, pw, pb, s, a);
    return y;
  });

  m.def("conv_transpose2d_bwd_data", [](const py::array& dy, const py::array& w, std::vector<i64> x_shape,
                                        Pair stride, Pair padding, Pair output_padding, Pair dilation, i64 groups,
                                        const std::string& algo) {
    const auto s = ops::conv_transpose2d_bwd_shape(
        shape_of(dy), to_shape(x_shape), shape_of(w), nullptr,
        conv_transpose_params(stride, padding, output_padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *pdy = in(dy, "grad_output"), *pw = in(w, "weight");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::conv_transpose2d_bwd_data(pdx, pdy, pw, s, a);
    return dx;
  });

  m.def("conv_transpose2d_bwd_weight", [](const py::array& dy, const py::array& x, py::array dw, OptArray db,
                                          Pair stride, Pair padding, Pair output_padding, Pair dilation, i64 groups,
                                          const std::string& algo) {
    const auto dbs = shape_of(db);
    const auto s = ops::conv_transpose2d_bwd_shape(
        shape_of(dy), shape_of(x), shape_of(dw), ptr(dbs),
        conv_transpose_params(stride, padding, output_padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *pdy = in(dy, "grad_output"), *px = in(x, "input");
    float *pdw = inout(dw, "grad_weight"), *pdb = inout(db, "grad_bias");
    py::gil_scoped_release release;
    ops::conv_transpose2d_bwd_weight(pdw, pdb, pdy, px, s, a);
  });
  // 3-D convolution: x (N, C, T, H, W), w (K, C/groups, kt, kh, kw), b (K,).
  m.def("conv3d_fwd", [](const py::array& x, const py::array& w, OptArray b, Triple stride, Pads3 padding,
                         Triple dilation, i64 groups, const std::string& algo, bool relu) {
    const auto bs = shape_of(b);
    const auto s = ops::conv3d_shape(shape_of(x), shape_of(w), ptr(bs), conv3d_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *px = in(x, "input"), *pw = in(w, "weight"), *pb = in(b, "bias");
    auto y = new_array({s.N, s.K, s.To, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::conv3d_fwd(py_, px, pw, pb, s, a, relu);
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("groups"), py::arg("algo"), py::arg("relu") = false);

  m.def("conv3d_bwd_data", [](const py::array& dy, const py::array& w, std::vector<i64> x_shape, Triple stride,
                              Pads3 padding, Triple dilation, i64 groups, const std::string& algo) {
    const auto s = ops::conv3d_bwd_shape(shape_of(dy), to_shape(x_shape), shape_of(w), nullptr,
                                         conv3d_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *pdy = in(dy, "grad_output"), *pw = in(w, "weight");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::conv3d_bwd_data(pdx, pdy, pw, s, a);
    return dx;
  });

  m.def("conv3d_bwd_weight", [](const py::array& dy, const py::array& x, py::array dw, OptArray db, Triple stride,
                                Pads3 padding, Triple dilation, i64 groups, const std::string& algo) {
    const auto dbs = shape_of(db);
    const auto s = ops::conv3d_bwd_shape(shape_of(dy), shape_of(x), shape_of(dw), ptr(dbs),
                                         conv3d_params(stride, padding, dilation, groups));
    const auto a = ops::parse_conv_algo(algo);
    const float *pdy = in(dy, "grad_output"), *px = in(x, "input");
    float *pdw = inout(dw, "grad_weight"), *pdb = inout(db, "grad_bias");
    py::gil_scoped_release release;
    ops::conv3d_bwd_weight(pdw, pdb, pdy, px, s, a);
  });
  m.def("_set_conv3d_chunk_floats", &ops::set_conv3d_chunk_floats,
        "For tests: floats of scratch per chunk of conv3d frames (<= 0: the default); returns the old value.");
}

}  // namespace pycnn::bindings
