"""Convolution layers: Conv2d, Conv1d, Conv3d (video), the (2+1)-D block Conv2Plus1d, and the transposed
convolutions ConvTranspose2d, ConvTranspose1d."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple, Union, cast

import numpy as np

from .. import functional as F
from .._checks import check_choice, check_int, check_pair, check_single, check_triple, is_int
from ..functional.conv import CONV_ALGOS
from . import fused
from .activation import ReLU
from ._weighted import init_weight_and_bias, reset_weight_and_bias, weighted_backward
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Conv2d", "Conv1d", "Conv3d", "Conv2Plus1d", "ConvTranspose2d", "ConvTranspose1d"]


class _ConvNd(Module):
    """What Conv2d and Conv1d share: argument checks, parameters, PyTorch's
    initialisation, and forward / backward through their functional ops."""

    # The functional pair a subclass runs (the 1-D class substitutes its own).
    _conv: Callable[..., np.ndarray] = staticmethod(F.conv2d)
    _conv_backward: Callable[..., Any] = staticmethod(F.conv2d_backward)

    kernel_size: Tuple[int, ...]
    stride: Tuple[int, ...]
    padding: Union[str, Tuple[int, ...]]
    dilation: Tuple[int, ...]

    def _init_channels(self, op: str, in_channels: int, out_channels: int) -> None:
        self._op = op
        self.in_channels = check_int(in_channels, "in_channels", op, 1)
        self.out_channels = check_int(out_channels, "out_channels", op, 1)

    def _init_groups_bias_algo(self, op: str, groups: int, bias: bool, algo: str) -> None:
        self.groups = check_int(groups, "groups", op, 1)
        for name, v in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if v % self.groups:
                raise ValueError(f"{op}: {name} must be divisible by groups, got {name}={v}, groups={self.groups}")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{op}: bias must be a bool, got {bias!r}")
        self.algo = check_choice(algo, "algo", op, CONV_ALGOS)

    def _init_parameters(self, bias: bool) -> None:
        init_weight_and_bias(self, (self.out_channels, self.in_channels // self.groups) + self.kernel_size, bias)

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
        reset_weight_and_bias(self)

    def _args(self) -> Dict[str, Any]:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, algo=self.algo)

    def forward(self, x: ArrayLike) -> np.ndarray:
        """x (N, in_channels, *spatial) -> (N, out_channels, *spatial out); saves x in training mode."""
        return self._forward(x, relu=False)

    def _forward(self, x: ArrayLike, relu: bool) -> np.ndarray:
        # relu=True is used by Sequential when a ReLU follows (see container.py).
        x = F.as_float32(x, "input")
        b = None if self.bias is None else self.bias.data
        y = self._conv(x, self.weight.data, b, **self._args(), relu=relu)
        self.save_for_backward(x)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dx (None when ``input_grad`` is False); accumulates into weight.grad and bias.grad."""
        (x,) = self.saved()
        return weighted_backward(self._conv_backward, self, grad_output, x, input_grad, **self._args())

    def extra_repr(self) -> str:
        """PyTorch's: the hyper-parameters that differ from their defaults (and ``algo`` unless 'auto')."""
        zeros, ones = (0,) * len(self.kernel_size), (1,) * len(self.kernel_size)
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", zeros), ("dilation", ones), ("output_padding", zeros)):
            value = getattr(self, name, default)  # (output_padding: transposed convolutions only)
            if value != default:
                s += f", {name}={value}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.algo != "auto":
            s += f", algo={self.algo!r}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over NCHW input, PyTorch's ``nn.Conv2d`` (zero padding only).

    ``weight`` is (out_channels, in_channels/groups, kh, kw), ``bias``
    (out_channels,) or None; both start at U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    with fan_in = in_channels/groups * kh * kw, as PyTorch. ``padding`` is an
    int, a pair, 'valid' or 'same' (stride 1 only). ``algo`` forces the kernel
    ('im2col', 'direct', 'winograd'; see :func:`pycnn.functional.conv2d`);
    'auto' chooses by shape.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1, padding: Union[int, Tuple[int, int], str] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1, groups: int = 1, bias: bool = True,
                 algo: str = "auto") -> None:
        super().__init__()
        op = "Conv2d"
        self._init_channels(op, in_channels, out_channels)
        self.kernel_size = check_pair(kernel_size, "kernel_size", op, 1)
        self.stride = check_pair(stride, "stride", op, 1)
        self.dilation = check_pair(dilation, "dilation", op, 1)
        self._init_groups_bias_algo(op, groups, bias, algo)
        F.conv_padding(padding, self.kernel_size, self.stride, self.dilation, op)  # validates
        self.padding = padding if isinstance(padding, str) else check_pair(padding, "padding", op, 0)
        self._init_parameters(bias)

    def _forward(self, x: ArrayLike, relu: bool) -> np.ndarray:
        if self.training or not fused.enabled():
            return super()._forward(x, relu)
        # Eval mode: weights packed once, not per call (pycnn.nn.fused).
        y = fused.fused_conv2d(self, F.as_float32(x, "input"), relu=relu)
        self.save_for_backward()
        return y

