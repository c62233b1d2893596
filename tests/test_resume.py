"""Resume (issue 11): a training run killed with SIGKILL and started again ends with the same
files, to the byte, as an uninterrupted run; state of another configuration is discarded.

The kill: a child process runs ``train_run`` with ``NetworkResume.save`` wrapped so that the
child SIGKILLs itself right after the resume state of a chosen network and epoch is on disk
(a test-side wrapper, nothing in ``wing``): the kill lands at a known point, and as a real
SIGKILL it skips every ``finally`` and leaves the temporary run folder behind.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_balancers import TASKS, assert_same_grads, assert_same_state, setup, train_step

from conftest import ROOT, make_dataset
from wing.balancing import BALANCERS
from wing.config import TrainConfig
from wing.data.split import patient_split
from wing.training import resume as resume_module
from wing.training.loop import train_run
from wing.training.resume import resume_dir, run_key
from wing.training.sampler import TaskBatchSampler

# Augmentation and dropout on, so their random streams must resume too; task-balanced
# batches, so the sampler's per-task cycles must.
CONFIG = TrainConfig(
    epochs=3,
    batch_size=4,
    channels=(4, 8, 16),
    strides=(2, 2),
    num_threads=1,
    dropout=0.1,
    task_balanced_batches="on",
)

CHILD = """
import os, signal
import pandas as pd
from wing.config import TrainConfig
from wing.training import resume
from wing.training.loop import train_run

save = resume.NetworkResume.save

def save_then_die(self, state):
    save(self, state)
    progress = state.get("progress")
    if self.name == {network!r} and progress is not None and progress.epoch == {epoch}:
        os.kill(os.getpid(), signal.SIGKILL)

resume.NetworkResume.save = save_then_die
train_run(
    method={method!r}, backbone="attention_unet", seed=0, dataset_root={root!r},
    split=pd.read_csv({split!r}, dtype=str), image_size=32, config=TrainConfig(**{config!r}),
    out_dir={out!r},
)
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny dataset and its split, saved as CSV (the child process reads it)."""
    folder = tmp_path_factory.mktemp("cohort")
    metadata = make_dataset(folder / "data", n_patients=5, visits=2, size=32)
    patient_split(metadata, (0.6, 0.2, 0.2), seed=0).to_csv(folder / "split.csv", index=False)
    return folder / "data", folder / "split.csv"


def run(cohort, out: Path, method: str, config: TrainConfig = CONFIG) -> dict:
    root, split = cohort
    return train_run(
        method=method,
        backbone="attention_unet",
        seed=0,
        dataset_root=root,
        split=pd.read_csv(split, dtype=str),
        image_size=32,
        config=config,
        out_dir=out,
    )


@pytest.fixture(scope="module")
def uninterrupted(cohort, tmp_path_factory):
    """The run folder of an uninterrupted run per method, made once."""
    folders: dict[str, Path] = {}

    def get(method: str) -> Path:
        if method not in folders:
            folders[method] = tmp_path_factory.mktemp("uninterrupted") / method
            run(cohort, folders[method], method)
        return folders[method]

    return get


def md5s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def kill_during(cohort, out: Path, method: str, network: str, epoch: int) -> None:
    """Run ``method`` in a child process that SIGKILLs itself once ``network``'s resume
    state after ``epoch`` is saved."""
    root, split = cohort
    source = CHILD.format(
        network=network,
        epoch=epoch,
        method=method,
        root=str(root),
        split=str(split),
        config=dataclasses.asdict(CONFIG),
        out=str(out),
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]


@pytest.mark.parametrize(
    ("method", "network", "epoch"),
    [
        ("gradnorm", "wound+tissue", 2),  # hard sharing, GradNorm's weights and its Adam
        ("stl", "tissue", 1),  # the second of two networks: the finished first one is kept
    ],
)
def test_a_killed_run_resumes_to_the_same_files(
    cohort, uninterrupted, tmp_path: Path, capsys, method: str, network: str, epoch: int
):
    out = tmp_path / "runs" / "attention_unet" / method / "seed0"
    kill_during(cohort, out, method, network, epoch)
    assert not out.exists()
    assert (resume_dir(out) / network / "state.pt").is_file()
    assert list(out.parent.glob(".seed0.*.tmp"))  # what SIGKILL leaves behind

    run(cohort, out, method)
    printed = capsys.readouterr().out
    assert f"Resuming the {network} network after epoch {epoch} of {CONFIG.epochs}" in printed
    if method == "stl":
        assert "the wound network had finished" in printed
    # Every file: checkpoints, DVCLive logs, histories, balancer logs, summaries.
    assert md5s(out) == md5s(uninterrupted(method))
    assert not (tmp_path / "resume").exists()  # removed once the run is complete
    assert sorted(p.name for p in out.parent.iterdir()) == ["seed0"]  # no stray folder


def test_state_of_another_configuration_is_discarded(
    cohort, uninterrupted, tmp_path: Path, capsys, monkeypatch
):
    """State saved by a run with another learning rate is not resumed: the run starts afresh
    (same files as an uninterrupted run) and says so."""
    out = tmp_path / "runs" / "attention_unet" / "gradnorm" / "seed0"
    save = resume_module.NetworkResume.save

    def save_then_fail(self, state):
        save(self, state)
        raise KeyboardInterrupt  # as Ctrl-C after epoch 1: the resume state stays

    monkeypatch.setattr(resume_module.NetworkResume, "save", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        run(cohort, out, "gradnorm", dataclasses.replace(CONFIG, learning_rate=0.01))
    monkeypatch.undo()
    assert (resume_dir(out) / "wound+tissue" / "state.pt").is_file()

    run(cohort, out, "gradnorm")
    printed = capsys.readouterr().out
    assert "Discarding the resume state" in printed and "Resuming" not in printed
    assert md5s(out) == md5s(uninterrupted("gradnorm"))
    assert not resume_dir(out).exists()


def test_the_key_changes_with_what_determines_the_run(cohort):
    root, _ = cohort
    base = {"method": "gradnorm", "seed": 0, "train_config": dataclasses.asdict(CONFIG)}
    key = run_key(root, **base)
    assert run_key(root, **base) == key
    assert run_key(root, **{**base, "seed": 1}) != key
    changed = dataclasses.asdict(dataclasses.replace(CONFIG, epochs=4))
    assert run_key(root, **{**base, "train_config": changed}) != key
    image = next((root / "images").iterdir())
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # the data were rewritten
    assert run_key(root, **base) != key


def test_resume_dir_lies_outside_the_runs_folder(tmp_path: Path):
    assert resume_dir(Path("results/runs/attention_unet/gradnorm/seed0")) == Path(
        "results/resume/attention_unet/gradnorm/seed0"
    )
    assert resume_dir(tmp_path / "a") == tmp_path / ".a.resume"


def test_the_sampler_continues_from_its_state():
    labelled = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 0], [1, 0], [1, 1], [1, 0]], dtype=bool)
    sampler = TaskBatchSampler(labelled, 3, steps=4, seed=0, balanced=True)
    list(sampler)  # one epoch
    state = copy.deepcopy(sampler.state_dict())
    restored = TaskBatchSampler(labelled, 3, steps=4, seed=7, balanced=True)
    restored.load_state_dict(state)
    assert [list(restored) for _ in range(3)] == [list(sampler) for _ in range(3)]


def plain(value):
    """A comparable copy of an attribute: tensors and arrays as tensors, containers walked,
    any other object (an optimiser, a module, a convex problem) by its type's name."""
    if isinstance(value, torch.Tensor | np.ndarray):
        return torch.as_tensor(value).detach().clone()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return type(value).__name__


