"""Predictions of trained runs: rebuild each network from its checkpoint, predict labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from wing.data.dataset import WoundDataset
from wing.models import build_network
from wing.training.determinism import select_device


def load_network(checkpoint_path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild a trained network from a checkpoint written by :func:`train_network`."""
    checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
    network = build_network(
        checkpoint["backbone"], checkpoint["task_classes"], **checkpoint["backbone_options"]
    )
    network.load_state_dict(checkpoint["state_dict"])
    return network.to(device).eval(), checkpoint


@torch.no_grad()
def predict_run(
    run_dir: str | Path,
    dataset: WoundDataset,
    checkpoint: str = "best",
    batch_size: int = 16,
    device: str = "auto",
) -> dict[str, np.ndarray]:
    """Label maps (N, H, W) per task from every network of a run (STL: one per task)."""
    device = select_device(device)
    predictions: dict[str, list] = {}
    for network_dir in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        path = network_dir / f"{checkpoint}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint missing; re-run the train stage")
        network, _ = load_network(path, device)
        for batch in DataLoader(dataset, batch_size=batch_size):
            _, logits = network(batch["image"].to(device))
            for task, out in logits.items():
                predictions.setdefault(task, []).append(
                    out.argmax(1).cpu().numpy().astype(np.uint8)
                )
    return {task: np.concatenate(parts) for task, parts in predictions.items()}
