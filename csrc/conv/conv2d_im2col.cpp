// Convolution as implicit im2col + GEMM, NCHW. For one image n and group g,
// with the column matrix col(R = Cg*kh*kw, P = Ho*Wo):
//   fwd:        y_g(Kg x P)   = W_g(Kg x R) . col(R x P)  (+ bias, + ReLU in the epilogue)
//   bwd_data:   stride 1: the forward of dy with flipped weights (conv2d_bwd_data_as_forward);
//               else dcol(R x P) = W_g^T . dy_g, then col2im scatters dcol into dx (overwritten)
//   bwd_weight: dW_g^T(R x Kg) += col . dy_g^T, db += row sums of dy   (accumulated)
// The column matrix is never built: the GEMM's panel packers read the image
// directly (pack_col_panel / pack_col_rows), so each input element is written
// once, into the L1/L2-resident packed panel the microkernel reads. With the
// ISA's vectorised kernels a stride-1 panel's depth rows are built from
// masked loads planned once per call (conv/im2col_panel.h), and dW's rows are
// built the same way and transposed in registers (transpose_pack). Weights
// are packed once per call, not once per image. bwd_weight computes dW^T:
// R is a multiple of the microkernel's 12 rows far more often than Kg, and
// Kg a multiple of its 32 columns (e.g. R=9, Kg=32 for a first layer runs at
// 3x the tile utilisation of the other orientation).
// Threads split the batch, each with private scratch. Forward and
// backward-data hand out images dynamically (an image's result does not
// depend on which thread computes it, and a core slowed by another process
// no longer holds the other one up); backward-weight splits the batch
// statically, because its per-thread dW partial sums are then added in
// thread order, bitwise reproducibly for a given thread count. With fewer
// images than threads, each image's GEMM is split over threads instead (as
// a top-level parallel region: see parallel_items), by rows (output
// channels) or columns (pixels), whichever has more panels (gemm_parallel).
// Forward weights can come prepacked (Im2colPackedWeights: inference packs
// them once, not once per call).
#include <algorithm>
#include <vector>

#include "conv/channel_bias.h"
#include "conv/conv2d.h"
#include "conv/im2col_panel.h"
#include "gemm/gemm.h"
#include "runtime/buffer_cache.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"
#include "runtime/reduce.h"

