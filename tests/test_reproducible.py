"""Reproducible to the byte: what a stage writes as a DVC output is the same file on a second
identical run (on CPU), so `dvc repro -f` leaves dvc.lock unchanged. Wall-clock measures go to
the timing files of results/timings/, which are not DVC outputs (test_pipeline.py checks the
whole pipeline)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import make_dataset
from wing.config import TrainConfig
from wing.data.split import patient_split
from wing.io import save_figure
from wing.paths import timing_path
from wing.stage import strip_volatile
from wing.training.loop import train_run

matplotlib.use("Agg")

TINY = TrainConfig(epochs=2, batch_size=4, channels=(4, 8, 16), strides=(2, 2), num_threads=1)


def md5s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def executed(tmp_name: str, when: str) -> nbformat.NotebookNode:
    """A notebook as papermill and nbclient leave it, run at ``when``."""
    injected = new_code_cell("seed = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    cell = new_code_cell("print(seed)", id="stage-00", execution_count=1)
    warning = f"{tmp_name}/.venv/lib/x.py:1: UserWarning: {tmp_name}/data\n"
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("stream", name="stderr", text=warning),
    ]
    notebook = new_notebook(cells=[injected, cell])
    notebook.metadata["papermill"] = {
        "input_path": "notebooks/02_train.ipynb",
        "output_path": f"results/notebooks/.{tmp_name}.tmp.ipynb",
        "parameters": {"seed": 1},
        "start_time": when,
        "end_time": when,
        "duration": 1.5,
        "environment_variables": {},
        "exception": None,
        "version": "2.7.0",
    }
    for c in notebook.cells:
        c.metadata["papermill"] = {
            "start_time": when,
            "end_time": when,
            "duration": 0.25,
            "status": "completed",
            "exception": False,
        }
        c.metadata["execution"] = {"iopub.status.busy": when, "shell.execute_reply": when}
    return notebook


def test_executed_notebooks_lose_what_varies_between_runs():
    output = "results/notebooks/02_train.ipynb"
    first, second = (
        strip_volatile(
            executed(clone, when), output, {f"{clone}/.venv/": "<venv>/", f"{clone}/": "<project>/"}
        )
        for clone, when in [("/a/wing", "2025-01-01T00:00:00"), ("/b", "2025-06-30T12:34:56")]
    )
    assert nbformat.writes(first) == nbformat.writes(second)
    meta = first.metadata["papermill"]
    assert meta["output_path"] == output and meta["parameters"] == {"seed": 1}
    assert not {"start_time", "end_time", "duration", "environment_variables"} & set(meta)
    assert first.cells[0]["id"] == "injected-parameters" and first.cells[1]["id"] == "stage-00"
    for cell in first.cells:
        assert "execution" not in cell.metadata
        assert cell.metadata["papermill"] == {"status": "completed", "exception": False}
    assert first.cells[1].outputs[0]["text"] == "1\n"  # outputs and counts are kept
    assert first.cells[1].outputs[1]["text"] == "<venv>/lib/x.py:1: UserWarning: <project>/data\n"
    nbformat.validate(first)


def test_a_resumed_stage_leaves_the_notebook_of_an_uninterrupted_one():
    """Workspace notices (a training state resumed or discarded) leave the executed notebook
    for the stage's console, so a stage that resumed writes the same bytes (dvc.lock)."""
    from wing.notices import PREFIX

    output = "results/notebooks/02_train.ipynb"
    resumed = executed("/a/wing", "2025-01-01T00:00:00")
    said = f"{PREFIX}Resuming the wound+tissue network after epoch 2 of 4 (state saved in x).\n"
    stdout, _ = resumed.cells[1].outputs
    stdout["text"] = said + "1\n"
    resumed.cells[1].outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text=said))
    notices: list[str] = []
    roots = {"/a/wing/.venv/": "<venv>/", "/a/wing/": "<project>/"}
    first = strip_volatile(resumed, output, roots, notices=notices)
    second = strip_volatile(executed("/a/wing", "2025-01-01T00:00:00"), output, roots)
    assert nbformat.writes(first) == nbformat.writes(second)
    assert notices == [said.rstrip("\n")] * 2
    nbformat.validate(first)


@pytest.mark.parametrize("suffix", ["png", "pdf", "svg"])
def test_figures_are_byte_stable(tmp_path: Path, suffix: str):
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    ax.plot([0, 1], [1, 0], label="a")
    ax.legend()
    first = save_figure(tmp_path / f"a.{suffix}", figure).read_bytes()
    second = save_figure(tmp_path / f"b.{suffix}", figure).read_bytes()
    plt.close(figure)
    assert first == second
    assert b"Matplotlib v" not in first  # no software version in the metadata


def test_training_outputs_are_byte_identical_and_timings_kept_outside(tmp_path: Path):
    root = tmp_path / "data"
    split = patient_split(make_dataset(root, n_patients=5, visits=2, size=32), (0.6, 0.2, 0.2), 0)
    kwargs = dict(
        method="stl",  # two networks: two DVCLive folders, two network summaries
        backbone="attention_unet",
        seed=0,
        dataset_root=root,
        split=split,
        image_size=32,
        config=TINY,
    )
    timing_file = timing_path("attention_unet", "stl", 0, tmp_path / "timings")
    summary = train_run(**kwargs, out_dir=tmp_path / "a", timing_file=timing_file)
    train_run(**kwargs, out_dir=tmp_path / "b")
    first, second = md5s(tmp_path / "a"), md5s(tmp_path / "b")
    assert first == second  # checkpoints, DVCLive logs, histories, summaries
    assert {"wound/last.pt", "wound/dvclive/metrics.json", "summary.json"} <= set(first)
    assert "mean_step_seconds" not in (tmp_path / "a/summary.json").read_text()
    assert "mean_step_seconds" not in (tmp_path / "a/wound/summary.json").read_text()
    timing = json.loads(timing_file.read_text())
    assert set(timing["networks"]) == {"wound", "tissue"}
    assert timing["mean_step_seconds"] == pytest.approx(sum(timing["networks"].values()))
    assert summary["mean_step_seconds"] == timing["mean_step_seconds"] > 0
