// Packed SGEMM in the BLIS structure, mirrored for row-major C:
//
//   for jc over N by NC:                  packed B block (KC x NC) sized for half of L2
//     for pc over K by KC:
//       pack B block
//       for ic over M by MC:              packed A block (or a prepacked A)
//         for ir over MC by MR:           A micro-panel (MR x KC) stays in L1
//           for jr over NC by NR:         B micro-panels stream from L2
//             microkernel (MR x NR tile of C in registers)
//
// MR/NR come from the microkernel of the active ISA (gemm_kernels(), ukernel.h); KC/NC from
// the cache sizes read at start-up. Packed panels are zero-padded to full
// MR/NR so the microkernel never branches on edges; it masks its stores.
// beta is applied on the first KC slice only, the ReLU epilogue on the last.
#include "gemm/gemm.h"

#include <algorithm>
#include <vector>

#include "runtime/dispatch.h"
#include "runtime/parallel.h"
#include "runtime/reduce.h"


namespace pycnn {
namespace {

// Products below this many multiply-adds are cheaper without packing.
constexpr i64 kSmallGemm = 8 * 1024;

i64 round_down(i64 v, i64 m) { return std::max(m, (v / m) * m); }
i64 round_up(i64 v, i64 m) { return (v + m - 1) / m * m; }

float at(const MatrixView& m, i64 r, i64 c) { return m.trans ? m.p[c * m.ld + r] : m.p[r * m.ld + c]; }

void sgemm_small(const MatrixView& A, const MatrixView& B, i64 M, i64 N, i64 K, float alpha, float beta,
                 float* C, i64 ldc, bool relu) {
  for (i64 i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    for (i64 j = 0; j < N; ++j) {
      float acc = 0.0f;
      if (alpha != 0.0f)  // BLAS semantics: alpha == 0 does not read A or B
        for (i64 k = 0; k < K; ++k) acc += at(A, i, k) * at(B, k, j);
      float v = alpha * acc;
      if (beta != 0.0f) v += beta * c[j];
      if (relu) v = v > 0.0f ? v : (v != v ? v : 0.0f);
      c[j] = v;
    }
  }
}

// Products with at most kSkinnyRows rows of C -- a Linear layer on a batch
// of 1 to 4 -- skip packing: packing B would cost as much as the product
// itself (a 3136 x 128 weight is 1.6 MB to pack for 0.8 MFLOP of work).
// Each row of C is computed straight from the operands: dot products when a
// column of op(B) is contiguous (op(B) = B^T), else the row accumulated from
// rows of B. Threads take disjoint column ranges; every element is summed
// in the same order whatever the thread count.
constexpr i64 kSkinnyRows = 4;

void sgemm_skinny(const MatrixView& A, const MatrixView& B, i64 M, i64 N, i64 K, float alpha, float beta,
                  float* C, i64 ldc, bool relu, int num_threads) {
  std::vector<float> a_copy;  // rows of op(A), contiguous (op(A) = A^T is strided)
  const float* a_row[kSkinnyRows];
  if (A.trans) {
    a_copy.resize(static_cast<std::size_t>(M * K));
    for (i64 i = 0; i < M; ++i)
      for (i64 k = 0; k < K; ++k) a_copy[i * K + k] = A.p[k * A.ld + i];
  }
  for (i64 i = 0; i < M; ++i) a_row[i] = A.trans ? a_copy.data() + i * K : A.p + i * A.ld;
  const auto epilogue = [&](float acc, float* c) {
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * *c;
    if (relu) v = v > 0.0f ? v : (v != v ? v : 0.0f);
    *c = v;
  };
  const int nt = threads_for_work(N, M * K, num_threads);
  parallel_items(nt, nt, Schedule::kStatic, [&](i64 t, int) {
    const i64 j0 = N * t / nt, j1 = N * (t + 1) / nt;
    if (B.trans) {  // column j of op(B) is row j of B
      for (i64 i = 0; i < M; ++i)
        for (i64 j = j0; j < j1; ++j) epilogue(dot_floats(a_row[i], B.p + j * B.ld, K), C + i * ldc + j);
      return;
    }
    float* acc = thread_scratch<GemmScratch>(j1 - j0);
    for (i64 i = 0; i < M; ++i) {
      std::fill(acc, acc + (j1 - j0), 0.0f);
      for (i64 k = 0; k < K; ++k) {
        const float a = a_row[i][k];
        const float* PYCNN_RESTRICT b = B.p + k * B.ld + j0;
        for (i64 j = 0; j < j1 - j0; ++j) acc[j] += a * b[j];
      }
      for (i64 j = j0; j < j1; ++j) epilogue(acc[j - j0], C + i * ldc + j);
    }
  });
}

// The kernels of each ISA, by name; every level overrides what it has.
GemmKernels make_gemm_kernels(Isa isa) {
  GemmKernels k{};
  k.mr = 6, k.nr = 16, k.ukernel = scalar::gemm_ukernel_6x16;
#if PYCNN_X86
  if (isa >= Isa::Avx2) {
    k.ukernel = avx2::gemm_ukernel_6x16;
    k.transpose_pack = avx2::transpose_pack;
  }
  if (isa >= Isa::Avx512) {
    k.mr = 12, k.nr = 32, k.ukernel = avx512::gemm_ukernel_12x32;
    k.mr_short = 8, k.ukernel_short = avx512::gemm_ukernel_8x32;
    k.transpose_pack = avx512::transpose_pack;
  }
#else
  (void)isa;
#endif
  return k;
}

}  // namespace

const GemmKernels& gemm_kernels() {
  static const auto tables = per_isa<GemmKernels>(make_gemm_kernels);
  return for_active_isa(tables);
}

GemmPlan GemmPlan::for_product(i64 M, i64 K) {
  const GemmKernels& gk = gemm_kernels();
  const CacheSizes& cs = cache_sizes();
  GemmPlan p{&gk, gk.ukernel, gk.mr, gk.nr, 0, 0, 0};
  // The shorter tile only where it saves over a tenth of the padded rows
  // (M = 16, 32, 40, 64; not 128, 256, 512): on a core with two 512-bit FMA
  // pipes (Sapphire Rapids, the development machine) the 8-row tile runs
  // 8-10% slower per FMA than the 12-row one (1 thread, sgemm 64/72/128/132
  // x 256 x 512 in L2: 64-71 vs 71-78 GFLOP/s), so 4 padding rows of 516
  // cost less than the shorter tile. On Zen 4, one pipe, both tiles keep it
  // busy and this gives up at most the 3% padding of M = 128.
  if (gk.ukernel_short && M > 0 && round_up(M, gk.mr_short) * 11 < round_up(M, gk.mr) * 10) {
    p.ukernel = gk.ukernel_short;
    p.mr = gk.mr_short;
  }
  // The A micro-panel takes at most half of L1, leaving room for the B
  // micro-panel streaming through and the C tile's lines.
  p.kc = std::clamp<i64>(round_down(cs.l1d / 2 / (p.mr * 4), 8), 64, 512);
  // Depth slices of equal size: K = 576 runs as 2 x 288, not 512 + 64 (a
  // short last slice pays a whole tile epilogue -- loading and storing C --
  // for a few k steps).
  if (K > p.kc) {
    const i64 slices = (K + p.kc - 1) / p.kc;
    p.kc = round_up((K + slices - 1) / slices, 8);
  }
  // The packed B block takes about half of L2.
  p.nc = std::clamp<i64>(round_down(cs.l2 / 2 / (p.kc * 4), p.nr), p.nr, 4096);
  // Rows of A packed at once: the block is re-read from L2 once per B block.
  p.mc = 8 * p.mr;
  return p;
}

// One panel of a row-major matrix p (leading dimension ld), seen as lines
// and depths. A row of op(A) and a column of op(B) are the same thing once
// the transpose flag is read the right way round: either each line is
// contiguous in depth (op(A) = A, op(B) = B^T) -- packed by transposing,
// with the ISA's SIMD transposer when it has one -- or each depth is a
// contiguous run of lines (op(A) = A^T, op(B) = B), a plain copy per depth.
// Both write dst row by row (depth k outer, line l inner) so stores are
// contiguous; strided reads advance one float per k, which the prefetchers
// follow.
namespace {

void pack_matrix_panel(float* PYCNN_RESTRICT dst, const float* p, i64 ld, bool line_contiguous, i64 l0, i64 lines,
                       i64 k0, i64 kc, i64 width) {
  if (line_contiguous) {
    const float* src = p + l0 * ld + k0;
    // Pure data movement, so any ISA's table gives the same bits.
    if (const TransposePack tp = gemm_kernels().transpose_pack) return tp(dst, width, src, ld, lines, kc);
    for (i64 k = 0; k < kc; ++k) {
      float* d = dst + k * width;
      for (i64 l = 0; l < lines; ++l) d[l] = src[l * ld + k];
      for (i64 l = lines; l < width; ++l) d[l] = 0.0f;
    }
  } else {
    for (i64 k = 0; k < kc; ++k) {
      const float* src = p + (k0 + k) * ld + l0;
      float* d = dst + k * width;
      for (i64 l = 0; l < lines; ++l) d[l] = src[l];
      for (i64 l = lines; l < width; ++l) d[l] = 0.0f;
    }
  }
}

void pack_matrix(float* dst, const MatrixView& m, bool line_contiguous, i64 l0, i64 lines, i64 k0, i64 kc,
                 i64 width) {
  for (i64 q = 0; q < lines; q += width)
    pack_matrix_panel(dst + q * kc, m.p, m.ld, line_contiguous, l0 + q, std::min(width, lines - q), k0, kc, width);
}

}  // namespace

void pack_matrix_rows(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* view) {
  const MatrixView& a = *static_cast<const MatrixView*>(view);
  pack_matrix(dst, a, /*line_contiguous=*/!a.trans, l0, lines, k0, kc, width);
}

void pack_matrix_cols(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* view) {
  const MatrixView& b = *static_cast<const MatrixView*>(view);
  pack_matrix(dst, b, /*line_contiguous=*/b.trans, l0, lines, k0, kc, width);
}

PackedA::PackedA(const GemmPlan& plan, i64 M, i64 K, GemmOperand a, int num_threads)
    : M_(M), K_(K), m_padded_(round_up(M, plan.mr)), kc_(plan.kc),
      data_(static_cast<std::size_t>(m_padded_ * K)) {
  // Threads take row panels (a training step packs every layer's weights
  // once per pass: 9.4 MB for a 512x512 3x3 layer).
  const i64 panels = m_padded_ / plan.mr;
  parallel_items(panels, threads_for_work(panels, plan.mr * K, num_threads), Schedule::kStatic, [&](i64 q, int) {
    const i64 ir = q * plan.mr;
    for (i64 pc = 0; pc < K; pc += plan.kc) {
      const i64 kc = std::min(plan.kc, K - pc);
      a.pack(data_.data() + pc * m_padded_ + ir * kc, a.line_offset + ir, std::min(plan.mr, M - ir), pc, kc,
             plan.mr, a.ctx);
    }
  });
}

const float* PackedA::panel(i64 pc, i64 ir) const {
  const i64 kc = std::min(kc_, K_ - pc);
  return data_.data() + pc * m_padded_ + ir * kc;
}

i64 gemm_workspace_floats(const GemmPlan& plan, i64 M, i64 N, i64 K, bool a_prepacked) {
  const i64 kc = std::min(plan.kc, K);
  const i64 b_block = kc * std::min(plan.nc, round_up(N, plan.nr));
  const i64 a_block = a_prepacked ? 0 : kc * std::min(plan.mc, round_up(M, plan.mr));
  return a_block + b_block + 16;  // + 16: room to align the B block to 64 bytes
}

void gemm_packed(const GemmPlan& plan, i64 M, i64 N, i64 K, const PackedA* a_packed, GemmOperand a,
                 GemmOperand b, float alpha, float beta, float* C, i64 ldc, bool relu, float* workspace,
                 const float* row_bias) {
  if (M <= 0 || N <= 0) return;
  const i64 MR = plan.mr, NR = plan.nr;
  if (K <= 0) {  // C = beta * C (then ReLU)
    for (i64 i = 0; i < M; ++i)
      for (i64 j = 0; j < N; ++j) {
        float v = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        if (row_bias) v += row_bias[i];
        if (relu) v = v > 0.0f ? v : (v != v ? v : 0.0f);
        C[i * ldc + j] = v;
      }
    return;
  }
  float* packed_a = workspace;
  const i64 a_block = a_packed ? 0 : std::min(plan.kc, K) * std::min(plan.mc, round_up(M, MR));
  float* packed_b = workspace + round_up(a_block, 16);
  for (i64 jc = 0; jc < N; jc += plan.nc) {
    const i64 nc = std::min(plan.nc, N - jc);
    const i64 n_panels = (nc + NR - 1) / NR;
    for (i64 pc = 0; pc < K; pc += plan.kc) {
      const i64 kc = std::min(plan.kc, K - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;  // beta and the bias go in once, with the first slice
      const float* bias_here = pc == 0 ? row_bias : nullptr;
      const bool relu_here = relu && pc + kc >= K;
      b.pack(packed_b, b.line_offset + jc, nc, pc, kc, NR, b.ctx);
      for (i64 ic = 0; ic < M; ic += plan.mc) {
        const i64 mc = std::min(plan.mc, M - ic);
        if (!a_packed) a.pack(packed_a, a.line_offset + ic, mc, pc, kc, MR, a.ctx);
        for (i64 ir = 0; ir < mc; ir += MR) {
          const i64 mr = std::min(MR, mc - ir);
          const float* ap = a_packed ? a_packed->panel(pc, a.line_offset + ic + ir) : packed_a + ir * kc;
          float* c_row = C + (ic + ir) * ldc + jc;
          for (i64 q = 0; q < n_panels; ++q)
            plan.ukernel(kc, ap, packed_b + q * NR * kc, c_row + q * NR, ldc, mr,
                                  std::min(NR, nc - q * NR), alpha, beta_here,
                                  bias_here ? bias_here + ic + ir : nullptr, relu_here);
        }
      }
    }
  }
}

void sgemm(bool trans_a, bool trans_b, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
           const float* B, i64 ldb, float beta, float* C, i64 ldc, int num_threads, bool relu) {
  if (M <= 0 || N <= 0) return;
  const MatrixView a{A, lda, trans_a}, b{B, ldb, trans_b};
  if (K <= 0 || alpha == 0.0f || M * N * K <= kSmallGemm) {
    sgemm_small(a, b, M, N, K > 0 ? K : 0, alpha, beta, C, ldc, relu);
    return;
  }
  if (M <= kSkinnyRows) return sgemm_skinny(a, b, M, N, K, alpha, beta, C, ldc, relu, num_threads);
  const GemmPlan plan = GemmPlan::for_product(M, K);

  // Threads take disjoint blocks of C -- rows when there are enough of them,
  // else columns -- and each runs the whole blocked loop nest on its block
  // with private packing: one parallel region, no barriers, and every element
  // of C summed in the same order whatever the thread count.
  const i64 m_panels = (M + plan.mr - 1) / plan.mr, n_panels = (N + plan.nr - 1) / plan.nr;
  const bool split_rows = m_panels >= 2 * num_threads || m_panels >= n_panels;
  const i64 parts = split_rows ? m_panels : n_panels;
  // Below ~1 MFLOP per thread, waking threads costs more than it saves.
  const i64 flops_limit = std::max<i64>(1, (M * N * K) / (512 * 1024));
  const int nt = threads_for(std::min(parts, flops_limit), num_threads);
  const i64 ws = gemm_workspace_floats(plan, split_rows ? (M + nt - 1) / nt + plan.mr : M,
                                       split_rows ? N : (N + nt - 1) / nt + plan.nr, K, false);

  // One block per thread; parallel_items runs a single block on the caller.
  parallel_items(nt, nt, Schedule::kStatic, [&](i64 t, int) {
    const i64 p0 = parts * t / nt, p1 = parts * (t + 1) / nt;  // this thread's panels
    float* w = thread_scratch<GemmScratch>(ws);
    if (split_rows) {
      const i64 r0 = p0 * plan.mr, r1 = std::min(M, p1 * plan.mr);
      GemmOperand oa = operand_a(&a);
      oa.line_offset = r0;
      if (r1 > r0) gemm_packed(plan, r1 - r0, N, K, nullptr, oa, operand_b(&b), alpha, beta, C + r0 * ldc, ldc, relu, w);
    } else {
      const i64 c0 = p0 * plan.nr, c1 = std::min(N, p1 * plan.nr);
      GemmOperand ob = operand_b(&b);
      ob.line_offset = c0;
      if (c1 > c0) gemm_packed(plan, M, c1 - c0, K, nullptr, operand_a(&a), ob, alpha, beta, C + c0, ldc, relu, w);
    }
  });
}

}  // namespace pycnn
