#include "bindings/arrays.h"
#include "ops/optim.h"

namespace pycnn::bindings {
namespace {

// Item i of a list of arrays, never converted (the kernels write in place).
py::array array_item(const py::list& list, std::size_t i, const char* name) {
  py::object item = list[i];
  if (!py::isinstance<py::array>(item))
    throw py::type_error(std::string(name) + "[" + std::to_string(i) + "]: expected a float32 ndarray, got " +
                         py::str(py::type::of(item).attr("__name__")).cast<std::string>());
  return item.cast<py::array>();
}

}  // namespace

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

  // One SGD step over many parameters: params, grads and momentum_buffers are
  // lists of one length (momentum_buffers entries may be None when momentum
  // is 0), first_steps a list of bools (the buffer is initialised from the gradient).
  m.def("sgd_step_many", [](const py::list& params, const py::list& grads, const py::list& bufs,
                            const py::list& first_steps, float lr, float momentum, float dampening,
                            float weight_decay, bool nesterov) {
    const std::size_t count = params.size();
    if (grads.size() != count || bufs.size() != count || first_steps.size() != count)
      ops::fail("sgd_step_many: expected params, grads, momentum_buffers and first_steps of one length, got ",
                count, ", ", grads.size(), ", ", bufs.size(), " and ", first_steps.size());
    std::vector<SgdTensor> tensors;
    tensors.reserve(count);
    std::vector<py::array> keep;  // the arrays stay referenced while the GIL is released
    keep.reserve(3 * count);
    for (std::size_t i = 0; i < count; ++i) {
      py::array param = array_item(params, i, "params"), grad = array_item(grads, i, "grads");
      OptArray buf;
      if (!bufs[i].is_none()) buf = array_item(bufs, i, "momentum_buffers");
      const auto bs = shape_of(buf);
      const i64 n = ops::sgd_numel(shape_of(param), shape_of(grad), ptr(bs), momentum);
      tensors.push_back(SgdTensor{inout(param, "param"), inout(buf, "momentum_buffer"), in(grad, "grad"), n,
                                  first_steps[i].cast<bool>()});
      keep.push_back(param), keep.push_back(grad);
      if (buf) keep.push_back(*buf);
    }
    py::gil_scoped_release release;
    ops::sgd_step_many(tensors, SgdParams{lr, momentum, dampening, weight_decay, nesterov});
  });

  // Zero-fills every float32 C-contiguous writeable array of the list, in one parallel pass.
  m.def("zero_many", [](const py::list& arrays) {
    std::vector<float*> ptrs;
    std::vector<i64> sizes;
    std::vector<py::array> keep;
    ptrs.reserve(arrays.size()), sizes.reserve(arrays.size()), keep.reserve(arrays.size());
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      py::array a = array_item(arrays, i, "arrays");
      sizes.push_back(ops::checked_numel(shape_of(a), "zero_many array"));
      ptrs.push_back(inout(a, "array"));
      keep.push_back(a);
    }
    py::gil_scoped_release release;
    ops::zero_many(ptrs, sizes);
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