def attributes(balancer) -> dict:
    """Every attribute of the balancer and of its submodules (torchjd's aggregators)."""
    return {
        f"{name}.{key}": plain(value)
        for name, module in balancer.named_modules()
        for key, value in vars(module).items()
    }


@pytest.mark.parametrize(
    ("name", "options"),
    [(name, {}) for name in BALANCERS.names()] + [("nash_mtl", {"update_weights_every": 2})],
)
def test_every_balancer_resumes_exactly(name: str, options: dict):
    """After 3 steps (and epochs), ``resume_state`` through torch.save into a fresh balancer:
    every attribute is restored, and the next steps are the same for both."""
    model, batch, balancer = setup(name)
    balancer = BALANCERS.get(name)(TASKS, **options)
    with torch.no_grad():
        balancer.start({task: float(loss) for task, loss in model.losses(batch)[1].items()})
    for _ in range(3):
        _, _, losses = train_step(model, batch, balancer)
        balancer.end_epoch(losses)
    buffer = io.BytesIO()
    torch.save(balancer.resume_state(), buffer)
    buffer.seek(0)
    restored = BALANCERS.get(name)(TASKS, **options)
    restored.load_resume_state(torch.load(buffer, weights_only=False))
    assert_same_state(attributes(restored), attributes(balancer), "attributes")

    twin = copy.deepcopy(model)
    for step in range(3):
        torch.manual_seed(step)  # PCGrad draws a random projection order
        weights_a, grads_a, losses_a = train_step(model, batch, balancer)
        torch.manual_seed(step)
        weights_b, grads_b, losses_b = train_step(twin, batch, restored)
        assert (weights_a, losses_a) == (weights_b, losses_b)
        assert_same_grads(grads_a, grads_b)
        balancer.end_epoch(losses_a)
        restored.end_epoch(losses_b)
    assert_same_state(balancer.resume_state(), restored.resume_state())
    # A checkpoint holds the balancer's state_dict beside the task names: the same bytes.
    assert checkpoint_bytes(restored) == checkpoint_bytes(balancer)


def checkpoint_bytes(balancer) -> bytes:
    buffer = io.BytesIO()
    torch.save({"balancer_state": balancer.state_dict(), "tasks": balancer.tasks}, buffer)
    return buffer.getvalue()
