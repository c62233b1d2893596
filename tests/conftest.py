"""Shared fixtures: tiny canonical datasets made in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wing.data.format import Legend, write_legend, write_metadata, write_sample

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
TISSUES = ("granulation", "slough", "necrosis", "epithelium")


def make_dataset(root: Path, n_patients: int = 4, visits: int = 2, size: int = 32, seed: int = 0):
    """A small valid canonical dataset: a square wound with two tissue halves per image."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for v in range(visits):
            sample_id = f"P{p:02d}_V{v + 1}"
            image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
            tissue = np.zeros((size, size), np.uint8)
            a, b = size // 4, 3 * size // 4
            tissue[a:b, a : size // 2] = 1 + (p + v) % 4
            tissue[a:b, size // 2 : b] = 1 + (p + v + 1) % 4
            write_sample(root, sample_id, image, (tissue > 0).astype(np.uint8), tissue)
            rows.append({"sample_id": sample_id, "patient_id": f"P{p:02d}", "visit_day": 14 * v})
    write_legend(root, Legend(TISSUES))
    write_metadata(root, pd.DataFrame(rows))
    return pd.DataFrame(rows)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset"
    make_dataset(root)
    return root
