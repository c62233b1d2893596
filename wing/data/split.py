"""Patient-level train / validation / test split, and the checks every split must pass.

Visits of one patient are strongly correlated (same wound, same skin, same camera), so a
split by image would leak; every patient's visits go to exactly one split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wing.data.format import METADATA, DatasetError

SPLITS = ("train", "validation", "test")
TASKS = ("wound", "tissue")


def patient_split(
    metadata: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> pd.DataFrame:
    """Assign each sample to a split by its patient; return ``sample_id, patient_id, split``.

    Patients are shuffled with ``seed`` and cut at the cumulative fractions; each split gets
    at least one patient (so at least three patients are needed).
    """
    if len(fractions) != len(SPLITS) or min(fractions) <= 0:
        raise ValueError(
            f"data.split fractions {tuple(fractions)} must be three positive numbers "
            "(train, validation, test), e.g. 0.6, 0.2, 0.2"
        )
    patients = np.array(sorted(metadata["patient_id"].astype(str).unique()))
    if len(patients) < len(SPLITS):
        raise ValueError(
            f"a patient-level split needs at least 3 patients (one per split), got "
            f"{len(patients)}; add patients, or give {METADATA} a split column"
        )
    rng = np.random.default_rng(seed)
    patients = patients[rng.permutation(len(patients))]
    n = len(patients)
    n_validation = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    n_train = n - n_validation - n_test
    if n_train < 1:
        raise ValueError(
            f"{n} patients are too few for fractions {fractions}: no patient left to train "
            "on; raise data.split.train or add patients"
        )
    assignment = {p: "train" for p in patients[:n_train]}
    assignment |= {p: "validation" for p in patients[n_train : n_train + n_validation]}
    assignment |= {p: "test" for p in patients[n_train + n_validation :]}
    out = metadata[["sample_id", "patient_id"]].astype(str).copy()
    out["split"] = out["patient_id"].map(assignment)
    return out.reset_index(drop=True)


def check_split(
    split: pd.DataFrame, labels: pd.DataFrame | None = None, path: str | Path = "split.csv"
) -> None:
    """Raise :class:`DatasetError` naming ``path`` unless ``split`` (``sample_id``,
    ``patient_id``, ``split``) can be trained and scored.

    Every split holds a patient and no patient is in two. With ``labels``
    (:func:`wing.data.format.label_summary`), for each task labelled anywhere in the
    dataset: every split holds a sample labelled for it, and the test split a pixel of one of
    its classes (else the task's test score is undefined).
    """
    if Path(path).name == METADATA:  # a predefined split: the dataset's split column
        fix = (
            f"assign patients to it in the split column of {METADATA}, or drop that column "
            "to split by patient at random (data.split)"
        )
    else:
        fix = (
            f"change data.split.seed or the data.split fractions, or give {METADATA} a split column"
        )
    unknown = sorted(set(split["split"]) - set(SPLITS), key=str)
    if unknown:
        raise DatasetError(path, f"split values {unknown} are not {list(SPLITS)}; {fix}")
    for name in SPLITS:
        if not (split["split"] == name).any():
            raise DatasetError(path, f"the {name} split has no patients; {fix}")
    crossing = split.groupby("patient_id")["split"].nunique()
    if (crossing > 1).any():
        raise DatasetError(
            path,
            f"patient_id {crossing[crossing > 1].index[0]!r} is in more than one split "
            "(leakage); put all of a patient's samples in one split",
        )
    if labels is None:
        return
    merged = split.merge(labels, on="sample_id", how="left", validate="one_to_one")
    for task in TASKS:
        if not labels[f"{task}_labelled"].any():
            continue  # a dataset without this task's labels (e.g. wound-only FUSeg)
        for name in SPLITS:
            rows = merged[merged["split"] == name]
            if not rows[f"{task}_labelled"].eq(True).any():
                raise DatasetError(
                    path,
                    f"the {name} split holds no sample labelled for {task} (every "
                    f"{task} mask in it is 255 = ignore); {fix}",
                )
        test = merged[merged["split"] == "test"]
        if not test[f"{task}_present"].eq(True).any():
            raise DatasetError(
                path,
                f"the test split holds no labelled {task} pixel (no {task} class in any of "
                f"its {task} masks), so {task} cannot be scored; {fix}",
            )
