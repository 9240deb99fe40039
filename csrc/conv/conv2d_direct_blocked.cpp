// Channel-blocked direct forward (the ConvAlgo::Direct forward where an ISA
// has its tile kernels; conv/direct_tile.h): y = conv(x, w) computed tile by
// tile, a tile being a run of up to 14 (or 7) outputs of one output row
// times a block of 32 (or 64) output channels on AVX-512 (6 x 16 on AVX2),
// accumulated in registers over the depth C * kh * kw and written once,
// transposed into NCHW, with the epilogue. The depth runs in slices whose block weights stay in L1 while a
// batch of tiles reads them (running sums parked per tile between slices),
// and each slice's tiles prefetch the next slice's weights into L2.
//
// Why it exists next to im2col + GEMM: the GEMM puts pixels in its 32
// columns and packs them from the image. On small planes the columns are
// mostly padding (a 7x7 plane is 49 pixels in 64 columns: 77% of the work
// is useful), and for stride 2 or a 3-channel first layer the panel copy and
// its plans were a quarter of the time (perf, batch 1). Here pixels are the
// tile's rows, read by broadcasts at fixed offsets straight from the input
// (padded once per call when the convolution pads), so nothing is packed
// per call but a padded copy, and a 7x7 plane fills 7-pixel tiles exactly.
// Weights are packed once (inference prepares them: DirectBlockedWeights):
// per block, depth-major, the block's channels in lanes, zero-padded.
//
// Threads take batches of tiles of one block dynamically; each output is
// computed by one tile, whatever the thread count (bitwise reproducible).
#include <algorithm>
#include <vector>

#include "conv/conv2d.h"
#include "conv/direct_tile.h"
#include "runtime/buffer_cache.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pycnn {

// Owner of the per-thread running sums of sliced tiles (runtime/parallel.h).
struct DirectBlockedScratch;

namespace {

DirectTileKernels make_direct_tile_kernels(Isa isa) {
  DirectTileKernels k{};
#if PYCNN_X86
  if (isa >= Isa::Avx2) {
    k.kernel[0][0] = avx2::direct_tile_s1v2, k.kernel[1][0] = avx2::direct_tile_s2v2;
    k.max_pixels[0] = 6, k.lanes = 8;
  }
  if (isa >= Isa::Avx512) {
    k.kernel[0][0] = avx512::direct_tile_s1v2, k.kernel[0][1] = avx512::direct_tile_s1v4;
    k.kernel[1][0] = avx512::direct_tile_s2v2, k.kernel[1][1] = avx512::direct_tile_s2v4;
    k.max_pixels[0] = 14, k.max_pixels[1] = 7, k.lanes = 16;
  }
#else
  (void)isa;
#endif
  return k;
}

// Rows and columns of the (padded) input the tiles read: every tap of every
// output, so the kernels never test bounds.
i64 padded_rows(const Conv2dShape& s) {
  return std::max(s.H + s.pad_top, (s.Ho - 1) * s.stride_h + (s.kh - 1) * s.dilation_h + 1);
}
i64 padded_cols(const Conv2dShape& s) {
  return std::max(s.W + s.pad_left, (s.Wo - 1) * s.stride_w + (s.kw - 1) * s.dilation_w + 1);
}
bool needs_padding(const Conv2dShape& s) {
  return s.pad_top > 0 || s.pad_left > 0 || padded_rows(s) > s.H || padded_cols(s) > s.W;
}

// Images [n0, n0 + m) of x, zero-padded to rows x cols per plane.
void pad_images(float* dst, const float* x, i64 n0, i64 m, const Conv2dShape& s, i64 rows, i64 cols, int nt) {
  const i64 planes = m * s.C;
  parallel_items(planes, threads_for_work(planes, rows * cols, nt), Schedule::kStatic, [&](i64 q, int) {
    float* d = dst + q * rows * cols;
    const float* src = x + (n0 * s.C + q) * s.in_plane();
    std::fill(d, d + s.pad_top * cols, 0.0f);
    for (i64 h = 0; h < s.H; ++h) {
      float* row = d + (s.pad_top + h) * cols;
      std::fill(row, row + s.pad_left, 0.0f);
      std::copy(src + h * s.W, src + (h + 1) * s.W, row + s.pad_left);
      std::fill(row + s.pad_left + s.W, row + cols, 0.0f);
    }
    std::fill(d + (s.pad_top + s.H) * cols, d + rows * cols, 0.0f);
  });
}

}  // namespace

