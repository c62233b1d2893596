"""Run one pipeline stage notebook with papermill, atomically.

``python -m wing.stage NOTEBOOK OUTPUT [-p NAME VALUE ...]`` executes NOTEBOOK into a
temporary file and renames it to OUTPUT only if every cell ran; a failed run's notebook goes
to ``logs/failed/`` for inspection, so ``results/`` never holds a half-executed record. The
kernel is the project's own (``wing``, registered in ``.venv`` by ``make``).

The executed notebook is a hashed DVC output, so what differs between two identical runs is
stripped before the rename (:func:`strip_volatile`): papermill's and nbclient's timestamps and
durations, the temporary output path, the random id of papermill's parameters cell, the
clone's own path in printed warnings, and notices about the workspace (a training state
resumed or discarded, :mod:`wing.notices`), which go to the stage's console instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Before nbformat: its jsonschema would compile rfc3987-syntax's grammar (1 s; wing/__init__.py)
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
import papermill  # noqa: E402
import yaml  # noqa: E402

from wing.io import atomic_path  # noqa: E402
from wing.notices import PREFIX as NOTICE  # noqa: E402

# The project kernel, registered inside .venv by the Makefile (ipykernel install --sys-prefix),
# so a user-level "python3" kernel elsewhere can never run the stages without `wing`.
KERNEL = "wing"

# Notebook- and cell-level papermill metadata that records when, not what (start/end times,
# durations, the kernel's environment variables); nbclient's `metadata.execution` timestamps
# go entirely. What stays (parameters, status, papermill's version) is the same every run.
VOLATILE_NOTEBOOK = ("start_time", "end_time", "duration", "environment_variables")
VOLATILE_CELL = ("start_time", "end_time", "duration")
INJECTED = "injected-parameters"  # papermill's tag on the parameters cell it inserts


def local_roots() -> dict[str, str]:
    """Where this clone and its virtual environment lie, as printed by warnings in stream
    outputs (``/home/me/wing/.venv/lib/...: UserWarning``), and the names written instead
    (``<venv>/``, ``<project>/``)."""
    return {sys.prefix + os.sep: "<venv>/", os.getcwd() + os.sep: "<project>/"}


def strip_volatile(
    notebook: nbformat.NotebookNode,
    output: str,
    roots: dict[str, str] | None = None,
    notices: list[str] | None = None,
) -> nbformat.NotebookNode:
    """Drop from an executed notebook what differs between two identical runs (in place):
    timestamps and durations, the temporary file's name as papermill's ``output_path``
    (replaced by ``output``), the random id of the injected parameters cell, and in stream
    outputs the clone's own location (``roots``: path prefix -> the name written instead,
    the longest first; default :func:`local_roots`) and every line of a workspace notice
    (:data:`wing.notices.PREFIX`), appended to ``notices`` (an output left empty goes)."""
    roots = local_roots() if roots is None else roots
    notices = [] if notices is None else notices
    meta = notebook.metadata.get("papermill", {})
    for key in VOLATILE_NOTEBOOK:
        meta.pop(key, None)
    if "output_path" in meta:
        meta["output_path"] = output
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for key in VOLATILE_CELL:
            cell.metadata.get("papermill", {}).pop(key, None)
        if INJECTED in cell.metadata.get("tags", []):
            cell["id"] = INJECTED
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
                lines = text.splitlines(keepends=True)
                notices += [line.rstrip("\n") for line in lines if line.startswith(NOTICE)]
                text = "".join(line for line in lines if not line.startswith(NOTICE))
                if not text:
                    continue
                for root in sorted(roots, key=len, reverse=True):
                    text = text.replace(root, roots[root])
                out["text"] = text
            kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept
    return notebook


def run(notebook: str, output: str, parameters: dict) -> None:
    output_path = Path(output)
    failed = Path("logs/failed") / output_path.name
    with atomic_path(output_path) as tmp:
        try:
            papermill.execute_notebook(
                notebook,
                str(tmp),
                parameters=parameters,
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=os.getcwd(),
                # Every output is written and closed by the time the last cell returns, so
                # the kernel is stopped at once rather than left to tear down torch and MONAI
                # (about 2 s per stage; bench/stage_overhead.py).
                shutdown_kernel="immediate",
            )
        except papermill.PapermillExecutionError:
            failed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, failed)
            print(f"stage notebook {notebook} failed; executed copy: {failed}", file=sys.stderr)
            raise
        notebook_node = nbformat.read(tmp, as_version=nbformat.NO_CONVERT)
        notices: list[str] = []
        nbformat.write(strip_volatile(notebook_node, output, notices=notices), tmp)
        for line in notices:
            print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument(
        "-p",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="notebook parameter (value parsed as YAML)",
    )
    args = parser.parse_args(argv)
    try:
        run(args.notebook, args.output, {k: yaml.safe_load(v) for k, v in args.p})
    except papermill.PapermillExecutionError as error:
        sys.exit(f"{error.ename}: {error.evalue}")


if __name__ == "__main__":
    main()
