// Winograd F(4x4, 3x3) convolution, NCHW, 3x3 kernels, stride 1, dilation 1,
// groups 1 (transform matrices and lane layout: conv/winograd.h).
//   fwd:      y (overwritten) = A^T [ U (.) V ] A + b, then ReLU when asked, where per
//             tile position p (36 of them) and block of tiles:
//               U[p] (K x C) = G g G^T        weights, transformed once per call, or once
//                                             for many calls (WinogradPackedWeights)
//               V[p] (C x T) = B^T d B        input tiles, per block
//               M[p] (K x T) = U[p] . V[p]    one GEMM per position (the GEMM's microkernel)
//             and the output transform writes each 4x4 tile once, bias, residual and ReLU fused.
//   bwd_data: stride 1: the forward of dy with flipped, channel-swapped
//             weights (conv2d_bwd_data_as_forward), transformed straight from w.
//
// Tiles are numbered over the whole batch (image, tile row, tile column), so
// a block of tiles can span images: an 8x8 output has only 4 tiles, and
// blocks confined to one image would leave most of the GEMM's 32-tile panels
// empty. A block of Tb tiles keeps its V (36 x C x Tb) and M (36 x Kc x Tb)
// about L2-sized; per position, U[p], V[p] and M[p] fit L2 on their own.
//
// Layouts, chosen so that the GEMM needs no packing at all: U[p] is stored
// exactly as PackedA stores a K x C operand (per depth slice, per MR-row
// panel, kc groups of MR floats); V[p] of a block exactly as the GEMM's B
// panels (per NR-tile panel, C groups of NR floats), written so by the input
// transform; M[p] is row-major K x Tpad, the microkernel's C. The driver
// then calls the microkernel directly in the BLIS order (position, depth
// slice, row panel, tile panel).
//
// Threads take (tile block, K chunk) items dynamically; K is chunked only
// when there are fewer blocks than threads (batch-1 deep layers), each chunk
// recomputing its block's V. An output element does not depend on the item
// split, so results are identical for every thread count.
// Calls with untransformed weights, all tiles in one block and U beyond L2
// (training's deep layers: 8x512x7x7 is 32 tiles against 37.7 MB of U) skip
// the whole-U transform: winograd_run_streamed transforms U piece by piece
// into L2, right before each piece's products.
#include <algorithm>
#include <optional>

#include "conv/conv2d.h"
#include "conv/winograd.h"
#include "gemm/gemm.h"
#include "runtime/buffer_cache.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pycnn {

// Owner of the per-thread V and M blocks (runtime/parallel.h).
struct WinogradScratch;

