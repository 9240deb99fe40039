// Frames of NCTHW arrays stacked as the channels of 2-D images and back
// (conv3d.h). Threads take channels: no two write the same frame, so the
// adjoint's sums need no atomics and do not depend on the thread count.
#include "conv/conv3d.h"

#include <algorithm>

#include "runtime/parallel.h"

namespace pycnn {

namespace {
// The input frame tap j of output frame `to` reads, or -1 for padding.
inline i64 source_frame(const FrameStack& fs, i64 to, i64 j) {
  const i64 ti = to * fs.stride - fs.pad + j * fs.dilation;
  return ti >= 0 && ti < fs.frames_in ? ti : -1;
}
}  // namespace

void stack_frames(float* stacked, const float* src, const FrameStack& fs, i64 f0, i64 images, int num_threads) {
  const i64 P = fs.plane, rows = fs.channels * fs.taps;
  parallel_items(fs.channels, threads_for_work(fs.channels, images * fs.taps * P, num_threads), Schedule::kStatic,
                 [&](i64 c, int) {
    for (i64 f = 0; f < images; ++f) {
      const i64 n = (f0 + f) / fs.frames_out, to = (f0 + f) % fs.frames_out;
      const float* channel = src + (n * fs.channels + c) * fs.frames_in * P;
      for (i64 j = 0; j < fs.taps; ++j) {
        float* PYCNN_RESTRICT out = stacked + (f * rows + c * fs.taps + j) * P;
        const i64 ti = source_frame(fs, to, j);
        if (ti < 0)
          std::fill(out, out + P, 0.0f);
        else
          std::copy(channel + ti * P, channel + (ti + 1) * P, out);
      }
    }
  });
}

void unstack_frames(float* dst, const float* stacked, const FrameStack& fs, i64 f0, i64 images, bool overwrite,
                    int num_threads) {
  assert(!overwrite || fs.taps == 1);
  const i64 P = fs.plane, rows = fs.channels * fs.taps;
  parallel_items(fs.channels, threads_for_work(fs.channels, images * fs.taps * P, num_threads), Schedule::kStatic,
                 [&](i64 c, int) {
    for (i64 f = 0; f < images; ++f) {
      const i64 n = (f0 + f) / fs.frames_out, to = (f0 + f) % fs.frames_out;
      float* channel = dst + (n * fs.channels + c) * fs.frames_in * P;
      for (i64 j = 0; j < fs.taps; ++j) {
        const i64 ti = source_frame(fs, to, j);
        if (ti < 0) continue;  // a padding frame: its gradient is dropped
        const float* PYCNN_RESTRICT in = stacked + (f * rows + c * fs.taps + j) * P;
        float* PYCNN_RESTRICT out = channel + ti * P;
        if (overwrite)
          std::copy(in, in + P, out);
        else
          for (i64 p = 0; p < P; ++p) out[p] += in[p];
      }
    }
  });
}

}  // namespace pycnn