const DirectTileKernels& direct_tile_kernels() {
  static const auto tables = per_isa<DirectTileKernels>(make_direct_tile_kernels);
  return for_active_isa(tables);
}

bool conv2d_direct_blocked_eligible(const Conv2dShape& s) {
  const DirectTileKernels& k = direct_tile_kernels();
  return s.groups == 1 && (s.stride_w == 1 || s.stride_w == 2) && k.kernel[s.stride_w - 1][0] != nullptr;
}

int conv2d_direct_blocked_vectors(const Conv2dShape& s) {
  // 7 x 64 tiles load fewer weights per FMA than 14 x 32 ones; they take
  // rows of 7 (or a multiple of 7 but not of 14) exactly, and need 64 channels.
  const bool has_4 = (s.stride_w == 1 || s.stride_w == 2) && direct_tile_kernels().kernel[s.stride_w - 1][1];
  return has_4 && s.K >= 64 && s.Wo % 7 == 0 && s.Wo % 14 != 0 ? 4 : 2;
}

int conv2d_direct_blocked_row_tile(const Conv2dShape& s) {
  return direct_tile_kernels().max_pixels[conv2d_direct_blocked_vectors(s) == 4];
}

DirectBlockedWeights conv2d_direct_blocked_pack_weights(const float* w, const Conv2dShape& s, int num_threads) {
  DirectBlockedWeights p;
  p.vectors = conv2d_direct_blocked_vectors(s);
  p.lanes = direct_tile_kernels().lanes;
  const i64 width = p.vectors * p.lanes, R = s.col_rows(), blocks = (s.K + width - 1) / width;
  p.w.assign(static_cast<std::size_t>(blocks * R * width), 0.0f);
  parallel_items(blocks, threads_for_work(blocks, R * width, num_threads), Schedule::kStatic, [&](i64 b, int) {
    float* dst = p.w.data() + b * R * width;
    for (i64 k = b * width; k < std::min(s.K, (b + 1) * width); ++k)
      for (i64 r = 0; r < R; ++r) dst[r * width + (k - b * width)] = w[k * R + r];
  });
  return p;
}

bool conv2d_direct_blocked_packed_current(const DirectBlockedWeights& p, const Conv2dShape& s) {
  return p.lanes == direct_tile_kernels().lanes && p.vectors == conv2d_direct_blocked_vectors(s);
}