namespace pycnn {

// Owner of the per-thread dcol buffer of bwd_data (runtime/parallel.h).
struct Im2colScratch;

namespace {

// The vectorised panel copies of each ISA, by name.
Im2colPanelKernels make_im2col_panel_kernels(Isa isa) {
  Im2colPanelKernels k{};
#if PYCNN_X86
  if (isa >= Isa::Avx2) k.copy = avx2::im2col_panel_copy, k.half = 8, k.max_stride = 1;
  if (isa >= Isa::Avx512) k.copy = avx512::im2col_panel_copy, k.half = 16, k.max_stride = 2;
#else
  (void)isa;
#endif
  return k;
}

bool is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.Ho == s.H && s.Wo == s.W;
}

// The Cg input planes of one image and group, seen as the column matrix.
struct ColSource {
  const float* x;  // first plane of the group
  const Conv2dShape* s;
  const GemmKernels* gemm;             // the product's kernels (its transposing packer)
  const Im2colPanelKernels* panel;     // the vectorised panel copy, if the ISA has one
  // Plans of the pixel panels at 0, width, 2*width, ... (built once per
  // call, shared by all images and threads); null: each use builds its own.
  const struct ColPanelPlans* plans = nullptr;
};

struct ColPanelPlans {
  i64 width = 0;  // pixels per panel
  std::vector<ColPanelPlan> at;
  std::vector<ColPanelPlan::Load> loads;  // every plan's loads, back to back
};


// In-bounds part [lo, hi) of a run of n output pixels whose first one reads
// input column iw0 (stride sw): the rest of the run reads padding.
inline void run_bounds(i64 iw0, i64 n, i64 sw, i64 W, i64& lo, i64& hi) {
  if (sw == 1) {
    lo = std::min(n, std::max<i64>(0, -iw0));
    hi = std::max(lo, std::min(n, W - iw0));
  } else {
    lo = iw0 >= 0 ? 0 : std::min(n, (-iw0 + sw - 1) / sw);
    hi = iw0 > W - 1 ? lo : std::max(lo, std::min(n, (W - 1 - iw0) / sw + 1));
  }
}

// Fills the panel plan (im2col_panel.h) for pixels [l0, l0 + lines); false
// when the panel does not fit one (the portable loops below then pack it).
bool make_col_panel_plan(ColPanelPlanStorage& storage, const ColSource& src, i64 l0, i64 lines) {
  ColPanelPlan& plan = storage.plan;
  const Conv2dShape& s = *src.s;
  const i64 taps = s.kh * s.kw, half = src.panel->half, sw = s.stride_w;
  if (sw > src.panel->max_stride || taps > ColPanelPlan::kMaxTaps || s.kh > ColPanelPlan::kMaxSide ||
      s.kw > ColPanelPlan::kMaxSide || lines > 2 * half || lines > ColPanelPlan::kMaxRuns)
    return false;
  // Per run: its lanes, and -- separately per kernel row i and per kernel
  // column j, so the tap loop below only combines them -- the input row's
  // offset (or -1: a row of padding) and the in-bounds lanes [a, b).
  constexpr int kRuns = ColPanelPlan::kMaxRuns, kSide = ColPanelPlan::kMaxSide;
  i64 row_off[kSide][kRuns], col_off[kSide][kRuns];
  std::int32_t lane_a[kSide][kRuns], lane_b[kSide][kRuns];
  i64 n_runs = 0;
  for (i64 t = 0, p = l0; t < lines; ++n_runs) {
    const i64 oh = p / s.Wo, ow = p % s.Wo, n = std::min(lines - t, s.Wo - ow);
    for (i64 i = 0; i < s.kh; ++i) {
      const i64 ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
      row_off[i][n_runs] = ih >= 0 && ih < s.H ? ih * s.W : -1;
    }
    for (i64 j = 0; j < s.kw; ++j) {
      const i64 iw = ow * sw - s.pad_left + j * s.dilation_w;
      i64 lo, hi;
      run_bounds(iw, n, sw, s.W, lo, hi);
      col_off[j][n_runs] = iw - sw * t;  // lane L of the panel reads input column sw * L + iw - sw * t
      lane_a[j][n_runs] = static_cast<std::int32_t>(t + lo);
      lane_b[j][n_runs] = static_cast<std::int32_t>(t + hi);
    }
    t += n;
    p += n;
  }
  plan.lines = lines;
  plan.stride = sw;
  plan.plane_size = s.H * s.W;
  plan.taps = taps;
  std::int32_t count = 0;
  for (i64 tap = 0; tap < taps; ++tap) {
    const i64 i = tap / s.kw, j = tap % s.kw;
    plan.begin[tap] = count;
    for (i64 h = 0; h < 2; ++h) {  // low register, then high register: lanes [h*half, (h+1)*half)
      if (h == 1) plan.split[tap] = count;
      for (i64 q = 0; q < n_runs; ++q) {
        if (row_off[i][q] < 0) continue;  // a row of padding: lanes stay zero
        const i64 a = std::max<i64>(lane_a[j][q], h * half), b = std::min<i64>(lane_b[j][q], (h + 1) * half);
        if (b <= a) continue;
        if (count == ColPanelPlan::kMaxLoads) return false;
        const std::uint32_t ones = ((std::uint32_t{1} << (b - a)) - 1u) << (a - h * half);  // b - a <= half <= 16
        std::uint32_t mask = ones;
        if (sw == 2) {  // lane L reads element 2L: bit L moves to bit 2L
          mask = (mask | mask << 8) & 0x00FF00FFu;
          mask = (mask | mask << 4) & 0x0F0F0F0Fu;
          mask = (mask | mask << 2) & 0x33333333u;
          mask = (mask | mask << 1) & 0x55555555u;
        }
        storage.loads[count++] = {row_off[i][q] + col_off[j][q] + sw * h * half, mask};
      }
    }
  }
  plan.begin[taps] = count;
  plan.loads = storage.loads;
  return true;
}

// The plans of all `width`-pixel panels of a plane, once per call, when a
// call uses each plan more than once (`uses_per_image` times per image and
// group: the forward packs a panel once per depth slice, dW once per block
// of rows): reused for every image by the forward's B packing and dW's A
// packing. Rebuilding them per use was 28% of a first layer's forward (K = 9
// depth rows do not amortise a plan) and 12% of a 7x7 stem's weight
// gradient. Each plan keeps only the loads it has (about 1 KiB for a 7x7
// kernel); empty when the ISA has no panel copy or the plane has over 2048
// panels; each use then builds its own.
ColPanelPlans plan_all_panels(const Conv2dShape& s, const Im2colPanelKernels& pk, i64 width, i64 uses_per_image) {
  ColPanelPlans plans;
  if (!pk.copy || width <= 0 || width > 2 * pk.half || s.N * s.groups * uses_per_image <= 1) return plans;
  const i64 P = s.out_plane(), n_panels = (P + width - 1) / width;
  if (n_panels > 2048) return plans;
  plans.width = width;
  plans.at.resize(static_cast<std::size_t>(n_panels));
  std::vector<std::size_t> first_load(static_cast<std::size_t>(n_panels));
  const ColSource geometry{nullptr, &s, nullptr, &pk};
  ColPanelPlanStorage built;
  for (i64 q = 0; q < n_panels; ++q) {
    ColPanelPlan& plan = plans.at[static_cast<std::size_t>(q)];
    first_load[static_cast<std::size_t>(q)] = plans.loads.size();
    if (!make_col_panel_plan(built, geometry, q * width, std::min(width, P - q * width))) {
      plan.lines = -1;  // does not fit a plan: built (and rejected) again where used
      continue;
    }
    plan = built.plan;
    plans.loads.insert(plans.loads.end(), built.loads, built.loads + plan.begin[plan.taps]);
  }
  for (i64 q = 0; q < n_panels; ++q)  // the pool is complete: it moves no more
    plans.at[static_cast<std::size_t>(q)].loads = plans.loads.data() + first_load[static_cast<std::size_t>(q)];
  return plans;
}

// The plan of pixels [l0, l0 + lines): the call's cached one when there is
// one for exactly these pixels, else built into `local`; null when the
// panel does not fit one (the portable loops pack it).
const ColPanelPlan* panel_plan(const ColSource& src, i64 l0, i64 lines, ColPanelPlanStorage& local) {
  if (const ColPanelPlans* cache = src.plans; cache && cache->width > 0 && l0 % cache->width == 0 &&
                                              l0 / cache->width < static_cast<i64>(cache->at.size())) {
    const ColPanelPlan& cached = cache->at[static_cast<std::size_t>(l0 / cache->width)];
    if (cached.lines == lines) return &cached;
  }
  return make_col_panel_plan(local, src, l0, lines) ? &local.plan : nullptr;
}

// Writes col(r, p) for p in [p0, p0 + n) to out[t * stride], t = p - p0.
// Runs along output rows, so for stride 1 the in-bounds part of each run is a
// contiguous copy.
inline void col_row_segment(float* PYCNN_RESTRICT out, i64 stride, const ColSource& src, i64 r, i64 p0, i64 n) {
  const Conv2dShape& s = *src.s;
  const i64 taps = s.kh * s.kw;
  const i64 c = r / taps, i = (r % taps) / s.kw, j = r % s.kw;
  const float* plane = src.x + c * s.H * s.W;
  i64 p = p0, t = 0;
  while (t < n) {
    const i64 oh = p / s.Wo, ow = p % s.Wo;
    const i64 run = std::min(n - t, s.Wo - ow);  // pixels left in this output row
    const i64 ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
    if (ih < 0 || ih >= s.H) {
      for (i64 u = 0; u < run; ++u) out[(t + u) * stride] = 0.0f;
    } else {
      const float* xr = plane + ih * s.W;
      const i64 iw0 = ow * s.stride_w - s.pad_left + j * s.dilation_w;  // input column of the run's first pixel
      // in-bounds pixels of the run: u in [lo, hi)
      i64 lo, hi;
      run_bounds(iw0, run, s.stride_w, s.W, lo, hi);
      for (i64 u = 0; u < lo; ++u) out[(t + u) * stride] = 0.0f;
      if (s.stride_w == 1 && stride == 1) {
        // runs are short (one output row): an inline loop beats a memcpy call
        float* o = out + t;
        const float* xs = xr + iw0;
        for (i64 u = lo; u < hi; ++u) o[u] = xs[u];
      } else {
        for (i64 u = lo; u < hi; ++u) out[(t + u) * stride] = xr[iw0 + u * s.stride_w];
      }
      for (i64 u = hi; u < run; ++u) out[(t + u) * stride] = 0.0f;
    }
    t += run;
    p += run;
  }
}

// Operand B = col: lines are pixels p, depth is r. With the ISA's panel copy
// the panel's plan (cached per call, or built here) drives it; otherwise the
// portable loops below: the panel's pixels are cut once into runs along
// output rows (a 32-pixel panel of 14-wide rows has 3-4 runs), each run's
// in-bounds range is computed once per kernel column j, and every depth row
// r = (c, i, j) is a few short copies from one input row each.
void pack_col_panel_one(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* ctx) {
  const ColSource& src = *static_cast<const ColSource*>(ctx);
  const Conv2dShape& s = *src.s;
  if (src.panel->copy && width <= 2 * src.panel->half) {
    ColPanelPlanStorage local;
    if (const ColPanelPlan* plan = panel_plan(src, l0, lines, local))
      return src.panel->copy(dst, width, k0, kc, src.x, *plan);
  }
  constexpr int kMaxRuns = 64;  // lines <= width <= 64 (the widest microkernel panel is 32)
  constexpr int kMaxKw = 16;
  struct Run {
    i64 t, n, oh, ow;  // panel offset, length, first output pixel
  };
  Run runs[kMaxRuns];
  i64 n_runs = 0;
  for (i64 t = 0, p = l0; t < lines; ++n_runs) {
    const i64 oh = p / s.Wo, ow = p % s.Wo, n = std::min(lines - t, s.Wo - ow);
    runs[n_runs] = Run{t, n, oh, ow};
    t += n;
    p += n;
  }
  i64 bounds[kMaxKw][kMaxRuns][2];
  const bool tabled = s.kw <= kMaxKw;
  if (tabled)
    for (i64 j = 0; j < s.kw; ++j)
      for (i64 q = 0; q < n_runs; ++q)
        run_bounds(runs[q].ow * s.stride_w - s.pad_left + j * s.dilation_w, runs[q].n, s.stride_w, s.W,
                   bounds[j][q][0], bounds[j][q][1]);
  const i64 taps = s.kh * s.kw;
  i64 c = k0 / taps, i = (k0 % taps) / s.kw, j = k0 % s.kw;
  for (i64 k = 0; k < kc; ++k) {
    float* PYCNN_RESTRICT d = dst + k * width;
    const float* plane = src.x + c * s.H * s.W;
    for (i64 q = 0; q < n_runs; ++q) {
      const Run& ru = runs[q];
      float* PYCNN_RESTRICT o = d + ru.t;
      const i64 ih = ru.oh * s.stride_h - s.pad_top + i * s.dilation_h;
      if (ih < 0 || ih >= s.H) {
        for (i64 u = 0; u < ru.n; ++u) o[u] = 0.0f;
        continue;
      }
      const i64 iw0 = ru.ow * s.stride_w - s.pad_left + j * s.dilation_w;
      i64 lo, hi;
      if (tabled) {
        lo = bounds[j][q][0];
        hi = bounds[j][q][1];
      } else {
        run_bounds(iw0, ru.n, s.stride_w, s.W, lo, hi);
      }
      const float* xr = plane + ih * s.W;
      for (i64 u = 0; u < lo; ++u) o[u] = 0.0f;
      if (s.stride_w == 1) {
        const float* xs = xr + iw0;
        for (i64 u = lo; u < hi; ++u) o[u] = xs[u];
      } else {
        for (i64 u = lo; u < hi; ++u) o[u] = xr[iw0 + u * s.stride_w];
      }
      for (i64 u = hi; u < ru.n; ++u) o[u] = 0.0f;
    }
    for (i64 l = lines; l < width; ++l) d[l] = 0.0f;
    if (++j == s.kw) {  // next depth row: (c, i, j) in row-major order
      j = 0;
      if (++i == s.kh) {
        i = 0;
        ++c;
      }
    }
  }
}

void pack_col_panel(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* ctx) {
  for (i64 q = 0; q < lines; q += width)
    pack_col_panel_one(dst + q * kc, l0 + q, std::min(width, lines - q), k0, kc, width, ctx);
}

// Operand A = col: lines are r, depth is pixels p (one panel). Each line is
// first built contiguously in a stack buffer, then interleaved into the
// panel, so the strided writes touch a small, L1-resident panel in order.
void pack_col_rows_one(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const ColSource& src) {
  constexpr i64 kChunk = 256;
  float line[kChunk];
  for (i64 kb = 0; kb < kc; kb += kChunk) {
    const i64 n = std::min(kChunk, kc - kb);
    for (i64 l = 0; l < lines; ++l) {
      col_row_segment(line, 1, src, l0 + l, k0 + kb, n);
      float* d = dst + kb * width + l;
      for (i64 k = 0; k < n; ++k) d[k * width] = line[k];
    }
  }
  for (i64 k = 0; k < kc; ++k)
    for (i64 l = lines; l < width; ++l) dst[k * width + l] = 0.0f;
}

// Operand A = col for a whole block of panels. With the ISA's vectorised
// kernels, one register pair of pixels at a time (32 on AVX-512, 16 on
// AVX2): the panel plan (built once for all lines) and the panel copy write
// the block's lines as rows of those pixels into an L1-resident buffer, then
// transpose_pack turns each MR-line group into its panel. Otherwise each
// panel is packed by the loops above.
void pack_col_rows(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* ctx) {
  const ColSource& src = *static_cast<const ColSource*>(ctx);
  const TransposePack transpose_pack = src.gemm->transpose_pack;
  const ColPanelCopy panel_copy = src.panel->copy;
  constexpr i64 kMaxLines = 128, kMaxPixels = 32;
  const i64 kPixels = 2 * src.panel->half;
  if (!transpose_pack || !panel_copy || kPixels > kMaxPixels || lines > kMaxLines) {
    for (i64 q = 0; q < lines; q += width)
      pack_col_rows_one(dst + q * kc, l0 + q, std::min(width, lines - q), k0, kc, width, src);
    return;
  }
  ColPanelPlanStorage local;
  alignas(64) float block[kMaxLines * kMaxPixels];
  for (i64 kb = 0; kb < kc; kb += kPixels) {  // depths (pixels) k0 + kb .. + n: rows kb.. of every panel
    const i64 n = std::min(kPixels, kc - kb);
    const ColPanelPlan* plan = panel_plan(src, k0 + kb, n, local);
    const bool planned = plan != nullptr;
    if (planned) panel_copy(block, kPixels, l0, lines, src.x, *plan);  // block[l * kPixels + t] = col(l0 + l, k0 + kb + t)
    for (i64 q = 0; q < lines; q += width) {
      float* panel_rows = dst + q * kc + kb * width;
      const i64 m = std::min(width, lines - q);
      if (planned)
        transpose_pack(panel_rows, width, block + q * kPixels, kPixels, m, n);
      else
        pack_col_rows_one(panel_rows, l0 + q, m, k0 + kb, n, width, src);
    }
  }
}

// dx (Cg planes of one image and group) += scatter of dcol(R x P), whose
// rows are `ld` floats apart.
void col2im_add(float* PYCNN_RESTRICT dx, const float* PYCNN_RESTRICT dcol, const Conv2dShape& s, i64 ld) {
  const i64 Cg = s.c_per_group();
  for (i64 c = 0; c < Cg; ++c) {
    float* dxc = dx + c * s.H * s.W;
    for (i64 i = 0; i < s.kh; ++i) {
      for (i64 j = 0; j < s.kw; ++j) {
        const float* row = dcol + ((c * s.kh + i) * s.kw + j) * ld;
        for_each_tap_row(s, i, j, [&](const TapRow& r) {
          const float* from = row + r.oh * s.Wo;
          float* PYCNN_RESTRICT xr = dxc + r.ih * s.W;
          if (r.stride == 1) {
            for (i64 ow = r.lo; ow < r.hi; ++ow) xr[ow + r.off] += from[ow];
          } else {
            for (i64 ow = r.lo; ow < r.hi; ++ow) xr[ow * r.stride + r.off] += from[ow];
          }
        });
      }
    }
  }
}

// C(M x N) = A . B (+ row_bias, + residual, then ReLU) with A prepacked, on
// up to `nt` threads (nt = 1 runs it on the caller). Threads take disjoint
// blocks of C: row blocks when A has at least as many row panels as B has
// column panels (each thread then reads only its rows of A, and packs B
// itself: a batch-1 deep layer has 512 rows and 49 columns), else column
// blocks (each packs only its columns of B). `residual` (null: none) has
// C's layout; each thread copies its block of it into C and accumulates
// onto it (beta = 1), so the copy is still in cache when the GEMM reads it
// (residual == C: accumulated in place).
void gemm_parallel(const GemmPlan& plan, i64 M, i64 N, i64 K, const PackedA& a, GemmOperand b, float* C, i64 ldc,
                   const ConvEpilogue& ep, int nt) {
  const i64 m_panels = (M + plan.mr - 1) / plan.mr, n_panels = (N + plan.nr - 1) / plan.nr;
  const bool split_rows = m_panels >= n_panels;
  const i64 parts = split_rows ? m_panels : n_panels;
  const int used = threads_for(parts, nt);
  const i64 ws = gemm_workspace_floats(plan, split_rows ? (parts + used - 1) / used * plan.mr : M,
                                       split_rows ? N : (parts + used - 1) / used * plan.nr, K, true);
  parallel_items(used, used, Schedule::kStatic, [&](i64 t, int) {
    const i64 p0 = parts * t / used, p1 = parts * (t + 1) / used;
    const i64 r0 = split_rows ? p0 * plan.mr : 0, r1 = split_rows ? std::min(M, p1 * plan.mr) : M;
    const i64 c0 = split_rows ? 0 : p0 * plan.nr, c1 = split_rows ? N : std::min(N, p1 * plan.nr);
    if (r1 <= r0 || c1 <= c0) return;
    float* block = C + r0 * ldc + c0;
    if (ep.residual && ep.residual != C)  // (C itself: it already holds the residual)
      for (i64 i = r0; i < r1; ++i)
        std::copy(ep.residual + i * ldc + c0, ep.residual + i * ldc + c1, C + i * ldc + c0);
    GemmOperand at{nullptr, nullptr, r0}, bt = b;
    bt.line_offset += c0;
    gemm_packed(plan, r1 - r0, c1 - c0, K, &a, at, bt, 1.0f, ep.residual ? 1.0f : 0.0f, block, ldc, ep.relu,
                thread_scratch<GemmScratch>(ws), ep.bias ? ep.bias + r0 : nullptr);
  });
}

// Each group's weights W_g (Kg x R, row-major) packed once per call as the
// GEMM's operand A: W_g for the forward, W_g^T for dX by col2im.
std::vector<PackedA> pack_group_weights(const GemmPlan& plan, const float* w, const Conv2dShape& s,
                                        bool transposed, int nt) {
  const i64 Kg = s.k_per_group(), R = s.col_rows();
  std::vector<PackedA> packed;
  packed.reserve(static_cast<std::size_t>(s.groups));
  for (i64 g = 0; g < s.groups; ++g) {
    const MatrixView wg{w + g * Kg * R, R, transposed};  // read only while PackedA packs it
    packed.emplace_back(plan, transposed ? R : Kg, transposed ? Kg : R, operand_a(&wg), nt);
  }
  return packed;
}

// Operand A of backward-data run as a forward (conv2d_bwd_data_as_forward):
// row c, depth k * taps + q of group g is w[g*Kg + k][c][taps - 1 - q], the
// flipped, channel-swapped filter, packed straight from w (a transposed copy
// first was 2.4M scattered writes for a 512x512 3x3 layer).
struct FlippedWeights {
  const float* w;  // group g's filters
  i64 Cg, taps;
};
void pack_flipped_rows(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* ctx) {
  const FlippedWeights& f = *static_cast<const FlippedWeights*>(ctx);
  for (i64 q = 0; q < lines; q += width) {
    float* PYCNN_RESTRICT d = dst + q * kc;
    const i64 n = std::min(width, lines - q);
    // A panel's lines are n channels of each filter: one run of n * taps
    // floats per filter, the filters Cg * taps floats apart (9 KB for 256
    // channels of 3x3: a new page each, which the hardware prefetchers do
    // not cross), so the loads waited on L3 at every filter. The next
    // filter's run is fetched while this one is copied.
    const i64 run_bytes = n * f.taps * static_cast<i64>(sizeof(float));
    for (i64 filter = k0 / f.taps, k = 0; k < kc; ++filter) {
      const float* run = f.w + (filter * f.Cg + l0 + q) * f.taps;
      const char* next = reinterpret_cast<const char*>(run + f.Cg * f.taps);
      for (i64 b = 0; b < run_bytes; b += 64) __builtin_prefetch(next + b);
      for (i64 t = (k0 + k) % f.taps; t < f.taps && k < kc; ++t, ++k) {
        const float* src = run + (f.taps - 1 - t);
        for (i64 l = 0; l < n; ++l) d[k * width + l] = src[l * f.taps];
        for (i64 l = n; l < width; ++l) d[k * width + l] = 0.0f;
      }
    }
  }
}

// How the batch is split: `outer` threads over images; with fewer images than
// threads, `inner` threads inside each image's GEMM.
struct Split {
  int outer, inner;
};
// image_cost: multiply-adds per image; tiny convolutions stay on one thread.
Split split_batch(i64 N, i64 image_cost, int nt) {
  nt = threads_for_work(N * 16, image_cost / 16, nt);  // counts work, not images
  if (N >= nt) return {nt, 1};
  return {1, nt};
}


// ---- small planes: columns spanning images
//
// A per-image product has only P = Ho * Wo columns: a 3x3 layer on a 1x1
// plane (stage 4 of a ResNet on 32x32 images) is a matrix-vector product
// per image, which streams all the weights once per image at a few GFLOP/s.
// Below kBatchedPlane pixels, a block of images is therefore treated as one
// wide matrix: its column matrix is built explicitly, R x (images * P)
// (small, since P is), the product runs once for the whole block, and the
// result is scattered back to NCHW. The same for backward-data (dcol of the
// block, then col2im per image) and backward-weight (one GEMM whose depth
// runs over the block's images and pixels).
constexpr i64 kBatchedPlane = 64;
constexpr i64 kBatchedBlockFloats = i64{1} << 20;  // column matrix + gathered planes of a block: 4 MiB

bool columns_span_images(const Conv2dShape& s) { return s.N > 1 && s.out_plane() < kBatchedPlane; }

// Images per block when each image needs `floats_per_image` of scratch.
i64 images_per_block(const Conv2dShape& s, i64 floats_per_image) {
  return std::clamp<i64>(kBatchedBlockFloats / std::max<i64>(1, floats_per_image), 1, s.N);
}

// Where each tap of a small plane reads: for tap t = i * kw + j and output
// pixel p, the offset of its input pixel within the plane, or -1 for
// padding. Built once per call (taps * P entries, P < kBatchedPlane), it
// replaces the per-row index arithmetic of col_row_segment, which on a
// 2x2 plane cost more than the four floats each row segment copies. The
// spanning passes build it once and hand it to every block and group.
std::vector<i64> small_plane_taps(const Conv2dShape& s) {
  const i64 P = s.out_plane();
  std::vector<i64> src(static_cast<std::size_t>(s.kh * s.kw * P));
  for (i64 i = 0; i < s.kh; ++i)
    for (i64 j = 0; j < s.kw; ++j)
      for (i64 p = 0; p < P; ++p) {
        const i64 ih = p / s.Wo * s.stride_h - s.pad_top + i * s.dilation_h;
        const i64 iw = p % s.Wo * s.stride_w - s.pad_left + j * s.dilation_w;
        src[static_cast<std::size_t>((i * s.kw + j) * P + p)] =
            ih >= 0 && ih < s.H && iw >= 0 && iw < s.W ? ih * s.W + iw : -1;
      }
  return src;
}

// col(R x m*P, row length ld): column n*P + p is image n0 + n's column p
// (group g). Threads take channels: each writes whole rows of col.
void build_columns(float* col, i64 ld, const float* x, i64 n0, i64 m, i64 g, const Conv2dShape& s,
                   const std::vector<i64>& src, int nt) {
  const i64 P = s.out_plane(), Cg = s.c_per_group(), taps = s.kh * s.kw, HW = s.in_plane();
  parallel_items(Cg, threads_for_work(Cg, taps * m * P, nt), Schedule::kStatic, [&](i64 c, int) {
    const float* planes = x + (n0 * s.C + g * Cg + c) * HW;  // image n0's plane c; images s.C * HW apart
    for (i64 t = 0; t < taps; ++t) {
      float* PYCNN_RESTRICT row = col + (c * taps + t) * ld;
      const i64* tap = src.data() + t * P;
      for (i64 n = 0; n < m; ++n) {
        const float* plane = planes + n * s.C * HW;
        for (i64 p = 0; p < P; ++p) row[n * P + p] = tap[p] >= 0 ? plane[tap[p]] : 0.0f;
      }
    }
  });
}

// The inverse for backward-data: the Cg planes of images n0.. (group g) of
// dx are overwritten with the scatter-add of dcol (R x m*P, row length ld).
// Threads take channels, so no two write the same plane.
void col2im_columns(float* dx, const float* dcol, i64 ld, i64 n0, i64 m, i64 g, const Conv2dShape& s,
                    const std::vector<i64>& src, int nt) {
  const i64 P = s.out_plane(), Cg = s.c_per_group(), taps = s.kh * s.kw, HW = s.in_plane();
  parallel_items(Cg, threads_for_work(Cg, taps * m * P + m * HW, nt), Schedule::kStatic, [&](i64 c, int) {
    float* planes = dx + (n0 * s.C + g * Cg + c) * HW;
    for (i64 n = 0; n < m; ++n) std::fill(planes + n * s.C * HW, planes + n * s.C * HW + HW, 0.0f);
    for (i64 t = 0; t < taps; ++t) {
      const float* PYCNN_RESTRICT row = dcol + (c * taps + t) * ld;
      const i64* tap = src.data() + t * P;
      for (i64 n = 0; n < m; ++n) {
        float* plane = planes + n * s.C * HW;
        for (i64 p = 0; p < P; ++p)
          if (tap[p] >= 0) plane[tap[p]] += row[n * P + p];
      }
    }
  });
}

// The `rows` planes of `plane` floats from channel c0 of images n0.. of an
// (N, channels, plane) array, as a rows x (m * plane) matrix (gather), or back (scatter).
void gather_planes(float* dst, const float* src, i64 n0, i64 m, i64 channels, i64 c0, i64 rows, i64 plane, int nt) {
  parallel_items(m, threads_for_work(m, rows * plane, nt), Schedule::kStatic, [&](i64 n, int) {
    for (i64 r = 0; r < rows; ++r) {
      const float* from = src + ((n0 + n) * channels + c0 + r) * plane;
      std::copy(from, from + plane, dst + r * m * plane + n * plane);
    }
  });
}
void scatter_planes(float* dst, const float* src, i64 n0, i64 m, i64 channels, i64 c0, i64 rows, i64 plane, int nt) {
  parallel_items(m, threads_for_work(m, rows * plane, nt), Schedule::kStatic, [&](i64 n, int) {
    for (i64 r = 0; r < rows; ++r) {
      const float* from = src + r * m * plane + n * plane;
      std::copy(from, from + plane, dst + ((n0 + n) * channels + c0 + r) * plane);
    }
  });
}

void fwd_spanning_images(float* y, const float* x, const Conv2dShape& s, const ConvEpilogue& ep, int nt,
                         const Im2colPackedWeights& packed) {
  const i64 Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const i64 nb = images_per_block(s, (R + Kg) * P);
  CachedFloats col(static_cast<std::size_t>(R * nb * P)), out(static_cast<std::size_t>(Kg * nb * P));
  const std::vector<i64> taps = small_plane_taps(s);
  for (i64 n0 = 0; n0 < s.N; n0 += nb) {
    const i64 m = std::min(nb, s.N - n0), cols = m * P;
    for (i64 g = 0; g < s.groups; ++g) {
      build_columns(col.get(), cols, x, n0, m, g, s, taps, nt);
      ConvEpilogue epg{ep.bias ? ep.bias + g * Kg : nullptr, nullptr, ep.relu};
      if (ep.residual) {
        gather_planes(out.get(), ep.residual, n0, m, s.K, g * Kg, Kg, P, nt);
        epg.residual = out.get();  // accumulated in place
      }
      const MatrixView colview{col.get(), cols, false};
      gemm_parallel(packed.plan, Kg, cols, R, packed.groups[static_cast<std::size_t>(g)], operand_b(&colview), out.get(),
                    cols, epg, nt);
      scatter_planes(y, out.get(), n0, m, s.K, g * Kg, Kg, P, nt);
    }
  }
}

// dx for shapes that need col2im (or pointwise ones), wpacked = W_g^T per group.
void bwd_data_spanning_images(float* dx, const float* dy, const Conv2dShape& s, const GemmPlan& plan,
                              const std::vector<PackedA>& wpacked, bool pointwise, int nt) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const i64 nb = images_per_block(s, (R + Kg) * P);
  CachedFloats dyb(static_cast<std::size_t>(Kg * nb * P)), dcol(static_cast<std::size_t>(R * nb * P));
  const std::vector<i64> taps = small_plane_taps(s);
  for (i64 n0 = 0; n0 < s.N; n0 += nb) {
    const i64 m = std::min(nb, s.N - n0), cols = m * P;
    for (i64 g = 0; g < s.groups; ++g) {
      gather_planes(dyb.get(), dy, n0, m, s.K, g * Kg, Kg, P, nt);
      const MatrixView dyview{dyb.get(), cols, false};
      gemm_parallel(plan, R, cols, Kg, wpacked[static_cast<std::size_t>(g)], operand_b(&dyview), dcol.get(), cols,
                    ConvEpilogue{}, nt);
      if (pointwise) {  // dcol is dx's planes (R = Cg, P = H * W)
        scatter_planes(dx, dcol.get(), n0, m, s.C, g * Cg, Cg, P, nt);
        continue;
      }
      col2im_columns(dx, dcol.get(), cols, n0, m, g, s, taps, nt);
    }
  }
}

