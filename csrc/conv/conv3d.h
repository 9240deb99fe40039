// 3-D convolution, NCTHW, weights (K, C/groups, kt, kh, kw) as in PyTorch.
//
// It runs on the 2-D kernels (conv2d.h, through ops::conv2d_*): a 3-D
// convolution is, for every output frame f = (n, to), the 2-D convolution of
// the kt input frames it reads, stacked as channels. Channel c * kt + j of
// output frame f's stacked input is input frame ti = to * stride_t -
// pad_front + j * dilation_t of channel c (zeros when ti is padding). With
// channel c major and tap j minor, the 2-D weights (K, (C/groups) * kt, kh,
// kw) are the 3-D weights as they lie in memory, groups included (group g's
// stacked channels are its channels' taps, contiguous), so every 2-D
// algorithm (im2col + GEMM, Winograd for 3x3 planes, direct), its ISA paths
// and its threading serve unchanged. This is im2col along time only: the
// stacked frames are kt / stride_t times the input, built for a chunk of
// output frames at a time (ops/conv3d.cpp), and a (1, kh, kw) kernel costs
// the 2-D convolution plus two copies.
#pragma once
#include "conv/conv2d.h"
#include "runtime/common.h"

namespace pycnn {

struct Conv3dShape {
  i64 N, C, T, H, W;
  i64 K, kt, kh, kw;
  i64 stride_t, stride_h, stride_w;
  i64 pad_front, pad_top, pad_left;  // back/bottom/right padding are implied by To/Ho/Wo
  i64 dilation_t, dilation_h, dilation_w;
  i64 groups;
  i64 To, Ho, Wo;

  i64 frames() const { return N * To; }             // output frames: the 2-D convolution's images
  i64 stacked_channels() const { return C * kt; }   // channels of one output frame's stacked input
  i64 c_per_group_taps() const { return C / groups * kt; }  // the 2-D weights' second axis
  // The 2-D convolution of `images` consecutive output frames.
  Conv2dShape frames_shape(i64 images) const {
    Conv2dShape s{};
    s.N = images, s.C = C * kt, s.H = H, s.W = W;
    s.K = K, s.kh = kh, s.kw = kw;
    s.stride_h = stride_h, s.stride_w = stride_w;
    s.pad_top = pad_top, s.pad_left = pad_left;
    s.dilation_h = dilation_h, s.dilation_w = dilation_w;
    s.groups = groups;
    s.Ho = Ho, s.Wo = Wo;
    return s;
  }
};

// How frames of an (N, channels, frames_in, plane) array map to the rows of
// a stacked (images, channels * taps, plane) array: output frame f = n *
// frames_out + to, tap j reads frame to * stride - pad + j * dilation (none
// when outside [0, frames_in)). With taps = 1, stride 1, pad 0 it is the
// plain (N, C, T, P) <-> (N * T, C, P) transpose.
struct FrameStack {
  i64 N, channels, frames_in, frames_out, plane;
  i64 taps, stride, pad, dilation;
};
// The input frames of the input x (the forward's and backward-weight's 2-D input).
inline FrameStack input_stack(const Conv3dShape& s) {
  return {s.N, s.C, s.T, s.To, s.H * s.W, s.kt, s.stride_t, s.pad_front, s.dilation_t};
}
// The frames of y or dy (one tap each).
inline FrameStack output_stack(const Conv3dShape& s) { return {s.N, s.K, s.To, s.To, s.Ho * s.Wo, 1, 1, 0, 1}; }

// stacked (images, channels * taps, plane) = frames f0 .. f0 + images of src
// (N, channels, frames_in, plane), zeros for padding frames.
void stack_frames(float* stacked, const float* src, const FrameStack& fs, i64 f0, i64 images, int num_threads);
// The adjoint: dst (N, channels, frames_in, plane) += stacked rows, each
// input frame receiving the sum over the taps that read it; with
// overwrite, dst's frames are assigned instead (one tap per frame only).
void unstack_frames(float* dst, const float* stacked, const FrameStack& fs, i64 f0, i64 images, bool overwrite,
                    int num_threads);

}  // namespace pycnn
