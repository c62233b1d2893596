"""The patient-level split: no patient in two splits, deterministic per seed."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wing.data.split import patient_split


def cohort(n_patients: int, visits: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"sample_id": f"P{p}_V{v}", "patient_id": f"P{p}"}
            for p in range(n_patients)
            for v in range(visits)
        ]
    )


@settings(max_examples=40, deadline=None)
@given(n_patients=st.integers(3, 40), visits=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_no_patient_in_two_splits(n_patients: int, visits: int, seed: int):
    split = patient_split(cohort(n_patients, visits), (0.6, 0.2, 0.2), seed)
    assert split.groupby("patient_id")["split"].nunique().max() == 1
    assert set(split["split"]) == {"train", "validation", "test"}
    assert len(split) == n_patients * visits


def test_fractions_and_determinism():
    metadata = cohort(30, 4)
    a = patient_split(metadata, (0.6, 0.2, 0.2), seed=1)
    b = patient_split(metadata, (0.6, 0.2, 0.2), seed=1)
    c = patient_split(metadata, (0.6, 0.2, 0.2), seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    patients = a.drop_duplicates("patient_id")["split"].value_counts()
    assert patients.to_dict() == {"train": 18, "validation": 6, "test": 6}


def test_too_few_patients():
    with pytest.raises(ValueError, match="at least 3 patients"):
        patient_split(cohort(2, 3))
