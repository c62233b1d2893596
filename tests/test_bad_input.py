"""Bad input stops before training with one message naming the key or file and the fix."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import ROOT, make_dataset
from wing.config import SECTIONS, ConfigError, load_config
from wing.data.format import DatasetError, label_summary, validate_dataset
from wing.data.split import check_split, patient_split

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def put(params: dict, path: str, value: Any) -> dict:
    """``params`` with the dotted ``path`` set to ``value`` (a new dict)."""
    params = copy.deepcopy(params)
    *parents, leaf = path.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    return params


def load(params: dict, folder: Path):
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return load_config(path)


CONFIG_CASES = [
    # (key, bad value, what the message says: the key and the fix)
    ("train.epochs", "ten", "'train.epochs' must be an integer"),
    ("train.batch_size", True, "'train.batch_size' must be an integer"),  # bool is no int
    ("train.learning_rate", [1.0e-3], "'train.learning_rate' must be a number"),
    ("train.epochs", 0, "'train.epochs' must be at least 1"),
    ("train.batch_size", -4, "'train.batch_size' must be at least 1"),
    ("train.seeds", ["a"], "'train.seeds' must be a list of integers"),
    ("train.methods", [], "'train.methods' must name at least one entry"),
    ("train.methods", ["stl", "famo"], "train.methods names ['famo'], which are not recipes"),
    ("train.backbones", ["vgg"], "train.backbones names 'vgg'; registered"),
    ("train.device", "tpu", "'train.device' must be auto, cpu, cuda or cuda:N"),
    ("data.source", "kaggle", "'data.source' must be one of ["),
    ("data.image_size", 100, "data.image_size 100 must be divisible by 8"),
    ("data.image_size", 0, "'data.image_size' must be at least 1"),
    ("data.split.test", 0.0, "'data.split.test' must be above 0"),
    ("data.split.test", 0.5, "data.split.test are fractions of the patients and must sum to 1"),
    ("data.synthetic.n_patients", 2, "'data.synthetic.n_patients' must be at least 3"),
    ("data.synthetic.hair_fraction", 2.0, "'data.synthetic.hair_fraction' is a share"),
    ("data.synthetic.n_patient", 3, "'data.synthetic.n_patient' (did you mean"),
    ("trian", {}, "'trian' (did you mean 'train'?)"),
    ("train", [1], "'train' must be a mapping"),
    ("profile", "huge", "profile 'huge' is not defined under 'profiles'"),
    ("profile", ["quick"], "set 'profile' to one of them"),
    ("profiles.tiny.train.epoch", 2, "'profiles.tiny.train.epoch' (did you mean"),
    ("profiles.paper.trian", {}, "'profiles.paper.trian' (did you mean 'profiles.paper.train'"),
    ("profiles.paper.train.epochs", "x", "'profiles.paper.train.epochs' must be an integer"),
    ("profiles.zoo.matrix.seeds", 3, "'profiles.zoo.matrix.seeds' must be a list"),
    ("profiles.quick", [1], "'profiles.quick' must be a mapping"),
    ("recipes.gradnorm.balancer", "famo", "'recipes.gradnorm.balancer' is 'famo'; registered"),
    ("recipes.gradnorm.balancer", ["ew"], "'recipes.gradnorm.balancer' must be text"),
    ("recipes.ctan.architecture", "xnet", "'recipes.ctan.architecture' is 'xnet'; registered"),
    ("recipes.gradnorm.options", {1: 0.5}, "'recipes.gradnorm.options' has option names"),
    ("compare.reference", "dwa", "add it to train.methods"),
    ("compare.metric", "accuracy", "'compare.metric' must be one of"),
]


@pytest.mark.parametrize(("key", "value", "message"), CONFIG_CASES, ids=lambda x: str(x)[:30])
def test_bad_params_stop_with_the_key_and_the_fix(tmp_path: Path, key, value, message):
    with pytest.raises(ConfigError) as error:
        load(put(PARAMS, key, value), tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'params.yaml'}: ")
    assert message in str(error.value)


def corrupt_sample(root: Path, kind: str, sample: str = "P01_V1") -> Path:
    """Apply one corruption to ``root``; return the file the error must name."""
    image, wound, tissue = (
        root / f / f"{sample}.png" for f in ("images", "wound_masks", "tissue_masks")
    )
    metadata = root / "metadata.csv"
    if kind == "missing image":
        image.unlink()
        return image
    if kind == "jpeg image":
        Image.open(image).convert("RGB").save(image.with_suffix(".jpg"))
        image.unlink()
        return image
    if kind == "corrupt image":
        image.write_bytes(image.read_bytes()[:40])
        return image
    if kind == "mask size":
        Image.fromarray(np.zeros((16, 32), np.uint8), mode="L").save(wound)
        return wound
    if kind == "tissue values":
        Image.fromarray(np.full((32, 32), 9, np.uint8), mode="L").save(tissue)
        return tissue
    frame = pd.read_csv(metadata, dtype=str)
    if kind == "metadata column":
        frame = frame.drop(columns=["patient_id"])
    elif kind == "metadata sample_id path":
        frame.loc[0, "sample_id"] = "../P00_V1"
    elif kind == "metadata pixel spacing":
        frame["pixel_spacing_mm"] = "wide"
    frame.to_csv(metadata, index=False)
    return metadata


DATASET_CASES = [
    ("missing image", "missing: every sample needs an image"),
    ("jpeg image", "found ['P01_V1.jpg']: convert it to PNG"),
    ("corrupt image", "unreadable or truncated image"),
    ("mask size", "masks must match their image pixel for pixel"),
    ("tissue values", "outside the legend"),
    ("metadata column", "lacks required column(s) ['patient_id']"),
    ("metadata sample_id path", "is not a plain file name"),
    ("metadata pixel spacing", "pixel_spacing_mm must be a positive number"),
]


@pytest.mark.parametrize(("kind", "message"), DATASET_CASES, ids=[c[0] for c in DATASET_CASES])
def test_bad_dataset_stops_with_the_file_and_the_fix(dataset: Path, kind: str, message: str):
    named = corrupt_sample(dataset, kind)
    with pytest.raises(DatasetError) as error:
        validate_dataset(dataset)
    assert error.value.path == named
    assert message in str(error.value)


def test_bad_legend_is_named(dataset: Path):
    (dataset / "legend.json").write_text('{"tissue_classes": "granulation"}')
    with pytest.raises(DatasetError, match="non-empty list of class names") as error:
        validate_dataset(dataset)
    assert error.value.path == dataset / "legend.json"


def validate_with_split(root: Path) -> pd.DataFrame:
    """What prepare does with a predefined split: validate the folder, then its split."""
    metadata = validate_dataset(root)
    split = metadata[["sample_id", "patient_id", "split"]].astype(str)
    check_split(split, label_summary(root, metadata["sample_id"]), root / "metadata.csv")
    return metadata


def with_split(root: Path, splits: dict[str, str]) -> None:
    """Write a predefined split column (patient -> split) into ``root``'s metadata."""
    frame = pd.read_csv(root / "metadata.csv", dtype=str)
    frame["split"] = frame["patient_id"].map(splits)
    frame.to_csv(root / "metadata.csv", index=False)


