#include "bindings/arrays.h"
#include "ops/optim.h"

namespace pycnn::bindings {

void bind_optim(py::module_& m) {
  m.def("sgd_step", [](py::array param, const py::array& grad, OptArray buf, float lr, float momentum,
                       float dampening, float weight_decay, bool nesterov, bool first_step) {
    const auto bs = shape_of(buf);
    const i64 n = ops::sgd_numel(shape_of(param), shape_of(grad), ptr(bs), momentum);
    float* pp = inout(param, "param");
    const float* pg = in(grad, "grad");
    float* pb = inout(buf, "momentum_buffer");
    py::gil_scoped_release release;
    ops::sgd_step(pp, pb, pg, n, SgdParams{lr, momentum, dampening, weight_decay, nesterov}, first_step);
  });

  m.def("adam_step", [](py::array param, const py::array& grad, py::array exp_avg, py::array exp_avg_sq,
                        OptArray max_exp_avg_sq, float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                        float l2, float decay, float neg_step_size, float bc2_sqrt) {
    const auto ms = shape_of(max_exp_avg_sq);
    const i64 n = ops::adam_numel(shape_of(param), shape_of(grad), shape_of(exp_avg), shape_of(exp_avg_sq), ptr(ms));
    float* pp = inout(param, "param");
    const float* pg = in(grad, "grad");
    float *pm = inout(exp_avg, "exp_avg"), *pv = inout(exp_avg_sq, "exp_avg_sq");
    float* pvm = inout(max_exp_avg_sq, "max_exp_avg_sq");
    py::gil_scoped_release release;
    ops::adam_step(pp, pm, pv, pvm, pg, n,
                   AdamParams{one_minus_beta1, beta2, one_minus_beta2, eps, l2, decay, neg_step_size, bc2_sqrt});
  });
}

}  // namespace pycnn::bindings
