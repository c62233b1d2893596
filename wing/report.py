"""The report: one self-contained HTML page built only from the pipeline's outputs.

Every number on the page is read from ``results/`` (tables written by the evaluate and
compare stages) or from the dataset's metadata; the prose around them is either the methods
text of ``paper/methods.md`` or sentences generated from those numbers, so the page cannot
disagree with the pipeline.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import jinja2
import markdown
import pandas as pd

from wing.config import Config
from wing.data.taxonomy import legend_table
from wing.paths import COMPARE, EVALUATION, FIGURES

METHODS_TEXT = Path("paper/methods.md")
ALPHA = 0.05

# Published results on DFUTissue's 16 Test images (percent), quoted from
# ../shared/data/README.md (Dhar et al., arXiv 2406.16012, 2024). Their metric convention,
# resolution and training budget differ from ours: see PUBLISHED_SETTING.
PUBLISHED_DFUTISSUE = pd.DataFrame(
    [
        ("authors' supervised hybrid model", "tissue mean (DSC)", 84.89),
        ("authors' supervised hybrid model", "tissue mean (IoU)", 73.75),
        ("SegFormer-b3", "tissue mean (DSC)", 80.46),
        ("U-Net", "tissue mean (DSC)", 72.05),
        ("authors' semi-supervised model", "tissue mean (DSC)", 87.64),
        ("authors' semi-supervised model", "slough (fibrin) DSC", 69.01),
        ("authors' semi-supervised model", "granulation DSC", 94.11),
        ("authors' semi-supervised model", "callus DSC", 78.27),
    ],
    columns=["published model", "score", "percent"],
)
PUBLISHED_SETTING = (
    "Differences in setting: the published models were trained with their own architectures, "
    "resolution and schedules (not restated here) on the authors' own 78/16 split of "
    "TrainVal; the numbers quoted here do not say whether DSC is pooled over pixels or "
    "averaged over images, nor whether background counts. Ours: a from-scratch Attention-UNet "
    "at "
    "data.image_size px for train.epochs epochs (see the profile), our seeded 78/16 "
    "split of TrainVal, the same 16 Test images, scored on masks resized to data.image_size "
    "(not at native resolution); pooled Dice over all Test pixels per class, averaged over "
    "slough, granulation and callus (background excluded), and the per-image mean alongside."
)
REAL_SOURCES = ("dfutissue", "dfutissue_fuseg")

TEMPLATE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.claim { margin: 0.3em 0; } .yes { color: #1e7d32; } .no { color: #b23b3b; }
.open { color: #7a6a00; }
.note { background: #fff8e1; padding: 0.6em 1em; border-left: 4px solid #f0b400; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">Profile <b>{{ profile }}</b>; data source <b>{{ source }}</b>. Every number on
this page is read from the pipeline's outputs (<code>results/</code>); nothing is pasted.
{% if cpu_sized %}This profile is sized for a 2-core CPU: read the numbers as a
working demonstration of the method and the statistics, not as the paper's result.{% endif %}</p>

<h2>Findings of this run</h2>
{% for claim in claims %}<p class="claim"><b>{{ claim.name }}.</b>
{% set verdict = {True: ('yes', 'Supported'), False: ('no', 'Not supported')}.get(
   claim.supported, ('open', 'Not assessed')) %}
<span class="{{ verdict[0] }}">{{ verdict[1] }} in this run:</span>
{{ claim.evidence }}</p>{% endfor %}

<h2>Data</h2>
{{ data_text }}
{{ figure("cohort_examples.png") }}

<h2>Results</h2>
<h3>Per-image scores on the test split (mean over images of the seed-averaged value, bootstrap
95% CI)</h3>
{{ summary }}
<h3>Paired tests: {{ reference }} against each other method</h3>
<p>Differences are {{ reference }} minus the other method, per image, after averaging seeds;
p-values are Holm-corrected over all comparisons in the table.</p>
{{ paired }}
<h3>&Delta;-MTL against single-task networks (%)</h3>
{{ delta }}
<h3>Convergence epoch of each task's validation loss</h3>
{{ convergence }}
<h3>Parameters and cost</h3>
{{ parameters }}
<h3>Pooled scores (all test pixels together)</h3>
{{ pooled }}
<h3>Figures</h3>
{{ figure("per_image_dice.png") }}
{{ figure("loss_curves.png") }}
{{ figure("gradnorm_weights.png") }}

{% if published %}
<h2>Beside the published DFUTissue results</h2>
<p>{{ published_setting }}</p>
<h3>This run (percent, mean over seeds; pooled = all Test pixels, per image = mean over images)</h3>
{{ ours_vs_published }}
<h3>Published (Dhar et al. 2024)</h3>
{{ published }}
{% endif %}
{% if legend %}<h2>Tissue taxonomy and dataset legends</h2>
<p>One taxonomy for the compendium; callus is periwound (not wound bed).</p>{{ legend }}{% endif %}

<h2>Methods</h2>
{{ methods }}
</body></html>
"""
)


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_html(
        index=False, float_format=lambda v: f"{v:.{digits}g}", na_rep="–", border=0
    )


