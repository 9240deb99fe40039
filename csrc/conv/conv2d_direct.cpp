// Direct convolution, NCHW, no column buffer.
//   fwd:        y[n,k] = b[k] + sum over (c, i, j) of w[k,c,i,j] * shifted x[n,c]      (overwrite)
//   bwd_data:   dx[n,c] = sum over (k, i, j) of w[k,c,i,j] * dy[n,k] scattered back   (overwrite)
//   bwd_weight: dw[k,c,i,j] += <dy[n,k], shifted x[n,c]> summed over n; db[k] += sum dy[n,k]
// Every inner loop runs along an output row (contiguous for stride 1), so the
// compiler vectorises it. Work is split over output planes (fwd), input
// planes (bwd_data) and output channels (bwd_weight): each thread owns what it
// writes, so no atomics and no reduction across threads are needed, and the
// results do not depend on the thread count.
// This is the algorithm for few input channels per group (first layers,
// depthwise convolutions), where im2col's GEMM would be too thin.
#include <algorithm>

#include "conv/conv2d.h"
#include "runtime/parallel.h"
#include "runtime/reduce.h"

namespace pycnn {
namespace {

// yp (Ho x Wo) += wv * (input plane xp sampled at tap (i, j))
inline void tap_axpy(float* PYCNN_RESTRICT yp, const float* PYCNN_RESTRICT xp, float wv, i64 i, i64 j,
                     const Conv2dShape& s) {
  for_each_tap_row(s, i, j, [&](const TapRow& r) {
    float* PYCNN_RESTRICT yr = yp + r.oh * s.Wo;
    const float* xr = xp + r.ih * s.W;
    if (r.stride == 1) {
      for (i64 ow = r.lo; ow < r.hi; ++ow) yr[ow] += wv * xr[ow + r.off];
    } else {
      for (i64 ow = r.lo; ow < r.hi; ++ow) yr[ow] += wv * xr[ow * r.stride + r.off];
    }
  });
}

// dxp (H x W) += wv * (dy plane scattered back through tap (i, j))
inline void tap_scatter(float* PYCNN_RESTRICT dxp, const float* PYCNN_RESTRICT dyp, float wv, i64 i,
                        i64 j, const Conv2dShape& s) {
  for_each_tap_row(s, i, j, [&](const TapRow& r) {
    float* PYCNN_RESTRICT xr = dxp + r.ih * s.W;
    const float* dr = dyp + r.oh * s.Wo;
    if (r.stride == 1) {
      for (i64 ow = r.lo; ow < r.hi; ++ow) xr[ow + r.off] += wv * dr[ow];
    } else {
      for (i64 ow = r.lo; ow < r.hi; ++ow) xr[ow * r.stride + r.off] += wv * dr[ow];
    }
  });
}

// <dy plane, input plane sampled at tap (i, j)>
inline float tap_dot(const float* PYCNN_RESTRICT dyp, const float* PYCNN_RESTRICT xp, i64 i, i64 j,
                     const Conv2dShape& s) {
  float acc = 0.0f;
  for_each_tap_row(s, i, j, [&](const TapRow& r) {
    const float* xr = xp + r.ih * s.W;
    const float* dr = dyp + r.oh * s.Wo;
    float row = 0.0f;
    if (r.stride == 1) {
#pragma omp simd reduction(+ : row)
      for (i64 ow = r.lo; ow < r.hi; ++ow) row += dr[ow] * xr[ow + r.off];
    } else {
#pragma omp simd reduction(+ : row)
      for (i64 ow = r.lo; ow < r.hi; ++ow) row += dr[ow] * xr[ow * r.stride + r.off];
    }
    acc += row;
  });
  return acc;
}

}  // namespace

void conv2d_fwd_direct(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                       int num_threads) {
  const float* b = ep.bias;
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane();
  const i64 planes = s.N * s.K;
  const int threads = threads_for_work(planes, Cg * s.kh * s.kw * P, num_threads);
  parallel_items(planes, threads, Schedule::kStatic, [&](i64 nk, int) {
    const i64 n = nk / s.K, k = nk % s.K, g = k / Kg;
    float* yp = y + nk * P;
    const float bk = b ? b[k] : 0.0f;
    if (ep.residual) {  // the residual joins the sum first (the taps then accumulate onto it)
      const float* rp = ep.residual + nk * P;
      for (i64 p = 0; p < P; ++p) yp[p] = bk + rp[p];
    } else {
      std::fill(yp, yp + P, bk);
    }
    for (i64 c = 0; c < Cg; ++c) {
      const float* xp = x + (n * s.C + g * Cg + c) * s.in_plane();
      const float* wk = w + (k * Cg + c) * s.kh * s.kw;
      for (i64 i = 0; i < s.kh; ++i)
        for (i64 j = 0; j < s.kw; ++j) tap_axpy(yp, xp, wk[i * s.kw + j], i, j, s);
    }
    if (ep.relu)  // NaN stays NaN, as in PyTorch
      for (i64 p = 0; p < P; ++p) yp[p] = yp[p] > 0.0f ? yp[p] : (yp[p] != yp[p] ? yp[p] : 0.0f);
  });
}

void conv2d_bwd_data_direct(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane();
  const i64 planes = s.N * s.C;
  const int threads = threads_for_work(planes, Kg * s.kh * s.kw * P, num_threads);
  parallel_items(planes, threads, Schedule::kStatic, [&](i64 nc, int) {
    const i64 n = nc / s.C, c_abs = nc % s.C, g = c_abs / Cg, c = c_abs % Cg;
    float* dxp = dx + nc * s.in_plane();
    std::fill(dxp, dxp + s.in_plane(), 0.0f);
    for (i64 kk = 0; kk < Kg; ++kk) {
      const i64 k = g * Kg + kk;
      const float* dyp = dy + (n * s.K + k) * P;
      const float* wk = w + (k * Cg + c) * s.kh * s.kw;
      for (i64 i = 0; i < s.kh; ++i)
        for (i64 j = 0; j < s.kw; ++j) tap_scatter(dxp, dyp, wk[i * s.kw + j], i, j, s);
    }
  });
}

void conv2d_bwd_weight_direct(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                              int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane();
  const i64 taps = s.kh * s.kw;
  const int threads = threads_for_work(s.K, s.N * Cg * s.kh * s.kw * P, num_threads);
  parallel_items(s.K, threads, Schedule::kStatic, [&](i64 k, int) {
    const i64 g = k / Kg;
    float* dwk = dw + k * Cg * taps;
    float bias_acc = 0.0f;
    for (i64 n = 0; n < s.N; ++n) {
      const float* dyp = dy + (n * s.K + k) * P;
      if (db) bias_acc += sum_floats(dyp, P);
      for (i64 c = 0; c < Cg; ++c) {
        const float* xp = x + (n * s.C + g * Cg + c) * s.in_plane();
        for (i64 i = 0; i < s.kh; ++i)
          for (i64 j = 0; j < s.kw; ++j) dwk[c * taps + i * s.kw + j] += tap_dot(dyp, xp, i, j, s);
      }
    }
    if (db) db[k] += bias_acc;
  });
}

}  // namespace pycnn
