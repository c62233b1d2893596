"""Write the stage notebooks of notebooks/ from the cell lists below (outputs stripped).

The notebooks are the source of truth for readers (edit them in JupyterLab); this script is
how they were first laid out and a quick way to rewrite them consistently:
``python tools/make_notebooks.py``.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent.parent / "notebooks"


ENTER = "from wing.paths import enter_project\n\n_ = enter_project()  # run from the project root\n"


def params(source):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


NOTEBOOKS = {
    "01_prepare.ipynb": [
        new_markdown_cell("""# 1. Data: the cohort in the canonical format and its patient-level split

The compendium runs on any dataset in its canonical format (`wing.data.format`: images, wound
masks, tissue masks, `legend.json`, `metadata.csv`). By default the data source is the
embedded **synthetic longitudinal cohort** (`wing.data.synthetic`): procedurally generated
photographs of chronic wounds with a known healing trajectory per patient, labelled by two
simulated annotators (a wound outline and a tissue map) who disagree as real ones do. The dataset is validated file by file, then split **by patient**
into train, validation and test, so that no patient's visits appear in two splits."""),
        params('params_path = "params.yaml"'),
        new_code_cell(
            ENTER
            + """from wing.config import load_config
from wing.data.sources import prepare_dataset
from wing.data.split import SPLITS
from wing.figures.examples import plot_cohort_examples
from wing.io import save_figure
from wing.paths import FIGURES, SPLIT

config = load_config(params_path)
config.data"""
        ),
        new_markdown_cell("## Build and validate the dataset, then split it by patient"),
        new_code_cell("""metadata, split = prepare_dataset(config.data, SPLIT)
metadata.head()"""),
        new_code_cell(
            """split.groupby("split").agg(patients=("patient_id", "nunique"), images=("sample_id", "size")).loc[list(SPLITS)]"""
        ),
        new_markdown_cell("No patient is in two splits:"),
        new_code_cell("""assert split.groupby("patient_id")["split"].nunique().max() == 1
split.groupby("patient_id")["split"].nunique().max()"""),
        new_markdown_cell("## Examples (image, wound mask, tissue mask)"),
        new_code_cell("""figure = plot_cohort_examples(config.data.root, metadata, n=4)
save_figure(FIGURES / "cohort_examples.png", figure)"""),
    ],
    "02_train.ipynb": [
        new_markdown_cell("""# 2. Training: one method × backbone × seed of the train matrix

One training loop serves every method (`wing.training.loop`): **stl** trains one network per
task (the same loop with one task), **ew** one hard-sharing network with equal loss weights,
**gradnorm** (WING-MTL) one hard-sharing network whose task weights are balanced by GradNorm
(Chen et al. 2018) on the last shared layer, with each L_i(0) measured on fixed labelled
batches before the first step. Each task's loss is Dice + cross-entropy.

The budget and the checkpoint rule are the same for every method: each network takes the same
number of optimiser steps per epoch (`train.steps_per_epoch`; 0 = one pass over the samples
labelled for any task), stops early after `train.patience` epochs without a new minimum of any
task's validation loss, and keeps, per task, the checkpoint of that task's lowest validation
loss (`best_<task>.pt`) and the last one (`last.pt`). Per-epoch losses are logged with DVCLive.

A run killed mid-way (a crash, SIGKILL) resumes when the stage is started again: after every
epoch the loop saves its state under `results/resume/` (outside the run folder, keyed by all
that determines the run, removed once the run is complete), and the run ends with the same
files, to the byte, as an uninterrupted one. The training cell then prints where it resumed."""),
        params(
            'params_path = "params.yaml"\nbackbone = "attention_unet"\nmethod = "gradnorm"\nseed = 0'
        ),
        new_code_cell(
            ENTER
            + """import pandas as pd

from wing.config import load_config
from wing.paths import SPLIT, run_dir, timing_path
from wing.training.loop import train_run

config = load_config(params_path)
split = pd.read_csv(SPLIT, dtype=str)"""
        ),
        new_code_cell("""summary = train_run(
    method=method, backbone=backbone, seed=seed, dataset_root=config.data.root, split=split,
    image_size=config.data.image_size, config=config.train, out_dir=run_dir(backbone, method, seed),
    recipe=config.recipes[method], backbone_options=config.backbone_options(backbone),
    timing_file=timing_path(backbone, method, seed),  # wall-clock: outside the hashed outputs
)
pd.DataFrame(summary["networks"])[
    ["tasks", "balancer", "best_epochs", "epochs_trained", "stopped_early", "optimizer_steps", "parameters"]
]"""),
        new_markdown_cell("## Loss per epoch (train and validation, per task)"),
        new_code_cell("""history = pd.read_csv(run_dir(backbone, method, seed) / "history.csv")
history.pivot(index="epoch", columns="task", values=["train_loss", "val_loss"]).round(4)"""),
    ],
    "03_evaluate.ipynb": [
        new_markdown_cell("""# 3. Evaluation on the test split, at each image's native resolution

Every run predicts the test images twice: with each task's best-validation checkpoint (the
primary rule, the same for every method) and with the last checkpoint. The logits are
upsampled to each image's original size and scored against its original masks. Per image we
compute Dice, IoU, precision, recall and HD95 (MONAI) for the wound and for each tissue class,
with one empty-mask convention for both tasks (reference empty and prediction not = 0; both
empty = not counted); `tissue_mean` is the mean over the classes counted on that image.
Pooled scores (all native pixels of all test images together) are kept as the alternative
convention."""),
        params('params_path = "params.yaml"'),
        new_code_cell(
            ENTER
            + """from wing.config import load_config
from wing.evaluation.evaluate import (
    at_checkpoint,
    evaluate_runs,
    metrics_summary,
    native_size_summary,
    split_rows,
)
from wing.io import write_csv, write_json
from wing.paths import EVALUATION, SPLIT

config = load_config(params_path)
scores, pooled = evaluate_runs(config)"""
        ),
        new_markdown_cell("The test images' native sizes (the resolution they are scored at):"),
        new_code_cell("""test_images = native_size_summary(config.data.root, split_rows(SPLIT)["sample_id"])
write_json(EVALUATION / "test_images.json", test_images)
test_images"""),
        new_code_cell("""write_csv(EVALUATION / "per_image_scores.csv", scores)
write_csv(EVALUATION / "pooled_scores.csv", pooled)
write_json(EVALUATION / "metrics.json", metrics_summary(scores, config.evaluate.checkpoint))
scores.shape"""),
        new_markdown_cell("## Mean per-image Dice (over images and seeds), primary checkpoint"),
        new_code_cell("""(at_checkpoint(scores, config.evaluate.checkpoint).query("metric == 'dice'")
 .pivot_table(index=["backbone", "method"], columns="target", values="value", aggfunc="mean")
 .round(3))"""),
    ],
    "04_compare.ipynb": [
        new_markdown_cell("""# 4. Comparison: WING-MTL (GradNorm) against every other method

**Primary analysis, by patient.** The unit of analysis is the patient (or, where a dataset
has no patient id, the photograph group its split uses): each image's score is averaged over
seeds, then each patient's images are averaged, and methods are paired on patients. Paired
t-test and Wilcoxon signed-rank test, Holm-corrected over the family; bootstrap 95% CIs
(resampling patients) of the mean and median difference; effect sizes (Cohen's d_z,
matched-pairs rank-biserial). Δ-MTL against STL with a patient-level bootstrap CI.

**Secondary analyses.** A linear mixed model on every image and seed (random intercepts for
patient and image), the Friedman test across all methods with a post-hoc test and a
critical-difference diagram, every method at its last epoch, and HD95.

**Backbones (claim 4).** WING-MTL minus EW per patient on each backbone, and whether it depends
on the backbone: a repeated-measures ANOVA of the difference over backbones (the method ×
backbone interaction; subject = patient) with Friedman's test beside it.

**Claims.** Each of the paper's claims gets a verdict by the written rule of
`wing.statistics.claims`, saved as `claims.csv`; the report only renders it."""),
        params('params_path = "params.yaml"'),
        new_code_cell(
            ENTER
            + """import pandas as pd

from wing.config import load_config
from wing.evaluation.evaluate import collect_runs
from wing.figures.plots import plot_balancer_weights, plot_loss_curves, plot_per_image_scores, plot_task_weights
from wing.figures.ranking import plot_ranking
from wing.io import save_figure, write_csv, write_text
from wing.paths import COMPARE, EVALUATION, FIGURES, TIMINGS
from wing.statistics.claims import claims_table
from wing.statistics.convergence import convergence_comparison, convergence_table
from wing.statistics.interaction import backbone_interaction
from wing.statistics.mixed import mixed_model_comparison
from wing.statistics.paired import compare_to_reference, delta_mtl, patient_level, summary_table
from wing.statistics.ranking import average_ranks, friedman_test, posthoc

config = load_config(params_path)
c = config.compare
PRIMARY = ["wound", "tissue_mean"]
scores = pd.read_csv(EVALUATION / "per_image_scores.csv", dtype={"sample_id": str, "patient_id": str})
runs = collect_runs(config)

def save_table(name, table):
    write_csv(COMPARE / f"{name}.csv", table)
    write_text(COMPARE / f"{name}.md", table.to_markdown(index=False, floatfmt=".4g") + "\\n")
    return table"""
        ),
        new_markdown_cell("## Primary: patient-level scores with 95% bootstrap CIs"),
        new_code_cell(
            """save_table("summary", summary_table(scores, metric=c.metric, n_boot=c.n_boot, seed=c.seed)).round(3)"""
        ),
        new_markdown_cell(
            "## Primary: paired tests by patient, WING-MTL against each other method"
        ),
        new_code_cell("""paired = save_table("paired_tests", compare_to_reference(scores, reference=c.reference, metric=c.metric, n_boot=c.n_boot, seed=c.seed))
paired[["backbone", "target", "method", "n_patients", "n_images", "mean_difference", "ci_low", "ci_high", "ttest_p_holm", "wilcoxon_p_holm", "rank_biserial"]].round(4)"""),
        new_markdown_cell(
            "## Δ-MTL against STL (mean relative gain over the primary targets, %), patient-bootstrap CI"
        ),
        new_code_cell("""delta = save_table("delta_mtl", delta_mtl(scores, metric=c.metric, n_boot=c.n_boot, seed=c.seed))
delta.round(2)"""),
        new_markdown_cell("## Secondary: linear mixed model on every image and seed"),
        new_code_cell(
            """save_table("mixed_model", mixed_model_comparison(scores, reference=c.reference, metric=c.metric, targets=PRIMARY)).round(4)"""
        ),
        new_markdown_cell(
            "## Secondary: all methods together, Friedman test and post-hoc on patient-level scores"
        ),
        new_code_cell("""patients = patient_level(scores, metric=c.metric)
friedman = save_table("friedman", pd.concat([friedman_test(patients, t, c.metric) for t in PRIMARY], ignore_index=True))
pairs = save_table("posthoc", pd.concat([posthoc(patients, t, c.metric, method=c.posthoc) for t in PRIMARY], ignore_index=True))
ranks = save_table("average_ranks", pd.concat([average_ranks(patients, t, c.metric) for t in PRIMARY], ignore_index=True))
friedman"""),
        new_code_cell("""for target in PRIMARY:
    figure = plot_ranking(ranks[ranks.target == target], pairs[pairs.target == target], friedman[friedman.target == target], title=f"{target} ({c.metric}), average rank over patients", alpha=c.significance)
    save_figure(FIGURES / f"critical_difference_{target}.png", figure)"""),
        new_markdown_cell(
            "## Claim (4): WING-MTL − EW on each backbone and the method × backbone interaction, by patient"
        ),
        new_code_cell("""interaction = save_table("backbone_interaction", backbone_interaction(patients, reference=c.reference, comparator="ew", targets=PRIMARY, metric=c.metric))
interaction.round(4)"""),
        new_markdown_cell("## Secondary: every method at its last epoch"),
        new_code_cell("""save_table("summary_last_epoch", summary_table(scores, metric=c.metric, n_boot=c.n_boot, seed=c.seed, checkpoint="last"))
save_table("paired_tests_last_epoch", compare_to_reference(scores, reference=c.reference, metric=c.metric, n_boot=c.n_boot, seed=c.seed, checkpoint="last")).round(4)"""),
        new_markdown_cell("## Boundary error: HD95 by patient (pixels, lower is better)"),
        new_code_cell(
            """save_table("hd95_summary", summary_table(scores, metric="hd95", n_boot=c.n_boot, seed=c.seed)).round(2)"""
        ),
        new_markdown_cell("## Convergence epoch of each task's validation loss (claim 3)"),
        new_code_cell("""convergence = save_table("convergence", convergence_table(runs["history"], tolerance=c.convergence_tolerance, runs=runs["runs"]))
save_table("convergence_comparison", convergence_comparison(convergence, reference=c.reference, window=c.convergence_window))"""),
        new_markdown_cell("## Parameters and cost"),
        new_code_cell("""costs = save_table("parameters", runs["runs"].drop(columns="mean_step_seconds"))
# wall-clock seconds per step vary between identical runs: kept out of the hashed outputs
write_csv(TIMINGS / "runs.csv", runs["runs"][["backbone", "method", "seed", "mean_step_seconds"]])
costs[["backbone", "method", "seed", "networks", "parameters", "best_epochs", "epochs_trained", "stopped_early", "optimizer_steps"]]"""),
        new_markdown_cell("## The verdicts, by the written claim rule"),
        new_code_cell("""claims = save_table("claims", claims_table(
    paired, convergence, delta, costs, reference=c.reference, test=c.test, significance=c.significance,
    methods_run=config.train.methods, window=c.convergence_window, tolerance=c.convergence_tolerance,
    interaction=interaction,
))
claims[claims.headline][["claim", "verdict", "reason"]]"""),
        new_markdown_cell("## Figures"),
        new_code_cell(
            """save_figure(FIGURES / "loss_curves.png", plot_loss_curves(runs["history"], tolerance=c.convergence_tolerance))"""
        ),
        new_code_cell(
            """save_figure(FIGURES / "per_image_dice.png", plot_per_image_scores(scores, metric=c.metric))"""
        ),
        new_code_cell("""log = runs["balancer_log"]
save_figure(FIGURES / "gradnorm_weights.png", plot_balancer_weights(log[log.method == c.reference]))"""),
        new_code_cell("""save_figure(FIGURES / "task_weights.png", plot_task_weights(log))"""),
    ],
    "05_report.ipynb": [
        new_markdown_cell("""# 5. Report

One HTML page with the methods text (`paper/methods.md`), the tables and the figures; every
number on it is read from the pipeline's outputs."""),
        params('params_path = "params.yaml"'),
        new_code_cell(
            ENTER
            + """from wing.config import load_config
from wing.io import write_text
from wing.paths import REPORT
from wing.report import build_report

config = load_config(params_path)
html = build_report(config)
write_text(REPORT, html)
len(html) > 0"""
        ),
    ],
}

for name, cells in NOTEBOOKS.items():
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "wing",
        "display_name": "Python (wing)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"{Path(name).stem}-{i:02d}"
    nbformat.write(notebook, HERE / name)
print("wrote", ", ".join(NOTEBOOKS))
