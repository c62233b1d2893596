"""Patient-level train / validation / test split.

Visits of one patient are strongly correlated (same wound, same skin, same camera), so a
split by image would leak; every patient's visits go to exactly one split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")


def patient_split(
    metadata: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> pd.DataFrame:
    """Assign each sample to a split by its patient; return ``sample_id, patient_id, split``.

    Patients are shuffled with ``seed`` and cut at the cumulative fractions; each split gets
    at least one patient (so at least three patients are needed).
    """
    patients = np.array(sorted(metadata["patient_id"].astype(str).unique()))
    if len(patients) < len(SPLITS):
        raise ValueError(f"a patient-level split needs at least 3 patients, got {len(patients)}")
    rng = np.random.default_rng(seed)
    patients = patients[rng.permutation(len(patients))]
    n = len(patients)
    n_validation = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    n_train = n - n_validation - n_test
    if n_train < 1:
        raise ValueError(f"{n} patients are too few for fractions {fractions}")
    assignment = {p: "train" for p in patients[:n_train]}
    assignment |= {p: "validation" for p in patients[n_train : n_train + n_validation]}
    assignment |= {p: "test" for p in patients[n_train + n_validation :]}
    out = metadata[["sample_id", "patient_id"]].astype(str).copy()
    out["split"] = out["patient_id"].map(assignment)
    return out.reset_index(drop=True)
