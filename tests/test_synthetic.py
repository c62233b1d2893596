"""The synthetic cohort: valid format, exact truth, determinism, healing, realistic difficulty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from wing.data.format import load_sample, read_legend, read_metadata, validate_dataset
from wing.data.synthetic import TISSUE_CLASSES, CohortConfig, generate_cohort

SMALL = CohortConfig(n_patients=8, visits_per_patient=3, image_size=64, seed=3)
EXPECTED_COLUMNS = [
    "sample_id",
    "patient_id",
    "visit",
    "visit_day",
    "pixel_spacing_mm",
    "healing_rate_per_day",
    "skin_tone",
    "true_wound_area_px",
    "true_wound_area_mm2",
    *(f"fraction_{name}" for name in TISSUE_CLASSES),
]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("cohort")
    return root, generate_cohort(root, SMALL)


def _samples(root: Path, metadata: pd.DataFrame):
    for row in metadata.itertuples():
        yield row, *load_sample(root, row.sample_id)


def test_output_is_a_valid_canonical_dataset(cohort):
    root, metadata = cohort
    validated = validate_dataset(root)
    assert len(validated) == SMALL.n_patients * SMALL.visits_per_patient
    assert list(read_metadata(root).columns) == EXPECTED_COLUMNS
    assert list(metadata.columns) == EXPECTED_COLUMNS
    assert read_legend(root).tissue_classes == TISSUE_CLASSES
    assert metadata["sample_id"].iloc[0] == "P001_V1"
    for _, visits in metadata.groupby("patient_id"):
        assert visits["visit"].tolist() == [1, 2, 3]
        assert visits["visit_day"].iloc[0] == 0 and visits["visit_day"].is_monotonic_increasing
        assert visits["sample_id"].str.startswith(visits["patient_id"].iloc[0] + "_V").all()


def test_metadata_truth_equals_the_written_masks(cohort):
    root, _ = cohort
    metadata = read_metadata(root)  # what a later stage sees, after the CSV round trip
    for row, image, wound, tissue in _samples(root, metadata):
        assert image.shape == (SMALL.image_size, SMALL.image_size, 3)
        assert np.array_equal(wound, (tissue > 0).astype(np.uint8))
        assert set(np.unique(tissue)) <= {0, 1, 2, 3, 4}  # no ignore label in synthetic data
        area = int(wound.sum())
        assert area > 0 and row.true_wound_area_px == area
        assert row.true_wound_area_mm2 == pytest.approx(area * row.pixel_spacing_mm**2, rel=1e-9)
        for index, name in enumerate(TISSUE_CLASSES, start=1):
            fraction = getattr(row, f"fraction_{name}")
            assert fraction == pytest.approx((tissue == index).sum() / area, abs=1e-12)
    fractions = metadata[[f"fraction_{name}" for name in TISSUE_CLASSES]].sum(axis=1)
    assert np.allclose(fractions, 1.0)


def test_same_config_gives_identical_bytes_and_another_seed_differs(tmp_path):
    config = CohortConfig(n_patients=3, visits_per_patient=2, image_size=48, seed=11)
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_cohort(first, config)
    generate_cohort(second, config)
    generate_cohort(other, CohortConfig(n_patients=3, visits_per_patient=2, image_size=48, seed=12))
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 3 * 2 * 3 + 2
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for file in files:
        assert (first / file).read_bytes() == (second / file).read_bytes(), file
    images = [f for f in files if f.parts[0] == "images"]
    assert all((first / f).read_bytes() != (other / f).read_bytes() for f in images)


def test_patients_do_not_depend_on_cohort_size(tmp_path):
    small = generate_cohort(tmp_path / "small", CohortConfig(n_patients=2, image_size=48))
    large = generate_cohort(tmp_path / "large", CohortConfig(n_patients=4, image_size=48))
    pd.testing.assert_frame_equal(small, large.iloc[: len(small)])


def test_regenerating_a_smaller_cohort_leaves_a_valid_folder(tmp_path):
    generate_cohort(tmp_path, CohortConfig(n_patients=3, visits_per_patient=2, image_size=32))
    generate_cohort(tmp_path, CohortConfig(n_patients=2, visits_per_patient=2, image_size=32))
    assert len(validate_dataset(tmp_path)) == 4


def test_wounds_shrink_at_the_patients_healing_rate(cohort):
    _, metadata = cohort
    for _, visits in metadata.groupby("patient_id"):
        area = visits["true_wound_area_mm2"].to_numpy()
        rate = visits["healing_rate_per_day"].iloc[0]
        elapsed = visits["visit_day"].iloc[-1] - visits["visit_day"].iloc[0]
        # Physical area follows exp(-rate * day) up to noise, shape jitter and pixelation.
        assert abs(np.log(area[-1] / area[0]) + rate * elapsed) < 0.45
        if rate > 0.02:
            assert (np.diff(area) < 0).all()
    rates = metadata.groupby("patient_id")["healing_rate_per_day"].first()
    assert (rates > 0.02).sum() >= 2 and rates.min() < rates.max()


def test_necrosis_and_slough_recede_in_healers(cohort):
    _, metadata = cohort
    healers = metadata[metadata["healing_rate_per_day"] > 0.012]
    devitalised = healers["fraction_necrosis"] + healers["fraction_slough"]
    first = devitalised[healers["visit"] == 1].mean()
    last = devitalised[healers["visit"] == SMALL.visits_per_patient].mean()
    assert last < 0.7 * first
    epithelium = healers.groupby("visit")["fraction_epithelium"].mean()
    assert epithelium.iloc[-1] > epithelium.iloc[0]


def test_epithelium_lies_at_the_wound_margin(cohort):
    root, metadata = cohort
    epithelium, wound_bed = [], []
    for _, _, wound, tissue in _samples(root, metadata):
        from_margin = ndimage.distance_transform_edt(wound)
        epithelium.append(from_margin[tissue == 4])
        wound_bed.append(from_margin[(tissue > 0) & (tissue != 4)])
    assert np.concatenate(epithelium).mean() < np.concatenate(wound_bed).mean()


def test_tissue_colours_differ_but_overlap(cohort):
    root, metadata = cohort
    pixels, labels = [], []
    for _, image, _, tissue in _samples(root, metadata):
        inside = tissue > 0
        pixels.append(image[inside].astype(float))
        labels.append(tissue[inside])
    pixels, labels = np.concatenate(pixels), np.concatenate(labels)
    means = np.stack([pixels[labels == k].mean(axis=0) for k in range(1, 5)])
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(4, 1)]
    assert gaps.min() > 15  # each tissue has its own typical colour ...
    nearest = np.argmin(((pixels[:, None] - means[None]) ** 2).sum(axis=-1), axis=1) + 1
    accuracy = (nearest == labels).mean()
    assert 0.5 < accuracy < 0.92  # ... but colour alone does not segment tissue


def test_images_have_dynamic_range_and_varied_skin(cohort):
    root, metadata = cohort
    for _, image, _, _ in _samples(root, metadata):
        low, high = np.percentile(image, [1, 99])
        assert high - low > 80
    assert metadata["skin_tone"].between(1, 6).all()
    assert metadata["skin_tone"].nunique() >= 3
    skin = [image[tissue == 0].mean() for _, image, _, tissue in _samples(root, metadata)]
    assert max(skin) - min(skin) > 60
