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
  // Blocks of A handed to threads: a few micro-panels each, for balance.
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
  const i64 MR = bl.mr, NR = bl.nr;
  const i64 kc_max = std::min(bl.kc, K);
  const i64 nc_max = std::min(bl.nc, ((N + NR - 1) / NR) * NR);
  // Split M into about 2 blocks per thread, each a whole number of micro-panels.
  const i64 m_panels = (M + MR - 1) / MR;
  const int nt = threads_for(m_panels, num_threads);
  const i64 panels_per_block = std::max<i64>(1, std::min<i64>(bl.mc / MR, (m_panels + 2 * nt - 1) / (2 * nt)));
  const i64 mc_max = panels_per_block * MR;
  const i64 m_blocks = (M + mc_max - 1) / mc_max;

  Buffer packed_b = aligned_floats(nc_max * kc_max);
  std::vector<Buffer> packed_a;
  for (int t = 0; t < nt; ++t) packed_a.push_back(aligned_floats(mc_max * kc_max));

  for (i64 jc = 0; jc < N; jc += bl.nc) {
    const i64 nc = std::min(bl.nc, N - jc);
    const i64 n_panels = (nc + NR - 1) / NR;
    for (i64 pc = 0; pc < K; pc += bl.kc) {
      const i64 kc = std::min(bl.kc, K - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;
      const bool relu_here = relu && pc + kc >= K;
#pragma omp parallel num_threads(nt) if (nt > 1)
      {
#pragma omp for schedule(static)
        for (i64 q = 0; q < n_panels; ++q)
          pack_b_panel(packed_b.get() + q * NR * kc, b, pc, kc, jc + q * NR, std::min(NR, nc - q * NR), NR);
        // the implicit barrier of `omp for` publishes the packed B to every thread
#ifdef PYCNN_HAVE_OPENMP
        float* pa = packed_a[omp_get_thread_num()].get();
#else
        float* pa = packed_a[0].get();
#endif
#pragma omp for schedule(static)
        for (i64 ib = 0; ib < m_blocks; ++ib) {
          const i64 ic = ib * mc_max;
          const i64 mc = std::min(mc_max, M - ic);
          pack_a(pa, a, ic, mc, pc, kc, MR);
          for (i64 ir = 0; ir < mc; ir += MR) {
            const i64 mr = std::min(MR, mc - ir);
            const float* ap = pa + ir * kc;
            for (i64 q = 0; q < n_panels; ++q) {
              const i64 jr = q * NR;
              kt.gemm_ukernel(kc, ap, packed_b.get() + q * NR * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr,
                              std::min(NR, nc - jr), alpha, beta_here, relu_here);
            }
          }
        }
      }
    }
  }
}

}  // namespace pycnn
