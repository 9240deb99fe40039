"""The public API: what dir() shows and what docs/api.md lists."""
import importlib
import re
from pathlib import Path

import pytest

import pycnn

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"
# Every public module with an __all__; what they export is the public API.
PUBLIC_MODULES = ["pycnn", "pycnn.nn", "pycnn.nn.init", "pycnn.optim", "pycnn.lr_scheduler", "pycnn.functional",
                  "pycnn.reference", "pycnn.data", "pycnn.train", "pycnn.metrics", "pycnn.models", "pycnn.io",
                  "pycnn.distributed", "pycnn.viz"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_is_in_docs_api_md(name):
    text = API_MD.read_text(encoding="utf-8")
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not re.search(r"(?<!\w)" + re.escape(n) + r"\b", text)]
    assert not missing, f"{name}.__all__ names missing from docs/api.md: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_dir_lists_the_public_api_only(name):
    module = importlib.import_module(name)
    assert dir(module) == sorted(module.__all__)
    for n in module.__all__:
        getattr(module, n)  # every listed name resolves (lazy ones included)


def test_dir_pycnn_shows_the_lazy_names_and_optim_hides_its_imports():
    names = dir(pycnn)
    for lazy in ("save", "load", "summary", "train", "data", "nn", "threads"):
        assert lazy in names
    for internal in ("importlib", "pkgutil", "TYPE_CHECKING", "threading"):
        assert internal not in names
    optim_names = dir(pycnn.optim)
    for internal in ("Any", "Dict", "np", "warnings"):
        assert internal not in optim_names
    assert {"SGD", "Adam", "AdamW"} <= set(optim_names)
