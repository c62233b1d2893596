"""The synthetic cohort: valid format, exact truth, two independent annotators, determinism,
healing, realistic difficulty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from wing.data.format import load_sample, read_legend, read_metadata, validate_dataset
from wing.data.synthetic import (
    NECROSIS,
    TISSUE_CLASSES,
    CohortConfig,
    assign_tissues,
    draw_patient,
    draw_visit,
    draw_wound_annotator,
    generate_cohort,
    periwound_reach,
    photograph,
    tissue_shares,
    wound_agreement,
    wound_geometry,
)

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
    "annotated_wound_area_px",
    "wound_agreement_dice",
]
# Every annotator knob off: both annotators copy the true layout exactly.
NO_ANNOTATOR_EFFECTS = {
    "wound_annotator_boundary_noise": 0.0,
    "wound_annotator_epithelium_rate": 0.0,
    "wound_annotator_periwound_rate": 0.0,
    "wound_annotator_eschar_rate": 0.0,
    "tissue_annotator_boundary_noise": 0.0,
    "tissue_annotator_unsure_width": 0.0,
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("cohort")
    return root, generate_cohort(root, SMALL)


def _samples(root: Path, metadata: pd.DataFrame):
    for row in metadata.itertuples():
        yield row, *load_sample(root, row.sample_id)


def _true_tissue(config: CohortConfig) -> dict[str, np.ndarray]:
    """The true layout of every sample, recomputed from the generator (no annotator)."""
    truth = {}
    for number in range(1, config.n_patients + 1):
        patient = draw_patient(config, number)
        for visit_number in range(1, config.visits_per_patient + 1):
            visit = draw_visit(config, patient, visit_number)
            geometry = wound_geometry(visit, config.image_size)
            truth[f"P{number:03d}_V{visit_number}"] = assign_tissues(geometry, patient, visit)
    return truth


def _photos(config: CohortConfig):
    """(patient, annotator, visit, photo) of every sample, without writing files."""
    for number in range(1, config.n_patients + 1):
        patient = draw_patient(config, number)
        annotator = draw_wound_annotator(config, patient)
        for visit_number in range(1, config.visits_per_patient + 1):
            visit = draw_visit(config, patient, visit_number)
            yield patient, annotator, visit, photograph(config, patient, visit, annotator)


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


def test_metadata_truth_is_counted_from_the_true_layout(cohort):
    root, _ = cohort
    metadata = read_metadata(root)  # what a later stage sees, after the CSV round trip
    truth = _true_tissue(SMALL)
    for row, image, wound, tissue in _samples(root, metadata):
        assert image.shape == (SMALL.image_size, SMALL.image_size, 3)
        assert set(np.unique(wound)) <= {0, 1}  # the wound annotator labels every pixel
        assert set(np.unique(tissue)) <= {0, 1, 2, 3, 4, 255}
        true = truth[row.sample_id]
        area = int((true > 0).sum())
        assert area > 0 and row.true_wound_area_px == area
        assert row.true_wound_area_mm2 == pytest.approx(area * row.pixel_spacing_mm**2, rel=1e-9)
        for index, name in enumerate(TISSUE_CLASSES, start=1):
            fraction = getattr(row, f"fraction_{name}")
            assert fraction == pytest.approx((true == index).sum() / area, abs=1e-12)
        assert row.annotated_wound_area_px == int(wound.sum())
        assert row.wound_agreement_dice == pytest.approx(wound_agreement(wound, tissue), abs=1e-4)
    fractions = metadata[[f"fraction_{name}" for name in TISSUE_CLASSES]].sum(axis=1)
    assert np.allclose(fractions, 1.0)
    # The truth is not either annotation: the annotated area differs on most samples.
    differs = metadata["annotated_wound_area_px"] != metadata["true_wound_area_px"]
    assert differs.mean() > 0.5


def test_wound_mask_is_an_independent_annotation_not_the_tissue_union(cohort):
    root, metadata = cohort
    copies = [np.array_equal(wound, tissue > 0) for *_, wound, tissue in _samples(root, metadata)]
    assert not any(copies)
    agreement = metadata["wound_agreement_dice"]
    assert agreement.between(0.0, 1.0).all()
    # Realistic: FUSeg against DFUTissue agree with median Dice 0.83 (0.94 on the Test crops),
    # FUSeg's own duplicates with 0.85-0.98; a copy of the tissue label would give 1.
    assert 0.80 < agreement.median() < 0.97
    assert (agreement < 0.999).mean() > 0.8


def test_tissue_annotator_leaves_a_thin_unsure_band_at_boundaries():
    config = CohortConfig(
        n_patients=4,
        visits_per_patient=2,
        image_size=64,
        seed=5,
        tissue_annotator_boundary_noise=0.0,  # its wound edge is the true one: compare exactly
    )
    covered, both_sides, unlabelled = [], [], []
    for *_, photo in _photos(config):
        true, tissue = photo.true_tissue, photo.tissue
        unsure = tissue == 255
        assert unsure.any()
        # Outside the band the annotator copies the truth ...
        assert np.array_equal(tissue[~unsure], true[~unsure])
        # ... and it is unsure only next to another true label (band or tiny island).
        to_other = np.full(true.shape, np.inf)
        for label in np.unique(true):
            own = true == label
            to_other[own] = ndimage.distance_transform_edt(own)[own]
        assert (to_other[unsure] <= 2).all()
        # Across a boundary (between horizontal or vertical neighbours) the band takes one
        # side or the other, rarely both: about one pixel wide.
        for axis in (0, 1):
            first = [slice(None), slice(None)]
            second = [slice(None), slice(None)]
            first[axis], second[axis] = slice(1, None), slice(None, -1)
            edge = true[tuple(first)] != true[tuple(second)]
            a, b = unsure[tuple(first)][edge], unsure[tuple(second)][edge]
            covered.append((a | b).mean())
            both_sides.append((a & b).mean())
        unlabelled.append(unsure[true > 0].mean())
    assert np.median(covered) > 0.9
    assert np.median(both_sides) < 0.3
    assert 0.05 < np.median(unlabelled) < 0.4


def test_a_wider_unsure_band_leaves_more_unlabelled_and_zero_none():
    shares = []
    for width in (0.0, 1.0, 2.0):
        config = CohortConfig(
            n_patients=3,
            visits_per_patient=2,
            image_size=64,
            seed=1,
            tissue_annotator_unsure_width=width,
        )
        shares.append(np.mean([(photo.tissue == 255).mean() for *_, photo in _photos(config)]))
    assert shares[0] == 0.0 and shares[0] < shares[1] < shares[2]


def test_without_annotator_effects_both_masks_are_the_truth():
    config = CohortConfig(n_patients=3, visits_per_patient=2, image_size=48, seed=2)
    exact = CohortConfig(
        n_patients=3, visits_per_patient=2, image_size=48, seed=2, **NO_ANNOTATOR_EFFECTS
    )
    for (*_, photo), (*_, copy) in zip(_photos(config), _photos(exact), strict=True):
        assert np.array_equal(copy.image, photo.image)
        assert np.array_equal(copy.true_tissue, photo.true_tissue)
        assert np.array_equal(copy.tissue, photo.true_tissue)
        assert np.array_equal(copy.wound, (photo.true_tissue > 0).astype(np.uint8))
        assert wound_agreement(copy.wound, copy.tissue) == 1.0


@pytest.mark.parametrize("habit", ["epithelium", "periwound", "eschar"])
def test_each_wound_annotator_habit_does_what_it_says(habit):
    knobs = {**NO_ANNOTATOR_EFFECTS, f"wound_annotator_{habit}_rate": 1.0}
    config = CohortConfig(n_patients=6, visits_per_patient=2, image_size=48, seed=4, **knobs)
    changed = 0
    for patient, annotator, _, photo in _photos(config):
        true, wound = photo.true_tissue, photo.wound.astype(bool)
        if habit == "epithelium":
            assert annotator.excludes_epithelium
            assert np.array_equal(wound, np.isin(true, (1, 2, 3)))  # the open wound only
        elif habit == "periwound":
            assert annotator.includes_periwound
            assert (wound >= (true > 0)).all()  # the true wound and the discoloured skin
            if periwound_reach(patient) == 0:  # no visibly discoloured skin: nothing to add
                assert np.array_equal(wound, true > 0)
        else:
            assert annotator.excludes_eschar
            assert np.array_equal(wound, (true > 0) & (true != NECROSIS))
        changed += not np.array_equal(wound, true > 0)
    assert changed > 0


def test_annotator_knobs_change_the_masks_but_never_the_images(tmp_path):
    base = {"n_patients": 3, "visits_per_patient": 2, "image_size": 48, "seed": 7}
    knobs = {
        "wound_annotator_boundary_noise": 0.2,
        "wound_annotator_epithelium_rate": 1.0,
        "wound_annotator_periwound_rate": 0.0,
        "wound_annotator_eschar_rate": 1.0,
        "tissue_annotator_boundary_noise": 0.0,
        "tissue_annotator_unsure_width": 2.0,
    }
    first = generate_cohort(tmp_path / "a", CohortConfig(**base))
    other = generate_cohort(tmp_path / "b", CohortConfig(**base, **knobs))
    truth = [
        c for c in EXPECTED_COLUMNS if c not in ("annotated_wound_area_px", "wound_agreement_dice")
    ]
    pd.testing.assert_frame_equal(first[truth], other[truth])
    masks_differ = 0
    for sample_id in first["sample_id"]:
        a, b = load_sample(tmp_path / "a", sample_id), load_sample(tmp_path / "b", sample_id)
        assert (tmp_path / "a" / "images" / f"{sample_id}.png").read_bytes() == (
            tmp_path / "b" / "images" / f"{sample_id}.png"
        ).read_bytes()
        masks_differ += not (np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]))
    assert masks_differ == len(first)


def test_annotator_knobs_are_validated():
    with pytest.raises(ValueError, match="wound_annotator_eschar_rate"):
        CohortConfig(wound_annotator_eschar_rate=1.5)
    with pytest.raises(ValueError, match="tissue_annotator_unsure_width"):
        CohortConfig(tissue_annotator_unsure_width=-1.0)


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


def test_epithelium_lies_at_the_wound_margin():
    epithelium, wound_bed = [], []
    for tissue in _true_tissue(SMALL).values():
        from_margin = ndimage.distance_transform_edt(tissue > 0)
        epithelium.append(from_margin[tissue == 4])
        wound_bed.append(from_margin[(tissue > 0) & (tissue != 4)])
    assert np.concatenate(epithelium).mean() < np.concatenate(wound_bed).mean()


def test_tissue_colours_differ_but_overlap(cohort):
    root, metadata = cohort
    truth = _true_tissue(SMALL)  # the photograph is painted from the true layout
    pixels, labels = [], []
    for row, image, _, _ in _samples(root, metadata):
        tissue = truth[row.sample_id]
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


def test_healing_dynamics_are_params():
    everyone_heals = CohortConfig(non_healer_fraction=0.0, healer_rate_per_day=(0.03, 0.03))
    rates = {draw_patient(everyone_heals, n).healing_rate_per_day for n in range(6)}
    assert rates == {0.03}
    stalled = CohortConfig(non_healer_fraction=1.0, non_healer_rate_per_day=(-0.01, -0.005))
    assert all(-0.01 <= draw_patient(stalled, n).healing_rate_per_day <= -0.005 for n in range(6))
    patient = draw_patient(CohortConfig(), 1)
    slow = tissue_shares(patient, 0.5, CohortConfig(necrosis_clearance=0.0, slough_clearance=0.0))
    fast = tissue_shares(patient, 0.5, CohortConfig())
    assert slow[0] >= fast[0] and slow[1] >= fast[1]  # no clearance keeps the baseline shares
    with pytest.raises(ValueError, match="healer_rate_per_day"):
        CohortConfig(healer_rate_per_day=(0.05, 0.01))
    with pytest.raises(ValueError, match="slough_clearance"):
        CohortConfig(slough_clearance=-1.0)
