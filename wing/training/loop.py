"""One training loop for every method (STL is the same loop with one task), torch only.

A run = one method x backbone x seed. It trains one network per task group of the method,
logs per-epoch losses with DVCLive, keeps the best-validation and the last checkpoint, and
writes its folder atomically (a failed run leaves no half-written output).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dvclive import Live
from torch.utils.data import DataLoader, Subset

from wing.balancing import BALANCERS
from wing.config import TrainConfig
from wing.data.dataset import WoundDataset
from wing.data.format import IGNORE_INDEX, read_legend
from wing.io import atomic_directory
from wing.models import build_network, count_parameters
from wing.training.determinism import seed_everything, select_device
from wing.training.losses import segmentation_loss
from wing.training.methods import method as method_spec

WOUND_LABELS = 2  # not wound, wound


def task_classes(dataset_root: str | Path, tasks: tuple[str, ...]) -> dict[str, int]:
    """Output labels per task: 2 for the wound, background + legend classes for tissue."""
    n_tissue = read_legend(dataset_root).n_tissue_labels
    return {task: WOUND_LABELS if task == "wound" else n_tissue for task in tasks}


def _targets(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    return {"wound": batch["wound"].to(device), "tissue": batch["tissue"].to(device)}


def _labelled_count(batch: dict, task: str) -> int:
    """Samples of the batch with a label for ``task`` (losses average over those)."""
    return int((batch[task] != IGNORE_INDEX).flatten(1).any(1).sum())


def _task_losses(logits: dict, targets: dict) -> dict[str, torch.Tensor]:
    losses = {task: segmentation_loss(out, targets[task]) for task, out in logits.items()}
    return {task: loss for task, loss in losses.items() if loss is not None}


@torch.no_grad()
def validation_losses(network, loader, device) -> dict[str, float]:
    """Mean loss per task over a loader (batch losses weighted by batch size)."""
    network.eval()
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for batch in loader:
        _, logits = network(batch["image"].to(device))
        for task, loss in _task_losses(logits, _targets(batch, device)).items():
            n = _labelled_count(batch, task)
            totals[task] = totals.get(task, 0.0) + float(loss) * n
            counts[task] = counts.get(task, 0) + n
    return {task: totals[task] / counts[task] for task in totals}


def _checkpoint(network, spec: dict, epoch: int) -> dict:
    return {"state_dict": network.state_dict(), "epoch": epoch, **spec}


def train_network(
    *,
    dataset_root: str | Path,
    train_ids: list[str],
    validation_ids: list[str],
    tasks: tuple[str, ...],
    balancer: str,
    backbone: str,
    image_size: int,
    config: TrainConfig,
    seed: int,
    out_dir: Path,
) -> dict:
    """Train one network for ``tasks``; write checkpoints and logs into ``out_dir``."""
    generator = seed_everything(seed, config.num_threads)
    device = select_device(config.device)
    backbone_options = {
        "channels": tuple(config.channels),
        "strides": tuple(config.strides),
        "dropout": config.dropout,
    }
    classes = task_classes(dataset_root, tasks)
    network = build_network(backbone, classes, **backbone_options).to(device)
    spec = {
        "tasks": tasks,
        "task_classes": classes,
        "backbone": backbone,
        "backbone_options": backbone_options,
        "image_size": image_size,
    }
    optimizer = torch.optim.Adam(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    # A balancer's options are the train section of the same name (train.gradnorm: ...).
    options = getattr(config, balancer, None)
    weighting = BALANCERS.get(balancer)(tasks, **(asdict(options) if options else {}))
    last_shared = network.last_shared_parameters(config.last_shared_layer)

    train_set = WoundDataset(dataset_root, train_ids, image_size, augment=config.augment)
    validation_set = WoundDataset(dataset_root, validation_ids, image_size)
    # Partial labels: a network trains on the samples labelled for at least one of its tasks
    # (an STL tissue network never sees wound-only images; a shared one sees all).
    for task in tasks:
        if not bool(train_set.labelled(task).any()):
            raise ValueError(
                f"no training sample of {dataset_root} has a {task} label; "
                f"drop the {task} task or choose another data.source"
            )
    keep = torch.stack([train_set.labelled(t) for t in tasks]).any(0)
    train_subset = Subset(train_set, torch.nonzero(keep).flatten().tolist())
    train_loader = DataLoader(
        train_subset, batch_size=config.batch_size, shuffle=True, generator=generator, num_workers=0
    )
    validation_loader = DataLoader(validation_set, batch_size=config.batch_size, num_workers=0)

    history, balancer_log, step_seconds = [], [], []
    best = (float("inf"), 0)
    step = 0
    with Live(dir=str(out_dir / "dvclive"), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        for epoch in range(1, config.epochs + 1):
            network.train()
            sums = {task: 0.0 for task in tasks}
            seen = {task: 0 for task in tasks}
            for batch in train_loader:
                start = time.perf_counter()
                representation, logits = network(batch["image"].to(device))
                losses = _task_losses(logits, _targets(batch, device))
                optimizer.zero_grad(set_to_none=True)
                weights = weighting.backward(
                    losses,
                    network.shared_parameters(),
                    network.task_specific_parameters(),
                    last_shared,
                    representation,
                )
                optimizer.step()
                step_seconds.append(time.perf_counter() - start)
                grad_norms = getattr(weighting, "last_grad_norms", {})
                for task, loss in losses.items():
                    n = _labelled_count(batch, task)
                    sums[task] += float(loss.detach()) * n
                    seen[task] += n
                for task in tasks:  # every task's weight, present in this batch or not
                    balancer_log.append(
                        {
                            "step": step,
                            "epoch": epoch,
                            "task": task,
                            "present": task in losses,
                            "weight": weights[task],
                            "grad_norm": grad_norms.get(task, np.nan) if task in losses else np.nan,
                        }
                    )
                step += 1
            validation = validation_losses(network, validation_loader, device)
            for task in tasks:
                train_loss = sums[task] / seen[task] if seen[task] else np.nan
                history.append(
                    {
                        "epoch": epoch,
                        "task": task,
                        "train_loss": train_loss,
                        "val_loss": validation.get(task, np.nan),
                    }
                )
                live.log_metric(f"train/loss/{task}", train_loss)
                live.log_metric(f"val/loss/{task}", validation.get(task, np.nan))
                live.log_metric(f"weight/{task}", weighting.weights()[task])
            live.next_step()
            criterion = sum(validation.values())
            if not np.isfinite(criterion):  # no validation label or a diverged run
                criterion = float("inf")
            if criterion < best[0] or best[1] == 0:
                best = (criterion, epoch)
                torch.save(_checkpoint(network, spec, epoch), out_dir / "best.pt")
        torch.save(_checkpoint(network, spec, config.epochs), out_dir / "last.pt")

    pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
    pd.DataFrame(balancer_log).to_csv(out_dir / "balancer_log.csv", index=False)
    summary = {
        "tasks": list(tasks),
        "balancer": balancer,
        "best_epoch": best[1],
        "train_samples": len(train_subset),
        "parameters": count_parameters(network),
        "mean_step_seconds": float(np.mean(step_seconds[len(train_loader) :] or step_seconds)),
        "device": str(device),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def network_dir_name(tasks: tuple[str, ...]) -> str:
    return "+".join(tasks)


def train_run(
    *,
    method: str,
    backbone: str,
    seed: int,
    dataset_root: str | Path,
    split: pd.DataFrame,
    image_size: int,
    config: TrainConfig,
    out_dir: str | Path,
) -> dict:
    """Train every network of ``method`` and write the run folder atomically.

    The folder holds one sub-folder per network (checkpoints, DVCLive logs) and the run's
    tidy ``history.csv``, ``balancer_log.csv`` and ``summary.json``.
    """
    spec = method_spec(method)
    ids = {
        name: split.loc[split["split"] == name, "sample_id"].tolist()
        for name in ("train", "validation")
    }
    keys = {"method": method, "backbone": backbone, "seed": seed}
    with atomic_directory(out_dir) as tmp:
        summaries, histories, logs = [], [], []
        for tasks in spec.task_groups:
            network_dir = tmp / network_dir_name(tasks)
            network_dir.mkdir()
            summaries.append(
                train_network(
                    dataset_root=dataset_root,
                    train_ids=ids["train"],
                    validation_ids=ids["validation"],
                    tasks=tasks,
                    balancer=spec.balancer,
                    backbone=backbone,
                    image_size=image_size,
                    config=config,
                    seed=seed,
                    out_dir=network_dir,
                )
            )
            histories.append(pd.read_csv(network_dir / "history.csv"))
            logs.append(pd.read_csv(network_dir / "balancer_log.csv"))
        history = pd.concat(histories, ignore_index=True).assign(**keys)
        log = pd.concat(logs, ignore_index=True).assign(**keys)
        history.to_csv(tmp / "history.csv", index=False)
        log.to_csv(tmp / "balancer_log.csv", index=False)
        summary = {
            **keys,
            "networks": summaries,
            "parameters": int(sum(s["parameters"] for s in summaries)),
            "mean_step_seconds": float(sum(s["mean_step_seconds"] for s in summaries)),
            "train_config": asdict(config),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=list) + "\n")
    return summary
