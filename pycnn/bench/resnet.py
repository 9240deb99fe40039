"""ResNet-18 in torchvision's layout, as each peer runs it: pycnn, PyTorch and ONNX Runtime.

All three run the *same weights*: pycnn's :func:`pycnn.models.resnet18` is
built from ``pycnn.manual_seed(0)``, its state dict is loaded into PyTorch's
copy of torchvision's module tree (:func:`torch_resnet18`; torchvision
itself is not needed), and ONNX Runtime runs that PyTorch model exported
with ``torch.onnx.export``. ONNX Runtime gets the same thread count and no
spinning of its idle threads (``session.intra_op.allow_spinning = 0``), so
it does not take the core from the next library timed (see
:mod:`pycnn.bench.timing`); it folds BatchNorm and fuses epilogues itself
(its default graph optimisations), which is what a deployment would run.
"""
from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Sequence, Tuple

if TYPE_CHECKING:
    import numpy as np

    from ..nn import Module


def model_flops(model: Module, input_shape: Sequence[int]) -> float:
    """2 x the multiply-adds of one forward pass of ``model`` (convolutions and linear layers) on one input."""
    import numpy as np

    from .._summary import record_outputs
    from ..nn import Conv2d, Linear

    was_training = model.training
    model.eval()
    try:
        with record_outputs(model) as records:
            model(np.zeros((1, *input_shape), np.float32))
    finally:
        model.train(was_training)
    flops = 0.0
    for _, module, out in records:
        if isinstance(module, Conv2d):
            kh, kw = module.kernel_size
            flops += 2.0 * out.size * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, Linear):
            flops += 2.0 * out.size * module.in_features
    return flops


def torch_basic_block(torch: Any, inplanes: int, planes: int, stride: int = 1) -> Any:
    """torchvision.models.resnet.BasicBlock, written out with torch.nn."""
    tnn = torch.nn
    base: Any = tnn.Module

    class BasicBlock(base):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(planes))

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    return BasicBlock()


def torch_stages(torch: Any, layers: "OrderedDict[str, Any]", inplanes: int, widths: Sequence[int],
                 blocks: Sequence[int]) -> int:
    """Appends torchvision's ``layer1``, ``layer2``, ...; returns the last stage's channels."""
    for i, (planes, n) in enumerate(zip(widths, blocks)):
        stage = []
        for j in range(n):
            stage.append(torch_basic_block(torch, inplanes, planes, 2 if (i > 0 and j == 0) else 1))
            inplanes = planes
        layers[f"layer{i + 1}"] = torch.nn.Sequential(*stage)
    return inplanes


def torch_resnet18(torch: Any, in_channels: int = 3, num_classes: int = 1000) -> Any:
    """torchvision.models.resnet18's module tree (same names, so the same state dict keys)."""
    tnn = torch.nn
    layers: OrderedDict[str, Any] = OrderedDict(
        conv1=tnn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), bn1=tnn.BatchNorm2d(64), relu=tnn.ReLU(inplace=True),
        maxpool=tnn.MaxPool2d(3, 2, 1))
    channels = torch_stages(torch, layers, 64, (64, 128, 256, 512), (2, 2, 2, 2))
    layers["avgpool"] = tnn.AdaptiveAvgPool2d(1)
    layers["flatten"] = tnn.Flatten()
    layers["fc"] = tnn.Linear(channels, num_classes)
    return tnn.Sequential(layers)


def resnet18_flops(size: int, num_classes: int = 1000) -> float:
    """2 x the multiply-adds of ResNet-18's forward pass on one size x size RGB image (3.64e9 at 224)."""

    def out(s: int, k: int, stride: int, pad: int) -> int:
        return (s + 2 * pad - k) // stride + 1

    s = out(size, 7, 2, 3)
    total = 2.0 * 64 * 3 * 49 * s * s
    s = out(s, 3, 2, 1)  # max pool
    c_in = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for j in range(2):
            st = stride if j == 0 else 1
            so = out(s, 3, st, 1)
            total += 2.0 * planes * c_in * 9 * so * so + 2.0 * planes * planes * 9 * so * so
            if st != 1 or c_in != planes:
                total += 2.0 * planes * c_in * so * so  # the 1x1 projection
            c_in, s = planes, so
    return total + 2.0 * 512 * num_classes


def torch_cifar_resnet(torch: Any, depth: int, in_channels: int, num_classes: int, width: int = 16) -> Any:
    """:class:`pycnn.models.resnet.ResNet` (He et al.'s CIFAR ResNet, depth 6n + 2) with torchvision's names."""
    tnn = torch.nn
    n = (depth - 2) // 6
    layers: OrderedDict[str, Any] = OrderedDict(
        conv1=tnn.Conv2d(in_channels, width, 3, 1, 1, bias=False), bn1=tnn.BatchNorm2d(width), relu=tnn.ReLU())
    channels = torch_stages(torch, layers, width, (width, 2 * width, 4 * width), (n, n, n))
    layers.update(avgpool=tnn.AdaptiveAvgPool2d(1), flatten=tnn.Flatten(), fc=tnn.Linear(channels, num_classes))
    return tnn.Sequential(layers)


def pycnn_resnet18(num_classes: int = 1000) -> Module:
    """pycnn's ResNet-18, initialised from ``manual_seed(0)``: the weights every peer runs."""
    from .._random import manual_seed
    from ..models import resnet18

    manual_seed(0)
    return resnet18(num_classes=num_classes)


def torch_copy(torch: Any, model: Module, num_classes: int = 1000) -> Any:
    """A PyTorch ResNet-18 holding ``model``'s weights."""
    tmodel = torch_resnet18(torch, 3, num_classes)
    tmodel.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return tmodel


def onnxruntime_or_none() -> Any:
    """``onnxruntime`` if it imports (and torch can export to it), else None: an optional peer."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export writes through it)
        import onnxruntime
    except Exception:
        return None
    return onnxruntime


def onnxruntime_session(torch: Any, tmodel: Any, input_shape: Tuple[int, ...], threads: int) -> Callable[[Any], Any]:
    """Exports ``tmodel`` (eval mode) to ONNX and returns ``run(x) -> logits`` on an ONNX Runtime session."""
    ort = onnxruntime_or_none()
    tmodel.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "resnet18.onnx")
        torch.onnx.export(tmodel, torch.zeros(input_shape), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["y"], {"x": x})[0]


def random_batch(n: int, size: int, num_classes: int = 1000, seed: int = 7) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` random images (n, 3, size, size) in [0, 1) and integer labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((n, 3, size, size), dtype=np.float32), rng.integers(0, num_classes, n).astype(np.int64)