namespace {

constexpr int kTile = 4;     // outputs per tile side
constexpr int kPatch = 6;    // inputs per tile side
constexpr int kPos = 36;     // tile positions (kPatch^2)
constexpr int kPortableLanes = 8;
// The 36 positions of V and M are kSkew floats more than their size apart:
// sizes are multiples of 4 KiB for many layers, which would put the 36
// vectors a transform loads or stores at once into one L1 set.
constexpr i64 kSkew = 16;

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
i64 round_up(i64 v, i64 m) { return ceil_div(v, m) * m; }

// ---- portable transforms (the scalar ISA's table; lanes loops the compiler vectorises)

// out[r * os] = (B^T d)[r] for d[j * is], on L lanes.
inline void bt_1d(float* PYCNN_RESTRICT out, i64 os, const float* PYCNN_RESTRICT d, i64 is) {
  for (int l = 0; l < kPortableLanes; ++l) {
    const float d0 = d[l], d1 = d[is + l], d2 = d[2 * is + l], d3 = d[3 * is + l], d4 = d[4 * is + l],
                d5 = d[5 * is + l];
    out[l] = 2.0f * (d0 + d4) + 3.0f * (d1 - d3) - 4.0f * d2;
    out[os + l] = 2.0f * (d1 - d4) + 5.0f * d2 + d3;
    out[2 * os + l] = 2.0f * (d1 + d4) + d2 - 5.0f * d3;
    out[3 * os + l] = (d3 - d1) + 2.0f * (d4 - d2);
    out[4 * os + l] = 2.0f * (d3 - d1) + (d2 - d4);
    out[5 * os + l] = 2.0f * (d1 + d5) + 3.0f * (d2 - d4) - 4.0f * d3;
  }
}

// out[r * os] = (A^T m)[r] for m[j * is], on L lanes.
inline void at_1d(float* PYCNN_RESTRICT out, i64 os, const float* PYCNN_RESTRICT m, i64 is) {
  for (int l = 0; l < kPortableLanes; ++l) {
    const float m0 = m[l], m1 = m[is + l], m2 = m[2 * is + l], m3 = m[3 * is + l], m4 = m[4 * is + l],
                m5 = m[5 * is + l];
    const float a = m1 + m2, b = m1 - m2;
    out[l] = m0 + a + m3 + m4;
    out[os + l] = b + 2.0f * m3 - 0.5f * m4;
    out[2 * os + l] = a + 4.0f * m3 + 0.25f * m4;
    out[3 * os + l] = b + 8.0f * m3 - 0.125f * m4 + m5;
  }
}

void winograd_input_portable(float* v, i64 v_p, i64 v_c, const float* x, i64 plane, i64 W, i64 nc,
                             const WinogradLanes& g) {
  constexpr int L = kPortableLanes;
  float d[kPos * L], t[kPos * L], u[kPos * L];
  for (i64 c = 0; c < nc; ++c) {
    const float* xc = x + c * plane;
    for (int q = 0; q < kPos; ++q) {
      const i64 at = (q / kPatch) * W + q % kPatch;
      for (int l = 0; l < L; ++l) d[q * L + l] = g.in_mask[q] >> l & 1u ? xc[g.in_off[l] + at] : 0.0f;
    }
    for (int i = 0; i < kPatch; ++i) bt_1d(t + i * kPatch * L, L, d + i * kPatch * L, L);  // along rows (j)
    for (int j = 0; j < kPatch; ++j) bt_1d(u + j * L, kPatch * L, t + j * L, kPatch * L);  // along columns (i)
    for (int p = 0; p < kPos; ++p)
      for (int l = 0; l < L; ++l) v[p * v_p + c * v_c + l] = u[p * L + l];
  }
}

void winograd_output_portable(float* y, i64 plane, i64 Wo, const float* m, i64 m_p, i64 m_k, i64 nk,
                              const float* bias, const float* addend, bool relu, const WinogradLanes& g) {
  constexpr int L = kPortableLanes;
  float mm[kPos * L], t[kPatch * kTile * L], o[kTile * kTile * L];
  for (i64 k = 0; k < nk; ++k) {
    for (int p = 0; p < kPos; ++p)
      for (int l = 0; l < L; ++l) mm[p * L + l] = m[p * m_p + k * m_k + l];
    for (int i = 0; i < kPatch; ++i) at_1d(t + i * kTile * L, L, mm + i * kPatch * L, L);  // t[i][c]
    for (int c = 0; c < kTile; ++c) at_1d(o + c * L, kTile * L, t + c * L, kTile * L);     // o[r][c]
    const float bk = bias ? bias[k] : 0.0f;
    float* yk = y + k * plane;
    const float* ak = addend ? addend + k * plane : nullptr;
    for (int l = 0; l < g.lanes; ++l)
      for (int r = 0; r < g.out_rows[l]; ++r)
        for (int c = 0; c < g.out_cols[l]; ++c) {
          const i64 at = g.out_off[l] + r * Wo + c;
          float val = o[(r * kTile + c) * L + l] + bk;
          if (ak) val += ak[at];
          if (relu) val = val > 0.0f ? val : (val != val ? val : 0.0f);  // NaN propagates
          yk[at] = val;
        }
  }
}

void winograd_weights_portable(float* u, i64 u_p, const float* w, const std::int32_t* off, int n, bool flip);

WinogradKernels make_winograd_kernels(Isa isa) {
  WinogradKernels k{kPortableLanes, winograd_input_portable, winograd_output_portable, winograd_weights_portable,
                    scalar::winograd_f4x3_output_grad, scalar::winograd_f4x3_weights_grad};
#if PYCNN_X86
  if (isa >= Isa::Avx2) {
    k.lanes = 8, k.input = avx2::winograd_f4x3_input, k.output = avx2::winograd_f4x3_output;
    k.output_grad = avx2::winograd_f4x3_output_grad;
    k.weights_grad = avx2::winograd_f4x3_weights_grad;
  }
  if (isa >= Isa::Avx512) {
    k.lanes = 16, k.input = avx512::winograd_f4x3_input, k.output = avx512::winograd_f4x3_output;
    k.weights = avx512::winograd_f4x3_weights;
    k.output_grad = avx512::winograd_f4x3_output_grad;
    k.weights_grad = avx512::winograd_f4x3_weights_grad;
  }
#else
  (void)isa;
#endif
  return k;
}

// ---- weights

// Where filter (k, c) of the convolution being run starts in w, and whether
// its taps are read reversed (bwd_data's flipped weights).
struct WeightSource {
  const float* w;
  i64 k_stride, c_stride;
  bool flip;
};

// U = G g G^T for n <= 64 filters at once (WinogradWeights in
// conv/winograd.h), in double and rounded once. Loops run along the
// filters, so the compiler vectorises them; the divisions are
// multiplications by reciprocals (exact enough in double: U is rounded to
// float once), because 54 double divisions per filter cost more than the rest.
constexpr int kFilterChunk = 64;
void winograd_weights_portable(float* PYCNN_RESTRICT u, i64 u_p, const float* w, const std::int32_t* off, int n,
                               bool flip) {
  double f[9][kFilterChunk], t[kPatch * 3][kFilterChunk];
  for (int q = 0; q < 9; ++q)
    for (int l = 0; l < n; ++l) f[q][l] = w[off[l] + (flip ? 8 - q : q)];
  // t = G f (6 x 3), then u = t G^T (6 x 6): the same 1-D transform, along
  // columns then along rows.
  const auto g_1d = [n](double (*out)[kFilterChunk], int os, const double (*in)[kFilterChunk], int is) {
    for (int l = 0; l < n; ++l) {
      const double g0 = in[0][l], g1 = in[is][l], g2 = in[2 * is][l];
      out[0][l] = g0 * 0.5;
      out[os][l] = (g0 + g1 + g2) * (1.0 / 6);
      out[2 * os][l] = (g0 - g1 + g2) * (1.0 / 6);
      out[3 * os][l] = (g0 + 2 * g1 + 4 * g2) * (1.0 / 30);
      out[4 * os][l] = (16 * g0 - 8 * g1 + 4 * g2) * (1.0 / 15);
      out[5 * os][l] = g2 * 0.5;
    }
  };
  for (int j = 0; j < 3; ++j) g_1d(t + j, 3, f + j, 3);
  double r[kPatch][kFilterChunk];
  for (int i = 0; i < kPatch; ++i) {
    g_1d(r, 1, t + i * 3, 1);
    for (int j = 0; j < kPatch; ++j)
      for (int l = 0; l < n; ++l) u[(i * kPatch + j) * u_p + l] = static_cast<float>(r[j][l]);
  }
}

// Rows ir..ir+MR (one GEMM row panel; rows from K on are zeros) of U[p],
// depths c0..c0+kc, for every position, laid out as PackedA lays out a panel's
// depth slice: element (k, c) at (c - c0) * MR + (k - ir), position p at
// p * u_p. The panel is transformed kFilterChunk filters at a time in its own
// order (c, then k), so each position's share of a chunk is one contiguous
// run (36 runs per chunk, not 36 scattered floats per filter).
void transform_panel(float* u, i64 u_p, const WeightSource& ws, i64 K, i64 ir, i64 MR, i64 c0, i64 kc,
                     const WinogradKernels& wk) {
  std::int32_t off[kFilterChunk];
  for (i64 e0 = 0; e0 < kc * MR; e0 += kFilterChunk) {
    const int n = static_cast<int>(std::min<i64>(kFilterChunk, kc * MR - e0));
    // element e = (c - c0) * MR + (k - ir), stepped without a division per element
    for (i64 l = 0, c = c0 + e0 / MR, r = e0 % MR; l < n; ++l) {
      const i64 k = ir + r;
      off[l] = static_cast<std::int32_t>(k < K ? k * ws.k_stride + c * ws.c_stride : 0);
      if (++r == MR) r = 0, ++c;
    }
    wk.weights(u + e0, u_p, ws.w, off, n, ws.flip);
    // The panel's rows K..Kpad (read filter 0 above), position by position:
    // the 36 positions of a whole U are Kpad * C floats apart, which for deep
    // layers maps them to one L1 set, so a filter's 36 zeros in a row missed
    // L1 at every store (~1 ms per call for 512x512).
    if (ir + MR > K)
      for (int p = 0; p < kPos; ++p)
        for (i64 l = 0, r = e0 % MR; l < n; ++l, r = r + 1 == MR ? 0 : r + 1)
          if (ir + r >= K) u[p * u_p + e0 + l] = 0.0f;
  }
}

// U[p] for every position, as PackedA lays out a Kpad x C operand: position p
// at p * Kpad * C, then depth slice pc at pc * Kpad, row panel ir at ir * kc,
// element (k, c) at (c - pc) * MR + (k - ir). Threads take row panels.
void transform_weights(float* U, const WeightSource& ws, i64 K, i64 C, const GemmPlan& plan,
                       const WinogradKernels& wk, int nt) {
  const i64 MR = plan.mr, Kpad = round_up(K, MR), panels = Kpad / MR;
  const int used = threads_for_work(panels, MR * C * 400, nt);
  parallel_items(panels, used, Schedule::kStatic, [&](i64 q, int) {
    for (i64 pc = 0; pc < C; pc += plan.kc) {
      const i64 kc = std::min(plan.kc, C - pc);
      transform_panel(U + pc * Kpad + q * MR * kc, Kpad * C, ws, K, q * MR, MR, pc, kc, wk);
    }
  });
}

// ---- tiles

struct TileGrid {
  i64 tiles_h, tiles_w, per_image, total;
};

TileGrid tile_grid(const Conv2dShape& s) {
  TileGrid t;
  t.tiles_h = ceil_div(s.Ho, kTile);
  t.tiles_w = ceil_div(s.Wo, kTile);
  t.per_image = t.tiles_h * t.tiles_w;
  t.total = s.N * t.per_image;
  return t;
}

// Lanes for the `n` tiles from global tile t0 on (n may be 0: no tile),
// offsets relative to image `image0` (the image of tile t0).
void fill_lanes(WinogradLanes& g, const Conv2dShape& s, const TileGrid& tg, i64 t0, i64 n, i64 lanes,
                i64 image0) {
  g.lanes = static_cast<int>(n);
  std::fill(g.in_mask, g.in_mask + kPos, 0u);
  for (i64 l = 0; l < lanes; ++l) {
    if (l >= n) {
      g.in_off[l] = g.out_off[l] = g.out_rows[l] = g.out_cols[l] = 0;
      continue;
    }
    const i64 tile = t0 + l, image = tile / tg.per_image, r = tile % tg.per_image;
    const i64 oh = r / tg.tiles_w * kTile, ow = r % tg.tiles_w * kTile;
    const i64 ih = oh - s.pad_top, iw = ow - s.pad_left;
    const i64 in_off = (image - image0) * s.C * s.in_plane() + ih * s.W + iw;
    const i64 out_off = (image - image0) * s.K * s.out_plane() + oh * s.Wo + ow;
    assert(in_off > INT32_MIN && in_off < INT32_MAX && out_off < INT32_MAX);  // conv2d_winograd_eligible
    g.in_off[l] = static_cast<std::int32_t>(in_off);
    g.out_off[l] = static_cast<std::int32_t>(out_off);
    g.out_rows[l] = static_cast<std::int32_t>(std::min<i64>(kTile, s.Ho - oh));
    g.out_cols[l] = static_cast<std::int32_t>(std::min<i64>(kTile, s.Wo - ow));
    for (int i = 0; i < kPatch; ++i)
      for (int j = 0; j < kPatch; ++j)
        if (ih + i >= 0 && ih + i < s.H && iw + j >= 0 && iw + j < s.W) g.in_mask[i * kPatch + j] |= 1u << l;
  }
}

WinogradPackedWeights pack_weights(const WeightSource& ws, const Conv2dShape& s, int num_threads) {
  const WinogradKernels& wk = winograd_kernels();
  WinogradPackedWeights packed{GemmPlan::for_product(s.K, s.C), wk.lanes, {}};
  packed.u.resize(static_cast<std::size_t>(kPos * round_up(s.K, packed.plan.mr) * s.C));
  transform_weights(packed.u.data(), ws, s.K, s.C, packed.plan, wk, num_threads);
  return packed;
}

// V of tiles t0..t0+tiles of the batch (B^T d B, tpad = tiles rounded up to
// NR) in the GEMM's B-panel layout: lane group at block offset o lives in
// panel o / NR, lanes o % NR.., position p at p * v_p. Lane groups from
// `first` to `last` (exclusive, in floats of the block) only.
void input_tiles(float* V, i64 v_p, const float* x, const Conv2dShape& s, const TileGrid& tg, i64 t0, i64 tiles,
                 i64 first, i64 last, i64 NR, const WinogradKernels& wk) {
  WinogradLanes g;
  const i64 L = wk.lanes;
  for (i64 o = first; o < last; o += L) {
    const i64 n = std::clamp<i64>(tiles - o, 0, L);
    const i64 image0 = std::min(t0 + o, tg.total - 1) / tg.per_image;
    fill_lanes(g, s, tg, t0 + o, n, L, image0);
    wk.input(V + o / NR * s.C * NR + o % NR, v_p, NR, x + image0 * s.C * s.in_plane(), s.in_plane(), s.W, s.C, g);
  }
}

// y rows k0..k0+kn = A^T M A (+ bias, residual, ReLU) for tiles t0..t0+tiles,
// M holding those rows (row k - k0 at (k - k0) * tpad, position p at p * m_p).
void output_tiles(float* y, const float* M, i64 m_p, i64 tpad, const Conv2dShape& s, const TileGrid& tg, i64 t0,
                  i64 tiles, i64 k0, i64 kn, const ConvEpilogue& ep, const WinogradKernels& wk) {
  WinogradLanes g;
  const i64 L = wk.lanes, plane_out = s.out_plane();
  for (i64 o = 0; o < tiles; o += L) {
    const i64 n = std::min(L, tiles - o), image0 = (t0 + o) / tg.per_image;
    fill_lanes(g, s, tg, t0 + o, n, L, image0);
    const i64 y_off = (image0 * s.K + k0) * plane_out;
    wk.output(y + y_off, plane_out, s.Wo, M + o, m_p, tpad, kn, ep.bias ? ep.bias + k0 : nullptr,
              ep.residual ? ep.residual + y_off : nullptr, ep.relu, g);
  }
}

// The forward of a call whose tiles all fit one block and whose weights come
// untransformed (training: they change every step) with U larger than L2.
// Transforming all of U first and then reading it back costs two passes over
// 36 K C floats in memory (75 MB for 512x512: the GEMMs of 8x512x7x7 ran
// from DRAM). Here V is built once for all tiles and shared; threads take
// chunks of kStreamPanels row panels, and per chunk and depth slice of at
// most kStreamDepth channels transform just that part of U into L2 and
// multiply it at once. Depth slices of kStreamDepth (not the GEMM plan's kc)
// keep U's part, V's slice and M's rows within L2 together; rounding
// therefore differs from the prepared path's by the order of the slices' sums.
constexpr i64 kStreamPanels = 3;
constexpr i64 kStreamDepth = 128;

void winograd_run_streamed(float* y, const float* x, const WeightSource& ws, const Conv2dShape& s,
                           const ConvEpilogue& ep, int nt, const GemmPlan& plan, const TileGrid& tg) {
  const WinogradKernels& wk = winograd_kernels();
  const i64 K = s.K, C = s.C, MR = plan.mr, NR = plan.nr, L = wk.lanes, tiles = tg.total;
  const i64 panels = ceil_div(tiles, NR), tpad = panels * NR;
  const i64 v_p = C * tpad + kSkew;
  CachedFloats shared_v(static_cast<std::size_t>(kPos * v_p));
  float* V = shared_v.get();
  const i64 groups = tpad / L;
  parallel_items(groups, threads_for(groups, nt), Schedule::kStatic, [&](i64 q, int) {
    input_tiles(V, v_p, x, s, tg, 0, tiles, q * L, (q + 1) * L, NR, wk);
  });
  const i64 rows = kStreamPanels * MR, depth = std::min(C, kStreamDepth), items = ceil_div(K, rows);
  const i64 u_p = rows * depth + kSkew, m_p = rows * tpad + kSkew;
  parallel_items(items, threads_for(items, nt), Schedule::kDynamic, [&](i64 item, int) {
    float* U = thread_scratch<WinogradScratch>(kPos * (u_p + m_p));
    float* M = U + kPos * u_p;
    const i64 k0 = item * rows, kn = std::min(rows, K - k0);
    for (i64 c0 = 0; c0 < C; c0 += depth) {
      const i64 kc = std::min(depth, C - c0);
      const float beta = c0 == 0 ? 0.0f : 1.0f;
      for (i64 ir = k0; ir < k0 + kn; ir += MR) transform_panel(U + (ir - k0) * kc, u_p, ws, K, ir, MR, c0, kc, wk);
      for (int p = 0; p < kPos; ++p)
        for (i64 ir = k0; ir < k0 + kn; ir += MR)
          for (i64 q = 0; q < panels; ++q)
            plan.ukernel(kc, U + p * u_p + (ir - k0) * kc, V + p * v_p + q * C * NR + c0 * NR,
                         M + p * m_p + (ir - k0) * tpad + q * NR, tpad, std::min(MR, k0 + kn - ir),
                         std::min(NR, tiles - q * NR), 1.0f, beta, nullptr, false);
    }
    output_tiles(y, M, m_p, tpad, s, tg, 0, tiles, k0, kn, ep, wk);
  });
}

// Tiles per block: V and M of a block about a quarter of L2, at least one
// panel (measured on 32x{64,128,256} layers: one or two panels ran 5-15%
// faster than four or eight; U[p], re-read once per block, is the rest of
// L2's share); blocks of equal size, multiples of NR.
i64 tile_block(const Conv2dShape& s, const TileGrid& tg, i64 NR) {
  const i64 budget = cache_sizes().l2 / 4 / static_cast<i64>(sizeof(float));
  i64 tb = std::clamp<i64>(budget / (kPos * (s.C + s.K)) / NR * NR, NR, 16 * NR);
  tb = std::min(tb, round_up(tg.total, NR));
  return round_up(ceil_div(tg.total, ceil_div(tg.total, tb)), NR);
}

// Whether a call with untransformed weights runs winograd_run_streamed: all
// tiles in one block and U larger than L2.
bool streams_weights(const Conv2dShape& s, const GemmPlan& plan, const TileGrid& tg) {
  return tg.total <= tile_block(s, tg, plan.nr) &&
         kPos * round_up(s.K, plan.mr) * s.C * static_cast<i64>(sizeof(float)) > cache_sizes().l2;
}

// The forward on shape s with weights read through ws, or prepacked.
void winograd_run(float* y, const float* x, const WeightSource& ws, const Conv2dShape& s, const ConvEpilogue& ep,
                  int num_threads, const WinogradPackedWeights* packed) {
  assert(conv2d_winograd_eligible(s));
  const WinogradKernels& wk = winograd_kernels();
  const TileGrid tg = tile_grid(s);
  if (tg.total == 0) return;
  const int nt = threads_for_work(tg.total, kPos * s.K * s.C, num_threads);
  const GemmPlan plan = packed ? packed->plan : GemmPlan::for_product(s.K, s.C);
  const i64 K = s.K, C = s.C, MR = plan.mr, NR = plan.nr;
  assert(NR % wk.lanes == 0 && wk.lanes <= WinogradLanes::kMaxLanes);
  const i64 Kpad = round_up(K, MR);

  const i64 tb = tile_block(s, tg, NR);
  const i64 blocks = ceil_div(tg.total, tb);
  if (!packed && streams_weights(s, plan, tg)) return winograd_run_streamed(y, x, ws, s, ep, nt, plan, tg);

  // U: prepacked, or transformed now into a block from the buffer cache
  // (tens of MB for deep layers, which would page-fault afresh on every call).
  std::optional<CachedFloats> own;
  const float* U = nullptr;
  if (packed) {
    assert(conv2d_winograd_packed_current(*packed, s));
    U = packed->u.data();
  } else {
    own.emplace(static_cast<std::size_t>(kPos * Kpad * C));
    transform_weights(own->get(), ws, K, C, plan, wk, nt);
    U = own->get();
  }
  // K chunks (multiples of MR) only to give every thread work.
  i64 chunks = blocks < nt ? std::min(ceil_div(nt, blocks), Kpad / MR) : 1;
  const i64 kchunk = round_up(ceil_div(K, chunks), MR);
  chunks = ceil_div(K, kchunk);
  const i64 items = blocks * chunks;
  const i64 scratch = kPos * ((C + kchunk) * tb + 2 * kSkew);

  parallel_items(items, threads_for(items, nt), Schedule::kDynamic, [&](i64 item, int) {
    const i64 t0 = item / chunks * tb, tiles = std::min(tb, tg.total - t0);
    const i64 panels = ceil_div(tiles, NR), tpad = panels * NR;
    const i64 k0 = item % chunks * kchunk, kn = std::min(kchunk, K - k0);
    float* V = thread_scratch<WinogradScratch>(scratch);
    const i64 v_p = C * tpad + kSkew, m_p = kn * tpad + kSkew;
    float* M = V + kPos * v_p;
    input_tiles(V, v_p, x, s, tg, t0, tiles, 0, tpad, NR, wk);
    // M[p] = U[p] V[p], rows k0..k0+kn
    for (int p = 0; p < kPos; ++p) {
      const float* Up = U + p * Kpad * C;
      const float* Vp = V + p * v_p;
      float* Mp = M + p * m_p;
      for (i64 pc = 0; pc < C; pc += plan.kc) {
        const i64 kc = std::min(plan.kc, C - pc);
        const float beta = pc == 0 ? 0.0f : 1.0f;
        for (i64 ir = k0; ir < k0 + kn; ir += MR) {
          const float* a = Up + pc * Kpad + ir * kc;
          const i64 mr = std::min(MR, k0 + kn - ir);
          for (i64 q = 0; q < panels; ++q)  // a last panel of <= 16 tiles runs half the FMAs (AVX-512)
            plan.ukernel(kc, a, Vp + q * C * NR + pc * NR, Mp + (ir - k0) * tpad + q * NR, tpad, mr,
                         std::min(NR, tiles - q * NR), 1.0f, beta, nullptr, false);
        }
      }
    }
    output_tiles(y, M, m_p, tpad, s, tg, t0, tiles, k0, kn, ep, wk);
  });
}

// ---- weight gradient
//
// dW = G^T dU G per filter, where per position p (36) dU[p] (K x C) is the
// sum over tiles of dM[p] (K x T) . V[p]^T (T x C): V = B^T d B the
// forward's input transform, dM = A dY A^T the adjoint of its output
// transform. 36 products of depth T instead of the im2col product's
// 9 x 16 per tile: 4x fewer multiplications.
//
// Tiles run in blocks whose V and dM (36 x (C + K) floats per tile) take
// about L2. Per block, threads first transform lane groups, then take
// positions: dU[p] is one sgemm on one thread, accumulated over blocks in
// block order, so results do not depend on the thread count. V[p] and dM[p]
// are row-major with the tiles along rows (each lane group's vectors land as
// contiguous runs), which the sgemm packs as transposed operands.
void winograd_bwd_weight(float* dw, const float* dy, const float* x, const Conv2dShape& s, int num_threads) {
  assert(conv2d_winograd_eligible(s));
  const WinogradKernels& wk = winograd_kernels();
  const TileGrid tg = tile_grid(s);
  if (tg.total == 0) return;
  const i64 K = s.K, C = s.C, L = wk.lanes, plane_in = s.in_plane(), plane_out = s.out_plane();
  // Each block re-reads and re-writes all of dU (36 K C floats); its tiles'
  // V and dM are 36 (C + K) floats each. Blocks of at least K C / (C + K)
  // tiles keep the dU traffic below the tiles' own, even where that spills
  // L2 (deep layers: dU of a 256x256 layer is 9.4 MB).
  const i64 budget = cache_sizes().l2 / static_cast<i64>(sizeof(float));
  const i64 amortised = round_up(ceil_div(K * C, C + K), L);
  i64 tb = std::clamp<i64>(std::max(budget / (kPos * (C + K)) / L * L, amortised), L, 64 * L);
  tb = std::min(tb, round_up(tg.total, L));
  const i64 blocks = ceil_div(tg.total, tb);
  tb = round_up(ceil_div(tg.total, blocks), L);
  const i64 v_p = C * tb + kSkew, m_p = K * tb + kSkew, KC = K * C;
  CachedFloats V(static_cast<std::size_t>(kPos * v_p)), dM(static_cast<std::size_t>(kPos * m_p)),
      dU(static_cast<std::size_t>(kPos * KC));
  const int nt = threads_for_work(tg.total, kPos * K * C, num_threads);
  for (i64 b = 0; b < blocks; ++b) {
    const i64 t0 = b * tb, tiles = std::min(tb, tg.total - t0), groups = ceil_div(tiles, L);
    const i64 depth = groups * L;  // the last group's lanes without a tile are zeros
    parallel_items(groups, threads_for(groups, nt), Schedule::kStatic, [&](i64 q, int) {
      WinogradLanes g;
      const i64 first = t0 + q * L, n = std::min(L, t0 + tiles - first), image0 = first / tg.per_image;
      fill_lanes(g, s, tg, first, n, L, image0);
      wk.input(V.get() + q * L, v_p, tb, x + image0 * C * plane_in, plane_in, s.W, C, g);
      wk.output_grad(dM.get() + q * L, m_p, tb, dy + image0 * K * plane_out, plane_out, s.Wo, K, g);
    });
    parallel_items(kPos, threads_for(kPos, nt), Schedule::kStatic, [&](i64 p, int) {
      // dU[p] (K x C) (+)= dM[p] (K x depth) . V[p]^T (depth x C)
      sgemm(false, true, K, C, depth, 1.0f, dM.get() + p * m_p, tb, V.get() + p * v_p, tb, b == 0 ? 0.0f : 1.0f,
            dU.get() + p * KC, C, 1);
    });
  }
  // dw[k][c] += G^T dU[:, k, c] G, filters in chunks of 64
  constexpr i64 kChunk = 64;
  const i64 chunks = ceil_div(KC, kChunk);
  parallel_items(chunks, threads_for_work(chunks, kChunk * 200, nt), Schedule::kStatic, [&](i64 q, int) {
    std::int32_t off[kChunk];
    const i64 f0 = q * kChunk, n = std::min(kChunk, KC - f0);
    for (i64 l = 0; l < n; ++l) off[l] = static_cast<std::int32_t>((f0 + l) * 9);
    wk.weights_grad(dw, off, dU.get() + f0, KC, static_cast<int>(n));
  });
}

}  // namespace

