"""Build the manuscript offline: assemble a Sphinx source folder, run Sphinx, write it atomically.

The source folder (a temporary directory) holds the manuscript of ``paper/`` (``conf.py``,
``index.md``, ``sections/``), and what the pipeline made of this run:

- ``_data/values.json``: every in-text value (:mod:`wing.manuscript.values`), read by
  ``conf.py`` into ``myst_substitutions``; ``_data/tables/*.csv``: every table
  (:mod:`wing.manuscript.tables`). Both are also published beside the pages.
- ``_generated/methods.md``: ``paper/methods.md`` rendered from the run's configuration
  (:func:`wing.methods_text.render_methods`, the report's methods text);
  ``_generated/parts/<part>.md``: each optional part (``paper/parts/``) where the run
  assessed it, else the generated "not assessed" paragraph (:mod:`wing.manuscript.parts`);
  ``_generated/figures/``: the figures of ``results/figures``.
- ``notebooks/``: the executed stage notebooks of this run, published read-only (myst-nb,
  never executed again); every table and figure caption links to the one that made it.
- ``_static/mathjax/tex-svg.js``: MathJax from ``paper/node_modules`` (``npm ci``), so no page
  loads anything from the network.

Sphinx writes nothing that depends on the time or the folder it ran in; the one file that
records the build rather than the manuscript, ``.buildinfo`` (a hash of the configuration
for incremental rebuilds), is removed, and the doctrees (pickles) stay in the temporary
directory. ``manuscript.json`` lists the pages, tables, figures and notebooks, for readers and
for the browser test. ``manuscript.pdf`` is the same manuscript printed by Chromium
(:mod:`wing.manuscript.pdf`), where Chromium is installed; the manifest says why where not.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from wing.config import Config
from wing.evaluation.evaluate import at_checkpoint
from wing.io import atomic_directory, read_optional, write_json
from wing.manuscript.parts import PARTS, command_values, not_assessed_text, part_reasons
from wing.manuscript.pdf import PDF_NAME, chromium_missing, print_pdf, single_page_build
from wing.manuscript.tables import paper_tables
from wing.manuscript.values import paper_values
from wing.methods_text import render_methods
from wing.paths import COMPARE, EVALUATION, EXTERNAL, FIGURES, LONGITUDINAL, PAPER, SPLIT
from wing.report import REAL_SOURCES, ours_in_percent, per_image_means

MANUSCRIPT = Path("paper")
NOTEBOOKS = Path("results/notebooks")
MATHJAX = MANUSCRIPT / "node_modules" / "mathjax" / "es5" / "tex-svg.js"
SOURCE_ITEMS = ("conf.py", "index.md", "sections")
# The stage notebooks run once per pipeline (dvc.yaml); the train notebooks are per run.
STAGE_NOTEBOOKS = (
    "01_prepare",
    "03_evaluate",
    "04_external",
    "05_longitudinal",
    "06_compare",
    "07_report",
)
# figure file -> the stage notebook that drew it
FIGURE_SOURCES = {
    "cohort_examples.png": "01_prepare",
    "healing_trajectories.png": "05_longitudinal",
    "tissue_composition.png": "05_longitudinal",
    "bland_altman_area.png": "05_longitudinal",
    "loss_curves.png": "06_compare",
    "per_image_dice.png": "06_compare",
    "gradnorm_weights.png": "06_compare",
    "task_weights.png": "06_compare",
    "critical_difference_wound.png": "06_compare",
    "critical_difference_tissue_mean.png": "06_compare",
}
# Written by Sphinx about the build, not the manuscript: a configuration hash for incremental
# rebuilds (.buildinfo), and the source folder that html_copy_source = False leaves empty.
VOLATILE = (".buildinfo",)
EMPTY_IF_UNUSED = ("_sources",)
NAME_OPTION = re.compile(r"^:name:\s*(\S+)\s*$", re.MULTILINE)


class ManuscriptError(RuntimeError):
    """The manuscript cannot be built; the message says what is missing."""


def stage_notebooks(config: Config) -> list[str]:
    """The executed notebooks of this run's stages (``results/notebooks/<name>.ipynb``), in
    the pipeline's order: one per stage, one per train-matrix run."""
    train = [
        f"02_train_{backbone}_{method}_seed{seed}"
        for backbone in config.train.backbones
        for method in config.train.methods
        for seed in config.train.seeds
    ]
    return sorted([*STAGE_NOTEBOOKS, *train])


