#include "ops/resize.h"

#include <cmath>

#include "runtime/parallel.h"

namespace pycnn::ops {

UpsampleMode parse_upsample_mode(const std::string& name) {
  if (name == "nearest") return UpsampleMode::Nearest;
  if (name == "nearest-exact") return UpsampleMode::NearestExact;
  if (name == "bilinear") return UpsampleMode::Bilinear;
  fail("upsample2d: mode must be 'nearest', 'nearest-exact' or 'bilinear', got '", name, "'");
}

Upsample2dShape upsample2d_shape(const Shape& x, i64 out_h, i64 out_w, double scale_h, double scale_w,
                                 UpsampleMode mode, bool align_corners) {
  const char* op = "upsample2d";
  if (x.size() != 4) fail(op, ": expected input of shape (N, C, H, W), got ", shape_str(x));
  checked_numel(x, "upsample2d input");
  if (x[2] <= 0 || x[3] <= 0) fail(op, ": input planes must be non-empty, got ", shape_str(x));
  if (out_h <= 0 || out_w <= 0) fail(op, ": output size must be positive, got (", out_h, ", ", out_w, ")");
  for (double sc : {scale_h, scale_w})
    if (!(std::isfinite(sc) && sc >= 0))
      fail(op, ": scale factors must be finite and positive (0: none), got (", scale_h, ", ", scale_w, ")");
  if (align_corners && mode != UpsampleMode::Bilinear) fail(op, ": align_corners is only for bilinear mode");
  Upsample2dShape s{x[0], x[1], x[2], x[3], out_h, out_w, scale_h, scale_w, mode, align_corners};
  checked_numel({s.N, s.C, s.Ho, s.Wo}, "upsample2d output");
  return s;
}

Upsample2dShape upsample2d_bwd_shape(const Shape& dy, const Shape& x, i64 out_h, i64 out_w, double scale_h,
                                     double scale_w, UpsampleMode mode, bool align_corners) {
  const Upsample2dShape s = upsample2d_shape(x, out_h, out_w, scale_h, scale_w, mode, align_corners);
  check_shape(dy, {s.N, s.C, s.Ho, s.Wo}, "upsample2d grad_output");
  return s;
}

void upsample2d_fwd(float* y, const float* x, const Upsample2dShape& s) {
  pycnn::upsample2d_fwd(y, x, s, get_num_threads());
}

void upsample2d_bwd(float* dx, const float* dy, const Upsample2dShape& s) {
  check_disjoint(floats(dx, s.N * s.C * s.H * s.W, "grad_input"), floats(dy, s.N * s.C * s.Ho * s.Wo, "grad_output"));
  pycnn::upsample2d_bwd(dx, dy, s, get_num_threads());
}

}  // namespace pycnn::ops