class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) input, PyTorch's ``nn.Conv1d`` (zero padding only).

    ``weight`` is (out_channels, in_channels/groups, kernel_size), ``bias``
    (out_channels,) or None, initialised as PyTorch. ``padding`` is an int,
    'valid' or 'same' (stride 1). Runs on the 2-D convolution kernels with a
    (1, k) kernel, so it has their speed and their ``algo`` choice.
    """

    _conv = staticmethod(F.conv1d)
    _conv_backward = staticmethod(F.conv1d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: Union[int, str] = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 algo: str = "auto") -> None:
        super().__init__()
        op = "Conv1d"
        self._init_channels(op, in_channels, out_channels)
        self.kernel_size = (check_single(kernel_size, "kernel_size", op, 1),)
        self.stride = (check_single(stride, "stride", op, 1),)
        self.dilation = (check_single(dilation, "dilation", op, 1),)
        self._init_groups_bias_algo(op, groups, bias, algo)
        if isinstance(padding, str):
            F.conv_padding(padding, (1, self.kernel_size[0]), (1, self.stride[0]), (1, self.dilation[0]), op)
            self.padding = padding
        else:
            self.padding = (check_single(padding, "padding", op, 0),)
        self._init_parameters(bias)


class Conv3d(_ConvNd):
    """3-D convolution over (N, C, T, H, W) input (video), PyTorch's ``nn.Conv3d`` (zero padding only).

    ``weight`` is (out_channels, in_channels/groups, kt, kh, kw), ``bias``
    (out_channels,) or None, initialised as PyTorch, so state dicts load both
    ways. ``kernel_size``, ``stride``, ``dilation`` and ``padding`` are an int
    or a (t, h, w) triple; ``padding`` may also be 'valid' or 'same' (stride
    1). Runs on the 2-D kernels, each output frame's input frames stacked as
    channels (docs/architecture.md): a (1, k, k) kernel costs about a 2-D
    convolution per frame. ``algo`` picks the 2-D algorithm, as for Conv2d.
    """

    _conv = staticmethod(F.conv3d)
    _conv_backward = staticmethod(F.conv3d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Tuple[int, int, int]],
                 stride: Union[int, Tuple[int, int, int]] = 1, padding: Union[int, Tuple[int, int, int], str] = 0,
                 dilation: Union[int, Tuple[int, int, int]] = 1, groups: int = 1, bias: bool = True,
                 algo: str = "auto") -> None:
        super().__init__()
        op = "Conv3d"
        self._init_channels(op, in_channels, out_channels)
        self.kernel_size = k = check_triple(kernel_size, "kernel_size", op, 1)
        self.stride = s = check_triple(stride, "stride", op, 1)
        self.dilation = d = check_triple(dilation, "dilation", op, 1)
        self._init_groups_bias_algo(op, groups, bias, algo)
        F.conv3d_padding(padding, k, s, d, op)  # validates
        self.padding = padding if isinstance(padding, str) else check_triple(padding, "padding", op, 0)
        self._init_parameters(bias)


class Conv2Plus1d(Module):
    """The (2+1)-D convolution of Tran et al. (2018, R(2+1)D): a (1, k, k) spatial Conv3d, a ReLU, then a
    (k, 1, 1) temporal Conv3d, in place of one (k, k, k) convolution.

    ``stride`` and ``padding`` are an int or a (t, h, w) triple: the spatial convolution takes their
    (h, w) parts, the temporal one their t part. ``padding`` defaults to ``kernel_size // 2`` (sizes kept
    for odd kernels and stride 1). ``mid_channels`` defaults to R(2+1)D's (and torchvision's) choice,
    ``in * out * k^3 // (in * k^2 + k * out)``, which keeps the parameters of the full 3-D convolution.
    There is no normalisation between the two convolutions (R(2+1)D puts a BatchNorm3d there): compose
    one yourself from the members ``spatial``, ``relu`` and ``temporal`` if you need it.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: Optional[int] = None,
                 kernel_size: int = 3, stride: Union[int, Tuple[int, int, int]] = 1,
                 padding: Optional[Union[int, Tuple[int, int, int]]] = None, bias: bool = True) -> None:
        super().__init__()
        op = "Conv2Plus1d"
        in_channels = check_int(in_channels, "in_channels", op, 1)
        out_channels = check_int(out_channels, "out_channels", op, 1)
        k = check_int(kernel_size, "kernel_size", op, 1)
        if mid_channels is None:
            mid_channels = max(1, in_channels * out_channels * k ** 3 // (in_channels * k * k + k * out_channels))
        mid_channels = check_int(mid_channels, "mid_channels", op, 1)
        st, sh, sw = check_triple(stride, "stride", op, 1)
        pt, ph, pw = check_triple(k // 2 if padding is None else padding, "padding", op, 0)
        self.spatial = Conv3d(in_channels, mid_channels, (1, k, k), (1, sh, sw), (0, ph, pw), bias=bias)
        self.relu = ReLU()
        self.temporal = Conv3d(mid_channels, out_channels, (k, 1, 1), (st, 1, 1), (pt, 0, 0), bias=bias)

    def forward(self, x: ArrayLike) -> np.ndarray:
        """x (N, in_channels, T, H, W) -> (N, out_channels, To, Ho, Wo)."""
        return self.temporal(self.relu(self.spatial(x)))

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dx (None when ``input_grad`` is False); both convolutions' parameter grads accumulate."""
        g = cast(np.ndarray, self.temporal.backward(grad_output))  # input_grad: an array
        g = self.relu.backward(g)
        return self.spatial.backward(g, input_grad)


class _ConvTransposeNd(_ConvNd):
    """What ConvTranspose2d and ConvTranspose1d share: PyTorch's parameter shapes (weight (in_channels,
    out_channels/groups, *kernel_size), bias (out_channels,)) and initialisation (fan_in =
    out_channels/groups * kernel elements, from the weight's second axis), and forward / backward
    through the functional transposed ops (conv2d's kernels underneath)."""

    _conv: Callable[..., np.ndarray] = staticmethod(F.conv_transpose2d)
    _conv_backward: Callable[..., Any] = staticmethod(F.conv_transpose2d_backward)
    padding: Tuple[int, ...]
    output_padding: Tuple[int, ...]

    def _init_output_padding(self, output_padding: Tuple[int, ...]) -> None:
        # PyTorch's rule (it checks at the first forward; here the constructor does).
        for o, s, d in zip(output_padding, self.stride, self.dilation):
            if o >= s and o >= d:
                raise ValueError(f"{self._op}: output_padding must be smaller than either stride or dilation, got "
                                 f"output_padding={output_padding}, stride={self.stride}, dilation={self.dilation}")
        self.output_padding = output_padding

    def _init_parameters(self, bias: bool) -> None:
        init_weight_and_bias(self, (self.in_channels, self.out_channels // self.groups) + self.kernel_size, bias,
                             bias_size=self.out_channels)

    def _args(self) -> Dict[str, Any]:
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation, algo=self.algo)

    def forward(self, x: ArrayLike, output_size: Optional[Sequence[int]] = None) -> np.ndarray:
        """x (N, in_channels, *spatial) -> (N, out_channels, *spatial out); saves x in training mode.

        ``output_size`` (PyTorch's): the spatial output size, or the whole output shape, when a stride
        above 1 makes several sizes possible (``Conv2d`` maps each of them to the input's size). It picks
        the output padding for this call, in place of ``output_padding``; each size must lie between the
        size without output padding and that plus ``stride - 1``.
        """
        x = F.as_float32(x, "input")
        args = self._args()
        if output_size is not None:
            args["output_padding"] = self._output_padding_for(x, output_size)
        b = None if self.bias is None else self.bias.data
        y = self._conv(x, self.weight.data, b, **args)
        self.save_for_backward(x, args["output_padding"])
        return y

    def _output_padding_for(self, x: np.ndarray, output_size: Sequence[int]) -> Tuple[int, ...]:
        k = len(self.kernel_size)
        if not isinstance(output_size, (list, tuple)) or not all(is_int(s) for s in output_size):
            raise TypeError(f"{self._op}: output_size must be a list or tuple of ints, got {output_size!r}")
        size = tuple(int(s) for s in output_size)
        size = size[2:] if len(size) == k + 2 else size
        if len(size) != k:
            raise ValueError(f"{self._op}: output_size must have {k} or {k + 2} elements, got {output_size!r}")
        if x.ndim != k + 2:
            raise ValueError(f"{self._op}: expected input of {k + 2} dimensions, got shape {x.shape}")
        padding = []
        for d in range(k):
            smallest = ((x.shape[d + 2] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= size[d] <= largest:
                raise ValueError(f"{self._op}: output_size {tuple(output_size)} is not possible for an input of "
                                 f"shape {x.shape}: dimension {d + 2} of the output can be {smallest} to {largest}")
            padding.append(size[d] - smallest)
        return tuple(padding)

    def _forward(self, x: ArrayLike, relu: bool) -> np.ndarray:
        # Sequential fuses a following ReLU only into the layers listed in container.py, not this one.
        assert not relu
        return self.forward(x)

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dx (None when ``input_grad`` is False); accumulates into weight.grad and bias.grad."""
        x, output_padding = self.saved()
        return weighted_backward(self._conv_backward, self, grad_output, x, input_grad,
                                 **dict(self._args(), output_padding=output_padding))


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over NCHW input, PyTorch's ``nn.ConvTranspose2d`` (zero padding only).

    The gradient of a Conv2d with respect to its input, used as a layer: each input pixel adds its
    weighted kernel to the output at ``stride`` spacing, so a stride-2 layer doubles the resolution.
    Output size ``(H - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1``;
    ``output_padding`` (smaller than stride or dilation) adds rows and columns at the bottom and right.
    ``weight`` is (in_channels, out_channels/groups, kh, kw), ``bias`` (out_channels,) or None, initialised
    as PyTorch, so state dicts load both ways. ``algo`` forces the kernel of the underlying convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1, padding: Union[int, Tuple[int, int]] = 0,
                 output_padding: Union[int, Tuple[int, int]] = 0, groups: int = 1, bias: bool = True,
                 dilation: Union[int, Tuple[int, int]] = 1, algo: str = "auto") -> None:
        super().__init__()
        op = "ConvTranspose2d"
        self._init_channels(op, in_channels, out_channels)
        self.kernel_size = check_pair(kernel_size, "kernel_size", op, 1)
        self.stride = check_pair(stride, "stride", op, 1)
        self.padding = check_pair(padding, "padding", op, 0)
        self.dilation = check_pair(dilation, "dilation", op, 1)
        self._init_output_padding(check_pair(output_padding, "output_padding", op, 0))
        self._init_groups_bias_algo(op, groups, bias, algo)
        self._init_parameters(bias)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C, L) input, PyTorch's ``nn.ConvTranspose1d``: ConvTranspose2d's
    rules with weight (in_channels, out_channels/groups, kernel_size), run on the 2-D kernels."""

    _conv = staticmethod(F.conv_transpose1d)
    _conv_backward = staticmethod(F.conv_transpose1d_backward)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, groups: int = 1, bias: bool = True, dilation: int = 1,
                 algo: str = "auto") -> None:
        super().__init__()
        op = "ConvTranspose1d"
        self._init_channels(op, in_channels, out_channels)
        self.kernel_size = (check_single(kernel_size, "kernel_size", op, 1),)
        self.stride = (check_single(stride, "stride", op, 1),)
        self.padding = (check_single(padding, "padding", op, 0),)
        self.dilation = (check_single(dilation, "dilation", op, 1),)
        self._init_output_padding((check_single(output_padding, "output_padding", op, 0),))
        self._init_groups_bias_algo(op, groups, bias, algo)
        self._init_parameters(bias)
