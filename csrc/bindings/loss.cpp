#include "bindings/arrays.h"
#include "ops/loss.h"

namespace pycnn::bindings {

void bind_loss(py::module_& m) {
  m.def("cross_entropy_fwd", [](const py::array& logits, const py::array& labels) {
    const auto s = ops::cross_entropy_shape(shape_of(logits), shape_of(labels));
    const float* pz = in(logits, "logits");
    const int64_t* pl = in<int64_t>(labels, "labels");
    auto probs = new_array(shape_of(logits));
    float* pp = data(probs);
    double loss;
    {
      py::gil_scoped_release release;
      loss = ops::cross_entropy_fwd(pp, pz, pl, s);
    }
    return py::make_tuple(loss, probs);
  });

  m.def("cross_entropy_bwd", [](const py::array& probs, const py::array& labels, float scale) {
    const auto s = ops::cross_entropy_shape(shape_of(probs), shape_of(labels));
    const float* pp = in(probs, "probs");
    const int64_t* pl = in<int64_t>(labels, "labels");
    auto d = new_array(shape_of(probs));
    float* pd = data(d);
    py::gil_scoped_release release;
    ops::cross_entropy_bwd(pd, pp, pl, s, scale);
    return d;
  });

  m.def("mse_fwd", [](const py::array& pred, const py::array& target) {
    const i64 n = ops::mse_numel(shape_of(pred), shape_of(target));
    const float *pp = in(pred, "input"), *pt = in(target, "target");
    py::gil_scoped_release release;
    return ops::mse_fwd(pp, pt, n);
  });

  m.def("mse_bwd", [](const py::array& pred, const py::array& target, float scale) {
    const i64 n = ops::mse_numel(shape_of(pred), shape_of(target));
    const float *pp = in(pred, "input"), *pt = in(target, "target");
    auto d = new_array(shape_of(pred));
    float* pd = data(d);
    py::gil_scoped_release release;
    ops::mse_bwd(pd, pp, pt, n, scale);
    return d;
  });
}

}  // namespace pycnn::bindings