const WinogradKernels& winograd_kernels() {
  static const auto tables = per_isa<WinogradKernels>(make_winograd_kernels);
  return for_active_isa(tables);
}

bool conv2d_winograd_eligible(const Conv2dShape& s) {
  if (s.kh != 3 || s.kw != 3 || s.stride_h != 1 || s.stride_w != 1 || s.dilation_h != 1 || s.dilation_w != 1 ||
      s.groups != 1)
    return false;
  // Lane offsets are int32 and relative to a lane group's first image; a
  // group spans at most kMaxLanes + 1 images.
  const i64 limit = INT32_MAX / (WinogradLanes::kMaxLanes + 2);
  // Filter offsets are int32 too.
  return s.C * s.in_plane() < limit && s.K * s.out_plane() < limit && s.K * s.C * 9 < INT32_MAX;
}

bool conv2d_winograd_packed_current(const WinogradPackedWeights& packed, const Conv2dShape& s) {
  return same_gemm_layout(packed.plan, GemmPlan::for_product(s.K, s.C)) && packed.lanes == winograd_kernels().lanes &&
         packed.u.size() == static_cast<std::size_t>(kPos * round_up(s.K, packed.plan.mr) * s.C);
}

WinogradPackedWeights conv2d_winograd_pack_weights(const float* w, const Conv2dShape& s, int num_threads) {
  return pack_weights(WeightSource{w, s.C * 9, 9, false}, s, num_threads);
}

