#include "bindings/arrays.h"
#include "ops/dropout.h"

namespace pycnn::bindings {

void bind_dropout(py::module_& m) {
  // out = x * (mask ? scale : 0); mask uint8 of x's shape, or (N, C) when channelwise.
  m.def("dropout_apply", [](const py::array& x, const py::array& mask, float scale, bool channelwise) {
    const uint8_t* pm = in<uint8_t>(mask, "dropout mask");
    const auto s = ops::dropout_shape(shape_of(x), shape_of(mask), channelwise);
    const float* px = in(x, "input");
    auto y = new_array(shape_of(x));
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::dropout_apply(py_, px, pm, s, scale);
    return y;
  });
  // The backward: dx = dy * (mask ? scale : 0), dy checked against the forward's mask.
  m.def("dropout_bwd", [](const py::array& dy, const py::array& mask, float scale, bool channelwise) {
    const uint8_t* pm = in<uint8_t>(mask, "dropout mask");
    const auto s = ops::dropout_bwd_shape(shape_of(dy), shape_of(mask), channelwise);
    const float* pdy = in(dy, "grad_output");
    auto dx = new_array(shape_of(dy));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::dropout_apply(pdx, pdy, pm, s, scale);
    return dx;
  });
}

}  // namespace pycnn::bindings
