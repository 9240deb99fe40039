// Packed SGEMM in the BLIS structure: loops over NC columns of B, KC-deep slices
// of K and MC rows of A around an MR x NR register-blocked microkernel, with
// both operands packed into contiguous, zero-padded panels so the microkernel
// never branches on edges. Threads split the MC loop and share the packed B.
//
// This is the portable version: the microkernel is plain C++ that the compiler
// vectorises, and on x86-64 GCC/Clang clone it for AVX-512, AVX2 and the
// baseline (target_clones, resolved once at load time).
#include "gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "parallel.h"
#ifdef PYCNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace pycnn {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;
constexpr i64 KC = 256;  // A micro-panel (MR x KC) + B micro-panel (KC x NR) fit in L1
constexpr i64 MC = 96;   // packed A block (MC x KC = 96 KiB) stays in L2
constexpr i64 NC = 2048; // packed B block (KC x NC = 2 MiB) lives in L3

// Products below this many multiply-adds are cheaper without packing.
constexpr i64 kSmallGemm = 16 * 1024;

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(PYCNN_NO_TARGET_CLONES) && !defined(__SANITIZE_ADDRESS__)
#define PYCNN_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define PYCNN_CLONES
#endif

// acc(MR x NR) = sum over k of a[k*MR + i] * b[k*NR + j]
// One row of the tile is one 16-float vector (GCC/Clang vector extension): a
// zmm register in the AVX-512 clone, two ymm in the AVX2 clone, four xmm in the
// baseline. Accumulators live in registers for the whole k loop.
#if defined(__GNUC__) || defined(__clang__)
typedef float vec16 __attribute__((vector_size(NR * sizeof(float)), aligned(4)));
PYCNN_CLONES
void microkernel(i64 kc, const float* PYCNN_RESTRICT a, const float* PYCNN_RESTRICT b,
                 float* PYCNN_RESTRICT acc) {
  vec16 c0 = {}, c1 = {}, c2 = {}, c3 = {}, c4 = {}, c5 = {};
  for (i64 k = 0; k < kc; ++k) {
    vec16 bk;
    __builtin_memcpy(&bk, b + k * NR, sizeof bk);
    const float* ak = a + k * MR;
    c0 += ak[0] * bk;
    c1 += ak[1] * bk;
    c2 += ak[2] * bk;
    c3 += ak[3] * bk;
    c4 += ak[4] * bk;
    c5 += ak[5] * bk;
  }
  __builtin_memcpy(acc + 0 * NR, &c0, sizeof c0);
  __builtin_memcpy(acc + 1 * NR, &c1, sizeof c1);
  __builtin_memcpy(acc + 2 * NR, &c2, sizeof c2);
  __builtin_memcpy(acc + 3 * NR, &c3, sizeof c3);
  __builtin_memcpy(acc + 4 * NR, &c4, sizeof c4);
  __builtin_memcpy(acc + 5 * NR, &c5, sizeof c5);
}
static_assert(MR == 6, "the vector microkernel is written for 6 rows");
#else
void microkernel(i64 kc, const float* PYCNN_RESTRICT a, const float* PYCNN_RESTRICT b,
                 float* PYCNN_RESTRICT acc) {
  float c[MR][NR] = {};
  for (i64 k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) c[i][j] += a[k * MR + i] * b[k * NR + j];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i * NR + j] = c[i][j];
}
#endif