def blank_tissue(root: Path, patient: str, value: int) -> None:
    """Every tissue mask of ``patient`` set to ``value`` (0 = none, 255 = unlabelled)."""
    for path in (root / "tissue_masks").glob(f"{patient}_*.png"):
        Image.fromarray(np.full((32, 32), value, np.uint8), mode="L").save(path)


FOUR = {"P00": "train", "P01": "train", "P02": "validation", "P03": "test"}


@pytest.mark.parametrize(
    ("splits", "blank", "message"),
    [
        ({**FOUR, "P03": "train"}, None, "the test split has no patients"),
        (FOUR, ("P03", 0), "the test split holds no labelled tissue pixel"),
        (FOUR, ("P03", 255), "the test split holds no sample labelled for tissue"),
        (FOUR, ("P02", 255), "the validation split holds no sample labelled for tissue"),
    ],
    ids=["empty test split", "test without tissue", "test unlabelled", "validation unlabelled"],
)
def test_bad_predefined_split_names_metadata(dataset: Path, splits, blank, message: str):
    with_split(dataset, splits)
    if blank:
        blank_tissue(dataset, *blank)
    with pytest.raises(DatasetError) as error:
        validate_with_split(dataset)
    assert error.value.path == dataset / "metadata.csv"
    assert message in str(error.value) and "drop that column" in str(error.value)


