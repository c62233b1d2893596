"""The methods text: ``paper/methods.md`` is a Jinja2 template rendered from the run's inputs.

No number in the methods text is typed by hand (issue 7): hyper-parameters come from the
resolved :class:`wing.config.Config` the run used, the GradNorm step cost from the recorded
benchmark (``bench/results/gradnorm_step.json``, written by ``bench/gradnorm_step.py``), and
dataset facts from the measured DFUTissue-FUSeg link table (``data.raw.links``). When a
recorded output is absent the template says so instead of printing a number. Undefined
template variables raise (``jinja2.StrictUndefined``), so a renamed config key cannot leave a
blank in the text.

Template variables (see :func:`render_methods`): the config sections ``profile``, ``data``,
``train``, ``evaluate``, ``compare``, ``report``; ``bench`` (dict or None, see
:func:`bench_summary`); ``links`` (dict or None, see :func:`link_summary`); ``ignore_index``;
``confidence`` (the level of the comparison's bootstrap intervals,
``wing.statistics.paired.CONFIDENCE``); ``gradnorm_paper_alpha``. Filters: ``num`` (shortest
decimal), ``percent`` (a fraction as a percentage), ``ratio`` (two decimals),
``dice`` (three decimals).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pandas as pd

from wing.config import Config
from wing.data.format import IGNORE_INDEX
from wing.statistics.paired import CONFIDENCE
from wing.training.methods import DEFAULT_RECIPES, Recipe, balancer_options

DEFAULT_GRADNORM = DEFAULT_RECIPES["gradnorm"]

METHODS_TEMPLATE = Path("paper/methods.md")
BENCH_RESULT = Path("bench/results/gradnorm_step.json")
LINKS_FILE = "dfutissue_in_fuseg.csv"

# Published constant, not a choice of this run: the asymmetry Chen et al. (ICML 2018) used on
# NYUv2. The text calls alpha "the GradNorm paper's value" only when the run used it.
GRADNORM_PAPER_ALPHA = 1.5


def _num(value: float) -> str:
    return f"{value:g}"


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}"


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def _dice(value: float) -> str:
    return f"{value:.3f}"


AGGREGATOR_PAPERS = {
    "pcgrad": "PCGrad (Yu et al. 2020): each gradient projected off those it conflicts with",
    "mgda": "MGDA (Sener & Koltun 2018): the minimum-norm point of the gradients' convex hull",
    "cagrad": "CAGrad (Liu et al. 2021): the best worst-case gain within c = {c} of the mean",
    "nash_mtl": "Nash-MTL (Navon et al. 2022): the Nash bargaining solution (max norm {max_norm})",
    "imtl_g": "IMTL-G (Liu et al. 2021): equal projections of the update on every task gradient",
    "aligned_mtl": "Aligned-MTL (Senushkin et al. 2023): the gradient matrix made well-conditioned",
    "upgrad": "UPGrad (Quinton & Rey 2024): projections onto the gradients' dual cone, averaged",
}


# How the methods text names each architecture (wing.models.ARCHITECTURES).
ARCHITECTURE_TEXT = {
    "hard_sharing": "hard sharing",
    "ctan": (
        "CTAN-style cross-task attention (this compendium's reading of Kim et al. 2023): a "
        "shared encoder, one decoder per task, each decoder's features refined by attention "
        "with queries from its own task and keys/values (pooled to a small grid) from the "
        "other, residually, at its last stages"
    ),
    "mt_ids": (
        "MT-IDS's DBR gate (this compendium's reading of Ma et al. 2026): a shared encoder, "
        "shared and task-specific decoder experts, and per task a gate weighting them"
    ),
    "resformer": (
        "ResFormer's multi-scale feature enhancement (this compendium's form of Bui et al. "
        "2026): Swin-Transformer blocks on the coarsest encoder features, dilated feature "
        "enhancement with spatial attention on the skip connections, and a classification "
        "head on the pooled last two encoder features for image-level tasks"
    ),
}


def describe_recipe(recipe: Recipe) -> str:
    """One clause of the methods text for a recipe, with the options this run used."""
    if recipe.per_task_networks:
        return "one network per task (single-task learning)"
    architecture = ARCHITECTURE_TEXT.get(recipe.architecture, f"architecture {recipe.architecture}")
    if recipe.architecture_options:
        settings = ", ".join(f"{k} = {v}" for k, v in recipe.architecture_options.items())
        architecture += f" ({settings})"
    extras = ""
    if recipe.auxiliary_tasks:
        extras += f"; auxiliary task(s) {', '.join(recipe.auxiliary_tasks)} (not compared)"
    if recipe.segmentation_loss != "dice_ce":
        extras += "; segmentation loss Dice + focal (gamma 2)"
    return f"{architecture}{extras}; {_describe_balancer(recipe)}"


def _describe_balancer(recipe: Recipe) -> str:
    options = {**_defaults(recipe.balancer), **recipe.options}
    if recipe.balancer == "ew":
        return "the plain sum of the task losses"
    if recipe.balancer == "fixed":
        weights = ", ".join(f"{t} {_num(w)}" for t, w in (options["weights"] or {}).items())
        return f"fixed loss weights ({weights or 'all 1'})"
    if recipe.balancer == "uncertainty":
        return (
            "uncertainty weighting (Kendall et al. 2018), L = Σ_i exp(−s_i) L_i + s_i/2 with "
            f"learned log-variances s_i (own Adam, learning rate {_num(options['learning_rate'])})"
        )
    if recipe.balancer == "dwa":
        return (
            "dynamic weight average (Liu et al. 2019), w_i = T softmax(r_i/τ) of the last two "
            f"epochs' loss ratios, τ = {_num(options['temperature'])}"
        )
    if recipe.balancer == "gradnorm":
        return "GradNorm, below"
    if recipe.balancer in AGGREGATOR_PAPERS:
        return (
            "gradient aggregation by torchjd on the shared trunk's task Jacobian, "
            + AGGREGATOR_PAPERS[recipe.balancer].format(**options)
        )
    if recipe.balancer == "dd_gb":
        return (
            "DD-GB, this compendium's reading of the MT-IDS abstract (Ma et al. 2026): each task "
            "gradient loses its component along every task gradient it conflicts with, is "
            "rescaled to its own original norm (so the inter-task magnitude ratios are kept), "
            "and the results are summed"
        )
    if recipe.balancer == "mt_cool":
        return (
            "MT-CooL, this compendium's reading of its abstract (Wu et al. 2025): the tasks take "
            f"turns every {options['period']} step(s); the active task's gradient is taken at "
            "the shared parameters perturbed by a SAM step of radius "
            f"{_num(options['radius'])} up its own loss (a flat minimum with respect to the "
            "parameters the other task also moves), and only its head and the trunk are updated"
        )
    return f"balancer {recipe.balancer} with options {dict(recipe.options)}"


def _defaults(balancer: str) -> dict:
    return {
        name: parameter.default
        for name, parameter in balancer_options(balancer).items()
        if parameter.default is not inspect.Parameter.empty
    }


def bench_summary(source: Path | Mapping | None) -> dict | None:
    """The GradNorm step benchmark as the template reads it, or None when not recorded.

    ``source`` is the JSON written by ``bench/gradnorm_step.py`` (a path, or its parsed
    content). Ratios are the paired medians (each round times every variant back to back).
    """
    if source is None:
        return None
    if not isinstance(source, Mapping):
        path = Path(source)
        if not path.is_file():
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
        where = str(path)
    else:
        record, where = source, str(BENCH_RESULT)
    ratios = record["paired_ratio_to_equal_weighting"]
    return {
        "gradnorm": float(ratios["gradnorm"]),
        "create_graph": float(ratios["gradnorm_create_graph"]),
        "device": record["device"],
        "image_size": int(record["image_size"]),
        "batch_size": int(record["batch_size"]),
        "threads": int(record["threads"]),
        "rounds": int(record["rounds"]),
        "path": where,
    }


def link_summary(links: str | Path | None) -> dict | None:
    """Counts and wound-definition agreement of the measured DFUTissue-FUSeg link table.

    ``links`` is the folder holding ``dfutissue_in_fuseg.csv`` (``data.raw.links``); None
    when it is not there. Agreement is the Dice of FUSeg's wound label cut to each crop
    against DFUTissue fibrin ∪ granulation, measured on the 512-px FUSeg labels.
    """
    if not links:
        return None
    path = Path(links) / LINKS_FILE
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"dfutissue_id": str, "fuseg_id": str})
    test = table[table["dfutissue_split"] == "Test"]
    return {
        "n_crops": len(table),
        "n_trainval": int((table["dfutissue_split"] == "TrainVal").sum()),
        "n_test": len(test),
        "n_test_from_fuseg_train": int((test["fuseg_split"] == "train").sum()),
        "median_dice": float(table["dice_fibrin_granulation"].median()),
        "median_dice_test": float(test["dice_fibrin_granulation"].median()),
        "path": str(path),
    }


def template_context(
    config: Config, bench: Path | Mapping | None = BENCH_RESULT, extra: Mapping | None = None
) -> dict[str, Any]:
    """Every variable the methods template may use (``extra`` is laid over them last)."""
    context: dict[str, Any] = {
        "profile": config.profile,
        "data": config.data,
        "train": config.train,
        "evaluate": config.evaluate,
        "compare": config.compare,
        "report": config.report,
        "bench": bench_summary(bench),
        "links": link_summary(config.data.raw.links),
        "ignore_index": IGNORE_INDEX,
        "confidence": CONFIDENCE,  # the intervals' level, whatever the significance
        "gradnorm_paper_alpha": GRADNORM_PAPER_ALPHA,
        "recipes": [config.recipes[m] for m in config.train.methods],
        "describe": describe_recipe,
        "gradnorm": SimpleNamespace(
            **{**_defaults("gradnorm"), **config.recipes.get("gradnorm", DEFAULT_GRADNORM).options}
        ),
    }
    context.update(extra or {})
    return context


def environment() -> jinja2.Environment:
    """Jinja2 for Markdown: no HTML escaping, undefined variables raise."""
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters.update(num=_num, percent=_percent, ratio=_ratio, dice=_dice)
    env.globals["isclose"] = math.isclose
    return env


def render_methods(
    config: Config,
    bench: Path | Mapping | None = BENCH_RESULT,
    extra: Mapping | None = None,
    template: Path = METHODS_TEMPLATE,
) -> str:
    """The methods text (Markdown) of a run with ``config``.

    ``bench``: the GradNorm step benchmark JSON (path or parsed), or None: the text then says
    the benchmark was not recorded. ``extra``: variables laid over the computed ones (e.g.
    ``links=None``). ``template``: the Jinja2 Markdown source, ``paper/methods.md``.
    """
    source = Path(template).read_text(encoding="utf-8")
    return environment().from_string(source).render(template_context(config, bench, extra))
