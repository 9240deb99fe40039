// Tile kernels of the channel-blocked direct forward for AVX-512 (see
// direct_tile.h): a tile of `pixels` outputs x 16 * NV channels lives in
// pixels * NV zmm accumulators -- 14 x 2 or 7 x 4, 28 of the 32 registers,
// plus NV for the weights. Per depth step: NV weight loads and pixels * NV
// FMAs whose broadcast operand is read from the input at a constant offset
// (t * stride floats), so the input needs no packing: 0.57 (14 x 2) or 0.39
// (7 x 4) loads per FMA, against 0.58 for the 12 x 32 GEMM microkernel that
// needs its operands packed. The pixel count is a template argument (one
// instantiation per count): the offsets are then immediates and the
// accumulators registers.
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

#include <utility>

#include "conv/direct_tile.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pycnn::avx512 {
namespace {

// In place: r[n] becomes column n of the 16 x 16 matrix whose rows were r[0..15].
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int m = 0; m < 8; ++m) {  // t: rows 2m, 2m+1 interleaved, per 128-bit lane
    t[2 * m] = _mm512_unpacklo_ps(r[2 * m], r[2 * m + 1]);
    t[2 * m + 1] = _mm512_unpackhi_ps(r[2 * m], r[2 * m + 1]);
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {  // u[4g + m], 128-bit lane q: rows 4g..4g+3 of column 4q + m
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {  // gather lane q of u[m], u[4+m], u[8+m], u[12+m] into column 4q + m
    const __m512 p0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), p1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    const __m512 p2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    const __m512 p3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
    r[m] = _mm512_shuffle_f32x4(p0, p2, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(p0, p2, 0xDD);
    r[4 + m] = _mm512_shuffle_f32x4(p1, p3, 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(p1, p3, 0xDD);
  }
}

// acc + broadcast(*a) * w as one FMA with an embedded broadcast: GCC 12
// otherwise broadcasts into a register first, and the 7 x 4 tile then needs
// 33 registers and spilled an accumulator inside the depth loop (objdump).
inline __m512 fma_broadcast(__m512 acc, const float* a, __m512 w) {
#if defined(__GNUC__)
  __asm__("vfmadd231ps %[a]%{1to16%}, %[w], %[acc]" : [acc] "+v"(acc) : [a] "m"(*a), [w] "v"(w));
  return acc;
#else
  return _mm512_fmadd_ps(_mm512_set1_ps(*a), w, acc);
#endif
}

template <int T, int NV, int SW>
void tile(const DirectTile& d) {
  __m512 acc[T][NV];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[t][v] = d.first ? _mm512_setzero_ps() : _mm512_loadu_ps(d.partial + (t * NV + v) * 16);
  const float* PYCNN_RESTRICT w = d.w;
  const float* pf = d.prefetch;
  i64 pf_left = d.prefetch_count;
  const float* xc = d.x;
  for (i64 c = 0; c < d.C; ++c, xc += d.plane) {
    const float* xi = xc;
    for (i64 i = 0; i < d.kh; ++i, xi += d.row_step) {
      const float* xj = xi;
      for (i64 j = 0; j < d.kw; ++j, xj += d.col_step, w += 16 * NV) {
        __m512 wv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
        if (pf_left > 0) {
          _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
          if (--pf_left > 0) pf += d.prefetch_step;
        }
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) {
            if (NV == 4) {
              acc[t][v] = fma_broadcast(acc[t][v], xj + t * SW, wv[v]);
            } else {
              acc[t][v] = _mm512_fmadd_ps(_mm512_set1_ps(xj[t * SW]), wv[v], acc[t][v]);
            }
          }
      }
    }
  }
  if (!d.last) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(d.partial + (t * NV + v) * 16, acc[t][v]);
    return;
  }
  // Epilogue: per vector of 16 channels, transpose so each register holds one
  // channel's T pixels, then bias, residual, ReLU and a masked store of T lanes.
  const __mmask16 lanes = static_cast<__mmask16>((1u << T) - 1u);
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int live = d.channels - 16 * v;
    if (live <= 0) break;
    __m512 r[16];
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) r[t] = t < T ? acc[t][v] : zero;
    transpose16(r);
    const i64 k0 = 16 * v;
    for (int l = 0; l < 16 && l < live; ++l) {
      const i64 k = k0 + l;
      __m512 o = r[l];
      if (d.bias) o = _mm512_add_ps(o, _mm512_set1_ps(d.bias[k]));
      if (d.residual) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(lanes, d.residual + k * d.y_plane));
      if (d.relu) o = _mm512_max_ps(zero, o);  // NaN propagates: MAXPS returns the second operand
      _mm512_mask_storeu_ps(d.y + k * d.y_plane, lanes, o);
    }
  }
}

// tile<T, NV, SW> for T = 1..MaxT, chosen at run time.
template <int NV, int SW, int... T>
void tile_of(const DirectTile& d, int pixels, std::integer_sequence<int, T...>) {
  using Kernel = void (*)(const DirectTile&);
  static constexpr Kernel kernels[] = {tile<T + 1, NV, SW>...};
  kernels[pixels - 1](d);
}

}  // namespace

void direct_tile_s1v2(const DirectTile& t, int pixels) {
  tile_of<2, 1>(t, pixels, std::make_integer_sequence<int, 14>{});
}
void direct_tile_s1v4(const DirectTile& t, int pixels) {
  tile_of<4, 1>(t, pixels, std::make_integer_sequence<int, 7>{});
}
void direct_tile_s2v2(const DirectTile& t, int pixels) {
  tile_of<2, 2>(t, pixels, std::make_integer_sequence<int, 14>{});
}
void direct_tile_s2v4(const DirectTile& t, int pixels) {
  tile_of<4, 2>(t, pixels, std::make_integer_sequence<int, 7>{});
}

}  // namespace pycnn::avx512
