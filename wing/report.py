"""The report: one self-contained HTML page built only from the pipeline's outputs.

Every table and verdict on the page is read from ``results/`` (tables written by the evaluate
and compare stages, ``results/compare/claims.csv`` for the verdicts, computed by
:mod:`wing.statistics.claims`) or from the dataset's metadata; the methods text is
``paper/methods.md`` rendered from the configuration of the run (:mod:`wing.methods_text`);
published numbers come from a cited data file (``paper/published/``). The page layout is the
template ``wing/templates/report.html.j2``; this module only formats tables.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import jinja2
import markdown
import pandas as pd

from wing.balancing import BALANCERS
from wing.config import Config
from wing.data.taxonomy import legend_table
from wing.evaluation.evaluate import at_checkpoint
from wing.io import read_optional
from wing.methods_text import link_summary, render_methods
from wing.paths import COMPARE, EVALUATION, EXTERNAL, FIGURES, LONGITUDINAL
from wing.statistics.claims import (
    BACKBONE_RULE,
    CONVERGENCE_RULE,
    DELTA_RULE,
    LONGITUDINAL_RULE,
    NOT_ASSESSED,
    OVERALL_RULE,
    PAIRED_RULES,
    PARAMETER_RULE,
)

METHODS_TEXT = Path("paper/methods.md")
# The step-cost benchmark of every recipe (bench/balancer_step.py, run on demand).
BALANCER_BENCH = Path("bench/results/balancer_step.json")
# The cost of every backbone and architecture (bench/architecture_cost.py, run on demand).
ARCHITECTURE_BENCH = Path("bench/results/architecture_cost.json")
# Throughput, the loader's share and the CPU speed options (bench/training_throughput.py), the
# per-stage fixed cost (bench/stage_overhead.py) and the whole pipeline's wall time
# (bench/pipeline_cost.py): run on demand, shown as recorded.
THROUGHPUT_BENCH = Path("bench/results/training_throughput.json")
OVERHEAD_BENCH = Path("bench/results/stage_overhead.json")
PIPELINE_BENCH = Path("bench/results/pipeline_cost.json")
TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"

# Published results on DFUTissue's Test images (percent), a cited data file (Dhar et al.,
# arXiv 2406.16012, 2024; see paper/published/README.md). Their metric convention,
# resolution and training budget differ from ours: see PUBLISHED_SETTING.
PUBLISHED_DFUTISSUE = Path("paper/published/dfutissue.csv")
REAL_SOURCES = ("dfutissue", "dfutissue_fuseg")
PUBLISHED_SETTING = (
    "Differences in setting: the published models were trained with their own architectures, "
    "resolution and schedules (not restated here) on the authors' own split of TrainVal; the "
    "numbers quoted do not say whether DSC is pooled over pixels or averaged over images, nor "
    "whether background counts. Ours: a from-scratch Attention-UNet trained at data.image_size "
    "px (see the profile and the methods text), our seeded split of TrainVal, the same Test "
    "images, scored at each image's native resolution; pooled Dice over all Test pixels per "
    "class, averaged over slough, granulation and callus (background excluded), and the "
    "per-image mean alongside."
)
PAIRED_COLUMNS = [
    "backbone",
    "target",
    "method",
    "n_patients",
    "n_images",
    "mean_reference",
    "mean_method",
    "mean_difference",
    "ci_low",
    "ci_high",
    "median_difference",
    "ttest_p_holm",
    "wilcoxon_p_holm",
    "cohens_dz",
    "rank_biserial",
]


def published_dfutissue(path: Path = PUBLISHED_DFUTISSUE) -> pd.DataFrame:
    """The published DFUTissue results: published model, score, percent, source."""
    return pd.read_csv(path).rename(columns={"model": "published model"})


def _table(frame: pd.DataFrame, digits: int = 4, columns: list[str] | None = None) -> str:
    if frame is None or frame.empty:
        return "<p><i>(empty in this run)</i></p>"
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    return frame.to_html(
        index=False, float_format=lambda v: f"{v:.{digits}g}", na_rep="–", border=0
    )


def _table_or_nothing(
    frame: pd.DataFrame, digits: int = 4, columns: list[str] | None = None
) -> str:
    """:func:`_table`, or "" for an empty frame (the template then says why it is absent)."""
    return "" if frame is None or frame.empty else _table(frame, digits, columns)


def _figure(name: str, figures: Path) -> str:
    path = figures / name
    if not path.is_file():
        return f"<p><i>figure {html.escape(name)} was not produced by this run</i></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def per_image_means(evaluation: Path, checkpoint: str = "best") -> pd.DataFrame:
    scores = pd.read_csv(evaluation / "per_image_scores.csv", dtype={"sample_id": str})
    return (
        at_checkpoint(scores, checkpoint)
        .groupby(["backbone", "method", "seed", "target", "metric"], as_index=False)["value"]
        .mean()
    )


def ours_in_percent(pooled: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """This run's Dice / IoU in percent, pooled and per-image, mean over seeds."""
    rows = []
    for convention, frame in (("pooled", pooled), ("per image", per_image)):
        frame = frame[frame["metric"].isin(["dice", "iou"])]
        means = frame.groupby(["backbone", "method", "target", "metric"])["value"].mean()
        for (backbone, method, target, metric), value in means.items():
            rows.append(
                {
                    "backbone": backbone,
                    "method": method,
                    "convention": convention,
                    "target": target,
                    "metric": metric,
                    "percent": 100 * value,
                }
            )
    table = pd.DataFrame(rows)
    return table.pivot_table(
        index=["backbone", "method", "convention"], columns=["metric", "target"], values="percent"
    ).reset_index()


