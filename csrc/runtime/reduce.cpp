#include "runtime/reduce.h"

namespace pycnn {

float sum_floats(const float* PYCNN_RESTRICT x, i64 n) {
  float acc[16] = {};
  i64 p = 0;
  for (; p + 16 <= n; p += 16)
    for (int u = 0; u < 16; ++u) acc[u] += x[p + u];
  for (int u = 0; p < n; ++p, ++u) acc[u] += x[p];  // tail: at most 15 more
  for (int w = 8; w >= 1; w /= 2)  // pairwise: acc[u] += acc[u + w]
    for (int u = 0; u < w; ++u) acc[u] += acc[u + w];
  return acc[0];
}

float dot_floats(const float* PYCNN_RESTRICT x, const float* PYCNN_RESTRICT y, i64 n) {
  float acc[16] = {};
  i64 p = 0;
  for (; p + 16 <= n; p += 16)
    for (int u = 0; u < 16; ++u) acc[u] += x[p + u] * y[p + u];
  for (int u = 0; p < n; ++p, ++u) acc[u] += x[p] * y[p];
  for (int w = 8; w >= 1; w /= 2)
    for (int u = 0; u < w; ++u) acc[u] += acc[u + w];
  return acc[0];
}

}  // namespace pycnn
