"""Atomic file output: every artefact is written to a temporary sibling, then renamed.

A failed or interrupted stage therefore never leaves a half-written CSV, JSON, figure or
dataset folder behind; what an earlier run produced stays intact until the new one is
complete (DEVELOPERS.md, "nothing already produced is lost or half-written").
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's file-mode creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _as_created(path: Path, mode: int) -> None:
    """Give ``path`` the mode ``open``/``mkdir`` would have (``mode`` less the umask): the
    temporary files of :mod:`tempfile` are private (0600, 0700), and the rename would keep
    that on every artefact, so results shared on a group machine or a web server were
    unreadable to others."""
    os.chmod(path, mode & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    _as_created(tmp_path, 0o666)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; it replaces ``path`` on success.

    Temporary folders of ``path`` that an earlier, killed writer left (SIGKILL skips the
    clean-up) are removed first, so none lingers in a parent folder that a later stage reads
    or hashes; ``path`` has one writer at a time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = glob.escape(path.name)
    for stale in [*path.parent.glob(f".{name}.*.tmp"), path.with_name(f".{path.name}.old")]:
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    _as_created(tmp, 0o777)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


# Figure metadata that would vary with the time of the run or the matplotlib build: left out,
# so a figure is reproducible to the byte (a hashed DVC output). SVG ids are salted, not random.
FIGURE_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


def save_figure(path: str | os.PathLike, figure) -> Path:
    """Save a matplotlib figure atomically (format from the suffix), without the metadata
    that differs between two identical runs (creation date, software version)."""
    import matplotlib

    path = Path(path)
    form = path.suffix.lstrip(".")
    with atomic_path(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "wing"}):
        figure.savefig(
            tmp,
            format=form,
            dpi=120,
            bbox_inches="tight",
            metadata=FIGURE_METADATA.get(form),
        )
    return path


def read_optional(path: str | os.PathLike):
    """A table a stage writes, or an empty one when the file is absent or has no rows."""
    import pandas as pd

    if not Path(path).is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