def analysis_unit(metadata: pd.DataFrame) -> str:
    """The unit of analysis: the patient, or the source photograph group for FUSeg crops."""
    return "source-photograph group" if "fuseg_id" in metadata else "patient"


def label_agreement(metadata: pd.DataFrame, links: str | Path | None) -> pd.DataFrame:
    """Agreement of the wound label with the tissue label's wound bed (Dice), this dataset
    (``wound_agreement_dice`` in its metadata) beside the real DFUTissue / FUSeg pair
    measured in the link table (``data.raw.links``)."""
    rows = []
    if "wound_agreement_dice" in metadata and metadata["wound_agreement_dice"].notna().any():
        values = metadata["wound_agreement_dice"].dropna()
        rows.append(
            {
                "label pair": "this dataset: wound label vs the tissue label's wound bed",
                "images": len(values),
                "median Dice": values.median(),
                "quartile 1": values.quantile(0.25),
                "quartile 3": values.quantile(0.75),
            }
        )
    summary = link_summary(links)
    if summary is not None:
        table = pd.read_csv(summary["path"], dtype={"dfutissue_id": str})
        for name, part in (
            ("all crops", table),
            ("Test crops", table[table["dfutissue_split"] == "Test"]),
        ):
            values = part["dice_fibrin_granulation"].dropna()
            rows.append(
                {
                    "label pair": "real: FUSeg wound label vs DFUTissue fibrin ∪ granulation, "
                    + name,
                    "images": len(values),
                    "median Dice": values.median(),
                    "quartile 1": values.quantile(0.25),
                    "quartile 3": values.quantile(0.75),
                }
            )
    return pd.DataFrame(rows)


def data_text(metadata: pd.DataFrame, split: pd.DataFrame | None) -> str:
    """What the data was; ``patient_id`` is a patient, or a photograph group for crops."""
    unit = analysis_unit(metadata) + "s"
    parts = [f"<p>{metadata['patient_id'].nunique()} {unit}, {len(metadata)} images"]
    if "visit" in metadata:
        parts.append(
            f", {metadata.groupby('patient_id')['visit'].nunique().median():.0f} visits "
            "per patient (median)"
        )
    parts.append(".")
    if split is not None:
        counts = split.groupby("split").agg(
            patients=("patient_id", "nunique"), images=("sample_id", "size")
        )
        parts.append(
            f" Split with no {unit[:-1]} in two splits: "
            + ", ".join(
                f"{name} {row.patients} {unit} / {row.images} images"
                for name, row in counts.iterrows()
            )
            + "."
        )
    if unit != "patients":
        parts.append(
            " FUSeg publishes no patient identifiers: photographs of one patient taken on "
            "different days can fall in different splits (byte-identical copies cannot)."
        )
    fractions = [c for c in metadata.columns if c.startswith("fraction_")]
    if fractions:
        means = metadata[fractions].mean()
        parts.append(
            " Mean tissue fractions of the true wound area: "
            + ", ".join(f"{c.removeprefix('fraction_')} {v:.1%}" for c, v in means.items())
            + "."
        )
    return "".join(parts) + "</p>"