def _figure(name: str, figures: Path) -> str:
    path = figures / name
    if not path.is_file():
        return f"<p><i>figure {html.escape(name)} was not produced by this run</i></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def _fmt_p(p: float) -> str:
    return "n/a" if pd.isna(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def claims(
    paired: pd.DataFrame,
    convergence: pd.DataFrame,
    delta: pd.DataFrame,
    parameters: pd.DataFrame,
    reference: str,
) -> list[dict]:
    """The paper's claims, each judged on this run's tables (two-sided tests, Holm).

    ``supported`` is True, False, or None when this run cannot tell (the claim is then listed
    with the reason); nothing is judged on a point estimate alone without saying so.
    """
    out = []
    for other, name in (
        ("stl", "(1) Better than single-task networks (STL), significantly"),
        ("ew", "(2) Better than conventional MTL (equal weighting), significantly"),
    ):
        rows = paired[(paired["method"] == other) & paired["target"].isin(["wound", "tissue_mean"])]
        if rows.empty:
            continue
        wins = (rows["mean_difference"] > 0) & (rows["wilcoxon_p_holm"] < ALPHA)
        evidence = "; ".join(
            f"{r.backbone} {r.target} Dice {r.mean_reference:.3f} vs {r.mean_method:.3f} "
            f"(difference {r.mean_difference:+.3f}, 95% CI {r.ci_low:+.3f} to {r.ci_high:+.3f}, "
            f"Holm-corrected Wilcoxon p {_fmt_p(r.wilcoxon_p_holm)})"
            for r in rows.itertuples()
        )
        out.append({"name": name, "supported": bool(wins.all()), "evidence": evidence})
    out.append(_convergence_claim(convergence, reference))
    if not delta.empty:
        row = delta[delta["method"] == reference]
        if not row.empty:
            value = float(row["delta_mtl"].mean())
            out.append(
                {
                    "name": "Multi-task gain over STL (Δ-MTL, descriptive)",
                    "supported": value > 0,
                    "evidence": f"Δ-MTL of {reference} = {value:+.2f}% (a point estimate over "
                    "the wound and tissue-mean Dice; its significance is claim (1)'s test)",
                }
            )
    if not parameters.empty:
        counts = parameters.groupby("method")["parameters"].first()
        if {"stl", reference} <= set(counts.index):
            ratio = counts[reference] / counts["stl"]
            out.append(
                {
                    "name": "(5) Parameter efficiency against STL",
                    "supported": bool(ratio < 1),
                    "evidence": f"{reference} has {counts[reference]:,} parameters, STL "
                    f"{counts['stl']:,} ({ratio:.0%})",
                }
            )
    for name in (
        "(2) Better than advanced MTL methods (gradient aggregators, CTAN, MT-CooL, ...)",
        "(4) Consistent gains on ResNet- and Transformer-based backbones",
        "(6) Longitudinal wound size and tissue proportions track healing",
    ):
        out.append(
            {
                "name": name,
                "supported": None,
                "evidence": "not tested by this compendium yet (no such method, backbone "
                "or analysis in this run)",
            }
        )
    return out


def _convergence_claim(convergence: pd.DataFrame, reference: str) -> dict:
    name = "(3) Both tasks' validation losses reach their minimum at the same epoch"
    ours = convergence[convergence["method"] == reference].dropna(subset=["epoch_gap"])
    if ours.empty:
        return {"name": name, "supported": None, "evidence": f"no {reference} run to judge"}
    gaps = "; ".join(
        f"{method} ({backbone}): |wound − tissue| gap per seed "
        f"{[int(g) for g in group['epoch_gap'].dropna()]}"
        for (method, backbone), group in convergence.groupby(["method", "backbone"], sort=False)
    )
    if ours["at_last_epoch"].astype(bool).any():
        return {
            "name": name,
            "supported": None,
            "evidence": "cannot tell: in some runs a task's validation loss was lowest at the "
            "last epoch, i.e. still falling when training stopped (a longer profile is "
            "needed). " + gaps,
        }
    return {"name": name, "supported": bool((ours["epoch_gap"] == 0).all()), "evidence": gaps}


def per_image_means(evaluation: Path) -> pd.DataFrame:
    scores = pd.read_csv(evaluation / "per_image_scores.csv", dtype={"sample_id": str})
    return scores.groupby(["backbone", "method", "seed", "target", "metric"], as_index=False)[
        "value"
    ].mean()


def ours_in_percent(pooled: pd.DataFrame, per_image: pd.DataFrame) -> pd.DataFrame:
    """This run's Dice / IoU in percent, pooled and per-image, mean over seeds."""
    rows = []
    for convention, frame in (("pooled", pooled), ("per image", per_image)):
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


def _link_table_agreement(links: Path | None) -> str:
    """The same agreement as measured on the 512-px FUSeg labels, read from the link table."""
    path = links / "dfutissue_in_fuseg.csv" if links else None
    if path is None or not path.is_file():
        return ""
    table = pd.read_csv(path, dtype={"dfutissue_id": str})
    test = table[table["dfutissue_split"] == "Test"]["dice_fibrin_granulation"]
    overall = table["dice_fibrin_granulation"].median()
    return (
        f" (the link table, measured on 512-px FUSeg labels: {overall:.3f} over {len(table)}, "
        f"{test.median():.3f} over the {len(test)} Test crops)"
    )


def data_text(metadata: pd.DataFrame, split: pd.DataFrame | None, links: Path | None = None) -> str:
    """What the data was; ``patient_id`` is a patient, or a photograph group for crops."""
    unit = "source-photograph groups" if "fuseg_id" in metadata else "patients"
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
    if "wound_agreement_dice" in metadata and metadata["wound_agreement_dice"].notna().any():
        agreement = metadata.dropna(subset=["wound_agreement_dice"])
        test = agreement[agreement.get("split", "") == "test"]["wound_agreement_dice"]
        parts.append(
            " Two wound definitions on the DFUTissue crops: FUSeg's annotators' wound (used "
            "here, data.wound_label) against fibrin ∪ granulation of the tissue annotation "
            f"agree with median Dice {agreement['wound_agreement_dice'].median():.3f} over "
            f"{len(agreement)} crops"
            + (f" ({test.median():.3f} over the {len(test)} Test crops)" if len(test) else "")
            + _link_table_agreement(links)
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
            " Mean tissue fractions of the wound area: "
            + ", ".join(f"{c.removeprefix('fraction_')} {v:.1%}" for c, v in means.items())
            + "."
        )
    return "".join(parts) + "</p>"


def build_report(
    config: Config,
    evaluation: Path = EVALUATION,
    compare: Path = COMPARE,
    figures: Path = FIGURES,
    split_path: Path | None = Path("data/prepared/split.csv"),
) -> str:
    """The HTML report of one pipeline run."""
    read = lambda name: pd.read_csv(compare / f"{name}.csv")  # noqa: E731
    summary, paired, delta = read("summary"), read("paired_tests"), read("delta_mtl")
    convergence, parameters = read("convergence"), read("parameters")
    pooled = pd.read_csv(evaluation / "pooled_scores.csv")
    metadata = pd.read_csv(Path(config.data.root) / "metadata.csv", dtype={"patient_id": str})
    split = pd.read_csv(split_path, dtype=str) if split_path and split_path.is_file() else None
    pooled_wide = (
        pooled[pooled["metric"] == config.compare.metric]
        .pivot_table(index=["backbone", "method"], columns="target", values="value", aggfunc="mean")
        .reset_index()
    )
    paired_columns = [
        "backbone",
        "target",
        "method",
        "n",
        "mean_reference",
        "mean_method",
        "mean_difference",
        "ci_low",
        "ci_high",
        "wilcoxon_p_holm",
        "ttest_p_holm",
        "cohens_dz",
        "rank_biserial",
    ]
    methods_md = METHODS_TEXT.read_text(encoding="utf-8") if METHODS_TEXT.is_file() else ""
    return TEMPLATE.render(
        title=config.report.title,
        profile=config.profile,
        cpu_sized=not (config.profile == "paper" or config.profile.endswith("_gpu")),
        source=config.data.source,
        reference=config.compare.reference,
        claims=claims(paired, convergence, delta, parameters, config.compare.reference),
        data_text=data_text(metadata, split, Path(config.data.raw.links)),
        summary=_table(summary),
        paired=_table(paired[paired_columns]),
        delta=_table(delta),
        convergence=_table(convergence),
        parameters=_table(
            parameters.assign(mean_step_seconds=parameters["mean_step_seconds"].round(4))
        ),
        pooled=_table(pooled_wide),
        figure=lambda name: _figure(name, figures),
        published=_table(PUBLISHED_DFUTISSUE) if config.data.source in REAL_SOURCES else "",
        published_setting=PUBLISHED_SETTING,
        ours_vs_published=_table(ours_in_percent(pooled, per_image_means(evaluation)))
        if config.data.source in REAL_SOURCES
        else "",
        legend=_table(legend_table()) if config.data.source != "synthetic" else "",
        methods=markdown.markdown(methods_md, extensions=["tables"]),
    )
