"""Data sources: each writes the canonical format (``wing.data.format``) into a folder.

``synthetic`` is the embedded default (no download, any size); ``folder`` takes a user's
dataset that already follows the canonical format. A new source is one function plus one
``SOURCES.register`` line.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from wing.config import DataConfig
from wing.data.format import DatasetError, validate_dataset
from wing.data.split import patient_split
from wing.io import atomic_directory, write_csv
from wing.registry import Registry

SOURCES: Registry = Registry("data source")


@SOURCES("synthetic")
def synthetic(config: DataConfig, out_dir: Path) -> None:
    """The procedurally generated longitudinal cohort (``wing.data.synthetic``)."""
    from wing.data.synthetic import CohortConfig, generate_cohort

    generate_cohort(out_dir, CohortConfig(**asdict(config.synthetic)))


@SOURCES("folder")
def folder(config: DataConfig, out_dir: Path) -> None:
    """A dataset already in the canonical format at ``data.raw``, validated then copied."""
    if not config.raw:
        raise DatasetError("params.yaml", "data.source 'folder' needs data.raw: the dataset folder")
    raw = Path(config.raw)
    validate_dataset(raw)
    shutil.copytree(raw, out_dir, dirs_exist_ok=True)


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
    write_csv(split_path, split)
    return metadata, split