def test_random_split_without_tissue_in_test_is_named(dataset: Path, tmp_path: Path):
    metadata = validate_dataset(dataset)
    split = patient_split(metadata, (0.5, 0.25, 0.25), seed=0)
    check_split(split, label_summary(dataset, metadata["sample_id"]), tmp_path / "split.csv")
    for patient in split.loc[split["split"] == "test", "patient_id"].unique():
        blank_tissue(dataset, patient, 0)
    with pytest.raises(DatasetError, match="no labelled tissue pixel") as error:
        check_split(split, label_summary(dataset, metadata["sample_id"]), tmp_path / "split.csv")
    assert error.value.path == tmp_path / "split.csv"
    assert "change data.split.seed" in str(error.value)


def test_too_few_patients_for_a_split_say_what_to_do():
    metadata = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["1", "2"]})
    with pytest.raises(ValueError, match="at least 3 patients .* give metadata.csv a split column"):
        patient_split(metadata)
    with pytest.raises(ValueError, match="three positive numbers"):
        patient_split(metadata, (0.8, 0.2, 0.0))


# --- property: the config loader --------------------------------------------------------


def key_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of the nested mappings of ``node`` (lists are leaves)."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out += key_paths(value, (*prefix, key))
    return out


def mapping_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += mapping_paths(value, (*prefix, key))
    return out


PATHS = key_paths(PARAMS)
MAPPINGS = mapping_paths(PARAMS)
NAMES = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    NAMES,
    st.lists(st.one_of(st.integers(-2, 50), NAMES), max_size=3),
    st.dictionaries(st.one_of(NAMES, st.integers(0, 3)), st.integers(0, 3), max_size=2),
)


@st.composite
def mutations(draw) -> tuple[dict, tuple, tuple]:
    """A params dict with one mutation, the mutated path, and how it may be named."""
    params, kind = copy.deepcopy(PARAMS), draw(st.sampled_from(["replace", "extra", "profile"]))
    if kind == "profile":
        params["profile"] = draw(st.one_of(NAMES, st.sampled_from(sorted(PARAMS["profiles"]))))
        return params, ("profile",), ()
    if kind == "replace":
        path, value = draw(st.sampled_from(PATHS)), draw(VALUES)
    else:
        parent = draw(st.sampled_from(MAPPINGS))
        node = params
        for key in parent:
            node = node[key]
        key = draw(NAMES.filter(lambda k: k not in node))
        path, value = (*parent, key), draw(VALUES)
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return params, path, path[:-1] if kind == "extra" else ()


def has_declared_types(value: Any, hint: Any) -> bool:
    if get_origin(hint) is tuple:
        return isinstance(value, tuple) and all(
            has_declared_types(item, get_args(hint)[0]) for item in value
        )
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and hint in (bool, float, str):
        return isinstance(value, hint)
    if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__"):
        return isinstance(value, hint) and all(
            has_declared_types(getattr(value, name), sub)
            for name, sub in get_type_hints(hint).items()
        )
    return True


@settings(max_examples=50, deadline=None)
@given(mutation=mutations())
def test_config_loader_names_the_mutated_key_or_loads_typed(mutation):
    """A mutated params.yaml loads with every field of its declared type, or stops with a
    ConfigError naming the mutated key path, never another exception."""
    params, path, parent = mutation
    with tempfile.TemporaryDirectory() as folder:
        try:
            config = load(params, Path(folder))
        except ConfigError as error:
            message, dotted = str(error), ".".join(map(str, path))
            # a key added where a balancer's or backbone's own check reports it: the
            # message names the mapping it was added to and the key
            named = dotted in message or (
                bool(parent) and ".".join(map(str, parent)) in message and repr(path[-1]) in message
            )
            assert named, f"{dotted!r} not named in: {message}"
            return
    for name, cls in SECTIONS.items():
        assert has_declared_types(getattr(config, name), cls)
    assert isinstance(config.profile, str) and config.profile in params["profiles"]


