"""pycnn: fast convolutional neural networks on the CPU.

C++ kernels (OpenMP-threaded, vectorised) under a PyTorch-style API with NumPy
arrays in and out::

    import pycnn
    from pycnn import nn, optim
    from pycnn.train import fit, evaluate, predict

    pycnn.save(model, "model.npz"); model = pycnn.load("model.npz")
    pycnn.summary(model, (1, 28, 28))

Submodules are imported on first use, so ``import pycnn`` stays cheap for
programs that embed it.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import threading
from typing import TYPE_CHECKING, Iterator, List, Tuple

if TYPE_CHECKING:  # what __getattr__ below imports lazily, for type checkers and IDEs
    from . import data, distributed, functional, io, metrics, models, nn, onnx, optim, reference, train, viz  # noqa: F401
    from ._summary import summary  # noqa: F401
    from .io import load, save  # noqa: F401

# From the root of a source checkout after a non-editable `pip install .`,
# `python -m ...` puts the checkout first on sys.path, and its pycnn/ (Python
# sources only) hides the installed package with the compiled _core. Then
# also search the other pycnn directories on sys.path, where that one is.
if importlib.util.find_spec(f"{__name__}._core") is None:  # pragma: no cover - depends on the install
    import pkgutil  # (only here: a quarter of `import pycnn`'s own time)

    __path__ = pkgutil.extend_path(__path__, __name__)

__all__ = [
    "nn", "optim", "functional", "data", "train", "reference", "models", "metrics", "io", "viz", "distributed",
    "onnx", "save", "load", "summary",
    "set_num_threads", "get_num_threads", "threads", "set_buffer_cache_limit", "manual_seed", "show_config", "__version__",
]

_SUBMODULES = {"nn", "optim", "functional", "data", "train", "reference", "models", "metrics", "io", "viz",
               "distributed", "onnx"}
# Whether set_num_threads was called: pycnn.distributed.init() then keeps the user's choice.
_num_threads_chosen = False
# Functions importable from the top level, and the submodule that defines each.
_FUNCTIONS = {"save": "io", "load": "io", "summary": "_summary"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
    if name == "__version__":
        from . import _core

        return _core.__version__
    raise AttributeError(f"module 'pycnn' has no attribute {name!r}")


def set_num_threads(n: int) -> None:
    """Set the number of threads every pycnn kernel uses: 1 <= n <= max(16, 4 * cores).

    Raises ``ValueError`` outside that range, and ``RuntimeError`` for n > 1
    in a process forked after its parent ran threaded kernels (OpenMP's
    thread pool does not survive fork; see docs/reliability.md).
    """
    from . import _core

    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    if n > _core.max_num_threads():  # (also what does not fit the C++ int64: 2**64)
        raise ValueError(f"set_num_threads: expected n <= {_core.max_num_threads()} (4 per hardware thread, at "
                         f"least 16), got {n}: more threads only oversubscribe the cores")
    _core.set_num_threads(n)
    global _num_threads_chosen
    _num_threads_chosen = True


# The open threads() blocks, oldest first, as [token, n], and what the count was before the first.
# The count is one process-wide setting; blocks opened and closed by several Python threads in any
# order leave it at the newest open block's n, and at the saved count once all are closed.
_threads_lock = threading.Lock()
_threads_open: List[Tuple[object, int]] = []
_threads_base: Tuple[int, bool] = (0, False)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """``with pycnn.threads(n):`` run the body with ``n`` kernel threads, then restore the previous count.

    Nests (leaving a block restores the count of the block around it) and
    restores on error; ``n`` is checked as :func:`set_num_threads` checks it,
    before anything changes. The count is process-wide, like
    ``set_num_threads``: kernels another Python thread starts inside the
    block use it too. Blocks entered and left by several Python threads in
    any order are safe: the count is always that of the newest block still
    open, and the one found before the first block once all are closed.
    """
    global _threads_base, _num_threads_chosen
    from . import _core

    token = object()
    with _threads_lock:
        if not _threads_open:
            _threads_base = (get_num_threads(), _num_threads_chosen)
        set_num_threads(n)
        _threads_open.append((token, n))
    try:
        yield
    finally:
        with _threads_lock:
            _threads_open[:] = [(t, k) for t, k in _threads_open if t is not token]
            if _threads_open:
                _core.set_num_threads(_threads_open[-1][1])
            else:
                _core.set_num_threads(_threads_base[0])
                _num_threads_chosen = _threads_base[1]


def get_num_threads() -> int:
    """Threads pycnn kernels use: set_num_threads(), else $OMP_NUM_THREADS, else the core count."""
    from . import _core

    return _core.get_num_threads()


def set_buffer_cache_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` of freed output-array memory for reuse (default 512 MiB; 0 keeps none).

    Arrays returned by pycnn's kernels take their memory from a cache: when
    one is freed, its block is kept and handed to the next output of the same
    size, so a training loop stops paying a page fault per 4 KiB of every
    activation each step (a quarter of a Fashion-MNIST CNN step on the
    development VM). Memory is reused only after its array is gone. Lower
    the limit to give memory back to the system sooner; ``set_buffer_cache_limit(0)``
    frees everything held now. ``pycnn.show_config()`` shows what is held.
    """
    from . import _core

    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError(f"set_buffer_cache_limit: expected an int, got {type(nbytes).__name__}")
    _core.set_buffer_cache_limit(nbytes)


def manual_seed(seed: int) -> None:
    """Seed pycnn's random number generator (weight initialisation, shuffling, dropout)."""
    from ._random import manual_seed as _manual_seed

    _manual_seed(seed)


def show_config() -> str:
    """Print and return the configuration: version, instruction set in use, threads, caches, compiler, flags.

    The instruction set is the best the CPU supports unless the environment
    variable ``PYCNN_ISA`` (``scalar``, ``avx2`` or ``avx512``) asks for a
    lower one when pycnn is first imported.
    """
    from . import _core

    info = _core.build_info()
    l1, l2, l3 = info["cache_sizes"]
    buffers = _core.buffer_cache_info()
    lines = [
        f"pycnn {info['version']}",
        f"  isa:         {_core.isa()} (from {info['isa_origin']}; supported: {', '.join(_core.supported_isas())})",
        f"  threads:     {_core.get_num_threads()} of {info['max_threads']} available",
        f"  caches:      L1d {l1 // 1024} KiB, L2 {l2 // 1024} KiB, L3 {l3 // 1024} KiB",
        f"  compiler:    {info['compiler']} ({info['build_type']})",
        f"  flags:       {info['cxx_flags'].strip()}",
        f"  openmp:      {'yes' if info['openmp'] else 'no (single-threaded build)'}",
        f"  buffers:     {buffers['held_bytes'] / 2**20:.1f} MiB of freed outputs held for reuse "
        f"(limit {buffers['limit_bytes'] / 2**20:.0f} MiB; {buffers['hits']} reused, {buffers['misses']} new)",
    ]
    text = "\n".join(lines)
    print(text)
    return text


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