def read_results(config: Config, split_path: Path = SPLIT) -> dict[str, pd.DataFrame]:
    """The tables the manuscript is made from, by name (empty where a stage wrote none)."""
    metadata = pd.read_csv(Path(config.data.root) / "metadata.csv", dtype={"patient_id": str})
    split = pd.read_csv(split_path, dtype=str) if split_path.is_file() else None
    tables = {
        "summary": COMPARE / "summary.csv",
        "paired": COMPARE / "paired_tests.csv",
        "claims": COMPARE / "claims.csv",
        "delta": COMPARE / "delta_mtl.csv",
        "parameters": COMPARE / "parameters.csv",
        "friedman": COMPARE / "friedman.csv",
        "ranks": COMPARE / "average_ranks.csv",
        "hd95": COMPARE / "hd95_summary.csv",
        "convergence": COMPARE / "convergence_comparison.csv",
        "interaction": COMPARE / "backbone_interaction.csv",
        "additions": COMPARE / "gradnorm_additions.csv",
        "image_tasks": EVALUATION / "image_tasks.csv",
        "healing_rates": LONGITUDINAL / "healing_rates.csv",
        "healing_errors": LONGITUDINAL / "healing_errors.csv",
        "agreement": LONGITUDINAL / "agreement.csv",
        "par4_agreement": LONGITUDINAL / "par4_agreement.csv",
        "lutseg_status": LONGITUDINAL / "lutseg_status.csv",
        "lutseg_agreement": LONGITUDINAL / "lutseg_agreement.csv",
        "lutseg_photographs": LONGITUDINAL / "lutseg_photograph_errors.csv",
        "external_status": EXTERNAL / "status.csv",
        "external_summary": EXTERNAL / "summary.csv",
    }
    results = {name: read_optional(path) for name, path in tables.items()}
    results["metadata"], results["split"] = metadata, split
    results["ours_percent"] = pd.DataFrame()
    if config.data.source in REAL_SOURCES:
        pooled = at_checkpoint(pd.read_csv(EVALUATION / "pooled_scores.csv"), "best")
        results["ours_percent"] = ours_in_percent(pooled, per_image_means(EVALUATION))
    return results


