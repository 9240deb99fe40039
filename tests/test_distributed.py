"""pycnn.distributed: data-parallel training and inference over MPI.

Jobs of two ranks are launched as users launch them, ``mpiexec -n 2 python
job.py`` (one OpenMP thread per rank, a timeout on every launch, so a hang
fails instead of blocking the suite), write their results to files, and the
tests compare those with single-process pycnn computed here. They skip,
with the reason, where mpi4py or mpiexec is missing (``pip install
"pycnn[mpi]"``). The single-process behaviour (no MPI at all: everything is
a job of size 1) is tested in this process.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pycnn
import pycnn.distributed as dist
from _distributed_jobs import OPTIMIZERS, bn_model, plain_model, samples
from conftest import assert_close
from pycnn import data, nn, optim
from pycnn.train import evaluate, fit, predict

LAUNCH_TIMEOUT = 90  # seconds; a job takes 2-4 s


def _mpiexec() -> list:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install \"pycnn[mpi]\")")
    exe = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = exe if os.path.exists(exe) else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec found (pip install \"pycnn[mpi]\" brings MPICH's)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    # Open MPI refuses root and more ranks than cores unless told; MPICH's hydra needs nothing.
    return [exe, "--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version else [exe]


def launch(tmp_path, script: str, *args: str, n: int = 2, threads: str = "1") -> subprocess.CompletedProcess:
    """Run ``script`` as an MPI job of ``n`` ranks in ``tmp_path``; the completed process (never a hang).

    ``threads``: OMP_NUM_THREADS of the ranks ("" leaves it unset).
    """
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(script))
    env = dict(os.environ, OMP_NUM_THREADS=threads)
    if not threads:
        del env["OMP_NUM_THREADS"]
    return subprocess.run(_mpiexec() + ["-n", str(n), sys.executable, str(path), *args], cwd=tmp_path,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env,
                          timeout=LAUNCH_TIMEOUT)


# ---------------------------------------------------------------------------------------------------
# The models and data of the jobs: the same code builds them here and there.
# ---------------------------------------------------------------------------------------------------

# The jobs import the models and data from tests/_distributed_jobs.py, as this file does.
COMMON = f"""
import sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
import numpy as np
import pycnn
import pycnn.distributed as dist
from pycnn import nn, optim
from _distributed_jobs import OPTIMIZERS, bn_model, plain_model, samples
"""

TRAINING_JOB = COMMON + '''
out = sys.argv[1]
dist.init()
r, size = dist.rank(), dist.size()
results = {}

# 1. fit with BatchNorm, each rank starting from other weights: broadcast, shards, averaged statistics.
model = bn_model(seed=100 + r)
x, y = samples(120)
history = pycnn.train.fit(model, x, y, loss_fn=nn.CrossEntropyLoss(),
                          optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs=2,
                          batch_size=20, seed=3, verbose=0, validation_data=samples(50, seed=1),
                          distributed=True)
for k, v in model.state_dict().items():
    results[f"fit_bn/{k}"] = v
results["fit_bn/val_loss"] = np.array(history.history["val_loss"])
xv, yv = samples(50, seed=1)
ev = pycnn.train.evaluate(model, xv, yv, batch_size=16, distributed=True)
results["eval"] = np.array([ev["loss"], ev["accuracy"]])
results["predict_outputs"] = pycnn.train.predict_outputs(model, xv, batch_size=16, distributed=True)

# 2. fit without BatchNorm: the same as one process with the same seed.
model = plain_model(seed=7)
history = pycnn.train.fit(model, x, y, loss_fn=nn.CrossEntropyLoss(),
                          optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs=2,
                          batch_size=20, seed=5, verbose=0, distributed=True)
for k, v in model.state_dict().items():
    results[f"fit_plain/{k}"] = v
results["fit_plain/loss"] = np.array(history.history["loss"])

# 3. Two steps on two half-batches (rank r has rows [8r, 8r + 8)), per optimiser; a frozen
#    parameter and a learning-rate schedule on the wrapped optimiser.
xb, yb = samples(16, seed=2)
for name, make in OPTIMIZERS.items():
    model = plain_model(seed=11)
    model[0].bias.requires_grad = False
    opt = dist.DistributedOptimizer(make(model.parameters()))
    schedule = optim.StepLR(opt, step_size=1, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(2):
        loss_fn(model(xb[8 * r: 8 * r + 8]), yb[8 * r: 8 * r + 8])
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        schedule.step()
    for k, v in model.state_dict().items():
        results[f"half/{name}/{k}"] = v

# 4. BatchNorm statistics of one training forward per rank, averaged.
pycnn.manual_seed(13)
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
model(xb[8 * r: 8 * r + 8])
dist.average_buffers(model)
results["bn/running_mean"] = model[1].running_mean
results["bn/running_var"] = model[1].running_var

# 5. A global batch that does not split evenly over the ranks.
try:
    pycnn.train.fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
                    batch_size=21, verbose=0, distributed=True)
except ValueError as e:
    results["odd_batch_error"] = np.array(str(e))

np.savez(f"{out}/rank{r}.npz", **results)
'''


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The training job's results per rank: {name: array} for rank 0 and rank 1."""
    tmp = tmp_path_factory.mktemp("job")
    r = launch(tmp, TRAINING_JOB, str(tmp))
    assert r.returncode == 0, r.stdout + r.stderr
    return [dict(np.load(tmp / f"rank{k}.npz")) for k in range(2)]


