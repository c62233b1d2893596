"""Figures: loss curves, per-image score distributions, GradNorm balancer histories and
critical-difference diagrams."""

from wing.figures.plots import (
    method_palette,
    plot_balancer_weights,
    plot_loss_curves,
    plot_per_image_scores,
)
from wing.figures.ranking import plot_critical_difference, plot_ranking

__all__ = [
    "method_palette",
    "plot_balancer_weights",
    "plot_critical_difference",
    "plot_loss_curves",
    "plot_per_image_scores",
    "plot_ranking",
]
