"""Evaluation: per-image and pooled Dice / IoU / precision / recall and per-image HD95 of wound
and wound-tissue segmentations, scored at each test image's native resolution."""

from wing.evaluation.metrics import (
    IGNORE_INDEX,
    METRICS,
    POOLED_METRICS,
    TISSUE_MEAN,
    WOUND,
    per_image_scores,
    pooled_scores,
    score_tables,
)

__all__ = [
    "IGNORE_INDEX",
    "METRICS",
    "POOLED_METRICS",
    "TISSUE_MEAN",
    "WOUND",
    "per_image_scores",
    "pooled_scores",
    "score_tables",
]
