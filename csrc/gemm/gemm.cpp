// Packed SGEMM in the BLIS structure, mirrored for row-major C:
//
//   for jc over N by NC:                      packed B block (KC x NC) sized for L2, shared by threads
//     for pc over K by KC:
//       pack B
//       for ic over M by MC (split over threads): packed A block, private
//         for ir over MC by MR:               A micro-panel (MR x KC) stays in L1
//           for jr over NC by NR:             B micro-panels stream from L2
//             microkernel (MR x NR tile of C in registers)
//
// MR/NR come from the microkernel of the active ISA (dispatch.h); KC/NC/MC
// from the cache sizes read at start-up. Packed panels are zero-padded to
// full MR/NR so the microkernel never branches on edges; it masks its stores.
// beta is applied on the first KC slice only, the ReLU epilogue on the last.
#include "gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "dispatch.h"
#include "parallel.h"

#ifdef PYCNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace pycnn {
namespace {

// Products below this many multiply-adds are cheaper without packing.
constexpr i64 kSmallGemm = 8 * 1024;

struct Matrix {  // a read-only view that hides the transpose
  const float* p;
  i64 ld;
  bool trans;
  float at(i64 r, i64 c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

struct Blocking {
  i64 mr, nr, kc, nc, mc;
};

i64 round_down(i64 v, i64 m) { return std::max(m, (v / m) * m); }

Blocking blocking_for(const KernelTable& t) {
  const CacheSizes& cs = cache_sizes();
  Blocking b{t.gemm_mr, t.gemm_nr, 0, 0, 0};
  // The A micro-panel takes at most half of L1, leaving room for the B
  // micro-panel streaming through and the C tile's lines.
  b.kc = std::clamp<i64>(round_down(cs.l1d / 2 / (b.mr * 4), 8), 64, 512);
  // The packed B block takes about half of L2.
  b.nc = std::clamp<i64>(round_down(cs.l2 / 2 / (b.kc * 4), b.nr), b.nr, 4096);
  // Rows of A packed at once; the packed block streams from L2/L3 once per
  // micro-panel row, so its size matters little: a few micro-panels.
  b.mc = 8 * b.mr;
  return b;
}

// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of op(A) into MR-row panels.
void pack_a(float* PYCNN_RESTRICT dst, const Matrix& A, i64 i0, i64 mc, i64 k0, i64 kc, i64 MR) {
  for (i64 ip = 0; ip < mc; ip += MR) {
    const i64 mr = std::min(MR, mc - ip);
    if (!A.trans) {
      // Row-major A: walk each source row contiguously, scatter with stride MR.
      for (i64 r = 0; r < mr; ++r) {
        const float* src = A.p + (i0 + ip + r) * A.ld + k0;
        for (i64 k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
      }
      for (i64 r = mr; r < MR; ++r)
        for (i64 k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
    } else {
      for (i64 k = 0; k < kc; ++k) {
        const float* src = A.p + (k0 + k) * A.ld + i0 + ip;
        float* d = dst + k * MR;
        i64 r = 0;
        for (; r < mr; ++r) d[r] = src[r];
        for (; r < MR; ++r) d[r] = 0.0f;
      }
    }
    dst += MR * kc;
  }
}

// Packs rows [k0, k0+kc) x cols [j0, j0+nr) of op(B) into one NR-column panel.
void pack_b_panel(float* PYCNN_RESTRICT dst, const Matrix& B, i64 k0, i64 kc, i64 j0, i64 nr, i64 NR) {
  if (!B.trans) {
    for (i64 k = 0; k < kc; ++k) {
      const float* src = B.p + (k0 + k) * B.ld + j0;
      float* d = dst + k * NR;
      i64 c = 0;
      for (; c < nr; ++c) d[c] = src[c];
      for (; c < NR; ++c) d[c] = 0.0f;
    }
  } else {
    for (i64 c = 0; c < nr; ++c) {
      const float* src = B.p + (j0 + c) * B.ld + k0;
      for (i64 k = 0; k < kc; ++k) dst[k * NR + c] = src[k];
    }
    for (i64 c = nr; c < NR; ++c)
      for (i64 k = 0; k < kc; ++k) dst[k * NR + c] = 0.0f;
  }
}

void sgemm_small(const Matrix& A, const Matrix& B, i64 M, i64 N, i64 K, float alpha, float beta,
                 float* C, i64 ldc, bool relu) {
  for (i64 i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    for (i64 j = 0; j < N; ++j) {
      float acc = 0.0f;
      if (alpha != 0.0f)  // BLAS semantics: alpha == 0 does not read A or B
        for (i64 k = 0; k < K; ++k) acc += A.at(i, k) * B.at(k, j);
      float v = alpha * acc;
      if (beta != 0.0f) v += beta * c[j];
      if (relu) v = v > 0.0f ? v : (v != v ? v : 0.0f);
      c[j] = v;
    }
  }
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;

Buffer aligned_floats(i64 n) {
  const std::size_t bytes = ((static_cast<std::size_t>(n) * sizeof(float) + 63) / 64) * 64;
  Buffer b(static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64)));
  if (!b) throw std::bad_alloc();
  return b;
}

}  // namespace

namespace {

// The blocked loop nest on one thread, for the rows [0, M) and columns
// [0, N) of the sub-problem the views describe.
void sgemm_blocked(const KernelTable& kt, const Blocking& bl, const Matrix& a, const Matrix& b, i64 M, i64 N,
                   i64 K, float alpha, float beta, float* C, i64 ldc, bool relu, float* packed_a,
                   float* packed_b) {
  const i64 MR = bl.mr, NR = bl.nr;
  for (i64 jc = 0; jc < N; jc += bl.nc) {
    const i64 nc = std::min(bl.nc, N - jc);
    const i64 n_panels = (nc + NR - 1) / NR;
    for (i64 pc = 0; pc < K; pc += bl.kc) {
      const i64 kc = std::min(bl.kc, K - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;
      const bool relu_here = relu && pc + kc >= K;
      for (i64 q = 0; q < n_panels; ++q)
        pack_b_panel(packed_b + q * NR * kc, b, pc, kc, jc + q * NR, std::min(NR, nc - q * NR), NR);
      for (i64 ic = 0; ic < M; ic += bl.mc) {
        const i64 mc = std::min(bl.mc, M - ic);
        pack_a(packed_a, a, ic, mc, pc, kc, MR);
        for (i64 ir = 0; ir < mc; ir += MR) {
          const i64 mr = std::min(MR, mc - ir);
          const float* ap = packed_a + ir * kc;
          for (i64 q = 0; q < n_panels; ++q) {
            const i64 jr = q * NR;
            kt.gemm_ukernel(kc, ap, packed_b + q * NR * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr,
                            std::min(NR, nc - jr), alpha, beta_here, relu_here);
          }
        }
      }
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
           const float* B, i64 ldb, float beta, float* C, i64 ldc, int num_threads, bool relu) {
  if (M <= 0 || N <= 0) return;
  const Matrix a{A, lda, trans_a}, b{B, ldb, trans_b};
  if (K <= 0 || alpha == 0.0f || M * N * K <= kSmallGemm) {
    sgemm_small(a, b, M, N, K > 0 ? K : 0, alpha, beta, C, ldc, relu);
    return;
  }
  const KernelTable& kt = kernels();
  const Blocking bl = blocking_for(kt);

  // Threads take disjoint blocks of C -- rows when there are enough of them,
  // else columns -- and each runs the whole blocked loop nest on its block
  // with private packing buffers: one parallel region, no barriers, and every
  // element of C summed in the same order whatever the thread count.
  const i64 m_panels = (M + bl.mr - 1) / bl.mr, n_panels = (N + bl.nr - 1) / bl.nr;
  const bool split_rows = m_panels >= 2 * num_threads || m_panels >= n_panels;
  const i64 parts = split_rows ? m_panels : n_panels;
  // Below ~1 MFLOP per thread, waking threads costs more than it saves.
  const i64 flops_limit = std::max<i64>(1, (M * N * K) / (512 * 1024));
  const int nt = threads_for(std::min(parts, flops_limit), num_threads);

  const i64 kc_max = std::min(bl.kc, K);
  const i64 mc_max = std::min(bl.mc, m_panels * bl.mr);
  const i64 nc_max = std::min(bl.nc, n_panels * bl.nr);
  // Allocated before the parallel region: an exception must never escape one.
  std::vector<Buffer> packed_a, packed_b;
  for (int t = 0; t < nt; ++t) {
    packed_a.push_back(aligned_floats(mc_max * kc_max));
    packed_b.push_back(aligned_floats(nc_max * kc_max));
  }
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
#ifdef PYCNN_HAVE_OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    // Panels [p0, p1) of the split dimension go to thread t.
    const i64 p0 = parts * t / nt, p1 = parts * (t + 1) / nt;
    if (split_rows) {
      const i64 r0 = p0 * bl.mr, r1 = std::min(M, p1 * bl.mr);
      const Matrix a_rows{trans_a ? A + r0 : A + r0 * lda, lda, trans_a};
      if (r1 > r0)
        sgemm_blocked(kt, bl, a_rows, b, r1 - r0, N, K, alpha, beta, C + r0 * ldc, ldc, relu, packed_a[t].get(),
                      packed_b[t].get());
    } else {
      const i64 c0 = p0 * bl.nr, c1 = std::min(N, p1 * bl.nr);
      const Matrix b_cols{trans_b ? B + c0 * ldb : B + c0, ldb, trans_b};
      if (c1 > c0)
        sgemm_blocked(kt, bl, a, b_cols, M, c1 - c0, K, alpha, beta, C + c0, ldc, relu, packed_a[t].get(),
                      packed_b[t].get());
    }
  }
}

}  // namespace pycnn
