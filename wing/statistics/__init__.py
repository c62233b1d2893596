"""Statistics: patient-level paired comparisons, the claim rule, a mixed model, ranks,
summaries, Delta-MTL, convergence and the method x backbone interaction."""

from wing.statistics.claims import (
    CLAIM_COLUMNS,
    VERDICTS,
    claims_table,
    combine_verdicts,
    judge_comparison,
    judge_convergence,
)
from wing.statistics.convergence import (
    convergence_comparison,
    convergence_epoch,
    convergence_summary,
    convergence_table,
)
from wing.statistics.interaction import backbone_interaction
from wing.statistics.mixed import mixed_model_comparison
from wing.statistics.paired import (
    bootstrap_mean_ci,
    bootstrap_median_ci,
    cohens_dz,
    compare_to_reference,
    delta_mtl,
    higher_is_better,
    holm,
    method_order,
    paired_comparison,
    patient_level,
    rank_biserial,
    seed_averaged,
    select_scores,
    summary_table,
)
from wing.statistics.ranking import (
    average_ranks,
    friedman_test,
    posthoc,
    posthoc_matrix,
    pvalue_matrix,
)

__all__ = [
    "CLAIM_COLUMNS",
    "VERDICTS",
    "average_ranks",
    "backbone_interaction",
    "bootstrap_mean_ci",
    "bootstrap_median_ci",
    "claims_table",
    "cohens_dz",
    "combine_verdicts",
    "compare_to_reference",
    "convergence_comparison",
    "convergence_epoch",
    "convergence_summary",
    "convergence_table",
    "delta_mtl",
    "friedman_test",
    "higher_is_better",
    "holm",
    "judge_comparison",
    "judge_convergence",
    "method_order",
    "mixed_model_comparison",
    "paired_comparison",
    "patient_level",
    "posthoc",
    "posthoc_matrix",
    "pvalue_matrix",
    "rank_biserial",
    "seed_averaged",
    "select_scores",
    "summary_table",
]
