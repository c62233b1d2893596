"""Evaluation: per-image and pooled Dice / IoU of wound and wound-tissue segmentations."""

from wing.evaluation.metrics import (
    IGNORE_INDEX,
    METRICS,
    TISSUE_MEAN,
    WOUND,
    per_image_scores,
    pooled_scores,
)

__all__ = ["IGNORE_INDEX", "METRICS", "TISSUE_MEAN", "WOUND", "per_image_scores", "pooled_scores"]