# --- property: the dataset validator ----------------------------------------------------

CORRUPTIONS = [
    "none",
    "wound value",
    "tissue value",
    "mask size",
    "missing file",
    "truncated image",
    "garbage file",
    "rgb mask",
    "unlisted file",
    "blank patient_id",
    "duplicate sample_id",
    "text visit_day",
    "ghost row",
    "no test patient",
    "test without tissue",
]
FOLDERS = ("images", "wound_masks", "tissue_masks")


@settings(max_examples=40, deadline=None)
@given(
    corruption=st.sampled_from(CORRUPTIONS),
    sample=st.sampled_from(["P00_V1", "P01_V1", "P02_V1"]),
    folder=st.sampled_from(FOLDERS),
    value=st.integers(5, 254),
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)).filter(lambda s: s != (8, 8)),
    data=st.data(),
)
def test_dataset_validator_names_the_corrupted_file(corruption, sample, folder, value, size, data):
    """On a tiny 8x8 dataset, each corruption raises DatasetError naming the corrupted file,
    never another exception; the uncorrupted dataset passes."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "dataset"
        make_dataset(root, n_patients=3, visits=1, size=8)
        with_split(root, {"P00": "train", "P01": "validation", "P02": "test"})
        metadata = root / "metadata.csv"
        file = root / folder / f"{sample}.png"
        frame = pd.read_csv(metadata, dtype=str)
        named = {"none": None, "no test patient": metadata, "test without tissue": metadata}
        named = named.get(corruption, file)
        if corruption == "wound value":
            file = named = root / "wound_masks" / f"{sample}.png"
            mask = np.zeros((8, 8), np.uint8)
            mask[data.draw(st.integers(0, 7)), data.draw(st.integers(0, 7))] = max(value, 2)
            Image.fromarray(mask, mode="L").save(file)
        elif corruption == "tissue value":
            file = named = root / "tissue_masks" / f"{sample}.png"
            Image.fromarray(np.full((8, 8), value, np.uint8), mode="L").save(file)
        elif corruption in ("mask size", "rgb mask"):
            file = named = root / data.draw(st.sampled_from(FOLDERS[1:])) / f"{sample}.png"
            shape = (*size, 3) if corruption == "rgb mask" else size
            mode = "RGB" if corruption == "rgb mask" else "L"
            if corruption == "rgb mask":
                shape = (8, 8, 3)
            Image.fromarray(np.zeros(shape, np.uint8), mode=mode).save(file)
        elif corruption == "missing file":
            file.unlink()
        elif corruption == "truncated image":
            file = named = root / "images" / f"{sample}.png"
            raw = file.read_bytes()
            file.write_bytes(raw[: data.draw(st.integers(0, len(raw) // 2))])
        elif corruption == "garbage file":
            file.write_bytes(data.draw(st.binary(min_size=0, max_size=64)))
        elif corruption == "unlisted file":
            named = root / folder / "stray.png"
            named.write_bytes(file.read_bytes())
        elif corruption == "no test patient":
            frame["split"] = frame["split"].replace("test", "train")
        elif corruption == "test without tissue":
            Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(
                root / "tissue_masks" / "P02_V1.png"
            )
        if corruption in ("blank patient_id", "duplicate sample_id", "text visit_day", "ghost row"):
            row = data.draw(st.integers(0, len(frame) - 1))
            named = metadata
            if corruption == "blank patient_id":
                frame.loc[row, "patient_id"] = ""
            elif corruption == "duplicate sample_id":
                frame = pd.concat([frame, frame.iloc[[row]]])
            elif corruption == "text visit_day":
                frame.loc[row, "visit_day"] = "monday"
            else:
                frame = pd.concat([frame, frame.iloc[[row]].assign(sample_id="ghost")])
                named = root / "images" / "ghost.png"
        frame.to_csv(metadata, index=False)
        if named is None:
            assert len(validate_with_split(root)) == 3
            return
        with pytest.raises(DatasetError) as error:
            validate_with_split(root)
        assert error.value.path == named, str(error.value)
        assert str(named) in str(error.value)
