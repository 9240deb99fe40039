#include "bindings/arrays.h"
#include "ops/activation.h"

namespace pycnn::bindings {

void bind_activation(py::module_& m) {
  // name: an entry of the activation table (activation/activation.cpp);
  // param: its hyper-parameter (ignored by those without one).
  m.def("activation_fwd", [](const std::string& name, const py::array& x, float param) {
    const Activation& act = ops::activation(name);
    const i64 n = ops::activation_numel(shape_of(x), name);
    const float* px = in(x, "input");
    auto y = new_array(shape_of(x));
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::activation_fwd(act, py_, px, n, param);
    return y;
  });

  // saved: the forward's output or its input, as the table entry says (bwd_reads_output).
  m.def("activation_bwd", [](const std::string& name, const py::array& dy, const py::array& saved, float param) {
    const Activation& act = ops::activation(name);
    const i64 n = ops::activation_bwd_numel(shape_of(dy), shape_of(saved), name);
    const float *pdy = in(dy, "grad_output"), *ps = in(saved, "saved tensor");
    auto dx = new_array(shape_of(saved));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::activation_bwd(act, pdx, pdy, ps, n, param);
    return dx;
  });

  // relu?(a + b) into `out` (a new array when None; may be a or b itself).
  m.def("add_fwd", [](const py::array& a, const py::array& b, OptArray out, bool relu) {
    const i64 n = ops::add_numel(shape_of(a), shape_of(b));
    const float *pa = in(a, "a"), *pb = in(b, "b");
    py::array result = out ? *out : py::array(new_array(shape_of(a)));
    if (out) ops::check_shape(shape_of(result), shape_of(a), "add out");
    float* po = inout(result, "out");
    {
      py::gil_scoped_release release;
      ops::add_fwd(po, pa, pb, n, relu);
    }
    return result;
  });

  m.def("softmax_fwd", [](const py::array& x, i64 axis) {
    const auto s = ops::softmax_shape(shape_of(x), axis);
    const float* px = in(x, "input");
    auto y = new_array(shape_of(x));
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::softmax_fwd(py_, px, s);
    return y;
  });

  m.def("softmax_bwd", [](const py::array& dy, const py::array& y, i64 axis) {
    const auto s = ops::softmax_bwd_shape(shape_of(dy), shape_of(y), axis);
    const float *pdy = in(dy, "grad_output"), *py_ = in(y, "output");
    auto dx = new_array(shape_of(y));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::softmax_bwd(pdx, pdy, py_, s);
    return dx;
  });
}

}  // namespace pycnn::bindings