def claim_rules(config: Config) -> str:
    """The written rules of :mod:`wing.statistics.claims`, as the run applied them."""
    c = config.compare
    rules = [
        ("Claims (1), (2a), (2b)", PAIRED_RULES[c.test].format(significance=c.significance)),
        ("Several rows of one claim", OVERALL_RULE),
        (
            "Claim (3)",
            CONVERGENCE_RULE.format(tolerance=c.convergence_tolerance, window=c.convergence_window),
        ),
        ("Claim (4)", BACKBONE_RULE.format(significance=c.significance)),
        ("Claim (5)", PARAMETER_RULE),
        ("Claim (6)", LONGITUDINAL_RULE.format(significance=c.significance)),
        ("Δ-MTL", DELTA_RULE),
    ]
    return "".join(f"<p><b>{name}.</b> {html.escape(rule)}</p>" for name, rule in rules)


def recipe_table(config: Config) -> pd.DataFrame:
    """The methods of the train matrix: recipe, label, balancer, family and options."""
    rows = []
    for name in config.train.methods:
        recipe = config.recipes[name]
        rows.append(
            {
                "method": name,
                "label": recipe.label,
                "networks": "one per task" if recipe.per_task_networks else "shared",
                "architecture": recipe.architecture,
                "auxiliary tasks": ", ".join(recipe.auxiliary_tasks) or "–",
                "balancer": recipe.balancer,
                "family": BALANCERS.get(recipe.balancer).family,
                "options": ", ".join(f"{k}={v}" for k, v in recipe.options.items()) or "–",
            }
        )
    return pd.DataFrame(rows)


def balancer_cost_table(source: Path | dict | None = BALANCER_BENCH) -> tuple[pd.DataFrame, str]:
    """The recorded step cost of every recipe against equal weighting, and a line saying
    where and when it was measured (``bench/balancer_step.py``); empty when not recorded."""
    if source is None or (isinstance(source, Path) and not source.is_file()):
        return pd.DataFrame(), "The step-cost benchmark has not been recorded."
    result = json.loads(source.read_text(encoding="utf-8")) if isinstance(source, Path) else source
    rows = []
    for name in result["order"]:
        m = result["methods"][name]
        q1, q3 = m["ratio_to_ew_quartiles"]
        memory = m.get("peak_memory_bytes")
        rows.append(
            {
                "method": name,
                "family": m["family"],
                "parameters": m["parameters"],
                "median step (s)": round(m["median_step_seconds"], 4),
                "× EW step": round(m["ratio_to_ew"], 3),
                "IQR of ratio": f"{q1:.2f}–{q3:.2f}",
                "peak memory (MiB)": None if memory is None else round(memory / 2**20, 1),
                "× EW memory": None
                if m.get("peak_memory_ratio_to_ew") is None
                else round(m["peak_memory_ratio_to_ew"], 2),
                "target": m["target_status"]
                if m["target_ratio"] is None
                else f"≤ {m['target_ratio']}×: {m['target_status']}",
            }
        )
    where = (
        f"Measured {result['date'][:10]} on {result['device_name']} ({result['device']}, "
        f"{result['threads']} threads), torch {result['torch']}, torchjd {result['torchjd']}: "
        f"{result['rounds']} interleaved rounds after {result['warmup']} warm-up, batch "
        f"{result['batch_size']} at {result['image_size']} px, {result['backbone']}. "
        f"Ratio: {result['ratio']}."
    )
    return pd.DataFrame(rows), where


