// Batch normalisation over x viewed as (N, C, L): L = H*W for BatchNorm2d,
// the length for BatchNorm1d on (N, C, L), 1 for BatchNorm1d on (N, C).
// Statistics are per channel over the N*L values of that channel.
//
// Training forward: two passes in double (mean, then the centred sum of
// squares) so a large mean does not cancel the variance; y overwritten,
// save_mean/save_rstd (C,) overwritten for backward, running stats updated in
// place with PyTorch's rule r = (1 - momentum) r + momentum * stat, the
// running variance unbiased (M / (M - 1)).
// Eval forward: the running statistics, no saved state.
// Backward: dx overwritten, dweight/dbias accumulated (+=). After an eval
// forward (fixed statistics) the same sums give dweight/dbias and dx is
// dy * weight * rstd: the batch-statistics terms are dropped (PyTorch's
// eval-mode gradient).
//
// Threads split channels: every channel's sums run on one thread in a fixed
// order, so results are bitwise identical for any thread count.
//
// Two loop orders. A channel's values are N runs of L contiguous floats. For
// L >= kRowPathMinL each channel is walked run by run, vectorised along L
// (the "channel" path). For smaller L -- 1 for BatchNorm1d on (N, C) and for
// the 1x1 maps that end a CNN on small images, 4 for 2x2 maps -- those runs
// are too short to vectorise: a 32x512x1x1 batch took 0.4 ms, 30 ns a value.
// The "row" path instead gives each thread a block of channels [c0, c1) and
// walks the batch over the contiguous rows x[n][c0:c1][0:L], vectorised
// across channels, with one double accumulator per (c, l); a channel's sums
// are folded over l afterwards. Each accumulator adds its N values in order
// of n, so the row path is independent of the thread count too. Per-channel
// scalars (mean, scale, shift, ...) are expanded to rows of C*L values so
// that every inner loop is a plain elementwise one. Both paths compute y and
// dx from the same per-channel float coefficients with the same float
// expressions; only the order of the double sums differs.
//
// The channel path's loops over one run (the sums, the normalisation, dx)
// come from the active ISA's table (batch_norm_runs.h): the same source
// compiled with AVX2 or AVX-512 flags does 4 or 8 double adds per
// instruction where the portable build does 2, which was what bound the
// passes over ResNet-18's 112x112 maps (7.8 ms forward for 8x64x112x112,
// 4.8 ms with AVX-512). Results depend on the ISA by rounding only.
#include "norm/batch_norm.h"

#include <cmath>
#include <vector>

#include "norm/batch_norm_runs.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pycnn {

// The portable (scalar-ISA) run kernels: the same loops as the per-ISA files, with this file's flags.
namespace scalar {
#include "norm/batch_norm_runs.inc"
}  // namespace scalar

namespace {

BatchNormRunKernels make_batch_norm_run_kernels(Isa isa) {
  BatchNormRunKernels k{scalar::bn_run_sum, scalar::bn_run_sum_sq, scalar::bn_run_sums_bwd,
                        scalar::bn_run_normalize, scalar::bn_run_dx};
#if PYCNN_X86
  if (isa >= Isa::Avx2)
    k = {avx2::bn_run_sum, avx2::bn_run_sum_sq, avx2::bn_run_sums_bwd, avx2::bn_run_normalize, avx2::bn_run_dx};
  if (isa >= Isa::Avx512)
    k = {avx512::bn_run_sum, avx512::bn_run_sum_sq, avx512::bn_run_sums_bwd, avx512::bn_run_normalize,
         avx512::bn_run_dx};
#else
  (void)isa;
#endif
  return k;
}

}  // namespace

const BatchNormRunKernels& batch_norm_run_kernels() {
  static const auto tables = per_isa<BatchNormRunKernels>(make_batch_norm_run_kernels);
  return for_active_isa(tables);
}