// dW += dy . col^T over a block of images at a time: one GEMM per block and
// group, its depth running over the block's images and pixels.
void bwd_weight_spanning_images(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s, int nt) {
  const i64 Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const i64 nb = images_per_block(s, (R + Kg) * P);
  CachedFloats col(static_cast<std::size_t>(R * nb * P)), dyb(static_cast<std::size_t>(Kg * nb * P));
  const std::vector<i64> taps = small_plane_taps(s);
  for (i64 n0 = 0; n0 < s.N; n0 += nb) {
    const i64 m = std::min(nb, s.N - n0), cols = m * P;
    for (i64 g = 0; g < s.groups; ++g) {
      build_columns(col.get(), cols, x, n0, m, g, s, taps, nt);
      gather_planes(dyb.get(), dy, n0, m, s.K, g * Kg, Kg, P, nt);
      // dW_g (Kg x R) += dyb (Kg x cols) . col^T (cols x R)
      sgemm(false, true, Kg, R, cols, 1.0f, dyb.get(), cols, col.get(), cols, 1.0f, dw + g * Kg * R, R, nt);
    }
  }
  if (db) conv2d_bias_grad(db, dy, s);
}

}  // namespace

void conv2d_bias_grad(float* db, const float* dy, const Conv2dShape& s) {
  channel_bias_grad(db, dy, s.N, s.K, s.out_plane());
}