def write_parts(
    folder: Path, reasons: Mapping[str, str], profile: str, params: Mapping, manuscript: Path
) -> None:
    """``folder/<part>.md``: the manuscript's part where assessed, else why not."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        text = (
            (manuscript / "parts" / f"{part}.md").read_text(encoding="utf-8")
            if not reasons[part]
            else not_assessed_text(part, reasons[part], profile, params)
        )
        (folder / f"{part}.md").write_text(text, encoding="utf-8")


def copy_inputs(
    source: Path, config: Config, notebooks: Path, figures: Path, mathjax: Path
) -> list[str]:
    """The run's figures, executed notebooks and MathJax into the source folder; returns the
    notebooks copied."""
    if not mathjax.is_file():
        raise ManuscriptError(
            f"{mathjax} not found: MathJax is installed by the set-up "
            "(`make repro` or `npm ci --prefix paper`)"
        )
    (source / "_static" / "mathjax").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mathjax, source / "_static" / "mathjax" / mathjax.name)
    (source / "_generated" / "figures").mkdir(parents=True, exist_ok=True)
    for name in FIGURE_SOURCES:
        shutil.copyfile(figures / name, source / "_generated" / "figures" / name)
    names = stage_notebooks(config)
    missing = [n for n in names if not (notebooks / f"{n}.ipynb").is_file()]
    if missing:
        raise ManuscriptError(f"executed notebooks missing under {notebooks}: {missing}")
    (source / "notebooks").mkdir()
    for name in names:
        shutil.copyfile(notebooks / f"{name}.ipynb", source / "notebooks" / f"{name}.ipynb")
    (source / "_generated" / "notebooks.md").write_text(notebook_toctree(names), encoding="utf-8")
    return names


def notebook_toctree(names: list[str]) -> str:
    """The index's list of executed notebooks, each under its file name (the train
    notebooks share one title)."""
    entries = "".join(f"{name} <notebooks/{name}>\n" for name in names)
    return (
        "```{toctree}\n:maxdepth: 1\n:caption: Executed notebooks (read-only)\n\n"
        + entries
        + "```\n"
    )


def assemble_source(
    source: Path,
    config: Config,
    params: Mapping,
    results: Mapping[str, pd.DataFrame],
    manuscript: Path = MANUSCRIPT,
    notebooks: Path = NOTEBOOKS,
    figures: Path = FIGURES,
    mathjax: Path = MATHJAX,
) -> dict[str, list[str]]:
    """Fill the empty folder ``source`` with everything Sphinx reads; returns the manifest's
    tables, figures and notebooks."""
    for item in SOURCE_ITEMS:
        copy = shutil.copytree if (manuscript / item).is_dir() else shutil.copyfile
        copy(manuscript / item, source / item)
    values = {**paper_values(config, results), **command_values(params)}
    write_json(source / "_data" / "values.json", values)
    for name, table in paper_tables(config, results).items():
        path = source / "_data" / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    reasons = part_reasons(config, results["external_status"], results["lutseg_status"])
    write_parts(source / "_generated" / "parts", reasons, config.profile, params, manuscript)
    methods = render_methods(config, template=manuscript / "methods.md")
    (source / "_generated" / "methods.md").write_text(methods, encoding="utf-8")
    copied = copy_inputs(source, config, notebooks, figures, mathjax)
    names = [
        name
        for path in sorted(source.rglob("*.md"))
        for name in NAME_OPTION.findall(path.read_text(encoding="utf-8"))
    ]
    return {
        "tables": sorted(n for n in names if n.startswith("tab-")),
        "figures": sorted(n for n in names if n.startswith("fig-")),
        "notebooks": copied,
        "parts_assessed": [p for p in PARTS if not reasons[p]],
    }


def sphinx_build(source: Path, output: Path, doctrees: Path) -> None:
    """Sphinx's HTML builder, in this process, one worker; any warning (an unresolved
    reference, a missing file, an undefined substitution) stops the build."""
    from sphinx.cmd.build import build_main

    args = ["-b", "html", "-q", "-W", "--keep-going", "-j", "1", "-E", "-d", str(doctrees)]
    if build_main([*args, str(source), str(output)]) != 0:
        raise ManuscriptError("Sphinx stopped on the warnings above")


def write_pdf(source: Path, work: Path, html: Path) -> dict[str, str]:
    """``html/manuscript.pdf``, the manuscript printed by Chromium (:mod:`wing.manuscript.pdf`)
    from a single-page build of ``source`` in ``work``; the manifest's entry: the file, or
    why it was not printed (no Chromium on this machine)."""
    if reason := chromium_missing():
        print(f"PDF NOT BUILT: {reason}")
        return {"pdf": "", "pdf_not_built": reason}
    page = single_page_build(source, work / "singlehtml", work / "doctrees-pdf")
    (html / PDF_NAME).write_bytes(print_pdf(page.parent, page.name))
    return {"pdf": PDF_NAME}


def build_paper(config: Config, params: Mapping, output: Path = PAPER) -> list[str]:
    """Build the manuscript of this run into ``output`` (replaced only on success); returns
    its pages."""
    results = read_results(config)
    with tempfile.TemporaryDirectory(prefix="wing-paper-") as work:
        source, doctrees = Path(work) / "source", Path(work) / "doctrees"
        source.mkdir()
        manifest = assemble_source(source, config, params, results)
        # myst-nb writes beside the output folder (jupyter_execute/), so Sphinx writes into
        # the temporary directory and the finished site is copied into place
        html = Path(work) / "html"
        sphinx_build(source, html, doctrees)
        for volatile in VOLATILE:
            (html / volatile).unlink(missing_ok=True)
        for folder in EMPTY_IF_UNUSED:
            if (html / folder).is_dir() and not any((html / folder).iterdir()):
                (html / folder).rmdir()
        pages = sorted(
            p.relative_to(html).as_posix()
            for p in html.rglob("*.html")
            if p.parts[len(html.parts)] != "_static"
            and p.name not in ("genindex.html", "search.html")
        )
        manifest.update(write_pdf(source, Path(work), html))
        write_json(html / "manuscript.json", {"pages": pages, **manifest})
        with atomic_directory(output) as tmp:
            shutil.copytree(html, tmp, dirs_exist_ok=True)
    return pages


def load_params(path: str | Path = "params.yaml") -> dict:
    """``params.yaml`` as written (the profiles' matrices, for the generated commands)."""
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def manifest(output: Path = PAPER) -> dict:
    """The manifest a build wrote (``manuscript.json``)."""
    return json.loads((output / "manuscript.json").read_text(encoding="utf-8"))
