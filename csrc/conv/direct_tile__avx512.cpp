// Tile kernels of the channel-blocked direct forward for AVX-512 (see
// direct_tile.h; the loops are direct_tile.inc's): a tile of `pixels` outputs
// x 16 * NV channels lives in pixels * NV zmm accumulators -- 14 x 2 or 7 x 4,
// 28 of the 32 registers, plus NV for the weights. Per depth step: NV weight
// loads and pixels * NV FMAs whose broadcast operand is read from the input at
// a constant offset (t * stride floats), so the input needs no packing: 0.57
// (14 x 2) loads per FMA, against 0.58 for the 12 x 32 GEMM microkernel that
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

struct Vec {
  using reg = __m512;
  static constexpr int kLanes = 16, kRegisters = 32;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float a) { return _mm512_set1_ps(a); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg broadcast(const float* a) { return _mm512_set1_ps(*a); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  // acc + broadcast(*a) * w as one FMA with an embedded broadcast.
  static reg fma_broadcast_mem(reg acc, const float* a, reg w) {
#if defined(__GNUC__)
    __asm__("vfmadd231ps %[a]%{1to16%}, %[w], %[acc]" : [acc] "+v"(acc) : [a] "m"(*a), [w] "v"(w));
    return acc;
#else
    return _mm512_fmadd_ps(_mm512_set1_ps(*a), w, acc);
#endif
  }
  static __mmask16 first_lanes(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static reg load_lanes(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_lanes(float* p, __mmask16 m, reg v) { _mm512_mask_storeu_ps(p, m, v); }

  // In place: r[n] becomes column n of the 16 x 16 matrix whose rows were r[0..15].
  static void transpose(reg r[16]) {
    reg t[16], u[16];
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
      const reg p0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), p1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
      const reg p2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
      const reg p3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
      r[m] = _mm512_shuffle_f32x4(p0, p2, 0x88);
      r[8 + m] = _mm512_shuffle_f32x4(p0, p2, 0xDD);
      r[4 + m] = _mm512_shuffle_f32x4(p1, p3, 0x88);
      r[12 + m] = _mm512_shuffle_f32x4(p1, p3, 0xDD);
    }
  }
};

#include "conv/direct_tile.inc"

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