namespace {

inline int channel_threads(i64 C, i64 per_channel, int nt) { return threads_for_work(C, per_channel, nt); }

// Values per channel and image below which the row path runs.
constexpr i64 kRowPathMinL = 16;

// ---------------------------------------------------------------- per-channel coefficients

// y = x * scale + shift (then ReLU) for channel c.
inline void channel_affine(double mean, double rstd, const float* weight, const float* bias, i64 c, float& scale,
                           float& shift) {
  const double w = weight ? weight[c] : 1.0;
  scale = static_cast<float>(w * rstd);
  shift = static_cast<float>((bias ? bias[c] : 0.0) - mean * w * rstd);
}

// Channel c's statistics from its mean and centred sum of squares: rstd, the
// saved mean and rstd, and the running statistics (when given).
inline double finish_stats(i64 c, double mean, double sq, i64 M, double eps, double momentum, float* save_mean,
                           float* save_rstd, float* running_mean, float* running_var) {
  const double var = sq / static_cast<double>(M);
  const double rstd = 1.0 / std::sqrt(var + eps);
  save_mean[c] = static_cast<float>(mean);
  save_rstd[c] = static_cast<float>(rstd);
  if (running_mean) {
    const double unbiased = M > 1 ? sq / static_cast<double>(M - 1) : var;
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
  }
  return rstd;
}

// Backward coefficients of channel c: dx = a * dy - b * (x - mean) + d0, with
// xhat = (x - mean) * rstd, M = N * L:
//   dbias += sum(dy), dweight += sum(dy * xhat)
//   dx = k * dy - k * sdy / M - k * rstd * sdy_xhat / M * (x - mean), k = w * rstd
// With fixed statistics (batch_stats false) only a = k is used: dx = k * dy.
struct BwdCoefs {
  float a, b, d0;
};
inline BwdCoefs finish_bwd(i64 c, double sdy, double sdyx, double rstd, i64 M, const float* weight, float* dweight,
                           float* dbias, bool batch_stats) {
  const double sdy_xhat = sdyx * rstd;
  if (dbias) dbias[c] += static_cast<float>(sdy);
  if (dweight) dweight[c] += static_cast<float>(sdy_xhat);
  const double w = weight ? weight[c] : 1.0;
  const double k = w * rstd;
  if (!batch_stats) return BwdCoefs{static_cast<float>(k), 0.0f, 0.0f};
  return BwdCoefs{static_cast<float>(k), static_cast<float>(k * rstd * sdy_xhat / static_cast<double>(M)),
                  static_cast<float>(-k * sdy / static_cast<double>(M))};
}

inline float relu_keep_nan(float v) { return v > 0.0f ? v : (v != v ? v : 0.0f); }

// ---------------------------------------------------------------- channel path (L >= kRowPathMinL)

// Channel c of y = x * scale + shift (then ReLU).
void normalize_channel(const BatchNormRunKernels& k, float* y, const float* x, i64 N, i64 C, i64 L, i64 c,
                       float scale, float shift, bool relu) {
  for (i64 n = 0; n < N; ++n) k.normalize(y + (n * C + c) * L, x + (n * C + c) * L, L, scale, shift, relu);
}

void fwd_train_channels(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                        const float* x, const float* weight, const float* bias, i64 N, i64 C, i64 L, double eps,
                        double momentum, bool relu, int threads) {
  const i64 M = N * L;
  const BatchNormRunKernels& k = batch_norm_run_kernels();
  parallel_items(C, threads, Schedule::kStatic, [&](i64 c, int) {
    double sum = 0.0;
    for (i64 n = 0; n < N; ++n) sum += k.sum(x + (n * C + c) * L, L);
    const double mean = sum / static_cast<double>(M);
    double sq = 0.0;
    for (i64 n = 0; n < N; ++n) sq += k.sum_sq(x + (n * C + c) * L, L, mean);
    const double rstd = finish_stats(c, mean, sq, M, eps, momentum, save_mean, save_rstd, running_mean, running_var);
    float scale, shift;
    channel_affine(mean, rstd, weight, bias, c, scale, shift);
    normalize_channel(k, y, x, N, C, L, c, scale, shift, relu);
  });
}

void bwd_channels(float* dx, float* dweight, float* dbias, const float* dy, const float* x, const float* save_mean,
                  const float* save_rstd, const float* weight, i64 N, i64 C, i64 L, bool batch_stats, int threads) {
  const i64 M = N * L;
  const BatchNormRunKernels& k = batch_norm_run_kernels();
  parallel_items(C, threads, Schedule::kStatic, [&](i64 c, int) {
    const float mean = save_mean[c];
    double sdy = 0.0, sdyx = 0.0;
    for (i64 n = 0; n < N; ++n) k.sums_bwd(dy + (n * C + c) * L, x + (n * C + c) * L, L, mean, &sdy, &sdyx);
    const BwdCoefs co = finish_bwd(c, sdy, sdyx, save_rstd[c], M, weight, dweight, dbias, batch_stats);
    if (!dx) return;
    for (i64 n = 0; n < N; ++n) {
      if (batch_stats)
        k.dx(dx + (n * C + c) * L, dy + (n * C + c) * L, x + (n * C + c) * L, L, co.a, co.b, mean, co.d0);
      else  // dx = dy * a: the forward's normalisation loop, on dy (+ 0 changes no value)
        k.normalize(dx + (n * C + c) * L, dy + (n * C + c) * L, L, co.a, 0.0f, false);
    }
  });
}

// ---------------------------------------------------------------- row path (L < kRowPathMinL)

// The sum over channel c's L accumulators, in order of l.
inline double fold(const double* acc, i64 c, i64 L) {
  double s = 0.0;
  for (i64 l = 0; l < L; ++l) s += acc[c * L + l];
  return s;
}

// row[c*L + l] = v for l in [0, L).
template <class T>
inline void expand(T* row, i64 c, i64 L, T v) {
  for (i64 l = 0; l < L; ++l) row[c * L + l] = v;
}

// y = x * scale + shift (then ReLU) over the rows [j0, j1) of every image; scale
// and shift are rows of C*L.
void normalize_rows(float* y, const float* x, i64 N, i64 CL, i64 j0, i64 j1, const float* scale, const float* shift,
                    bool relu) {
  for (i64 n = 0; n < N; ++n) {
    const float* xr = x + n * CL;
    float* yr = y + n * CL;
    if (relu) {
#pragma omp simd
      for (i64 j = j0; j < j1; ++j) yr[j] = relu_keep_nan(xr[j] * scale[j] + shift[j]);
    } else {
#pragma omp simd
      for (i64 j = j0; j < j1; ++j) yr[j] = xr[j] * scale[j] + shift[j];
    }
  }
}

void fwd_train_rows(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                    const float* x, const float* weight, const float* bias, i64 N, i64 C, i64 L, double eps,
                    double momentum, bool relu, int threads) {
  const i64 M = N * L, CL = C * L;
  std::vector<double> acc_v(static_cast<std::size_t>(CL)), mean_v(static_cast<std::size_t>(CL));
  std::vector<float> scale_v(static_cast<std::size_t>(CL)), shift_v(static_cast<std::size_t>(CL));
  double *acc = acc_v.data(), *mrow = mean_v.data();
  float *scale = scale_v.data(), *shift = shift_v.data();
  parallel_ranges(C, threads, [&](i64 c0, i64 c1) {  // disjoint blocks of channels
    const i64 j0 = c0 * L, j1 = c1 * L;
    for (i64 j = j0; j < j1; ++j) acc[j] = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const float* xr = x + n * CL;
#pragma omp simd
      for (i64 j = j0; j < j1; ++j) acc[j] += xr[j];
    }
    for (i64 c = c0; c < c1; ++c) expand(mrow, c, L, fold(acc, c, L) / static_cast<double>(M));
    for (i64 j = j0; j < j1; ++j) acc[j] = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const float* xr = x + n * CL;
#pragma omp simd
      for (i64 j = j0; j < j1; ++j) {
        const double d = xr[j] - mrow[j];
        acc[j] += d * d;
      }
    }
    for (i64 c = c0; c < c1; ++c) {
      const double mean = mrow[c * L];
      const double rstd = finish_stats(c, mean, fold(acc, c, L), M, eps, momentum, save_mean, save_rstd,
                                       running_mean, running_var);
      float s, h;
      channel_affine(mean, rstd, weight, bias, c, s, h);
      expand(scale, c, L, s);
      expand(shift, c, L, h);
    }
    normalize_rows(y, x, N, CL, j0, j1, scale, shift, relu);
  });
}

