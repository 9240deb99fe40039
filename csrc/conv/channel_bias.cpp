// Per-channel bias add and its gradient over NCHW planes (see channel_bias.h).
#include "conv/channel_bias.h"

#include "runtime/parallel.h"
#include "runtime/reduce.h"

namespace pycnn {

void channel_bias_add(float* y, const float* b, i64 N, i64 C, i64 plane, int num_threads) {
  const i64 planes = N * C;
  parallel_items(planes, threads_for_work(planes, plane, num_threads), Schedule::kStatic, [&](i64 p, int) {
    float* PYCNN_RESTRICT row = y + p * plane;
    const float v = b[p % C];
    for (i64 i = 0; i < plane; ++i) row[i] += v;
  });
}

void channel_bias_grad(float* db, const float* dy, i64 N, i64 C, i64 plane) {
  for (i64 n = 0; n < N; ++n)
    for (i64 c = 0; c < C; ++c) db[c] += sum_floats(dy + (n * C + c) * plane, plane);
}

}  // namespace pycnn
