"""Resume a training run killed mid-way (issue 11): same outputs, to the byte, on CPU.

At the end of every epoch the loop writes the network's *resume state* atomically (a
temporary file renamed): model, optimiser, balancer (``Balancer.resume_state``), every random
stream (``wing.training.determinism.rng_states``), the sampler's position, the epoch and step
counters, the best validation losses and patience counter, the history, balancer log and
DVCLive rows so far, and the bytes of the ``best_<task>.pt`` files already written. A network
that has finished leaves the bytes of its whole folder instead, so of a run of several
networks (STL) only the unfinished one trains again. A run started again finds the state and
continues from it; the run's state is removed once its folder is complete.

Where: :func:`resume_dir`, outside the run folder, which ``train_run`` writes atomically and
DVC deletes before re-running a stage, and outside ``results/runs``, a dependency of later
stages (a file there would change its hash). Which run: the state is keyed by
:func:`run_key`, a hash of all that determines the run's outputs (method, recipe, backbone and
its options, seed, training configuration, data ids and files, ``wing``'s source, torch's
version); state of another key is discarded with a printed notice (wing.notices), never resumed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

import wing
from wing.io import atomic_path, write_json
from wing.notices import notice

STATE = "state.pt"
KEY = "key.json"


def resume_dir(out_dir: str | Path) -> Path:
    """Where the run writing ``out_dir`` keeps its resume state: the nearest folder named
    ``runs`` above it becomes ``resume`` (``results/runs/<backbone>/<method>/seed<k>`` ->
    ``results/resume/<backbone>/<method>/seed<k>``, git-ignored with ``results/``); a folder
    with no ``runs`` above it gets the hidden sibling ``.<name>.resume``."""
    out_dir = Path(out_dir)
    parts = out_dir.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "runs":
            return Path(*parts[:i], "resume", *parts[i + 1 :])
    return out_dir.with_name(f".{out_dir.name}.resume")


def _digest(paths: list[Path], root: Path, content: bool) -> str:
    """SHA-256 over the files' relative paths and their bytes (``content``) or their size and
    modification time (large data: a rewritten file counts as changed, whatever it holds)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode())
        if content:
            digest.update(path.read_bytes())
        else:
            stat = path.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def run_key(dataset_root: str | Path, **determinants: Any) -> str:
    """A hash of what determines a run's outputs: the ``determinants`` (method, recipe,
    configuration, ids, seed... as JSON), the files of ``dataset_root`` (paths, sizes and
    modification times), the source of the ``wing`` package and torch's version."""
    package = Path(wing.__file__).parent
    data = Path(dataset_root)
    files = sorted(p for p in data.rglob("*") if p.is_file())
    everything = {
        **determinants,
        "dataset_root": str(data.resolve()),
        "data": _digest(files, data, content=False),
        "code": _digest(sorted(package.rglob("*.py")), package, content=True),
        "torch": torch.__version__,
    }
    text = json.dumps(everything, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def files_of(folder: Path, pattern: str = "**/*") -> dict[str, bytes]:
    """The bytes of the files under ``folder`` matching ``pattern``, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.glob(pattern))
        if p.is_file()
    }


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write back what :func:`files_of` read."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class NetworkResume:
    """The resume state of one network of a run (``<resume dir>/<network>/state.pt``)."""

    def __init__(self, run: RunResume, name: str):
        self.run = run
        self.name = name
        self.path = run.folder / name / STATE

    def load(self) -> dict | None:
        """The last state saved, or None (never saved)."""
        if not self.path.is_file():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=False)

    def save(self, state: dict) -> None:
        """Replace the saved state atomically (a kill leaves the old one or the new one)."""
        self.run.create()
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def save_finished(self, network_dir: Path, summary: dict) -> None:
        """The network is done: keep its folder's bytes and its summary."""
        self.save({"finished": True, "summary": summary, "files": files_of(network_dir)})


class RunResume:
    """The resume state of a run: a folder keyed by :func:`run_key`, one state per network.

    Opening it discards a folder of another key (with a printed message); the folder is made
    on the first save only, so a run that fails before its first epoch leaves nothing.
    """

    def __init__(self, folder: str | Path, key: str):
        self.folder = Path(folder)
        self.key = key
        if self.folder.exists() and self._stored_key() != key:
            notice(
                f"Discarding the resume state in {self.folder}: it was saved by a run with "
                "another configuration, data or code; training starts afresh."
            )
            shutil.rmtree(self.folder)

    def _stored_key(self) -> str | None:
        try:
            return json.loads((self.folder / KEY).read_text())["key"]
        except (OSError, ValueError, KeyError):
            return None

    def create(self) -> None:
        if not (self.folder / KEY).is_file():
            write_json(self.folder / KEY, {"key": self.key})

    def network(self, name: str) -> NetworkResume:
        return NetworkResume(self, name)

    def remove(self) -> None:
        """The run is complete: its resume state goes, and the folders above it that it
        leaves empty, up to the ``resume`` folder of :func:`resume_dir`."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in self.folder.parents:
            if not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
            if parent.name == "resume":
                break
