// Convolution as im2col + GEMM, NCHW.
//   fwd:        y_g(Kg, Ho*Wo)  = W_g(Kg, Cg*kh*kw) . col_g(Cg*kh*kw, Ho*Wo)  (+ bias)
//   bwd_data:   dcol_g          = W_g^T . dy_g,  then col2im scatters dcol into dx (overwritten)
//   bwd_weight: dW_g           += dy_g . col_g^T,  db += row sums of dy   (accumulated)
// The column matrix is built for one image and group at a time in a per-thread
// buffer, so the workspace never grows with the batch. A 1x1 kernel with
// stride 1 and no padding needs no column matrix: the input plane is one.
// Threads split the batch; each runs its GEMMs single-threaded. With fewer
// images than threads, images run one after another with a threaded GEMM.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv/conv2d.h"
#include "gemm/gemm.h"
#include "parallel.h"

#ifdef PYCNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace pycnn {
namespace {

inline int thread_index() {
#ifdef PYCNN_HAVE_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

bool is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.Ho == s.H && s.Wo == s.W;
}

// Output columns [lo, hi) whose input column ow*stride + off lies inside [0, W).
inline void valid_range(i64 off, i64 stride, i64 W, i64 Wo, i64& lo, i64& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
  lo = std::min(lo, Wo);
  hi = std::min(std::max(hi, lo), Wo);
}

// col(Cg*kh*kw, Ho*Wo) from the Cg channels starting at x (one image, one group).
void im2col(float* PYCNN_RESTRICT col, const float* PYCNN_RESTRICT x, const Conv2dShape& s) {
  const i64 Cg = s.c_per_group();
  for (i64 c = 0; c < Cg; ++c) {
    const float* xc = x + c * s.H * s.W;
    for (i64 i = 0; i < s.kh; ++i) {
      for (i64 j = 0; j < s.kw; ++j) {
        float* row = col + ((c * s.kh + i) * s.kw + j) * s.Ho * s.Wo;
        const i64 off_w = j * s.dilation_w - s.pad_left;
        i64 lo, hi;
        valid_range(off_w, s.stride_w, s.W, s.Wo, lo, hi);
        for (i64 oh = 0; oh < s.Ho; ++oh) {
          float* r = row + oh * s.Wo;
          const i64 ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
          if (ih < 0 || ih >= s.H) {
            std::fill(r, r + s.Wo, 0.0f);
            continue;
          }
          // row pointer of the input, shifted so that index ow*stride is the tap
          const float* xr = xc + ih * s.W;
          std::fill(r, r + lo, 0.0f);
          if (s.stride_w == 1) {
            std::memcpy(r + lo, xr + lo + off_w, static_cast<std::size_t>(hi - lo) * sizeof(float));
          } else {
            for (i64 ow = lo; ow < hi; ++ow) r[ow] = xr[ow * s.stride_w + off_w];
          }
          std::fill(r + hi, r + s.Wo, 0.0f);
        }
      }
    }
  }
}

// dx (Cg planes of one image and group) += scatter of dcol(Cg*kh*kw, Ho*Wo).
void col2im_add(float* PYCNN_RESTRICT dx, const float* PYCNN_RESTRICT dcol, const Conv2dShape& s) {
  const i64 Cg = s.c_per_group();
  for (i64 c = 0; c < Cg; ++c) {
    float* dxc = dx + c * s.H * s.W;
    for (i64 i = 0; i < s.kh; ++i) {
      for (i64 j = 0; j < s.kw; ++j) {
        const float* row = dcol + ((c * s.kh + i) * s.kw + j) * s.Ho * s.Wo;
        const i64 off_w = j * s.dilation_w - s.pad_left;
        i64 lo, hi;
        valid_range(off_w, s.stride_w, s.W, s.Wo, lo, hi);
        for (i64 oh = 0; oh < s.Ho; ++oh) {
          const i64 ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
          if (ih < 0 || ih >= s.H) continue;
          const float* r = row + oh * s.Wo;
          float* xr = dxc + ih * s.W;
          if (s.stride_w == 1) {
            for (i64 ow = lo; ow < hi; ++ow) xr[ow + off_w] += r[ow];
          } else {
            for (i64 ow = lo; ow < hi; ++ow) xr[ow * s.stride_w + off_w] += r[ow];
          }
        }
      }
    }
  }
}

// How the batch is split: `outer` threads over images, each image's GEMMs
// with `inner` threads.
struct Split {
  int outer, inner;
};
Split split_batch(i64 N, int nt) {
  if (N >= nt) return {nt, 1};
  return {1, nt};
}

}  // namespace

