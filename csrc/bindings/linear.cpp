#include "bindings/arrays.h"
#include "ops/linear.h"

namespace pycnn::bindings {

void bind_linear(py::module_& m) {
  m.def("linear_fwd", [](const py::array& x, const py::array& w, OptArray b, bool relu) {
    const auto bs = shape_of(b);
    const auto s = ops::linear_shape(shape_of(x), shape_of(w), ptr(bs));
    const float *px = in(x, "input"), *pw = in(w, "weight"), *pb = in(b, "bias");
    auto y = new_array({s.N, s.out_features});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::linear_fwd(py_, px, pw, pb, s, relu);
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("relu") = false);

  m.def("linear_bwd_data", [](const py::array& dy, const py::array& w) {
    const auto s = ops::linear_bwd_data_shape(shape_of(dy), shape_of(w));
    const float *pdy = in(dy, "grad_output"), *pw = in(w, "weight");
    auto dx = new_array({s.N, s.in_features});
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::linear_bwd_data(pdx, pdy, pw, s);
    return dx;
  });

  m.def("linear_bwd_weight", [](const py::array& dy, const py::array& x, py::array dw, OptArray db) {
    const auto dbs = shape_of(db);
    const auto s = ops::linear_bwd_weight_shape(shape_of(dy), shape_of(x), shape_of(dw), ptr(dbs));
    const float *pdy = in(dy, "grad_output"), *px = in(x, "input");
    float *pdw = inout(dw, "grad_weight"), *pdb = inout(db, "grad_bias");
    py::gil_scoped_release release;
    ops::linear_bwd_weight(pdw, pdb, pdy, px, s);
  });
}

}  // namespace pycnn::bindings
