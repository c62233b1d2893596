"""Run one pipeline stage notebook with papermill, atomically.

``python -m wing.stage NOTEBOOK OUTPUT [-p NAME VALUE ...]`` executes NOTEBOOK into a
temporary file and renames it to OUTPUT only if every cell ran; a failed run's notebook goes
to ``logs/failed/`` for inspection, so ``results/`` never holds a half-executed record. The
kernel is the project's own (``wing``, registered in ``.venv`` by ``make``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import papermill
import yaml

from wing.io import atomic_path

# The project kernel, registered inside .venv by the Makefile (ipykernel install --sys-prefix),
# so a user-level "python3" kernel elsewhere can never run the stages without `wing`.
KERNEL = "wing"


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
            )
        except papermill.PapermillExecutionError:
            failed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, failed)
            print(f"stage notebook {notebook} failed; executed copy: {failed}", file=sys.stderr)
            raise


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