def _prefixed(results, prefix):
    return {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}


def test_parameters_and_buffers_bitwise_identical_on_every_rank(job):
    rank0, rank1 = job
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        if key.startswith(("fit_bn/", "fit_plain/", "half/", "bn/")):
            assert np.array_equal(rank0[key], rank1[key]), key
    # The ranks started from different weights and trained on different shards, yet agree.
    assert not np.array_equal(rank0["fit_bn/0.weight"], bn_model(seed=100)[0].weight.data)


def test_distributed_fit_equals_one_process_with_the_global_batch(job):
    model = plain_model(seed=7)
    x, y = samples(120)
    history = fit(model, x, y, loss_fn=nn.CrossEntropyLoss(),
                  optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs=2, batch_size=20,
                  seed=5, verbose=0)
    for k, v in model.state_dict().items():
        assert_close(job[0][f"fit_plain/{k}"], v, rtol=1e-4, atol=1e-5, key=k)
    assert_close(job[0]["fit_plain/loss"], history.history["loss"], rtol=1e-5)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_on_two_half_batches_equals_step_on_the_full_batch(job, name):
    model = plain_model(seed=11)
    model[0].bias.requires_grad = False
    bias_before = model[0].bias.data.copy()
    opt = OPTIMIZERS[name](model.parameters())
    schedule = optim.StepLR(opt, step_size=1, gamma=0.5)
    xb, yb = samples(16, seed=2)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        loss_fn(model(xb), yb)
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        schedule.step()
    for k, v in model.state_dict().items():
        assert_close(job[0][f"half/{name}/{k}"], v, rtol=1e-4, atol=2e-6, optimizer=name, key=k)
    assert np.array_equal(job[0][f"half/{name}/0.bias"], bias_before)  # frozen: neither reduced nor stepped


def test_batchnorm_running_statistics_are_the_mean_over_ranks(job):
    pycnn.manual_seed(13)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    xb, _ = samples(16, seed=2)
    z = model[0](xb).astype(np.float64)  # the BatchNorm's input on all 16 samples
    halves = [z[:8], z[8:]]
    means = [h.mean(axis=(0, 2, 3)) for h in halves]
    variances = [h.var(axis=(0, 2, 3), ddof=1) for h in halves]  # each rank's unbiased batch variance
    momentum = 0.1
    assert_close(job[0]["bn/running_mean"], momentum * np.mean(means, axis=0), rtol=1e-5, atol=1e-6)
    assert_close(job[0]["bn/running_var"], (1 - momentum) + momentum * np.mean(variances, axis=0),
                 rtol=1e-5, atol=1e-6)


def test_evaluate_and_predict_do_not_depend_on_the_rank_count(job):
    model = bn_model(seed=0)
    model.load_state_dict({k: v for k, v in _prefixed(job[0], "fit_bn/").items() if k != "val_loss"})
    xv, yv = samples(50, seed=1)
    one = evaluate(model, xv, yv, batch_size=16)
    assert job[0]["eval"][1] == one["accuracy"]
    assert job[0]["eval"][0] == pytest.approx(one["loss"], rel=1e-12)
    assert np.array_equal(job[0]["predict_outputs"], pycnn.train.predict_outputs(model, xv, batch_size=16))
    assert np.array_equal(job[1]["predict_outputs"], job[0]["predict_outputs"])
    # The validation metrics of the distributed fit are over the whole validation set too (fit evaluates
    # in batches of 256: the batch means round differently).
    assert job[0]["fit_bn/val_loss"][-1] == pytest.approx(one["loss"], rel=1e-6)


