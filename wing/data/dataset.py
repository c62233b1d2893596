"""Torch dataset over the canonical format, with joint image + mask augmentation.

Images and masks are held in memory (the datasets here are small) and augmented together
with torchvision's ``transforms.v2`` on ``tv_tensors`` so that geometric transforms move
the masks with the image while photometric ones touch the image only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from wing.data.format import IGNORE_INDEX, load_sample


class RandomRot90(v2.Transform):
    """Rotate image and masks together by a random multiple of 90 degrees (exact, lossless).

    torchvision has no right-angle rotation; ``RandomRotation`` resamples, this permutes.
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Mask)

    def make_params(self, flat_inputs: list) -> dict:
        return {"k": int(torch.randint(0, 4, ()).item())}

    def transform(self, inpt, params: dict):
        return tv_tensors.wrap(torch.rot90(inpt, params["k"], dims=(-2, -1)), like=inpt)


def augmentation() -> v2.Compose:
    """Flips, right-angle rotations and mild colour jitter (image only)."""
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            RandomRot90(),
            v2.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1),
        ]
    )


class WoundDataset(Dataset):
    """Samples ``{"image", "wound", "tissue", "index"}`` of one split, resized to ``image_size``.

    ``image`` is float (3, H, W) in [0, 1]; ``wound`` and ``tissue`` are int64 (H, W) label
    maps (tissue 255 = ignore).
    """

    def __init__(
        self,
        root: str | Path,
        sample_ids: Sequence[str],
        image_size: int,
        augment: bool = False,
    ):
        self.sample_ids = list(sample_ids)
        resize_image = v2.Resize((image_size, image_size), antialias=True)
        resize_mask = v2.Resize(
            (image_size, image_size), interpolation=v2.InterpolationMode.NEAREST
        )
        images, wounds, tissues = [], [], []
        for sample_id in self.sample_ids:
            image, wound, tissue = load_sample(root, sample_id)
            images.append(resize_image(torch.from_numpy(image).permute(2, 0, 1)))
            wounds.append(resize_mask(torch.from_numpy(wound)[None])[0])
            tissues.append(resize_mask(torch.from_numpy(tissue)[None])[0])
        self.images = torch.stack(images) if images else torch.empty(0, 3, image_size, image_size)
        self.wounds = torch.stack(wounds).long() if wounds else torch.empty(0)
        self.tissues = torch.stack(tissues).long() if tissues else torch.empty(0)
        self.transform = augmentation() if augment else None

    def labelled(self, task: str) -> torch.Tensor:
        """Which samples carry a label for ``task`` (any pixel not 255): partial labels."""
        masks = self.wounds if task == "wound" else self.tissues
        if len(self) == 0:
            return torch.zeros(0, dtype=torch.bool)
        return (masks != IGNORE_INDEX).flatten(1).any(1)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, index: int) -> dict:
        image = tv_tensors.Image(self.images[index])
        wound = tv_tensors.Mask(self.wounds[index])
        tissue = tv_tensors.Mask(self.tissues[index])
        if self.transform is not None:
            image, wound, tissue = self.transform(image, wound, tissue)
        return {
            "image": v2.functional.to_dtype(image, torch.float32, scale=True).as_subclass(
                torch.Tensor
            ),
            "wound": wound.as_subclass(torch.Tensor),
            "tissue": tissue.as_subclass(torch.Tensor),
            "index": index,
        }


def as_numpy_labels(dataset: WoundDataset) -> tuple[np.ndarray, np.ndarray]:
    """The (unaugmented) reference wound and tissue maps of a dataset, (N, H, W) uint8."""
    return dataset.wounds.numpy().astype(np.uint8), dataset.tissues.numpy().astype(np.uint8)
