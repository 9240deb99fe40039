// BatchNorm's per-ISA kernels: the loops over one run of L contiguous values
// of a channel (batch_norm.cpp's channel path), their prototypes and the
// table batch_norm.cpp picks them from. The loops are the same source for
// every ISA (batch_norm_runs.inc), compiled once per ISA file with its own
// flags: the statistics sums are in double, and with SSE2 only (the portable
// build) a double add handles two values, so the passes over the large
// early-layer maps were bound by arithmetic, not memory.
//
// Types and declarations only: the per-ISA files include this header, so it
// must not define any function (see runtime/dispatch.h).
#pragma once
#include "runtime/common.h"

namespace pycnn {

struct BatchNormRunKernels {
  // sum of x[0, L), in double
  double (*sum)(const float* x, i64 L);
  // sum of (x[l] - mean)^2, in double
  double (*sum_sq)(const float* x, i64 L, double mean);
  // *sdy += sum of dy[l]; *sdyx += sum of dy[l] * (x[l] - mean) (the difference in float)
  void (*sums_bwd)(const float* dy, const float* x, i64 L, float mean, double* sdy, double* sdyx);
  // y = x * scale + shift, then max(., 0) keeping NaN when relu
  void (*normalize)(float* y, const float* x, i64 L, float scale, float shift, bool relu);
  // dx = a * dy - b * (x - mean) + d0
  void (*dx)(float* dx, const float* dy, const float* x, i64 L, float a, float b, float mean, float d0);
};
// The table for the active ISA (batch_norm.cpp).
const BatchNormRunKernels& batch_norm_run_kernels();

#define PYCNN_BATCH_NORM_RUN_PROTOTYPES                                                                       \
  double bn_run_sum(const float* x, i64 L);                                                                   \
  double bn_run_sum_sq(const float* x, i64 L, double mean);                                                   \
  void bn_run_sums_bwd(const float* dy, const float* x, i64 L, float mean, double* sdy, double* sdyx);        \
  void bn_run_normalize(float* y, const float* x, i64 L, float scale, float shift, bool relu);                \
  void bn_run_dx(float* dx, const float* dy, const float* x, i64 L, float a, float b, float mean, float d0);

namespace scalar {
PYCNN_BATCH_NORM_RUN_PROTOTYPES
}
namespace avx2 {
PYCNN_BATCH_NORM_RUN_PROTOTYPES
}
namespace avx512 {
PYCNN_BATCH_NORM_RUN_PROTOTYPES
}

}  // namespace pycnn
