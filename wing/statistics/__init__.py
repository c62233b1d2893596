"""Statistics: paired per-image method comparisons, summaries, Delta-MTL and convergence."""

from wing.statistics.convergence import (
    convergence_epoch,
    convergence_summary,
    convergence_table,
)
from wing.statistics.paired import (
    bootstrap_mean_ci,
    cohens_dz,
    compare_to_reference,
    delta_mtl,
    holm,
    method_order,
    paired_comparison,
    rank_biserial,
    seed_averaged,
    summary_table,
)

__all__ = [
    "bootstrap_mean_ci",
    "cohens_dz",
    "compare_to_reference",
    "convergence_epoch",
    "convergence_summary",
    "convergence_table",
    "delta_mtl",
    "holm",
    "method_order",
    "paired_comparison",
    "rank_biserial",
    "seed_averaged",
    "summary_table",
]
