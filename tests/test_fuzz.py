"""Issue 12, item 10: the fuzzers of tests/fuzzing.py, at a budget CI can afford, on the same inputs every run.

Every target (model files through pycnn.load and read_metadata, load_weights,
the IDX reader, the functional API's argument space) runs
``PYCNN_FUZZ_EXAMPLES`` inputs (default 100 each, derandomized: hypothesis
draws the same ones every run) in a child process with a bounded address
space: none may crash (an exception outside the documented ones, or the
process dying) and none may be silently accepted (see fuzzing.py for what
each target checks). For a long local run:
``python tests/fuzzing.py --seconds 600 --seed 1``.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

RUNNER = pathlib.Path(__file__).resolve().parent / "fuzzing.py"
EXAMPLES = int(os.environ.get("PYCNN_FUZZ_EXAMPLES", "100"))
TARGETS = ["model_file", "load_weights", "idx", "functional"]


@pytest.fixture(scope="module")
def results():
    # cwd: not the checkout, whose pycnn/ (without a built _core) would shadow the installed one
    r = subprocess.run([sys.executable, str(RUNNER), "--json", "--examples", str(EXAMPLES)], capture_output=True,
                       text=True, timeout=1800, cwd=tempfile.gettempdir(),
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
    found = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            found[rec["target"]] = rec
    if r.returncode not in (0, 1) or len(found) != len(TARGETS):
        pytest.fail(f"the fuzz runner died (exit {r.returncode}) after {sorted(found)}:\n{r.stderr[-3000:]}")
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_no_crash_and_no_silent_acceptance(results, target):
    rec = results[target]
    assert rec["tried"] == EXAMPLES
    assert rec["accepted"] + rec["clear"] + rec["silent"] + rec["crash"] == rec["tried"]
    assert rec["crash"] == 0, "crashes:\n" + "\n".join(rec["examples"]["crash"])
    assert rec["silent"] == 0, "silent acceptances:\n" + "\n".join(rec["examples"]["silent"])
    # the inputs reach both sides of the checks, not only the first refusal
    assert rec["accepted"] > 0 and rec["clear"] > 0, rec