const Im2colPanelKernels& im2col_panel_kernels() {
  static const auto tables = per_isa<Im2colPanelKernels>(make_im2col_panel_kernels);
  return for_active_isa(tables);
}

GemmPlan conv2d_im2col_plan(const Conv2dShape& s) { return GemmPlan::for_product(s.k_per_group(), s.col_rows()); }

Im2colPackedWeights conv2d_im2col_pack_weights(const float* w, const Conv2dShape& s, int num_threads) {
  const GemmPlan plan = conv2d_im2col_plan(s);
  return {plan, pack_group_weights(plan, w, s, false, num_threads)};
}

void conv2d_fwd_im2col(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                       int num_threads, const Im2colPackedWeights* packed) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const bool pointwise = is_pointwise(s);
  Im2colPackedWeights local;
  if (!packed) local = conv2d_im2col_pack_weights(w, s, num_threads), packed = &local;
  const GemmPlan& plan = packed->plan;
  assert(same_gemm_layout(plan, conv2d_im2col_plan(s)) && static_cast<i64>(packed->groups.size()) == s.groups);
  if (columns_span_images(s)) return fwd_spanning_images(y, x, s, ep, num_threads, *packed);

  const Split sp = split_batch(s.N, s.groups * Kg * P * R, num_threads);
  const Im2colPanelKernels& pk = im2col_panel_kernels();
  const ColPanelPlans plans = pointwise ? ColPanelPlans{} : plan_all_panels(s, pk, plan.nr, (R + plan.kc - 1) / plan.kc);
  parallel_items(s.N, sp.outer, Schedule::kDynamic, [&](i64 n, int) {
    for (i64 g = 0; g < s.groups; ++g) {
      const float* xg = x + (n * s.C + g * Cg) * s.in_plane();
      const i64 y_off = (n * s.K + g * Kg) * P;
      ConvEpilogue epg = ep;  // this group's bias and residual
      if (ep.bias) epg.bias = ep.bias + g * Kg;
      if (ep.residual) epg.residual = ep.residual + y_off;
      const ColSource src{xg, &s, plan.kernels, &pk, &plans};
      const MatrixView xview{xg, P, false};
      const GemmOperand bop = pointwise ? operand_b(&xview) : GemmOperand{pack_col_panel, &src, 0};
      gemm_parallel(plan, Kg, P, R, packed->groups[g], bop, y + y_off, P, epg, sp.inner);
    }
  });
}

