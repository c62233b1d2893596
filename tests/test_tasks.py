"""Tasks as specs (wing.training.tasks): targets, labels, losses and the recipe keys that add
an auxiliary task; the image-level scores (wing.evaluation.image_tasks)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wing.data.format import IGNORE_INDEX, Legend
from wing.evaluation.image_tasks import label_scores, presence_references
from wing.report import image_task_table
from wing.training.losses import dice_focal_loss, segmentation_loss
from wing.training.methods import parse_recipe
from wing.training.tasks import (
    COMPARED_TASKS,
    image_tasks,
    presence_indices,
    presence_target,
    task_classes,
    task_spec,
)

LEGEND = Legend(("granulation", "slough", "necrosis", "epithelium"))


def test_the_compared_tasks_are_segmentation_tasks_with_their_label_counts():
    assert COMPARED_TASKS == ("wound", "tissue")
    assert task_classes(LEGEND, ("wound", "tissue", "tissue_presence")) == {
        "wound": 2,
        "tissue": 5,
        "tissue_presence": 3,
    }
    assert image_tasks(("wound", "tissue", "tissue_presence")) == ("tissue_presence",)
    with pytest.raises(KeyError, match="tissue_presence"):
        task_spec("diagnosis")


def test_presence_is_read_from_the_tissue_mask_and_unannotated_images_have_no_label():
    tissue = torch.zeros(3, 4, 4, dtype=torch.long)
    tissue[0, 0, 0] = 2  # slough
    tissue[0, 1, 1] = 4  # epithelium
    tissue[1, :, :] = 1  # granulation only
    tissue[2, :, :] = IGNORE_INDEX  # not annotated
    target = presence_target(tissue, presence_indices(LEGEND))
    assert target[0].tolist() == [1.0, 0.0, 1.0]
    assert target[1].tolist() == [0.0, 0.0, 0.0]
    assert torch.isnan(target[2]).all()
    spec = task_spec("tissue_presence")
    assert spec.labelled(target).tolist() == [True, True, False]
    assert spec.labels(LEGEND) == ("slough", "necrosis", "epithelium")


def test_a_legend_without_the_classes_has_no_presence_task():
    dfutissue = Legend(("granulation", "slough", "callus"))
    assert presence_indices(dfutissue) == (2,)
    with pytest.raises(ValueError, match="nothing to predict"):
        presence_indices(Legend(("granulation", "callus")))


def test_the_image_loss_averages_over_labelled_images_only():
    spec = task_spec("tissue_presence")
    logits = torch.tensor([[0.0, 2.0], [5.0, -5.0]])
    target = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:1], target[:1])
    torch.testing.assert_close(spec.loss(logits, target), expected)
    assert spec.loss(logits, torch.full_like(target, float("nan"))) is None


def test_segmentation_spec_uses_the_recipes_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    spec = task_spec("tissue")
    torch.testing.assert_close(spec.loss(logits, target), segmentation_loss(logits, target))
    torch.testing.assert_close(
        spec.loss(logits, target, "dice_focal"), dice_focal_loss(logits, target)
    )


def test_focal_down_weights_confident_pixels_and_ignores_unlabelled_ones():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    # Focal <= CE pixel by pixel, so Dice + focal <= Dice + CE.
    assert float(dice_focal_loss(logits, target)) < float(segmentation_loss(logits, target))
    ignored = target.clone()
    ignored[:, :4] = IGNORE_INDEX
    changed = logits.clone()
    changed[:, :, :4] = 100.0  # logits of unlabelled pixels do not matter
    torch.testing.assert_close(dice_focal_loss(logits, ignored), dice_focal_loss(changed, ignored))
    assert dice_focal_loss(logits, torch.full_like(target, IGNORE_INDEX)) is None


def test_recipe_keys_for_an_auxiliary_task_are_checked():
    recipe = parse_recipe(
        "resformer",
        {
            "balancer": "fixed",
            "architecture": "resformer",
            "auxiliary_tasks": ["tissue_presence"],
            "segmentation_loss": "dice_focal",
            "options": {"weights": {"wound": 1.0, "tissue": 1.0, "tissue_presence": 0.25}},
        },
    )
    assert recipe.task_groups == (("wound", "tissue", "tissue_presence"),)
    with pytest.raises(ValueError, match="no head for the image-level"):
        parse_recipe("x", {"balancer": "ew", "auxiliary_tasks": ["tissue_presence"]})
    with pytest.raises(ValueError, match="auxiliary_tasks' must be a list"):
        parse_recipe("x", {"balancer": "ew", "auxiliary_tasks": ["wound"]})
    with pytest.raises(ValueError, match="not per_task_networks"):
        parse_recipe(
            "x",
            {
                "balancer": "ew",
                "architecture": "resformer",
                "per_task_networks": True,
                "auxiliary_tasks": ["tissue_presence"],
            },
        )
    with pytest.raises(ValueError, match="segmentation_loss"):
        parse_recipe("x", {"balancer": "ew", "segmentation_loss": "lovasz"})


def test_label_scores_and_when_auroc_is_not_assessed():
    reference = np.array([1.0, 0.0, 1.0, 0.0, np.nan])
    probability = np.array([0.9, 0.2, 0.4, 0.6, 0.99])
    scores = label_scores(reference, probability)
    assert scores["auroc"] == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs right
    assert scores["f1"] == pytest.approx(2 * 0.5 * 0.5 / (0.5 + 0.5))
    assert scores["prevalence"] == pytest.approx(0.5)
    constant = label_scores(np.array([1.0, 1.0]), np.array([0.3, 0.8]))
    assert math.isnan(constant["auroc"]) and constant["f1"] == pytest.approx(2 / 3)


def test_native_presence_references_and_the_report_table(tmp_path):
    masks = [np.array([[0, 2], [1, 1]], np.uint8), np.full((2, 2), IGNORE_INDEX, np.uint8)]
    references = presence_references(masks, presence_indices(LEGEND))
    assert references[0].tolist() == [1.0, 0.0, 0.0] and np.isnan(references[1]).all()
    assert image_task_table(tmp_path).empty  # no table: nothing to show
    rows = [
        {"backbone": "b", "method": "resformer", "seed": s, "checkpoint": "best",
         "task": "tissue_presence", "label": "slough", "metric": m, "value": v,
         "images": 4, "patients": 2}
        for s in (0, 1)
        for m, v in (("auroc", 0.5 + 0.1 * s), ("f1", np.nan))
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "image_tasks.csv", index=False)
    table = image_task_table(tmp_path)
    assert table.loc[0, "auroc"] == pytest.approx(0.55)
    assert table.loc[0, "f1"] == "not assessed"