def architecture_cost_table(
    source: Path | dict | None = ARCHITECTURE_BENCH,
) -> tuple[pd.DataFrame, str]:
    """The recorded cost of every backbone and architecture (parameters shared and
    task-specific, MACs per forward, step time and peak memory against hard sharing on the
    same backbone), and a line saying where and when it was measured
    (``bench/architecture_cost.py``); empty when not recorded."""
    if source is None or (isinstance(source, Path) and not source.is_file()):
        return pd.DataFrame(), "The architecture cost benchmark has not been recorded."
    result = json.loads(source.read_text(encoding="utf-8")) if isinstance(source, Path) else source

    def mib(value):
        return None if value is None else round(value / 2**20, 1)

    def ratio(value, digits=2):
        return None if value is None else round(value, digits)

    rows = []
    for row in result["rows"]:
        q1, q3 = row["step_ratio_quartiles"]
        rows.append(
            {
                "backbone": row["backbone"],
                "architecture": row["label"],
                "networks": row["networks"],
                "parameters": row["parameters"],
                "shared": row["shared_parameters"],
                "task-specific": row["task_specific_parameters"],
                "MACs / forward (M)": round(row["macs"] / 1e6, 1),
                "× HS MACs": ratio(row["macs_ratio_to_hard_sharing"]),
                "median step (s)": round(row["median_step_seconds"], 4),
                "× HS step": ratio(row["step_ratio_to_hard_sharing"], 3),
                "IQR of ratio": f"{q1:.2f}–{q3:.2f}",
                "peak memory (MiB)": mib(row.get("peak_memory_bytes")),
                "× HS memory": ratio(row.get("peak_memory_ratio_to_hard_sharing")),
                "one network at a time (MiB)": mib(
                    row.get("peak_memory_bytes_one_network_at_a_time")
                ),
            }
        )
    where = (
        f"Measured {result['date'][:10]} on {result['device_name']} ({result['device']}, "
        f"{result['threads']} threads), torch {result['torch']}: {result['rounds']} interleaved "
        f"rounds after {result['warmup']} warm-up, batch {result['batch_size']} at "
        f"{result['image_size']} px; step: {result['step']}. HS = hard sharing on the same "
        f"backbone; ratio: {result['ratio']}. MACs: {result['macs_measure']}. Budget: "
        f"{result['budget']}. STL pair: two single-task hard-sharing networks, nothing shared; "
        f"its peak memory holds both, and one network at a time is what a run needs."
    )
    return pd.DataFrame(rows), where


def _recorded(source: Path | dict | None) -> dict | None:
    if source is None or (isinstance(source, Path) and not source.is_file()):
        return None
    return json.loads(source.read_text(encoding="utf-8")) if isinstance(source, Path) else source