FAULT_JOB = COMMON + '''
import os
from pycnn.train import Callback, fit
dist.init()
# Each rank's stderr in a file of its own: mpiexec may interleave the ranks' output mid-line.
os.dup2(os.open(f"err{dist.rank()}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)

class FailOnRank1(Callback):
    def on_batch_begin(self, batch, logs=None):
        if dist.rank() == 1 and batch == 2:
            raise ValueError("bad input on rank 1")

model = plain_model(0)
x, y = samples(200)
fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3,
    batch_size=20, verbose=0, callbacks=[FailOnRank1()], distributed=True)
print("rank", dist.rank(), "finished")
'''


def test_an_exception_on_one_rank_ends_every_rank_with_the_error(tmp_path):
    r = launch(tmp_path, FAULT_JOB)  # a hang would raise subprocess.TimeoutExpired
    assert r.returncode != 0
    failed, waiting = ((tmp_path / f"err{k}.txt").read_text() for k in (1, 0))
    assert "ValueError: bad input on rank 1\n" in failed
    assert "rank 1 of 2 failed (ValueError: bad input on rank 1); ending the job on every rank" in failed
    # Rank 0, waiting in the all-reduce, says why it stops.
    assert "rank 0 of 2 stops (waiting in an all-reduce) because rank 1 failed: ValueError: bad input on rank 1" \
        in waiting
    assert "finished" not in r.stdout


MISMATCH_JOB = COMMON + '''
dist.init()
width = 4 if dist.rank() == 0 else 5
model = nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 36, 3))
try:
    dist.broadcast_parameters(model, root_rank=0)
except dist.DistributedError as e:
    with open(f"rank{dist.rank()}.txt", "w") as f:  # (mpiexec may interleave the ranks' stdout)
        f.write(f"rank {dist.rank()} caught: {e}")
    sys.exit(3)
'''


def test_a_model_mismatch_is_reported_on_every_rank(tmp_path):
    r = launch(tmp_path, MISMATCH_JOB)
    assert r.returncode != 0
    expected = ("broadcast_parameters: every rank must build the same model: the ranks differ from rank 0: rank 1 "
                "has '0.weight' of shape (5, 1, 3, 3) (float32) where rank 0 has '0.weight' of shape (4, 1, 3, 3)")
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text().startswith(f"rank {rank} caught: {expected}"), r.stderr


