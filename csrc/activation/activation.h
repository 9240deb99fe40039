// Elementwise activations: one table entry per activation, looked up by name
// by the op layer, so a new activation is one kernel pair and one table line
// here (activation.cpp) and needs no new op, binding or build entry.
//
// Every kernel runs over n floats of any shape.
//   fwd: y = f(x)                     y overwritten; may alias x
//   bwd: dx = dy * f'(.)              dx overwritten; may alias dy; reads
//                                     `saved`, the input x or the output y
//                                     as the entry says
// `param` is the activation's one hyper-parameter (LeakyReLU's slope, ELU's
// alpha, GELU's tanh flag as 0/1) and is ignored by the others.
#pragma once
#include <string>

#include "runtime/common.h"

namespace pycnn {

using ActivationFwd = void (*)(float* y, const float* x, i64 n, float param, int nt);
using ActivationBwd = void (*)(float* dx, const float* dy, const float* saved, i64 n, float param, int nt);

struct Activation {
  const char* name;  // the name Python passes: "relu", "leaky_relu", "elu", ...
  bool bwd_reads_output;  // backward's `saved` is y = f(x) (else the input x)
  ActivationFwd fwd;
  ActivationBwd bwd;
};

// The entry called `name`, or null.
const Activation* find_activation(const std::string& name);
// "'relu', 'leaky_relu', ..." for error messages.
std::string activation_names();

}  // namespace pycnn

namespace pycnn {

// out = a + b, then max(., 0) when relu (NaN propagates), over n floats; out
// may be a or b (in place). A residual connection's sum and its gradients' sum.
void add_fwd(float* out, const float* a, const float* b, i64 n, bool relu, int nt);

// Softmax along the middle axis of x viewed as (outer, D, inner) (softmax.cpp).
// fwd overwrites y; bwd overwrites dx = y * (dy - sum(dy * y)).
void softmax_fwd(float* y, const float* x, i64 outer, i64 D, i64 inner, int nt);
void softmax_bwd(float* dx, const float* dy, const float* y, i64 outer, i64 D, i64 inner, int nt);

}  // namespace pycnn