struct Matrix {  // a read-only view that hides the transpose
  const float* p;
  i64 ld;
  bool trans;
  float at(i64 r, i64 c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of op(A) into MR-row panels.
void pack_a(float* PYCNN_RESTRICT dst, const Matrix& A, i64 i0, i64 mc, i64 k0, i64 kc) {
  for (i64 ip = 0; ip < mc; ip += MR) {
    const i64 mr = std::min<i64>(MR, mc - ip);
    for (i64 k = 0; k < kc; ++k) {
      float* d = dst + k * MR;
      i64 r = 0;
      if (!A.trans) {
        for (; r < mr; ++r) d[r] = A.p[(i0 + ip + r) * A.ld + (k0 + k)];
      } else {
        const float* src = A.p + (k0 + k) * A.ld + i0 + ip;
        for (; r < mr; ++r) d[r] = src[r];
      }
      for (; r < MR; ++r) d[r] = 0.0f;
    }
    dst += MR * kc;
  }
}

// Packs rows [k0, k0+kc) x cols [j0, j0+nc) of op(B) into NR-column panels.
void pack_b_panel(float* PYCNN_RESTRICT dst, const Matrix& B, i64 k0, i64 kc, i64 j0, i64 nr) {
  for (i64 k = 0; k < kc; ++k) {
    float* d = dst + k * NR;
    i64 c = 0;
    if (!B.trans) {
      const float* src = B.p + (k0 + k) * B.ld + j0;
      for (; c < nr; ++c) d[c] = src[c];
    } else {
      for (; c < nr; ++c) d[c] = B.p[(j0 + c) * B.ld + (k0 + k)];
    }
    for (; c < NR; ++c) d[c] = 0.0f;
  }
}

// C tile (mr x nr) = alpha * acc + (first ? beta * C : C)
inline void store_tile(float* C, i64 ldc, const float* acc, i64 mr, i64 nr, float alpha, float beta,
                       bool first) {
  for (i64 i = 0; i < mr; ++i) {
    float* c = C + i * ldc;
    const float* a = acc + i * NR;
    if (!first || beta == 1.0f) {
      for (i64 j = 0; j < nr; ++j) c[j] += alpha * a[j];
    } else if (beta == 0.0f) {
      for (i64 j = 0; j < nr; ++j) c[j] = alpha * a[j];
    } else {
      for (i64 j = 0; j < nr; ++j) c[j] = alpha * a[j] + beta * c[j];
    }
  }
}

void sgemm_small(const Matrix& A, const Matrix& B, i64 M, i64 N, i64 K, float alpha, float beta,
                 float* C, i64 ldc) {
  for (i64 i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {
      for (i64 j = 0; j < N; ++j) c[j] = 0.0f;
    } else if (beta != 1.0f) {
      for (i64 j = 0; j < N; ++j) c[j] *= beta;
    }
    for (i64 k = 0; k < K; ++k) {
      const float a = alpha * A.at(i, k);
      if (!B.trans) {
        const float* b = B.p + k * B.ld;
        for (i64 j = 0; j < N; ++j) c[j] += a * b[j];
      } else {
        for (i64 j = 0; j < N; ++j) c[j] += a * B.p[j * B.ld + k];
      }
    }
  }
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;

Buffer aligned_floats(i64 n) {
  const std::size_t bytes = ((static_cast<std::size_t>(n) * sizeof(float) + 63) / 64) * 64;
  return Buffer(static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64)));
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
           const float* B, i64 ldb, float beta, float* C, i64 ldc, int num_threads) {
  if (M <= 0 || N <= 0) return;
  const Matrix a{A, lda, trans_a}, b{B, ldb, trans_b};
  if (K <= 0 || alpha == 0.0f) {  // C = beta * C
    for (i64 i = 0; i < M; ++i)
      for (i64 j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  if (M * N * K <= kSmallGemm) {
    sgemm_small(a, b, M, N, K, alpha, beta, C, ldc);
    return;
  }

  const i64 nc_max = std::min(NC, ((N + NR - 1) / NR) * NR);
  const i64 kc_max = std::min(KC, K);
  Buffer packed_b = aligned_floats(nc_max * kc_max);
  if (!packed_b) throw std::bad_alloc();
  const i64 m_blocks = (M + MC - 1) / MC;
  const int nt = threads_for(m_blocks, num_threads);
  std::vector<Buffer> packed_a(nt);
  for (auto& p : packed_a) {
    p = aligned_floats(MC * kc_max);
    if (!p) throw std::bad_alloc();
  }

  for (i64 jc = 0; jc < N; jc += NC) {
    const i64 nc = std::min(NC, N - jc);
    const i64 n_panels = (nc + NR - 1) / NR;
    for (i64 pc = 0; pc < K; pc += KC) {
      const i64 kc = std::min(KC, K - pc);
      const bool first = pc == 0;
#pragma omp parallel num_threads(nt)
      {
#pragma omp for schedule(static)
        for (i64 q = 0; q < n_panels; ++q)
          pack_b_panel(packed_b.get() + q * NR * kc, b, pc, kc, jc + q * NR,
                       std::min<i64>(NR, nc - q * NR));
        // the implicit barrier of `omp for` publishes the packed B to every thread
#ifdef PYCNN_HAVE_OPENMP
        float* pa = packed_a[omp_get_thread_num()].get();
#else
        float* pa = packed_a[0].get();
#endif
        alignas(64) float acc[MR * NR];
#pragma omp for schedule(static)
        for (i64 ib = 0; ib < m_blocks; ++ib) {
          const i64 ic = ib * MC;
          const i64 mc = std::min(MC, M - ic);
          pack_a(pa, a, ic, mc, pc, kc);
          for (i64 q = 0; q < n_panels; ++q) {
            const i64 jr = q * NR;
            const i64 nr = std::min<i64>(NR, nc - jr);
            const float* pb = packed_b.get() + q * NR * kc;
            for (i64 ir = 0; ir < mc; ir += MR) {
              const i64 mr = std::min<i64>(MR, mc - ir);
              microkernel(kc, pa + ir * kc, pb, acc);
              store_tile(C + (ic + ir) * ldc + jc + jr, ldc, acc, mr, nr, alpha, beta, first);
            }
          }
        }
      }
    }
  }
}

}  // namespace pycnn
