#include "bindings/arrays.h"
#include "ops/resize.h"

namespace pycnn::bindings {

void bind_resize(py::module_& m) {
  using Pair = std::array<i64, 2>;
  using Scales = std::array<double, 2>;  // the caller's scale factors per axis, 0: the output size was given

  m.def("upsample2d_fwd", [](const py::array& x, Pair out, Scales scales, const std::string& mode,
                             bool align_corners) {
    const auto s = ops::upsample2d_shape(shape_of(x), out[0], out[1], scales[0], scales[1],
                                         ops::parse_upsample_mode(mode), align_corners);
    const float* px = in(x, "input");
    auto y = new_array({s.N, s.C, s.Ho, s.Wo});
    float* py_ = data(y);
    py::gil_scoped_release release;
    ops::upsample2d_fwd(py_, px, s);
    return y;
  });

  m.def("upsample2d_bwd", [](const py::array& dy, std::vector<i64> x_shape, Pair out, Scales scales,
                             const std::string& mode, bool align_corners) {
    const auto s = ops::upsample2d_bwd_shape(shape_of(dy), to_shape(x_shape), out[0], out[1], scales[0], scales[1],
                                             ops::parse_upsample_mode(mode), align_corners);
    const float* pdy = in(dy, "grad_output");
    auto dx = new_array(to_shape(x_shape));
    float* pdx = data(dx);
    py::gil_scoped_release release;
    ops::upsample2d_bwd(pdx, pdy, s);
    return dx;
  });
}

}  // namespace pycnn::bindings
