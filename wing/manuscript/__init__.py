"""The manuscript (``paper/``), regenerated from the pipeline's outputs and built offline.

``paper/`` holds the text in MyST Markdown and types no number: in-text values come from one
generated JSON (:mod:`wing.manuscript.values`, ``{{ name }}`` substitutions), tables from
generated CSV files (:mod:`wing.manuscript.tables`), figures from ``results/figures``, and
parts the run did not assess are replaced by a generated sentence with the command that
assesses them (:mod:`wing.manuscript.parts`). :func:`build_paper` assembles the Sphinx source
and builds ``results/paper/`` (:mod:`wing.manuscript.build`), the last stage of ``dvc.yaml``.
"""

from wing.manuscript.build import build_paper, load_params, stage_notebooks

__all__ = ["build_paper", "load_params", "stage_notebooks"]