void conv2d_fwd_im2col(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                       bool relu, int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const bool pointwise = is_pointwise(s);
  const Split sp = split_batch(s.N, num_threads);
  std::vector<std::vector<float>> cols(sp.outer, std::vector<float>(pointwise ? 0 : static_cast<std::size_t>(R * P)));
  ExceptionTrap trap;
#pragma omp parallel num_threads(sp.outer) if (sp.outer > 1)
  trap.run([&] {
    float* col = cols[thread_index()].data();
#pragma omp for schedule(static)
    for (i64 n = 0; n < s.N; ++n) {
      for (i64 g = 0; g < s.groups; ++g) {
        const float* xg = x + (n * s.C + g * Cg) * s.in_plane();
        float* yg = y + (n * s.K + g * Kg) * P;
        float beta = 0.0f;
        if (b) {
          for (i64 k = 0; k < Kg; ++k) std::fill(yg + k * P, yg + (k + 1) * P, b[g * Kg + k]);
          beta = 1.0f;
        }
        const float* B = xg;
        if (!pointwise) {
          im2col(col, xg, s);
          B = col;
        }
        sgemm(false, false, Kg, P, R, 1.0f, w + g * Kg * R, R, B, P, beta, yg, P, sp.inner, relu);
      }
    }
  });
  trap.rethrow();
}

void conv2d_bwd_data_im2col(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const bool pointwise = is_pointwise(s);
  const Split sp = split_batch(s.N, num_threads);
  std::vector<std::vector<float>> dcols(sp.outer, std::vector<float>(pointwise ? 0 : static_cast<std::size_t>(R * P)));
  ExceptionTrap trap;
#pragma omp parallel num_threads(sp.outer) if (sp.outer > 1)
  trap.run([&] {
    float* dcol = dcols[thread_index()].data();
#pragma omp for schedule(static)
    for (i64 n = 0; n < s.N; ++n) {
      for (i64 g = 0; g < s.groups; ++g) {
        float* dxg = dx + (n * s.C + g * Cg) * s.in_plane();
        const float* dyg = dy + (n * s.K + g * Kg) * P;
        const float* wg = w + g * Kg * R;
        if (pointwise) {  // dx_g = W_g^T . dy_g, no scatter needed
          sgemm(true, false, R, P, Kg, 1.0f, wg, R, dyg, P, 0.0f, dxg, P, sp.inner);
          continue;
        }
        sgemm(true, false, R, P, Kg, 1.0f, wg, R, dyg, P, 0.0f, dcol, P, sp.inner);
        std::fill(dxg, dxg + Cg * s.in_plane(), 0.0f);
        col2im_add(dxg, dcol, s);
      }
    }
  });
  trap.rethrow();
}

void conv2d_bwd_weight_im2col(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                              int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const i64 wsize = s.K * R;
  const bool pointwise = is_pointwise(s);
  const Split sp = split_batch(s.N, num_threads);
  // Each thread sums its contiguous share of the batch into a private dW/db;
  // the shares are then added in thread order, so the result is bitwise
  // reproducible for a given thread count.
  std::vector<std::vector<float>> part_w(sp.outer, std::vector<float>(static_cast<std::size_t>(wsize), 0.0f));
  std::vector<std::vector<float>> part_b(sp.outer, std::vector<float>(db ? static_cast<std::size_t>(s.K) : 0, 0.0f));
  std::vector<std::vector<float>> cols(sp.outer, std::vector<float>(pointwise ? 0 : static_cast<std::size_t>(R * P)));
  ExceptionTrap trap;
#pragma omp parallel num_threads(sp.outer) if (sp.outer > 1)
  trap.run([&] {
    const int t = thread_index();
    float* pw = part_w[t].data();
    float* pb = part_b[t].data();
    float* col = cols[t].data();
#pragma omp for schedule(static)
    for (i64 n = 0; n < s.N; ++n) {
      for (i64 g = 0; g < s.groups; ++g) {
        const float* xg = x + (n * s.C + g * Cg) * s.in_plane();
        const float* dyg = dy + (n * s.K + g * Kg) * P;
        const float* B = xg;
        if (!pointwise) {
          im2col(col, xg, s);
          B = col;
        }
        sgemm(false, true, Kg, R, P, 1.0f, dyg, P, B, P, 1.0f, pw + g * Kg * R, R, sp.inner);
        if (db) {
          for (i64 k = 0; k < Kg; ++k) {
            const float* r = dyg + k * P;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (i64 p = 0; p < P; ++p) acc += r[p];
            pb[g * Kg + k] += acc;
          }
        }
      }
    }
  });
  trap.rethrow();
  for (int t = 0; t < sp.outer; ++t) {
    const float* pw = part_w[t].data();
    for (i64 i = 0; i < wsize; ++i) dw[i] += pw[i];
    if (db)
      for (i64 k = 0; k < s.K; ++k) db[k] += part_b[t][k];
  }
}

}  // namespace pycnn