// For stride 1, dx is the "full" correlation of dy with the weights flipped
// in both spatial axes and with input and output channels swapped, padded by
// dilation*(k-1) - pad on each side. Running it through the forward kernel
// replaces the column-matrix product and the col2im scatter by one implicit
// GEMM that writes dx directly. Needs pad <= dilation*(k-1) on every side
// (otherwise the equivalent padding would be negative).
bool conv2d_bwd_data_as_forward(const Conv2dShape& s, Conv2dShape& t) {
  if (s.stride_h != 1 || s.stride_w != 1 || is_pointwise(s)) return false;
  const i64 span_h = s.dilation_h * (s.kh - 1), span_w = s.dilation_w * (s.kw - 1);
  // bottom/right padding of the forward conv, implied by Ho/Wo
  const i64 pad_bottom = s.Ho - 1 + span_h - s.pad_top - (s.H - 1);
  const i64 pad_right = s.Wo - 1 + span_w - s.pad_left - (s.W - 1);
  if (s.pad_top > span_h || s.pad_left > span_w || pad_bottom > span_h || pad_right > span_w) return false;
  t = s;
  t.C = s.K, t.H = s.Ho, t.W = s.Wo;
  t.K = s.C, t.Ho = s.H, t.Wo = s.W;
  t.pad_top = span_h - s.pad_top;
  t.pad_left = span_w - s.pad_left;
  return true;
}

