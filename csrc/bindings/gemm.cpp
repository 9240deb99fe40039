#include "bindings/arrays.h"
#include "ops/gemm.h"

namespace pycnn::bindings {

void bind_gemm(py::module_& m) {
  m.def("sgemm", [](const py::array& a, const py::array& b, bool trans_a, bool trans_b, float alpha, float beta,
                    OptArray c, bool relu) {
    const auto cs = shape_of(c);
    const auto s = ops::sgemm_shape(shape_of(a), shape_of(b), trans_a, trans_b, ptr(cs), beta);
    const float *pa = in(a, "a"), *pb = in(b, "b");
    py::array out = c ? *c : py::array(new_array({s.M, s.N}));
    float* pc = inout(out, "c");
    py::gil_scoped_release release;
    ops::sgemm(pc, pa, pb, s, alpha, beta, relu);
    return out;
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0f,
     py::arg("beta") = 0.0f, py::arg("c") = py::none(), py::arg("relu") = false,
     "c = relu?(alpha * op(a) @ op(b) + beta * c), row-major float32; c is written in place when given.");
}

}  // namespace pycnn::bindings