def test_cli_train_distributed(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 256), ("t10k", 64)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 13 * (c // 5): 12 + 13 * (c // 5), 1 + 5 * (c % 5): 5 + 5 * (c % 5)] = 230
        data.write_idx(tmp_path / f"{split}-images-idx3-ubyte", images)
        data.write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels)
    script = "import sys, runpy\nsys.argv[0] = 'pycnn'\nrunpy.run_module('pycnn', run_name='__main__')\n"
    r = launch(tmp_path, script, "train", "--distributed", "--data", str(tmp_path), "--epochs", "1",
               "--batch-size", "32", "--quiet", "--save", str(tmp_path / "model.npz"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 ranks x 1 thread;" in r.stdout
    assert r.stdout.count("test accuracy") == 1  # rank 0 reports, the others are quiet
    assert (tmp_path / "model.npz").exists()


THREADS_JOB = """
import sys
import pycnn
import pycnn.distributed as dist
if sys.argv[1] != "default":
    pycnn.set_num_threads(int(sys.argv[1]))
dist.init()
with open(f"rank{dist.rank()}.txt", "w") as f:  # (mpiexec may interleave the ranks' stdout)
    f.write(f"local_size {dist.local_size()}, threads {pycnn.get_num_threads()}")
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) != os.cpu_count(),
                    reason="this process is bound to some cores: the launcher's binding decides")
def test_each_rank_takes_its_share_of_the_cores(tmp_path):
    share = max(1, (os.cpu_count() or 1) // 2)
    for chosen, expected in (("default", share), (str(share + 1), share + 1)):  # set_num_threads wins
        r = launch(tmp_path, THREADS_JOB, chosen, threads="")
        assert r.returncode == 0, r.stdout + r.stderr
        for k in (0, 1):
            assert (tmp_path / f"rank{k}.txt").read_text() == f"local_size 2, threads {expected}", chosen


# ---------------------------------------------------------------------------------------------------
# One process, no MPI: everything is a job of size 1.
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def no_mpi(monkeypatch):
    """pycnn.distributed as where mpi4py is not installed, outside any MPI launcher."""
    dist.shutdown()
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` raises ImportError
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    yield
    dist.shutdown()


def test_functions_need_init_first(no_mpi):
    with pytest.raises(ValueError, match=r"call pycnn.distributed.init\(\) first"):
        dist.rank()


def test_size_one_without_mpi(no_mpi):
    dist.init()
    assert dist.is_initialized()
    assert (dist.rank(), dist.size(), dist.local_rank(), dist.local_size()) == (0, 1, 0, 1)
    dist.barrier()
    model = plain_model(0)
    before = model.state_dict()
    dist.broadcast_parameters(model)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="root_rank must be below the number of ranks"):
        dist.broadcast_parameters(model, root_rank=1)


def test_launched_by_mpiexec_without_mpi4py_is_an_error(no_mpi, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(ImportError, match=r"one of 2, but mpi4py is not installed.*pycnn\[mpi\]"):
        dist.init()


def test_distributed_fit_in_one_process_is_fit(no_mpi):
    x, y = samples(60)
    runs = []
    for distributed in (False, True):
        model = bn_model(1)
        h = fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters()), epochs=2,
                batch_size=16, seed=4, verbose=0, validation_data=samples(20, 1), distributed=distributed)
        runs.append((model.state_dict(), {k: v for k, v in h.history.items() if k not in ("time", "images_per_s")}))
    (sd0, h0), (sd1, h1) = runs
    assert h0 == h1
    assert all(np.array_equal(sd0[k], sd1[k]) for k in sd0)
    xv, _ = samples(20, 1)
    assert np.array_equal(predict(model, xv, distributed=True), predict(model, xv))


def test_distributed_optimizer_in_one_process_is_the_optimizer(no_mpi):
    dist.init()
    xb, yb = samples(16, 2)
    results = []
    for wrap in (False, True):
        model = plain_model(5)
        opt = optim.AdamW(model.parameters(), lr=0.01)
        opt = dist.DistributedOptimizer(opt) if wrap else opt
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(3):
            loss_fn(model(xb), yb)
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
        results.append((model.state_dict(), opt.state_dict()))
    assert all(np.array_equal(results[0][0][k], results[1][0][k]) for k in results[0][0])
    assert results[0][1]["param_groups"] == results[1][1]["param_groups"]
    with pytest.raises(TypeError, match="already a DistributedOptimizer"):
        dist.DistributedOptimizer(opt)
    with pytest.raises(TypeError, match="expected a pycnn optimizer"):
        dist.DistributedOptimizer(object())
    with pytest.raises(ValueError, match="at most 8 values"):
        opt.synchronize(list(range(9)))


def test_a_global_batch_must_split_evenly_over_the_ranks(job):
    for rank in (0, 1):
        assert str(job[rank]["odd_batch_error"]) == ("fit(distributed=True): batch_size is the global batch, split "
                                                      "evenly over the 2 ranks; 21 is not a multiple of 2")


def test_data_loader_shards():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    shards = [list(data.DataLoader(x, y, 2, shuffle=True, seed=3, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(s) for s in shards] == [2, 2, 2]  # 10 samples padded to 12: equal steps on every rank
    single = list(data.DataLoader(x, y, 6, shuffle=True, seed=3))  # the same order, the global batch
    for k, (_, yb) in enumerate(single):
        together = np.concatenate([shards[r][k][1] for r in range(3)])
        assert set(yb) <= set(together) and len(together) == 6  # batch k of the shards is batch k of one loader
    assert sorted(np.concatenate([s[1] for shard in shards for s in shard])) == sorted(list(range(10)) +
                                                                                    list(single[0][1][:2]))
    assert len(data.DataLoader(x, y, 4, num_replicas=3, rank=0, drop_last=True)) == 1
    with pytest.raises(ValueError, match="rank must be below num_replicas=2"):
        data.DataLoader(x, y, 2, num_replicas=2, rank=2)