void conv2d_bwd_data_im2col(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const bool pointwise = is_pointwise(s);
  Conv2dShape t;
  if (!columns_span_images(s) && conv2d_bwd_data_as_forward(s, t)) {
    Im2colPackedWeights flipped{conv2d_im2col_plan(t), {}};
    std::vector<FlippedWeights> sources;
    for (i64 g = 0; g < s.groups; ++g) sources.push_back({w + g * Kg * Cg * s.kh * s.kw, Cg, s.kh * s.kw});
    for (i64 g = 0; g < s.groups; ++g)
      flipped.groups.emplace_back(flipped.plan, t.k_per_group(), t.col_rows(),
                                  GemmOperand{pack_flipped_rows, &sources[static_cast<std::size_t>(g)], 0}, num_threads);
    conv2d_fwd_im2col(dx, dy, nullptr, t, ConvEpilogue{}, num_threads, &flipped);
    return;
  }
  const GemmPlan plan = GemmPlan::for_product(R, Kg);
  // A = W_g^T (R x Kg), packed once.
  const std::vector<PackedA> wpacked = pack_group_weights(plan, w, s, true, num_threads);
  if (columns_span_images(s)) return bwd_data_spanning_images(dx, dy, s, plan, wpacked, pointwise, num_threads);

  const Split sp = split_batch(s.N, s.groups * Kg * P * R, num_threads);
  parallel_items(s.N, sp.outer, Schedule::kDynamic, [&](i64 n, int) {
    float* dcol = pointwise ? nullptr : thread_scratch<Im2colScratch>(R * P);
    for (i64 g = 0; g < s.groups; ++g) {
      float* dxg = dx + (n * s.C + g * Cg) * s.in_plane();
      const MatrixView dyview{dy + (n * s.K + g * Kg) * P, P, false};
      // pointwise: dx_g = W_g^T . dy_g directly, no scatter needed
      float* out = pointwise ? dxg : dcol;
      gemm_parallel(plan, R, P, Kg, wpacked[g], operand_b(&dyview), out, P, ConvEpilogue{}, sp.inner);
      if (!pointwise) {
        std::fill(dxg, dxg + Cg * s.in_plane(), 0.0f);
        col2im_add(dxg, dcol, s, P);
      }
    }
  });
}

