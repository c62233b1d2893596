"""Data sources: each writes the canonical format (``wing.data.format``) into a folder.

``data.source`` in params.yaml picks one; ``data.raw.<source>`` says where its raw files are.

- ``synthetic``: the embedded longitudinal cohort (no download, any size; the default);
- ``folder``: a user's dataset already in the canonical format (``data.raw.folder``);
- ``dfutissue``: DFUTissue tissue crops, wound masks from FUSeg (``wing.data.importers``);
- ``dfutissue_fuseg``: the same plus leak-free FUSeg images as wound-only samples;
- ``fuseg``: FUSeg 2021 wound images (wound labels only);
- ``lutseg``: LUTSeg leprosy-ulcer visits (tissue and wound masks).

A new source is one function plus one ``SOURCES.register`` line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from wing.config import DataConfig
from wing.data import importers
from wing.data.format import METADATA, DatasetError, label_summary, validate_dataset
from wing.data.split import check_split, patient_split
from wing.io import atomic_directory, write_csv
from wing.registry import Registry

SOURCES: Registry = Registry("data source")


@SOURCES("synthetic")
def synthetic(config: DataConfig, out_dir: Path) -> None:
    """The procedurally generated longitudinal cohort (``wing.data.synthetic``)."""
    from wing.data.synthetic import generate_cohort

    generate_cohort(out_dir, config.synthetic)


@SOURCES("folder")
def folder(config: DataConfig, out_dir: Path) -> None:
    """A dataset already in the canonical format at ``data.raw.folder``, validated, copied."""
    raw = _raw(config, "folder")
    validate_dataset(raw)
    shutil.copytree(raw, out_dir, dirs_exist_ok=True)


@SOURCES("dfutissue")
def dfutissue(config: DataConfig, out_dir: Path) -> None:
    """DFUTissue crops with both labels (``wing.data.importers.dfutissue``)."""
    importers.import_dfutissue(
        _raw(config, "dfutissue"),
        out_dir,
        fuseg_root=_raw(config, "fuseg"),
        links=_raw(config, "links"),
        wound_label=config.wound_label,
        validation_count=config.validation_count,
        seed=config.split.seed,
    )


@SOURCES("dfutissue_fuseg")
def dfutissue_fuseg(config: DataConfig, out_dir: Path) -> None:
    """DFUTissue crops plus leak-free FUSeg images as wound-only training samples."""
    importers.import_dfutissue_fuseg(
        _raw(config, "dfutissue"),
        _raw(config, "fuseg"),
        _raw(config, "links"),
        out_dir,
        wound_label=config.wound_label,
        validation_count=config.validation_count,
        seed=config.split.seed,
        fuseg_limit=config.fuseg_limit or None,
    )


@SOURCES("fuseg")
def fuseg(config: DataConfig, out_dir: Path) -> None:
    """FUSeg 2021 (wound labels only), split by leakage group (duplicates kept together)."""
    importers.import_fuseg(_raw(config, "fuseg"), out_dir)
    _drop_split_column(out_dir)  # FUSeg has no labelled test set: split by group instead


@SOURCES("lutseg")
def lutseg(config: DataConfig, out_dir: Path) -> None:
    """LUTSeg visits of leprosy ulcers (``wing.data.importers.lutseg``)."""
    importers.import_lutseg(_raw(config, "lutseg"), out_dir)


def _raw(config: DataConfig, name: str) -> Path:
    """``data.raw.<name>``, checked to exist before any importer runs."""
    value = getattr(config.raw, name)
    if not value:
        raise DatasetError(
            "params.yaml",
            f"data.raw.{name} is empty; data.source "
            f"{config.source!r} reads the {name} dataset from there (README)",
        )
    path = Path(value)
    if not path.exists():
        raise DatasetError(
            path,
            f"does not exist; set data.raw.{name} to your copy of the "
            f"{name} dataset (README, 'Data')",
        )
    return path


def _drop_split_column(root: Path) -> None:
    metadata = pd.read_csv(root / "metadata.csv", dtype={"sample_id": str, "patient_id": str})
    metadata.drop(columns=["split"], errors="ignore").to_csv(root / "metadata.csv", index=False)


def prepare_dataset(
    config: DataConfig, split_path: str | Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build, validate and split the dataset; return (metadata, split).

    The dataset folder and the split file are replaced only once the new ones are complete
    and valid; a failure leaves what an earlier run produced untouched.
    """
    with atomic_directory(config.root) as tmp:
        SOURCES.get(config.source)(config, tmp)
        metadata = validate_dataset(tmp)
        if "split" in metadata.columns:  # a predefined split (e.g. an official test set)
            split = metadata[["sample_id", "patient_id", "split"]].astype(str)
        else:
            split = patient_split(
                metadata,
                (config.split.train, config.split.validation, config.split.test),
                config.split.seed,
            )
        # before any training: every split has patients, every labelled task is labelled in
        # every split, and the test split has pixels of it to score
        predefined = "split" in metadata.columns
        check_split(
            split,
            label_summary(tmp, split["sample_id"]),
            Path(config.root) / METADATA if predefined else split_path,
        )
    write_csv(split_path, split)
    return metadata, split
