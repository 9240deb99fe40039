// Portable GEMM microkernel: a 6 x 16 tile written with the GCC/Clang vector
// extension, which the compiler maps onto whatever the baseline target has
// (4 x SSE on x86-64, 4 x NEON on aarch64), or plain loops elsewhere. It is
// the reference path for every other microkernel and what runs under
// PYCNN_ISA=scalar.
#include "gemm/ukernel.h"

namespace pycnn::scalar {

#if defined(__GNUC__) || defined(__clang__)
typedef float vec16 __attribute__((vector_size(16 * sizeof(float)), aligned(4)));
#endif

void gemm_ukernel_6x16(i64 kc, const float* PYCNN_RESTRICT a, const float* PYCNN_RESTRICT b,
                       float* PYCNN_RESTRICT c, i64 ldc, i64 mr, i64 nr, float alpha, float beta,
                       const float* PYCNN_RESTRICT row_bias, bool relu) {
  float acc[6][16];
#if defined(__GNUC__) || defined(__clang__)
  vec16 r0 = {}, r1 = {}, r2 = {}, r3 = {}, r4 = {}, r5 = {};
  for (i64 k = 0; k < kc; ++k) {
    vec16 bk;
    __builtin_memcpy(&bk, b + k * 16, sizeof bk);
    const float* ak = a + k * 6;
    r0 += ak[0] * bk;
    r1 += ak[1] * bk;
    r2 += ak[2] * bk;
    r3 += ak[3] * bk;
    r4 += ak[4] * bk;
    r5 += ak[5] * bk;
  }
  __builtin_memcpy(acc[0], &r0, sizeof r0);
  __builtin_memcpy(acc[1], &r1, sizeof r1);
  __builtin_memcpy(acc[2], &r2, sizeof r2);
  __builtin_memcpy(acc[3], &r3, sizeof r3);
  __builtin_memcpy(acc[4], &r4, sizeof r4);
  __builtin_memcpy(acc[5], &r5, sizeof r5);
#else
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 16; ++j) acc[i][j] = 0.0f;
  for (i64 k = 0; k < kc; ++k)
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 16; ++j) acc[i][j] += a[k * 6 + i] * b[k * 16 + j];
#endif
  for (i64 i = 0; i < mr; ++i) {
    float* cr = c + i * ldc;
    for (i64 j = 0; j < nr; ++j) {
      float v = alpha * acc[i][j];
      if (beta != 0.0f) v += beta * cr[j];
      if (row_bias) v += row_bias[i];
      if (relu) v = v > 0.0f ? v : (v != v ? v : 0.0f);
      cr[j] = v;
    }
  }
}

}  // namespace pycnn::scalar