void conv2d_bwd_weight_im2col(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                              int num_threads) {
  const i64 Cg = s.c_per_group(), Kg = s.k_per_group(), P = s.out_plane(), R = s.col_rows();
  const bool pointwise = is_pointwise(s);
  if (columns_span_images(s)) return bwd_weight_spanning_images(dw, db, dy, x, s, num_threads);
  const Im2colPanelKernels& pk = im2col_panel_kernels();
  GemmPlan plan = GemmPlan::for_product(R, P);
  // Depth slices start on a pixel group of the A packer (pack_col_rows), so
  // every group finds its panel plan in the per-call cache.
  if (const i64 group = 2 * pk.half; pk.copy && group > 0) plan.kc = (plan.kc + group - 1) / group * group;
  // Threads split the batch: a thread's images accumulate into its private
  // dW^T (groups x R x Kg) and db; with one image per call and more threads,
  // the GEMM's R rows are split instead (row blocks are disjoint, no sums).
  const Split sp = split_batch(s.N, s.groups * Kg * P * R, num_threads);
  const i64 wt_size = s.groups * R * Kg;
  std::vector<std::vector<float>> part_wt(sp.outer, std::vector<float>(static_cast<std::size_t>(wt_size), 0.0f));
  std::vector<std::vector<float>> part_b(sp.outer, std::vector<float>(db ? static_cast<std::size_t>(s.K) : 0, 0.0f));
  const i64 ws = gemm_workspace_floats(plan, sp.inner > 1 ? (R + sp.inner - 1) / sp.inner + plan.mr : R, Kg, P,
                                       false);
  // dW's A panels are built 2 * half pixels at a time (pack_col_rows)
  const ColPanelPlans plans =
      pointwise ? ColPanelPlans{} : plan_all_panels(s, pk, 2 * pk.half, (R + plan.mc - 1) / plan.mc);
  parallel_items(s.N, sp.outer, Schedule::kStatic, [&](i64 n, int t) {
    float* pwt = part_wt[t].data();
    float* pb = part_b[t].data();
    for (i64 g = 0; g < s.groups; ++g) {
      const float* xg = x + (n * s.C + g * Cg) * s.in_plane();
      const float* dyg = dy + (n * s.K + g * Kg) * P;
      const ColSource src{xg, &s, plan.kernels, &pk, &plans};
      const MatrixView xview{xg, P, false};
      const MatrixView dyt{dyg, P, true};  // op(B) = dy_g^T (P x Kg)
      const GemmOperand aop = pointwise ? operand_a(&xview) : GemmOperand{pack_col_rows, &src, 0};
      float* out = pwt + g * R * Kg;
      // With fewer images than threads, the R rows are split over sp.inner
      // threads (disjoint row blocks, no sums); else one block, on this thread.
      const i64 panels = (R + plan.mr - 1) / plan.mr;
      const int used = threads_for(panels, sp.inner);
      parallel_items(used, used, Schedule::kStatic, [&](i64 u, int) {
        const i64 r0 = panels * u / used * plan.mr, r1 = std::min(R, panels * (u + 1) / used * plan.mr);
        GemmOperand au = aop;
        au.line_offset += r0;
        if (r1 > r0)
          gemm_packed(plan, r1 - r0, Kg, P, nullptr, au, operand_b(&dyt), 1.0f, 1.0f, out + r0 * Kg, Kg, false,
                      thread_scratch<GemmScratch>(ws));
      });
      if (db)
        for (i64 k = 0; k < Kg; ++k) pb[g * Kg + k] += sum_floats(dyg + k * P, P);
    }
  });
  // dw[g][k][r] += sum over threads, in thread order, of part_wt[t][g][r][k]
  for (int t = 0; t < sp.outer; ++t) {
    const float* pwt = part_wt[t].data();
    for (i64 g = 0; g < s.groups; ++g)
      for (i64 k = 0; k < Kg; ++k) {
        float* dwk = dw + (g * Kg + k) * R;
        const float* src = pwt + g * R * Kg + k;
        for (i64 r = 0; r < R; ++r) dwk[r] += src[r * Kg];
      }
    if (db)
      for (i64 k = 0; k < s.K; ++k) db[k] += part_b[t][k];
  }
}

}  // namespace pycnn