void bwd_rows(float* dx, float* dweight, float* dbias, const float* dy, const float* x, const float* save_mean,
              const float* save_rstd, const float* weight, i64 N, i64 C, i64 L, bool batch_stats, int threads) {
  const i64 M = N * L, CL = C * L;
  std::vector<double> sdy_v(static_cast<std::size_t>(CL)), sdyx_v(static_cast<std::size_t>(CL));
  std::vector<float> rows_v(static_cast<std::size_t>(4 * CL));
  double *sdy = sdy_v.data(), *sdyx = sdyx_v.data();
  float *mrow = rows_v.data(), *arow = mrow + CL, *brow = arow + CL, *drow = brow + CL;
  parallel_ranges(C, threads, [&](i64 c0, i64 c1) {  // disjoint blocks of channels
    const i64 j0 = c0 * L, j1 = c1 * L;
    for (i64 c = c0; c < c1; ++c) expand(mrow, c, L, save_mean[c]);
    for (i64 j = j0; j < j1; ++j) sdy[j] = 0.0, sdyx[j] = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const float* xr = x + n * CL;
      const float* dyr = dy + n * CL;
#pragma omp simd
      for (i64 j = j0; j < j1; ++j) {
        sdy[j] += dyr[j];
        sdyx[j] += static_cast<double>(dyr[j]) * (xr[j] - mrow[j]);
      }
    }
    for (i64 c = c0; c < c1; ++c) {
      const BwdCoefs k =
          finish_bwd(c, fold(sdy, c, L), fold(sdyx, c, L), save_rstd[c], M, weight, dweight, dbias, batch_stats);
      expand(arow, c, L, k.a);
      expand(brow, c, L, k.b);
      expand(drow, c, L, k.d0);
    }
    if (!dx) return;
    for (i64 n = 0; n < N; ++n) {
      const float* xr = x + n * CL;
      const float* dyr = dy + n * CL;
      float* dxr = dx + n * CL;
      if (batch_stats) {
#pragma omp simd
        for (i64 j = j0; j < j1; ++j) dxr[j] = arow[j] * dyr[j] - brow[j] * (xr[j] - mrow[j]) + drow[j];
      } else {
#pragma omp simd
        for (i64 j = j0; j < j1; ++j) dxr[j] = arow[j] * dyr[j];
      }
    }
  });
}

}  // namespace

