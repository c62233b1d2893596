"""Figures: loss curves, per-image score distributions and GradNorm balancer histories."""

from wing.figures.plots import (
    method_palette,
    plot_balancer_weights,
    plot_loss_curves,
    plot_per_image_scores,
)

__all__ = [
    "method_palette",
    "plot_balancer_weights",
    "plot_loss_curves",
    "plot_per_image_scores",
]