void conv2d_fwd_winograd(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                         int num_threads, const WinogradPackedWeights* packed) {
  winograd_run(y, x, WeightSource{w, s.C * 9, 9, false}, s, ep, num_threads, packed);
}

void conv2d_bwd_weight_winograd(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                                int num_threads) {
  if (!conv2d_winograd_eligible(s)) return conv2d_bwd_weight_im2col(dw, db, dy, x, s, num_threads);
  winograd_bwd_weight(dw, dy, x, s, num_threads);
  if (db) conv2d_bias_grad(db, dy, s);
}

void conv2d_bwd_data_winograd(float* dx, const float* dy, const float* w, const Conv2dShape& s, int num_threads) {
  Conv2dShape t;
  if (!conv2d_winograd_eligible(s) || !conv2d_bwd_data_as_forward(s, t) || !conv2d_winograd_eligible(t))
    return conv2d_bwd_data_im2col(dx, dy, w, s, num_threads);
  // t's filter (k, c) = original filter (c, k), taps reversed. Transformed
  // straight from w, each U panel (MR values of c) would read one 9-float
  // run per filter k, the runs C * 9 floats apart: a page each, which the
  // hardware prefetchers do not follow (the whole-U transform ran 5x slower
  // than the forward's). So the flipped filters are first copied into t's
  // own layout by 16x16-filter blocks, then transformed like a forward's --
  // except where U is transformed piece by piece (winograd_run_streamed):
  // there each piece reads its 3 panels' filters (3 x MR consecutive input
  // channels of one output channel: one contiguous run of w) once, and the
  // copy (w read from memory, written, read again) cost more than it saved
  // (8x512x7x7: 8.3-13.7 -> 6.9-9.3 ms; 2x256x14x14: 2.9-5.9 -> 2.3-3.4 ms).
  const i64 K = s.K, C = s.C;
  if (streams_weights(t, GemmPlan::for_product(t.K, t.C), tile_grid(t)))
    return winograd_run(dx, dy, WeightSource{w, 9, C * 9, true}, t, ConvEpilogue{}, num_threads, nullptr);
  CachedFloats flipped(static_cast<std::size_t>(K * C * 9));
  float* wt = flipped.get();
  constexpr i64 kBlock = 16;
  const i64 c_blocks = ceil_div(C, kBlock);
  parallel_items(c_blocks, threads_for_work(c_blocks, kBlock * K * 9, num_threads), Schedule::kStatic,
                 [&](i64 cb, int) {
                   const i64 c0 = cb * kBlock, c1 = std::min(C, c0 + kBlock);
                   for (i64 k0 = 0; k0 < K; k0 += kBlock)
                     for (i64 c = c0; c < c1; ++c)
                       for (i64 k = k0; k < std::min(K, k0 + kBlock); ++k) {
                         const float* from = w + (k * C + c) * 9;
                         float* to = wt + (c * K + k) * 9;
                         for (int q = 0; q < 9; ++q) to[q] = from[8 - q];
                       }
                 });
  winograd_run(dx, dy, WeightSource{wt, K * 9, 9, false}, t, ConvEpilogue{}, num_threads, nullptr);
}

}  // namespace pycnn
