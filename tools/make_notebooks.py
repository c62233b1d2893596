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
photographs of chronic wounds with exact wound and tissue masks and a known healing
trajectory per patient. The dataset is validated file by file, then split **by patient**
into train, validation and test, so that no patient's visits appear in two splits."""),
        params('params_path = "params.yaml"'),
        new_code_cell(ENTER + """from wing.config import load_config
from wing.data.sources import prepare_dataset
from wing.data.split import SPLITS
from wing.figures.examples import plot_cohort_examples
from wing.io import save_figure
from wing.paths import FIGURES, SPLIT

config = load_config(params_path)
config.data"""),
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
(Chen et al. 2018) on the last shared layer. Each task's loss is Dice + cross-entropy. The
checkpoint of the best validation epoch (lowest sum of task validation losses) and of the
last epoch are kept; per-epoch losses are logged with DVCLive."""),
        params(
            'params_path = "params.yaml"\nbackbone = "attention_unet"\nmethod = "gradnorm"\nseed = 0'
        ),
        new_code_cell(ENTER + """import pandas as pd

from wing.config import load_config
from wing.paths import SPLIT, run_dir
from wing.training.loop import train_run

config = load_config(params_path)
split = pd.read_csv(SPLIT, dtype=str)"""),
        new_code_cell("""summary = train_run(
    method=method, backbone=backbone, seed=seed, dataset_root=config.data.root, split=split,
    image_size=config.data.image_size, config=config.train, out_dir=run_dir(backbone, method, seed),
)
pd.DataFrame(summary["networks"])[["tasks", "balancer", "best_epoch", "parameters"]]"""),
        new_markdown_cell("## Loss per epoch (train and validation, per task)"),
        new_code_cell("""history = pd.read_csv(run_dir(backbone, method, seed) / "history.csv")
history.pivot(index="epoch", columns="task", values=["train_loss", "val_loss"]).round(4)"""),
    ],
    "03_evaluate.ipynb": [
        new_markdown_cell("""# 3. Evaluation on the test split

Every run's best-validation checkpoint predicts the test images. Per image we compute Dice
and IoU (MONAI) for the wound and for each tissue class; a tissue class is scored only on
images where the reference contains it, and `tissue_mean` is the mean over the classes
scored on that image. Pooled scores (all pixels of all test images together) are kept as the
alternative convention."""),
        params('params_path = "params.yaml"'),
        new_code_cell(ENTER + """from wing.config import load_config
from wing.evaluation.evaluate import evaluate_runs, metrics_summary
from wing.io import write_csv, write_json
from wing.paths import EVALUATION

config = load_config(params_path)
scores, pooled = evaluate_runs(config)"""),
        new_code_cell("""write_csv(EVALUATION / "per_image_scores.csv", scores)
write_csv(EVALUATION / "pooled_scores.csv", pooled)
write_json(EVALUATION / "metrics.json", metrics_summary(scores))
scores.shape"""),
        new_markdown_cell("## Mean per-image Dice (over images and seeds)"),
        new_code_cell("""(scores[scores.metric == "dice"]
 .pivot_table(index=["backbone", "method"], columns="target", values="value", aggfunc="mean")
 .round(3))"""),
    ],
    "04_compare.ipynb": [
        new_markdown_cell("""# 4. Comparison: WING-MTL (GradNorm) against every other method

Per-image scores are averaged over seeds, then paired by image: Wilcoxon signed-rank and
paired t-tests (Holm-corrected over the family of comparisons), effect sizes (Cohen's d_z,
matched-pairs rank-biserial) and bootstrap 95% confidence intervals of the mean difference.
Also: Δ-MTL against STL, each task's validation-loss convergence epoch per method (the
paper's "both tasks converge at the same epoch" claim), parameter counts and step times."""),
        params('params_path = "params.yaml"'),
        new_code_cell(ENTER + """import pandas as pd

from wing.config import load_config
from wing.evaluation.evaluate import collect_runs
from wing.figures.plots import plot_balancer_weights, plot_loss_curves, plot_per_image_scores
from wing.io import save_figure, write_csv, write_text
from wing.paths import COMPARE, EVALUATION, FIGURES
from wing.statistics.convergence import convergence_table
from wing.statistics.paired import compare_to_reference, delta_mtl, summary_table

config = load_config(params_path)
c = config.compare
scores = pd.read_csv(EVALUATION / "per_image_scores.csv", dtype={"sample_id": str})
runs = collect_runs(config)

def save_table(name, table):
    write_csv(COMPARE / f"{name}.csv", table)
    write_text(COMPARE / f"{name}.md", table.to_markdown(index=False, floatfmt=".4g") + "\\n")
    return table"""),
        new_markdown_cell("## Per-method scores with 95% bootstrap CIs"),
        new_code_cell(
            """save_table("summary", summary_table(scores, metric=c.metric, n_boot=c.n_boot, seed=c.seed)).round(3)"""
        ),
        new_markdown_cell("## Paired tests: reference method against each other method"),
        new_code_cell("""tests = compare_to_reference(scores, reference=c.reference, metric=c.metric, n_boot=c.n_boot, seed=c.seed)
save_table("paired_tests", tests)[["backbone", "target", "method", "mean_difference", "ci_low", "ci_high", "wilcoxon_p_holm", "ttest_p_holm", "cohens_dz"]].round(4)"""),
        new_markdown_cell("## Δ-MTL against STL (mean relative gain over tasks, %)"),
        new_code_cell("""save_table("delta_mtl", delta_mtl(scores, metric=c.metric)).round(2)"""),
        new_markdown_cell("## Convergence epoch of each task's validation loss"),
        new_code_cell(
            """save_table("convergence", convergence_table(runs["history"], tolerance=c.convergence_tolerance))"""
        ),
        new_markdown_cell("## Parameters and cost"),
        new_code_cell("""costs = save_table("parameters", runs["runs"])
costs[["backbone", "method", "seed", "networks", "parameters", "best_epochs"]]"""),
        new_markdown_cell("## Figures"),
        new_code_cell(
            """save_figure(FIGURES / "loss_curves.png", plot_loss_curves(runs["history"]))"""
        ),
        new_code_cell(
            """save_figure(FIGURES / "per_image_dice.png", plot_per_image_scores(scores, metric=c.metric))"""
        ),
        new_code_cell("""log = runs["balancer_log"]
save_figure(FIGURES / "gradnorm_weights.png", plot_balancer_weights(log[log.method == c.reference]))"""),
    ],
    "05_report.ipynb": [
        new_markdown_cell("""# 5. Report

One HTML page with the methods text (`paper/methods.md`), the tables and the figures; every
number on it is read from the pipeline's outputs."""),
        params('params_path = "params.yaml"'),
        new_code_cell(ENTER + """from wing.config import load_config
from wing.io import write_text
from wing.paths import REPORT
from wing.report import build_report

config = load_config(params_path)
html = build_report(config)
write_text(REPORT, html)
len(html) > 0"""),
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
