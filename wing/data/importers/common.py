"""Helpers shared by the public-dataset importers: checked reading, hashing, safe writing.

Every check raises :class:`~wing.data.format.DatasetError` naming the offending file or
folder and saying what to fix. Importers write into an ``out_dir`` given by the caller
(``prepare_dataset`` hands them an empty temporary folder); :func:`output_dir` empties it
again if an import fails half-way, so no half-written dataset is ever left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from wing.data.format import DatasetError, Legend, write_legend, write_metadata

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def require_dir(path: Path, layout: str) -> Path:
    """``path`` if it is a folder; otherwise a DatasetError describing the expected layout."""
    if not path.is_dir():
        raise DatasetError(path, f"folder not found; expected the layout {layout}")
    return path


def list_files(folder: Path, layout: str, suffixes: Sequence[str] = (".png",)) -> list[Path]:
    """The image files of ``folder`` (sorted); an empty folder is a DatasetError."""
    require_dir(folder, layout)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DatasetError(
            folder, f"holds no {'/'.join(suffixes)} files; expected the layout {layout}"
        )
    return files


def require_file(path: Path, partner: Path) -> Path:
    """``path`` if it exists; otherwise a DatasetError naming it and the file it pairs with."""
    if not path.is_file():
        raise DatasetError(path, f"missing: {partner.name} needs it; add it or remove {partner}")
    return path


def open_image(path: Path) -> Image.Image:
    """A fully decoded PIL image; missing, unreadable or truncated files are DatasetErrors."""
    if not path.is_file():
        raise DatasetError(path, "missing: every image needs its mask (and every mask its image)")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DatasetError(
            path, f"unreadable or truncated image ({error}); replace it with an intact copy"
        ) from error
    return image


def read_rgb(path: Path) -> np.ndarray:
    """A photograph as uint8 (H, W, 3)."""
    image = open_image(path)
    if image.mode not in ("RGB", "RGBA", "L", "P"):
        raise DatasetError(path, f"image mode {image.mode} is not 8-bit; save it as 8-bit RGB")
    return np.array(image.convert("RGB"), dtype=np.uint8)


def read_index(path: Path, fix: str) -> np.ndarray:
    """A single-channel class-index mask as uint8 (H, W); ``fix`` says what to do otherwise."""
    image = open_image(path)
    if image.mode not in ("L", "P"):
        raise DatasetError(
            path, f"mask has mode {image.mode}, not a single-channel class-index PNG; {fix}"
        )
    return np.array(image, dtype=np.uint8)  # mode P: palette index = class index


STRAY_FRACTION = 0.01
"""Largest fraction of pixels a 0/255 label may hold at other values (binarised at 128)."""


def read_binary(path: Path, positive: int = 255) -> np.ndarray:
    """A 0/``positive`` label (single channel, or RGB with equal channels) as a 0/1 mask.

    Stray in-between values are binarised at ``positive / 2`` when they are a small minority
    (at most :data:`STRAY_FRACTION` of the pixels) of a label that does hold ``positive``:
    FUSeg's validation/0233 has 21 pixels of value 32 (measured). Anything else (e.g. a 0/1
    or a soft label) is an error naming the file.
    """
    image = open_image(path)
    array = np.array(image.convert("RGB") if image.mode == "P" else image)
    if array.ndim == 3:
        if image.mode not in ("RGB", "RGBA"):
            raise DatasetError(path, f"label mode {image.mode} is not supported; save it 8-bit")
        rgb = array[..., :3]
        if not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
            raise DatasetError(
                path,
                "RGB label whose channels differ (a colour image?); a wound label must be "
                f"grey: 0 = background, {positive} = wound, in every channel",
            )
        array = rgb[..., 0]
    if array.dtype != np.uint8:
        raise DatasetError(path, f"label is {array.dtype}; save it as an 8-bit PNG")
    stray = (array != 0) & (array != positive)
    if stray.any() and (stray.mean() > STRAY_FRACTION or not (array == positive).any()):
        bad = np.unique(array[stray])
        raise DatasetError(
            path,
            f"label values {bad.tolist()[:10]} are not 0 (background) or {positive} (wound); "
            f"save the label as 0/{positive} (resample labels with nearest neighbour)",
        )
    return (array >= (positive + 1) // 2).astype(np.uint8)


def check_same_size(image_path: Path, image: np.ndarray, mask_path: Path, mask: np.ndarray):
    """A DatasetError naming ``mask_path`` unless it matches its image pixel for pixel."""
    if mask.shape[:2] != image.shape[:2]:
        raise DatasetError(
            mask_path,
            f"is {mask.shape[1]}x{mask.shape[0]} px but its image {image_path.name} is "
            f"{image.shape[1]}x{image.shape[0]} px; a mask must match its image pixel for pixel",
        )


def pixel_hash(array: np.ndarray) -> str:
    """A digest of decoded pixels (and shape): equal iff the images are identical."""
    digest = hashlib.sha256(str(array.shape).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class DuplicateCheck:
    """Raise a DatasetError naming both files when an image's pixels were already seen."""

    def __init__(self, fix: str = "remove one of them (or label them as one sample)"):
        self.seen: dict[str, Path] = {}
        self.fix = fix

    def add(self, path: Path, image: np.ndarray) -> None:
        key = pixel_hash(image)
        if key in self.seen:
            raise DatasetError(
                path,
                f"is an exact duplicate of {self.seen[key]}: the same image twice leaks "
                f"between splits; {self.fix}",
            )
        self.seen[key] = path


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two binary masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@contextlib.contextmanager
def output_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield ``out_dir`` (created if needed, must be empty); empty it again on failure."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DatasetError(out_dir, "output folder is not empty; give an empty or new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield out_dir
    except BaseException:
        for child in out_dir.iterdir():  # it was empty: everything here is ours
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise


def finish(out_dir: Path, classes: Iterable[str], rows: list[dict]) -> pd.DataFrame:
    """Write ``legend.json`` and ``metadata.csv``; return the metadata."""
    metadata = pd.DataFrame(rows)
    write_legend(out_dir, Legend(tuple(classes)))
    write_metadata(out_dir, metadata)
    return metadata