void batch_norm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                          const float* x, const float* weight, const float* bias, const BatchNormShape& shape,
                          double eps, double momentum, bool relu, int nt) {
  const i64 N = shape.N, C = shape.C, L = shape.L;
  assert(N * L > 0);
  const int threads = channel_threads(C, 3 * N * L, nt);
  if (L < kRowPathMinL)
    fwd_train_rows(y, save_mean, save_rstd, running_mean, running_var, x, weight, bias, N, C, L, eps, momentum, relu,
                   threads);
  else
    fwd_train_channels(y, save_mean, save_rstd, running_mean, running_var, x, weight, bias, N, C, L, eps, momentum,
                       relu, threads);
}

void batch_norm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                         const float* running_mean, const float* running_var, const BatchNormShape& shape, double eps,
                         bool relu, int nt) {
  const i64 N = shape.N, C = shape.C, L = shape.L;
  const int threads = channel_threads(C, N * L, nt);
  auto coefs = [&](i64 c, float& scale, float& shift) {
    const double rstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
    channel_affine(running_mean[c], rstd, weight, bias, c, scale, shift);
  };
  if (L >= kRowPathMinL) {
    const BatchNormRunKernels& k = batch_norm_run_kernels();
    parallel_items(C, threads, Schedule::kStatic, [&](i64 c, int) {
      float scale, shift;
      coefs(c, scale, shift);
      normalize_channel(k, y, x, N, C, L, c, scale, shift, relu);
    });
    return;
  }
  const i64 CL = C * L;
  std::vector<float> rows_v(static_cast<std::size_t>(2 * CL));
  float *scale = rows_v.data(), *shift = scale + CL;
  parallel_ranges(C, threads, [&](i64 c0, i64 c1) {  // disjoint blocks of channels
    for (i64 c = c0; c < c1; ++c) {
      float s, h;
      coefs(c, s, h);
      expand(scale, c, L, s);
      expand(shift, c, L, h);
    }
    normalize_rows(y, x, N, CL, c0 * L, c1 * L, scale, shift, relu);
  });
}

void batch_norm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                    const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& shape,
                    bool batch_stats, int nt) {
  const i64 N = shape.N, C = shape.C, L = shape.L;
  if (N * L == 0) return;
  const int threads = channel_threads(C, 3 * N * L, nt);
  if (L < kRowPathMinL)
    bwd_rows(dx, dweight, dbias, dy, x, save_mean, save_rstd, weight, N, C, L, batch_stats, threads);
  else
    bwd_channels(dx, dweight, dbias, dy, x, save_mean, save_rstd, weight, N, C, L, batch_stats, threads);
}

}  // namespace pycnn
