#include "bindings/arrays.h"
#include "ops/norm.h"

namespace pycnn::bindings {

void bind_norm(py::module_& m) {
  // Training: returns (y, save_mean, save_rstd); running_mean/running_var (or
  // None) are updated in place.
  m.def("batch_norm_fwd_train", [](const py::array& x, OptArray weight, OptArray bias, OptArray running_mean,
                                   OptArray running_var, double eps, double momentum, bool relu) {
    const auto ws = shape_of(weight), bs = shape_of(bias), ms = shape_of(running_mean), vs = shape_of(running_var);
    const auto s = ops::batch_norm_shape(shape_of(x), ptr(ws), ptr(bs), ptr(ms), ptr(vs));
    const float *px = in(x, "input"), *pw = in(weight, "weight"), *pb = in(bias, "bias");
    float *prm = inout(running_mean, "running_mean"), *prv = inout(running_var, "running_var");
    auto y = new_array(shape_of(x));
    auto mean = new_array({s.C});
    auto rstd = new_array({s.C});
    float *py_ = data(y), *pm = data(mean), *pr = data(rstd);
    {
      py::gil_scoped_release release;
      ops::batch_norm_fwd_train(py_, pm, pr, prm, prv, px, pw, pb, s, eps, momentum, relu);
    }
    return py::make_tuple(y, mean, rstd);
  });

  m.def("batch_norm_fwd_eval", [](const py::array& x, OptArray weight, OptArray bias, const py::array& running_mean,
                                  const py::array& running_var, double eps, bool relu) {
    const auto ws = shape_of(weight), bs = shape_of(bias);
    const Shape ms = shape_of(running_mean), vs = shape_of(running_var);
    const auto s = ops::batch_norm_shape(shape_of(x), ptr(ws), ptr(bs), &ms, &vs);
    const float *px = in(x, "input"), *pw = in(weight, "weight"), *pb = in(bias, "bias");
    const float *prm = in(running_mean, "running_mean"), *prv = in(running_var, "running_var");
    auto y = new_array(shape_of(x));
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::batch_norm_fwd_eval(py_, px, pw, pb, prm, prv, s, eps, relu);
    return y;
  });

  // Returns dx (None when input_grad is false); accumulates into grad_weight / grad_bias when given.
  // batch_stats: the forward used the batch's statistics (training) rather than fixed running ones.
  m.def("batch_norm_bwd", [](const py::array& dy, const py::array& x, const py::array& save_mean,
                             const py::array& save_rstd, OptArray weight, OptArray grad_weight, OptArray grad_bias,
                             bool input_grad, bool batch_stats) {
    const auto ws = shape_of(weight), gws = shape_of(grad_weight), gbs = shape_of(grad_bias);
    const auto s = ops::batch_norm_bwd_shape(shape_of(dy), shape_of(x), shape_of(save_mean), shape_of(save_rstd),
                                             ptr(ws), ptr(gws), ptr(gbs));
    const float *pdy = in(dy, "grad_output"), *px = in(x, "input");
    const float *pm = in(save_mean, "save_mean"), *pr = in(save_rstd, "save_rstd"), *pw = in(weight, "weight");
    float *pgw = inout(grad_weight, "grad_weight"), *pgb = inout(grad_bias, "grad_bias");
    py::object result = py::none();
    float* pdx = nullptr;
    if (input_grad) {
      auto dx = new_array(shape_of(x));
      pdx = data(dx);
      result = dx;
    }
    {
      py::gil_scoped_release release;
      ops::batch_norm_bwd(pdx, pgw, pgb, pdy, px, pm, pr, pw, s, batch_stats);
    }
    return result;
  });
}

}  // namespace pycnn::bindings
