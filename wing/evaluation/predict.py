"""Predictions of trained runs: rebuild each network from its checkpoint, predict label maps.

A run folder holds one sub-folder per network, named by its tasks (``wound+tissue`` for a
shared network; ``wound`` and ``tissue`` for STL), each with ``best_<task>.pt`` per task (the
epoch of that task's lowest validation loss) and ``last.pt``. Each task is predicted by its
own network and checkpoint, so a shared network whose heads were best at different epochs is
loaded twice. Logits are computed on the network-size input and, when the images' native
sizes are given, upsampled bilinearly to each image's original size before the argmax, so
predictions are scored against the original masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import DataLoader

from wing.data.dataset import WoundDataset
from wing.models import build_network
from wing.training.determinism import select_device
from wing.training.tasks import task_spec

CHECKPOINTS = ("best", "last")  # the primary rule first


def load_network(checkpoint_path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild a trained network from a checkpoint written by :func:`train_network`."""
    checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
    # The trained weights replace any initial ones: a pretrained encoder file is not re-read.
    options = {**checkpoint["backbone_options"]}
    if options.get("pretrained_path"):
        options["pretrained_path"] = ""
    network = build_network(
        checkpoint["backbone"],
        checkpoint["task_classes"],
        architecture=checkpoint["architecture"],
        backbone_options=options,
        architecture_options=checkpoint["architecture_options"],
        image_tasks=checkpoint.get("image_tasks", ()),
    )
    network.load_state_dict(checkpoint["state_dict"])
    return network.to(device).eval(), checkpoint


def network_dirs(run_dir: str | Path) -> dict[str, Path]:
    """The network folder of each task of a run ({task: folder}); folders are named by tasks."""
    folders: dict[str, Path] = {}
    for folder in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        if not any(folder.glob("*.pt")):
            continue
        for task in folder.name.split("+"):
            if task in folders:
                raise ValueError(f"{run_dir}: task {task!r} in {folders[task]} and {folder}")
            folders[task] = folder
    if not folders:
        raise FileNotFoundError(f"{run_dir}: no network checkpoints; re-run the train stage")
    return folders


def checkpoint_path(network_dir: str | Path, task: str, checkpoint: str = "best") -> Path:
    """The checkpoint of ``task`` in a network folder under a rule of :data:`CHECKPOINTS`.

    ``best`` is ``best_<task>.pt`` (or ``best.pt``, written by runs with one best checkpoint
    per network); ``last`` is ``last.pt``.
    """
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    folder = Path(network_dir)
    candidates = [f"best_{task}.pt", "best.pt"] if checkpoint == "best" else ["last.pt"]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder / candidates[0]}: checkpoint missing; re-run the train stage")


@torch.no_grad()
def _predict_tasks(
    network: torch.nn.Module,
    tasks: Sequence[str],
    dataset: WoundDataset,
    batch_size: int,
    device: torch.device,
    native_sizes: Sequence[tuple[int, int]] | None,
) -> dict[str, list[np.ndarray]]:
    """Label maps of ``tasks`` for every image, at its native size if given (bilinear logits)."""
    out: dict[str, list[np.ndarray]] = {task: [] for task in tasks}
    for batch in DataLoader(dataset, batch_size=batch_size):
        _, logits = network(batch["image"].to(device))
        for task in tasks:
            for i, index in enumerate(batch["index"].tolist()):
                image_logits = logits[task][i : i + 1]
                if native_sizes is not None:
                    image_logits = functional.interpolate(
                        image_logits,
                        size=tuple(int(s) for s in native_sizes[index]),
                        mode="bilinear",
                        align_corners=False,
                    )
                out[task].append(image_logits[0].argmax(0).cpu().numpy().astype(np.uint8))
    return out


def predict_run(
    run_dir: str | Path,
    dataset: WoundDataset,
    checkpoint: str = "best",
    batch_size: int = 16,
    device: str = "auto",
    native_sizes: Sequence[tuple[int, int]] | None = None,
) -> dict[str, list[np.ndarray] | np.ndarray]:
    """Label maps per segmentation task of a run, each from its own network and checkpoint
    (image-level tasks: :func:`predict_probabilities`).

    ``checkpoint`` is ``best`` (per task, ``best_<task>.pt``, else ``best.pt``) or ``last``.
    With ``native_sizes`` (one (height, width) per dataset image), the logits are upsampled
    bilinearly (``align_corners=False``) to that size before the argmax and each task gets a
    list of (height, width) uint8 maps; without, each task gets an (N, H, W) uint8 array at
    the network's input size. Each checkpoint is loaded once.
    """
    if native_sizes is not None and len(native_sizes) != len(dataset):
        raise ValueError(f"{len(native_sizes)} native sizes for {len(dataset)} images")
    device = select_device(device)
    folders = {
        task: folder
        for task, folder in network_dirs(run_dir).items()
        if task_spec(task).kind == "segmentation"
    }
    by_path: dict[Path, list[str]] = {}
    for task, folder in folders.items():
        by_path.setdefault(checkpoint_path(folder, task, checkpoint), []).append(task)
    predictions: dict[str, list[np.ndarray]] = {}
    for path, tasks in by_path.items():
        network, saved = load_network(path, device)
        if len(dataset) and saved.get("image_size") not in (None, dataset.images.shape[-1]):
            raise ValueError(
                f"{path} was trained on {saved['image_size']} px inputs, the dataset has "
                f"{dataset.images.shape[-1]} px"
            )
        predictions.update(
            _predict_tasks(network, tasks, dataset, batch_size, device, native_sizes)
        )
        del network
    if native_sizes is None:
        return {task: _stack(predictions[task], dataset) for task in folders}
    return {task: predictions[task] for task in folders}


def _stack(maps: list[np.ndarray], dataset: WoundDataset) -> np.ndarray:
    if maps:
        return np.stack(maps)
    side = dataset.images.shape[-1]
    return np.zeros((0, side, side), dtype=np.uint8)


@torch.no_grad()
def predict_probabilities(
    run_dir: str | Path,
    task: str,
    dataset: WoundDataset,
    checkpoint: str = "best",
    batch_size: int = 16,
    device: str = "auto",
) -> np.ndarray | None:
    """(N, labels) sigmoid probabilities of the image-level ``task`` for every dataset image
    under a checkpoint rule; None when the run has no network for ``task``."""
    if task_spec(task).kind != "image":
        raise ValueError(f"{task!r} is not an image-level task")
    folders = network_dirs(run_dir)
    if task not in folders:
        return None
    device = select_device(device)
    network, _ = load_network(checkpoint_path(folders[task], task, checkpoint), device)
    out = [
        torch.sigmoid(network(batch["image"].to(device))[1][task]).cpu().numpy()
        for batch in DataLoader(dataset, batch_size=batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0))