void conv2d_fwd_direct_blocked(float* y, const float* x, const float* w, const Conv2dShape& s,
                               const ConvEpilogue& ep, int num_threads, const DirectBlockedWeights* packed) {
  assert(conv2d_direct_blocked_eligible(s));
  const DirectTileKernels& kt = direct_tile_kernels();
  DirectBlockedWeights local;
  if (!packed) local = conv2d_direct_blocked_pack_weights(w, s, num_threads), packed = &local;
  assert(conv2d_direct_blocked_packed_current(*packed, s));
  const int vectors = packed->vectors;
  const DirectTileKernel kernel = kt.kernel[s.stride_w - 1][vectors == 4];
  const i64 width = vectors * kt.lanes, R = s.col_rows(), blocks = (s.K + width - 1) / width;
  const i64 max_pixels = conv2d_direct_blocked_row_tile(s), per_row = (s.Wo + max_pixels - 1) / max_pixels;
  const i64 P = s.out_plane();
  // Depth slices of whole input channels whose block weights fill at most
  // half of L1 (a 512-channel 3x3 block of 64 is 1.2 MB: streamed from L2
  // for every tile it ran at 60% of the FMA peak), and batches of up to
  // kBatch tiles that read each slice from L1.
  constexpr i64 kBatch = 32;
  const i64 channel_bytes = s.kh * s.kw * width * static_cast<i64>(sizeof(float));
  const i64 slice = std::max<i64>(1, std::min(s.C, cache_sizes().l1d / 2 / channel_bytes));
  const i64 slices = (s.C + slice - 1) / slice;

  const bool pad = needs_padding(s);
  const i64 rows = pad ? padded_rows(s) : s.H, cols = pad ? padded_cols(s) : s.W, image = s.C * rows * cols;
  // Padded copies of up to 8 MiB of images at a time (at least one image).
  const i64 chunk = pad ? std::max<i64>(1, (i64{2} << 20) / std::max<i64>(1, image)) : s.N;
  CachedFloats padded(pad ? static_cast<std::size_t>(std::min(chunk, s.N) * image) : 0);
  for (i64 n0 = 0; n0 < s.N; n0 += chunk) {
    const i64 m = std::min(chunk, s.N - n0);
    if (pad) pad_images(padded.get(), x, n0, m, s, rows, cols, num_threads);
    const float* xs = pad ? padded.get() : x + n0 * image;
    // Tiles numbered block-major, then image, output row, run of the row.
    const i64 per_group = s.Ho * per_row, tiles = blocks * m * per_group;  // a group: one block of one image
    const int nt = threads_for_work(tiles, R * width * max_pixels, num_threads);
    // Work items are batches: up to kBatch tiles of one group, handed out
    // dynamically (a core slowed by another process no longer holds the other
    // one up; each output is still computed by one tile, so the result does
    // not depend on who computes it).
    const i64 batches_per_group = (per_group + kBatch - 1) / kBatch;
    parallel_items(blocks * m * batches_per_group, nt, Schedule::kDynamic, [&](i64 item, int) {
      float* partial = slices > 1 ? thread_scratch<DirectBlockedScratch>(kBatch * max_pixels * width) : nullptr;
      const i64 group = item / batches_per_group, q0 = group * per_group + item % batches_per_group * kBatch;
      const i64 q1 = std::min((group + 1) * per_group, q0 + kBatch);
      const i64 b = q0 / (m * per_group), n = q0 / per_group % m, k0 = b * width;
      DirectTile tile[kBatch];
      int pixels[kBatch];
      for (i64 q = q0; q < q1; ++q) {  // the tiles' geometry, once per batch (not per slice)
        const i64 oh = q % per_group / per_row, ow0 = q % per_row * max_pixels;
        const i64 y_off = ((n0 + n) * s.K + k0) * P + oh * s.Wo + ow0;
        DirectTile& t = tile[q - q0];
        t.x = xs + n * image + oh * s.stride_h * cols + ow0 * s.stride_w;
        t.plane = rows * cols, t.ld = cols;
        t.kh = s.kh, t.kw = s.kw;
        t.row_step = s.dilation_h * cols, t.col_step = s.dilation_w;
        t.w = packed->w.data() + b * R * width;
        t.y = y + y_off;
        t.residual = ep.residual ? ep.residual + y_off : nullptr;
        t.bias = ep.bias ? ep.bias + k0 : nullptr;
        t.y_plane = P;
        t.channels = static_cast<int>(std::min(width, s.K - k0));
        t.relu = ep.relu;
        t.partial = partial ? partial + (q - q0) * max_pixels * width : nullptr;
        pixels[q - q0] = static_cast<int>(std::min(max_pixels, s.Wo - ow0));
      }
      for (i64 c0 = 0; c0 < s.C; c0 += slice) {
        const i64 C = std::min(slice, s.C - c0), steps = (q1 - q0) * C * s.kh * s.kw;
        const i64 next_floats = std::min(slice, std::max<i64>(0, s.C - c0 - slice)) * s.kh * s.kw * width;
        // The next slice's weights, one line (16 floats) or more per depth
        // step, spread over all the batch's steps: 512x512x3x3 at 7x7, 1 thread,
        // took 2.56 ms instead of 3.47 (2 threads: 1.77 instead of 2.00).
        const i64 step = std::max<i64>(16, (next_floats + steps - 1) / steps + 15) / 16 * 16;
        for (i64 i = 0; i < q1 - q0; ++i) {
          DirectTile t = tile[i];
          t.x += c0 * rows * cols;
          t.w += c0 * s.kh * s.kw * width;
          t.C = C;
          t.first = c0 == 0, t.last = c0 + slice >= s.C;
          const i64 pf_first = i * C * s.kh * s.kw * step;  // this tile's share of the next slice
          t.prefetch_step = step;
          t.prefetch_count = std::min(C * s.kh * s.kw, std::max<i64>(0, (next_floats - pf_first + step - 1) / step));
          t.prefetch = t.prefetch_count > 0 ? t.w + slice * s.kh * s.kw * width + pf_first : nullptr;
          kernel(t, pixels[i]);
        }
      }
    });
  }
}

}  // namespace pycnn