def throughput_tables(
    source: Path | dict | None = THROUGHPUT_BENCH,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The recorded training throughput per method (images/s end to end and model only, the
    loader's share, one shared network against the STL pair) and the CPU speed options
    (``bench/training_throughput.py``), with a line saying where and when; empty when not
    recorded."""
    result = _recorded(source)
    if result is None:
        return pd.DataFrame(), pd.DataFrame(), "The throughput benchmark has not been recorded."
    pairs = {(r["backbone"], r["method"]): r for r in result["mtl_vs_stl"]}
    rows = []
    for row in result["rows"]:
        pair = pairs.get((row["backbone"], row["method"]), {})
        rows.append(
            {
                "backbone": row["backbone"],
                "method": row["label"],
                "parameters": row["parameters"],
                "images/s": round(row["images_per_second"], 1),
                "model-only images/s": round(row["model_only_images_per_second"], 1),
                "end to end / model only": round(row["loader_ratio"], 2),
                "≤ 1.10×": "met" if row["loader_target_met"] else "not met",
                "× STL pair step": round(pair["time_ratio"], 2) if pair else None,
                "× STL parameters": round(pair["parameter_ratio"], 3) if pair else None,
                "peak memory (MiB)": round(row["peak_memory_bytes"] / 2**20),
            }
        )
    options = []
    for row in result["speed_options"]:
        determinism = row.get("determinism") or {}
        options.append(
            {
                "backbone": row["backbone"],
                "option": row["option"],
                "× eager step": None
                if row.get("ratio_to_eager") is None
                else round(row["ratio_to_eager"], 2),
                "compile (s)": None
                if row.get("compile_seconds") is None
                else round(row["compile_seconds"], 1),
                "reproducible": determinism.get("reproducible"),
                "bit-identical to eager": determinism.get("identical_to_eager"),
                "status": row["status"] if row.get("reason") is None else row["reason"],
            }
        )
    where = (
        f"Measured {result['date'][:10]} on {result['device_name']} ({result['device']}, "
        f"{result['threads']} threads), torch {result['torch']}: {result['rounds']} interleaved "
        f"rounds after {result['warmup']} warm-up, batch {result['batch_size']} at "
        f"{result['image_size']} px. End to end: {result['end_to_end_step']}. Ratios: "
        f"{result['ratio']}. Speed options on {result['speed_method']}'s model-only step; "
        f"compile: {result['compile_scope']}."
    )
    return pd.DataFrame(rows), pd.DataFrame(options), where


def pipeline_cost_table(
    pipeline: Path | dict | None = PIPELINE_BENCH, overhead: Path | dict | None = OVERHEAD_BENCH
) -> tuple[pd.DataFrame, str]:
    """The recorded wall time of the whole pipeline (forced and no-op ``dvc repro``,
    ``bench/pipeline_cost.py``) and of the stages' fixed cost (``bench/stage_overhead.py``),
    one row per measure; empty when neither is recorded."""
    rows, notes = [], []
    cost = _recorded(pipeline)
    if cost is not None:
        changed = cost["changed_outputs"]
        rows += [
            {"measure": f"dvc repro -f ({cost['profile']} profile, {cost['stages_run']} stages)",
             "value": f"{cost['forced_repro_seconds'] / 60:.1f} min"},
            {"measure": "dvc repro right after it (nothing to do)",
             "value": f"{cost['noop_repro_seconds']:.1f} s"},
            {"measure": "stages whose outputs the forced run changed",
             "value": ", ".join(sorted(changed)) if changed else "none (byte-identical)"},
        ]  # fmt: skip
        machine = ""
        if "device_name" in cost:  # recorded from 2026-12-06 on
            machine = f" ({cost['device_name']}, {cost['cpu_capability']})"
        notes.append(
            f"Pipeline: recorded {cost['date'][:10]} at commit {cost['commit'][:7]} on "
            f"{cost['cpu_count']} cores{machine}."
        )
    fixed = _recorded(overhead)
    if fixed is not None:
        share = fixed["fixed_cost"]
        rows.append(
            {
                "measure": f"stages' fixed cost (kernel start, imports; {fixed['stages']} stages)",
                "value": f"{share['total_seconds']:.0f} s = {share['fraction']:.1%} of a "
                f"{fixed['quick_wall_seconds'] / 60:.1f}-min quick run (target ≤ 10 %: "
                f"{'met' if share['target_met'] else 'not met'})",
            }
        )
        notes.append(f"Fixed cost: recorded {fixed['date'][:10]}, {fixed['what']['fixed_cost']}.")
    if not rows:
        return pd.DataFrame(), "The pipeline cost has not been recorded."
    return pd.DataFrame(rows), " ".join(notes)


ADDITION_COLUMNS = [
    "with_gradnorm",
    "method",
    "backbone",
    "target",
    "n_patients",
    "mean_difference",
    "ci_low",
    "ci_high",
    "ttest_p_holm",
    "wilcoxon_p_holm",
]


def image_task_table(evaluation: Path = EVALUATION, checkpoint: str = "best") -> pd.DataFrame:
    """AUROC / F1 / prevalence of each image-level task's labels per backbone and method,
    mean over seeds at one checkpoint rule ("not assessed" where undefined); empty when
    no run has an image-level task (or an older run left no table)."""
    path = evaluation / "image_tasks.csv"
    frame = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if frame.empty:
        return frame
    frame = frame[frame["checkpoint"] == checkpoint]
    wide = (
        frame.groupby(["backbone", "method", "task", "label", "metric"])["value"]
        .mean()
        .unstack("metric")
        .reset_index()
    )
    for metric in ("auroc", "f1", "prevalence"):
        if metric in wide:
            wide[metric] = wide[metric].map(lambda v: NOT_ASSESSED if pd.isna(v) else round(v, 3))
    return wide


EXTERNAL_COLUMNS = [
    "dataset",
    "backbone",
    "method",
    "target",
    "n_patients",
    "n_images",
    "mean",
    "ci_low",
    "ci_high",
]
EXTERNAL_PAIRED_COLUMNS = [
    "dataset",
    "backbone",
    "target",
    "method",
    "n_patients",
    "n_images",
    "mean_difference",
    "ci_low",
    "ci_high",
    "ttest_p_holm",
    "wilcoxon_p_holm",
]


def external_tables(external: Path = EXTERNAL) -> dict[str, pd.DataFrame]:
    """The external-validation stage's status, patient-level summary and paired tables
    (empty where the stage wrote none)."""
    return {
        name: read_optional(external / f"{name}.csv")
        for name in ("status", "summary", "comparisons")
    }


TREND_COLUMNS = [
    "backbone",
    "source",
    "measure",
    "time_unit",
    "slope",
    "ci_low",
    "ci_high",
    "p_value",
    "n_patients",
    "fit",
]
AGREEMENT_COLUMNS = [
    "backbone",
    "method",
    "measure",
    "n_patients",
    "bias",
    "loa_low",
    "loa_high",
    "icc",
    "mae",
    "mae_ci_low",
    "mae_ci_high",
]


def longitudinal_tables(longitudinal: Path = LONGITUDINAL) -> dict[str, pd.DataFrame]:
    """The longitudinal stage's tables for the report (empty where it wrote none); the
    per-patient healing-rate errors summarised per method and yardstick."""
    names = [
        "healing_rates",
        "healing_errors",
        "agreement",
        "par4_agreement",
        "tissue_trends",
        "lutseg_status",
        "lutseg_agreement",
        "lutseg_dynamics",
        "lutseg_photograph_errors",
        "lutseg_trends",
    ]
    tables = {name: read_optional(longitudinal / f"{name}.csv") for name in names}
    errors = tables["healing_errors"]
    if not errors.empty:
        keys = [k for k in ("backbone", "method", "against") if k in errors]
        tables["healing_errors"] = (
            errors.groupby(keys, sort=False)["error"]
            .agg(patients="size", mean_error="mean", median_error="median")
            .reset_index()
        )
    return tables


def _claim_ids(headline: pd.DataFrame, assessed: bool) -> list[str]:
    """The headline claims (in table order) that were, or were not, assessed."""
    mask = (headline["verdict"] != NOT_ASSESSED) == assessed
    return [f"({c})" if c[0].isdigit() else str(c) for c in headline.loc[mask, "claim_id"]]


def build_report(
    config: Config,
    evaluation: Path = EVALUATION,
    compare: Path = COMPARE,
    figures: Path = FIGURES,
    external: Path = EXTERNAL,
    longitudinal: Path = LONGITUDINAL,
    split_path: Path | None = Path("data/prepared/split.csv"),
) -> str:
    """The HTML report of one pipeline run."""

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(compare / f"{name}.csv")

    claims = read("claims")
    headline = claims[claims["headline"].astype(bool)]
    pooled = at_checkpoint(pd.read_csv(evaluation / "pooled_scores.csv"), "best")
    metadata = pd.read_csv(Path(config.data.root) / "metadata.csv", dtype={"patient_id": str})
    split = pd.read_csv(split_path, dtype=str) if split_path and split_path.is_file() else None
    pooled_wide = (
        pooled[pooled["metric"] == config.compare.metric]
        .pivot_table(index=["backbone", "method"], columns="target", values="value", aggfunc="mean")
        .reset_index()
    )
    summary = read("summary")
    parameters = read("parameters")
    real = config.data.source in REAL_SOURCES
    cost, cost_where = balancer_cost_table()
    architecture_cost, architecture_cost_where = architecture_cost_table()
    throughput, speed_options, throughput_where = throughput_tables()
    pipeline_cost, pipeline_cost_where = pipeline_cost_table()
    outside = external_tables(external)
    healing = longitudinal_tables(longitudinal)
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        title=config.report.title,
        profile=config.profile,
        cpu_sized=not (config.profile == "paper" or config.profile.endswith("_gpu")),
        source=config.data.source,
        reference=config.compare.reference,
        unit=analysis_unit(metadata),
        n_units=int(summary["n_patients"].max()) if "n_patients" in summary else "–",
        n_images=int(summary["n_images"].max()) if "n_images" in summary else "–",
        claims=headline.to_dict("records"),
        assessed=", ".join(_claim_ids(headline, assessed=True)),
        not_assessed=", ".join(_claim_ids(headline, assessed=False)),
        recipes=_table(recipe_table(config)),
        claims_detail=_table(
            claims,
            columns=["claim", "backbone", "target", "comparator", "verdict", "evidence"],
        ),
        claim_rules=claim_rules(config),
        data_text=data_text(metadata, split),
        agreement=_table(label_agreement(metadata, config.data.raw.links), digits=3),
        summary=_table(summary),
        paired=_table(read("paired_tests"), columns=PAIRED_COLUMNS),
        delta=_table(read("delta_mtl")),
        gradnorm_additions=_table_or_nothing(
            read_optional(compare / "gradnorm_additions.csv"), columns=ADDITION_COLUMNS
        ),
        mixed=_table(read("mixed_model")),
        posthoc=config.compare.posthoc,
        friedman=_table(read("friedman")) + _table(read("average_ranks")),
        summary_last=_table(read("summary_last_epoch")),
        paired_last=_table(read("paired_tests_last_epoch"), columns=PAIRED_COLUMNS),
        hd95=_table(read("hd95_summary")),
        convergence=_table(read("convergence")),
        convergence_comparison=_table(read("convergence_comparison")),
        backbone_interaction=_table(read("backbone_interaction")),
        # wall-clock step times vary between identical runs: not in the byte-stable report
        # (the compare stage lists them in results/timings/runs.csv, not a DVC output)
        parameters=_table(parameters.drop(columns="mean_step_seconds", errors="ignore")),
        pooled=_table(pooled_wide),
        image_tasks=_table_or_nothing(image_task_table(evaluation), digits=3),
        healing_rates=_table_or_nothing(healing["healing_rates"]),
        healing_errors=_table_or_nothing(healing["healing_errors"]),
        healing_agreement=_table_or_nothing(
            healing["agreement"], digits=3, columns=AGREEMENT_COLUMNS
        ),
        par4_agreement=_table_or_nothing(healing["par4_agreement"], digits=3),
        tissue_trends=_table_or_nothing(healing["tissue_trends"], columns=TREND_COLUMNS),
        lutseg_status=_table_or_nothing(healing["lutseg_status"]),
        lutseg_agreement=_table_or_nothing(healing["lutseg_agreement"], digits=3),
        lutseg_dynamics=_table_or_nothing(healing["lutseg_dynamics"], digits=3),
        lutseg_photographs=_table_or_nothing(healing["lutseg_photograph_errors"], digits=3),
        lutseg_trends=_table_or_nothing(healing["lutseg_trends"], columns=TREND_COLUMNS),
        external_status=_table_or_nothing(outside["status"]),
        external_summary=_table_or_nothing(outside["summary"], digits=3, columns=EXTERNAL_COLUMNS),
        external_paired=_table_or_nothing(outside["comparisons"], columns=EXTERNAL_PAIRED_COLUMNS),
        balancer_cost=_table(cost, digits=4),
        balancer_cost_where=cost_where,
        architecture_cost=_table(architecture_cost, digits=4),
        architecture_cost_where=architecture_cost_where,
        throughput=_table(throughput, digits=3),
        speed_options=_table(speed_options, digits=3),
        throughput_where=throughput_where,
        pipeline_cost=_table(pipeline_cost),
        pipeline_cost_where=pipeline_cost_where,
        figure=lambda name: _figure(name, figures),
        published=_table(published_dfutissue()) if real else "",
        published_setting=PUBLISHED_SETTING,
        ours_vs_published=_table(ours_in_percent(pooled, per_image_means(evaluation)))
        if real
        else "",
        legend=_table(legend_table()) if config.data.source != "synthetic" else "",
        methods=markdown.markdown(
            render_methods(config, template=METHODS_TEXT), extensions=["tables"]
        ),
    )
