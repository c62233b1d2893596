"""wing.io: an artefact appears whole or not at all, with the mode a plain write gives it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wing.io import atomic_directory, atomic_path, write_text


@pytest.fixture
def umask_027():
    """A group-readable, world-private umask for the test, the process's own restored after."""
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_written_file_has_the_mode_open_would_give_it(tmp_path: Path, umask_027):
    written = write_text(tmp_path / "table.csv", "a\n1\n")
    opened = tmp_path / "opened.csv"
    opened.write_text("a\n1\n")
    assert mode(written) == mode(opened) == 0o640  # not tempfile's private 0600


def test_a_written_folder_has_the_mode_mkdir_would_give_it(tmp_path: Path, umask_027):
    with atomic_directory(tmp_path / "run") as tmp:
        (tmp / "summary.json").write_text("{}")
    made = tmp_path / "made"
    made.mkdir()
    assert mode(tmp_path / "run") == mode(made) == 0o750  # not mkdtemp's 0700


def test_a_failed_write_keeps_the_earlier_file_and_leaves_no_temporary(tmp_path: Path):
    target = write_text(tmp_path / "metrics.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-way")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_failed_folder_keeps_the_earlier_folder(tmp_path: Path):
    with atomic_directory(tmp_path / "run") as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "run") as tmp:
        (tmp / "b.txt").write_text("second")
        raise RuntimeError("killed mid-way")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
