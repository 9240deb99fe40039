"""Stateless operations: ``pycnn.functional`` (imported as ``F`` by convention).

One module per family, as in ``csrc/``: conv, pooling, activation, linear,
loss, normalization, dropout, optim, resize; all public names are importable from
``pycnn.functional`` itself.

Every op takes NumPy arrays (NCHW for images, as PyTorch), checks its
hyper-parameters, converts its inputs and calls the compiled kernels in
``pycnn._core``. Array *shapes* are checked once, by the C++ layer, which
raises ``ValueError`` with a message quoting the shapes.

Input conversion (one rule, applied by :func:`as_float32` to every array read):

* a ``float32`` C-contiguous, aligned ``ndarray`` is used as it is (no copy);
* an ``ndarray`` of any other real numeric dtype (``float16``, ``float64``,
  integers, ``bool``) or any array-like (lists, scalars, objects with
  ``__array__``) is converted once to a float32 C-contiguous aligned array
  (``np.require(x, np.float32, ("C", "A"))``; unlike ``np.ascontiguousarray`` this
  keeps 0-d input 0-d);
* a non-contiguous or negative-stride ``float32`` array is made contiguous once;
* complex, object, string, datetime (any non-real) dtypes raise ``TypeError``
  naming the argument: there is no sensible float32 value for them.

Class labels (:func:`as_labels`) must have an integer dtype (``TypeError``
otherwise, e.g. for float labels, which usually mean labels and inputs were
swapped); they are converted to contiguous ``int64``.

Arrays written in place (``sgd_step``'s parameter and momentum buffer, the
``grad_weight`` / ``grad_bias`` accumulators of the backward functions) are
never converted: a converted copy would receive the update and the caller's
array would silently keep its old value. They must be ``float32``, C-contiguous
and writeable, otherwise ``TypeError``.

Gradients follow one convention: gradients with respect to inputs (dX) are
returned as new arrays; gradients with respect to parameters (dW, db)
accumulate (``+=``) into the arrays passed as ``grad_weight`` / ``grad_bias``,
or into fresh zero arrays when none are given.
"""
from __future__ import annotations

from ._convert import as_float32, as_labels
from .activation import (add, elu, elu_backward, gelu, gelu_backward, leaky_relu, leaky_relu_backward, relu,
                         relu_backward, sigmoid, sigmoid_backward, softmax, softmax_backward, tanh, tanh_backward)
from .conv import (conv1d, conv1d_backward, conv2d, conv2d_backward, conv3d, conv3d_backward, conv3d_padding,
                   conv_padding, conv_transpose1d,
                   conv_transpose1d_backward, conv_transpose2d, conv_transpose2d_backward, conv_transpose_output_size)
from .dropout import dropout, dropout_backward
from .linear import linear, linear_backward
from .loss import cross_entropy, cross_entropy_backward, cross_entropy_forward, mse_loss, mse_loss_backward
from .normalization import batch_norm, batch_norm_backward, batch_norm_forward
from .optim import adam_step, sgd_step, sgd_step_many, zero_many
from .pooling import (adaptive_avg_pool1d, adaptive_avg_pool1d_backward, adaptive_avg_pool2d,
                      adaptive_avg_pool2d_backward, avg_pool1d, avg_pool1d_backward, avg_pool2d, avg_pool2d_backward,
                      max_pool1d, max_pool1d_backward, max_pool2d, max_pool2d_backward, max_pool3d,
                      max_pool3d_backward, avg_pool3d, avg_pool3d_backward, adaptive_avg_pool3d,
                      adaptive_avg_pool3d_backward)
from .resize import interpolate, interpolate_backward

__all__ = [
    "as_float32", "as_labels",
    "conv2d", "conv2d_backward", "conv1d", "conv1d_backward", "conv_padding",
    "conv3d", "conv3d_backward", "conv3d_padding",
    "conv_transpose2d", "conv_transpose2d_backward", "conv_transpose1d", "conv_transpose1d_backward",
    "conv_transpose_output_size",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "max_pool1d", "max_pool1d_backward", "avg_pool1d", "avg_pool1d_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
    "max_pool3d", "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward",
    "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward",
    "add", "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "elu", "elu_backward", "gelu", "gelu_backward", "softmax", "softmax_backward",
    "linear", "linear_backward",
    "interpolate", "interpolate_backward",
    "cross_entropy", "cross_entropy_forward", "cross_entropy_backward", "mse_loss", "mse_loss_backward",
    "batch_norm", "batch_norm_forward", "batch_norm_backward",
    "dropout", "dropout_backward",
    "sgd_step", "sgd_step_many", "zero_many", "adam_step",
]

# Deprecated: softmax_c was the C++ softmax while softmax was a NumPy one;
# softmax is now the C++ kernel. Kept for one release (docs/api.md).
softmax_c = softmax


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
