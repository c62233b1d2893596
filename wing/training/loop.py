"""One training loop for every method (STL is the same loop with one task), torch only.

A run = one method x backbone x seed. It trains one network per task group of the method,
logs per-epoch losses with DVCLive, and writes its folder atomically (a failed run leaves
no half-written output). The schedule is the same for every method (issue 7, §3 and §6):

- Budget: every network takes ``steps_per_epoch`` optimiser steps per epoch; 0 means
  ceil(N / batch_size) with N the training samples labelled for any task (the shared
  network's set), so an STL network on a partially labelled set cycles its smaller set and
  takes as many steps as the shared network (``wing.training.sampler``).
- Batches: task-balanced (each holds a sample of each task of the network) when
  ``task_balanced_batches`` is ``on``, or ``auto`` and this network's labels are partial.
- Checkpoints: per task, ``best_<task>.pt`` at the epoch of that task's lowest validation
  loss (a multi-task network keeps one per head), and ``last.pt`` at the last epoch.
- Early stopping: after an epoch in which no compared task's (wound, tissue) validation loss
  has reached a new minimum for ``patience`` consecutive epochs (0 = never), at most
  ``epochs`` epochs; an auxiliary task (``wing.training.tasks``) keeps its best checkpoint
  but does not extend training.
- Tasks: targets, losses and labelled counts come from each task's spec
  (:mod:`wing.training.tasks`), so segmentation and image-level tasks share the loop.
- Initial losses: before the first step each task's mean loss over the first
  ``initial_loss_batches`` batches of a fixed, unaugmented, unshuffled pass over the samples
  labelled for it is handed to the balancer (``Balancer.start``; GradNorm's L_i(0)).
- Resume: a run killed mid-way and started again continues from the end of its last epoch
  and writes the same files as an uninterrupted run (``wing.training.resume``).
- Data parallelism: under ``torchrun`` the hooks of ``wing.training.distributed`` share each
  batch between the processes and average their gradients; in one process they change
  nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dvclive import Live
from torch.utils.data import DataLoader, Subset

from wing.balancing import Step
from wing.config import TrainConfig
from wing.config import backbone_options as backbone_options_of
from wing.data.dataset import WoundDataset
from wing.data.format import Legend, read_legend
from wing.io import atomic_directory, write_json
from wing.models import build_network, count_parameters
from wing.notices import notice
from wing.training import distributed
from wing.training.determinism import rng_states, seed_everything, select_device, set_rng_states
from wing.training.methods import DEFAULT_RECIPES, TASKS, Recipe
from wing.training.resume import (
    NetworkResume,
    RunResume,
    files_of,
    resume_dir,
    run_key,
    write_files,
)
from wing.training.sampler import TaskBatchSampler, task_balanced
from wing.training.speed import Speed
from wing.training.tasks import image_tasks, task_classes, task_spec


class TaskLosses:
    """Targets and losses of a network's tasks (their :class:`~wing.training.tasks.TaskSpec`),
    with the recipe's segmentation loss: the one place the loop meets the tasks."""

    def __init__(self, tasks, legend: Legend, segmentation_loss: str = "dice_ce"):
        self.specs = {task: task_spec(task) for task in tasks}
        self.legend = legend
        self.segmentation_loss = segmentation_loss

    def targets(self, batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
        return {t: s.target(batch, self.legend).to(device) for t, s in self.specs.items()}

    def labelled_count(self, targets: dict, task: str) -> int:
        """Samples of the batch with a label for ``task`` (losses average over those)."""
        return int(self.specs[task].labelled(targets[task]).sum())

    def __call__(self, logits: dict, targets: dict) -> dict[str, torch.Tensor]:
        """The losses of the tasks present in the batch (a task without a label is absent)."""
        losses = {
            task: self.specs[task].loss(out, targets[task], self.segmentation_loss)
            for task, out in logits.items()
        }
        return {task: loss for task, loss in losses.items() if loss is not None}


@torch.no_grad()
def _mean_losses(network, batches, device, task_losses: TaskLosses) -> dict[str, float]:
    """Mean loss per task in eval mode (batch losses weighted by their labelled samples).
    ``device``: a torch device, or the run's :class:`~wing.training.speed.Speed`."""
    speed = device if isinstance(device, Speed) else Speed(torch.device(device))
    network.eval()
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for batch in batches:
        targets = task_losses.targets(batch, speed.device)
        with speed.autocast_context():
            _, logits = network(speed.input(batch["image"]))
            losses = task_losses(logits, targets)
        for task, loss in losses.items():
            n = task_losses.labelled_count(targets, task)
            totals[task] = totals.get(task, 0.0) + float(loss) * n
            counts[task] = counts.get(task, 0) + n
    return {task: totals[task] / counts[task] for task in totals}


def validation_losses(network, loader, device, task_losses: TaskLosses) -> dict[str, float]:
    """Mean validation loss per task (the checkpoint and early-stopping criterion)."""
    return _mean_losses(network, loader, device, task_losses)


def initial_losses(
    network,
    dataset,
    labelled: torch.Tensor,
    tasks,
    batches: int,
    batch_size: int,
    device,
    task_losses: TaskLosses,
) -> dict[str, float]:
    """Each task's mean loss over the first ``batches`` batches of a fixed pass (dataset
    order, no augmentation) over the samples labelled for it: L_i(0) of loss-rate balancers.

    Measured in eval mode under ``no_grad``: BatchNorm uses its (initial) running
    statistics and dropout is off, so the measurement leaves the network untouched and the
    run's random streams as they were. At initialisation the eval-mode loss is within a few
    percent of the train-mode one (tiny fixture: wound 1.24 vs 1.16, tissue 2.47 vs 2.51).
    ``batches = 0`` measures nothing: balancers then use their own rule (GradNorm: the loss
    of the first training batch that contains the task).
    """
    losses: dict[str, float] = {}
    if batches == 0:
        return losses
    for column, task in enumerate(tasks):
        indices = torch.nonzero(labelled[:, column]).flatten()[: batches * batch_size]
        # Its own generator: a DataLoader draws a seed even when it does not shuffle.
        loader = DataLoader(
            Subset(dataset, indices.tolist()), batch_size=batch_size, generator=torch.Generator()
        )
        losses[task] = _mean_losses(network, loader, device, task_losses)[task]
    return losses


def steps_per_epoch(config: TrainConfig, samples: int) -> int:
    """Optimiser steps per epoch: ``config.steps_per_epoch``, or one pass over ``samples``."""
    return config.steps_per_epoch or math.ceil(samples / config.batch_size)


def _checkpoint(network, balancer, spec: dict, epoch: int) -> dict:
    return {
        "state_dict": network.state_dict(),
        "balancer_state": balancer.state_dict(),
        "epoch": epoch,
        **spec,
    }


@contextlib.contextmanager
def frozen_batchnorm_statistics(network: torch.nn.Module):
    """A second forward pass on the same batch (a balancer's closure) leaves BatchNorm's
    running statistics as they were: momentum 0 keeps them, as SAM implementations do."""
    norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for module in norms:
        module.momentum = 0.0
    try:
        yield
    finally:
        for module, momentum in zip(norms, momenta, strict=True):
            module.momentum = momentum


@dataclass
class Progress:
    """Where the epoch loop stands after an epoch: all of it goes into the resume state."""

    tasks: tuple[str, ...]
    epoch: int = 0
    step: int = 0
    stopped: bool = False  # early stopping has ended training
    stale: int = 0  # consecutive epochs in which no task's validation loss reached a new minimum
    best: dict = field(default_factory=dict)  # (validation loss, epoch) per task
    history: list = field(default_factory=list)
    balancer_log: list = field(default_factory=list)
    live_rows: list = field(default_factory=list)  # the DVCLive metrics of each epoch, in order
    step_seconds: list = field(default_factory=list)

    def __post_init__(self):
        self.best = self.best or {task: (float("inf"), 0) for task in self.tasks}


def train_network(
    *,
    dataset_root: str | Path,
    train_ids: list[str],
    validation_ids: list[str],
    tasks: tuple[str, ...],
    recipe: Recipe,
    backbone: str,
    image_size: int,
    config: TrainConfig,
    seed: int,
    out_dir: Path,
    backbone_options: dict | None = None,
    resume: NetworkResume | None = None,
) -> dict:
    """Train one network for ``tasks``; write into ``out_dir`` its checkpoints
    (``best_<task>.pt`` per task, ``last.pt``), ``history.csv``, ``balancer_log.csv``,
    DVCLive logs and ``summary.json`` (also returned). The checkpoint records the backbone,
    the architecture and their options, from which :func:`wing.evaluation.predict.load_network`
    rebuilds the network. With ``resume``, the state is saved after every epoch and a saved
    state is continued from (a finished network's folder is written back as it was)."""
    saved = resume.load() if resume is not None else None
    if saved is not None and saved.get("finished"):
        write_files(out_dir, saved["files"])
        notice(f"Resuming: the {out_dir.name} network had finished; its folder is restored.")
        return saved["summary"]
    seed_everything(seed, config.num_threads)
    device = select_device(config.device)
    speed = Speed.of(config, device)
    if backbone_options is None:
        backbone_options = backbone_options_of(backbone, config)
    legend = read_legend(dataset_root)
    classes = task_classes(legend, tasks)
    network = build_network(
        backbone,
        classes,
        architecture=recipe.architecture,
        backbone_options=backbone_options,
        architecture_options=recipe.architecture_options,
        image_tasks=image_tasks(tasks),
    ).to(device)
    network = speed.network(network)
    task_losses = TaskLosses(tasks, legend, recipe.segmentation_loss)
    spec = {
        "tasks": tasks,
        "task_classes": classes,
        "image_tasks": image_tasks(tasks),
        "segmentation_loss": recipe.segmentation_loss,
        "backbone": backbone,
        "backbone_options": dict(backbone_options),
        "architecture": recipe.architecture,
        "architecture_options": dict(recipe.architecture_options),
        "image_size": image_size,
        "recipe": recipe.name,
        "balancer": recipe.balancer,
        "balancer_options": dict(recipe.options),
    }
    optimizer = torch.optim.Adam(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    weighting = recipe.build_balancer(tasks).to(device)
    parallel = distributed.context()
    parallel.start(network, weighting, seed)
    last_shared = network.last_shared_parameters(config.last_shared_layer)
    task_parameters = network.task_parameters()

    train_set = WoundDataset(dataset_root, train_ids, image_size, augment=config.augment)
    validation_set = WoundDataset(dataset_root, validation_ids, image_size)
    # Partial labels: a network trains on the samples labelled for at least one of its tasks
    # (an STL tissue network never sees wound-only images; a shared one sees all).
    for task in tasks:
        if not bool(train_set.labelled(task_spec(task).mask).any()):
            raise ValueError(
                f"no training sample of {dataset_root} has a {task} label; "
                f"drop the {task} task or choose another data.source"
            )
    network_labels = torch.stack([train_set.labelled(task_spec(t).mask) for t in tasks], 1)
    keep = torch.nonzero(network_labels.any(1)).flatten().tolist()
    train_subset = Subset(train_set, keep)
    labelled = network_labels[keep]  # (samples, tasks) of this network's training set
    # The budget counts the samples labelled for any task, whichever network this is.
    any_task = torch.stack([train_set.labelled(t) for t in TASKS], 1).any(1)
    steps = steps_per_epoch(config, int(any_task.sum()))
    balanced = task_balanced(config.task_balanced_batches, labelled)
    sampler = TaskBatchSampler(labelled, config.batch_size, steps, seed, balanced)
    loader_options = speed.loader_options()
    train_loader = DataLoader(train_subset, batch_sampler=parallel.share(sampler), **loader_options)
    validation_loader = DataLoader(validation_set, batch_size=config.batch_size, **loader_options)

    unaugmented = copy.copy(train_set)  # shares the tensors, drops the augmentation
    unaugmented.transform = None
    if saved is None:
        start_losses = initial_losses(
            network,
            Subset(unaugmented, keep),
            labelled,
            tasks,
            config.initial_loss_batches,
            config.batch_size,
            speed,
            task_losses,
        )
        start_losses = parallel.agree(start_losses)
    else:
        start_losses = saved["initial_losses"]
    weighting.start(start_losses)

    progress = Progress(tasks)
    if saved is not None:
        progress = saved["progress"]
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        weighting.load_resume_state(saved["balancer"])
        sampler.load_state_dict(saved["sampler"])
        write_files(out_dir, saved["files"])
        set_rng_states(saved["rng"])  # last: building the network above drew from them
        notice(
            f"Resuming the {out_dir.name} network after epoch {progress.epoch} of "
            f"{config.epochs} (state saved in {resume.path})."
        )
    history, balancer_log, best = progress.history, progress.balancer_log, progress.best
    logs = (
        Live(dir=str(out_dir / "dvclive"), dvcyaml=None, save_dvc_exp=False, report=None)
        if parallel.rank == 0
        else distributed.Unlogged()  # a rank whose folder is dropped: no DVCLive (see there)
    )
    with logs as live:
        for row in progress.live_rows:  # a resumed run: the logs so far, as they were logged
            for name, value in row.items():
                live.log_metric(name, value)
            live.next_step()
        while progress.epoch < config.epochs and not progress.stopped:
            progress.epoch += 1
            epoch = progress.epoch
            network.train()
            sums = {task: 0.0 for task in tasks}
            seen = {task: 0 for task in tasks}
            for batch in train_loader:
                start = time.perf_counter()
                image, targets = speed.input(batch["image"]), task_losses.targets(batch, device)
                with speed.autocast_context():
                    representation, logits = network(image)
                    losses, counts = parallel.task_losses(task_losses, logits, targets)
                optimizer.zero_grad(set_to_none=True)

                def closure(image=image, targets=targets):
                    with frozen_batchnorm_statistics(network), speed.autocast_context():
                        return parallel.task_losses(task_losses, network(image)[1], targets)[0]

                weights = weighting.backward(
                    losses,
                    Step(
                        shared_parameters=network.shared_parameters(),
                        task_parameters=task_parameters,
                        last_shared_parameters=last_shared,
                        representation=representation,
                        closure=closure,
                    ),
                )
                parallel.reduce_gradients(network)
                optimizer.step()
                progress.step_seconds.append(time.perf_counter() - start)
                grad_norms = weighting.last_grad_norms
                for task, loss in losses.items():
                    sums[task] += float(loss.detach()) * counts[task]
                    seen[task] += counts[task]
                for task in tasks:  # every task's weight, present in this batch or not
                    balancer_log.append(
                        {
                            "step": progress.step,
                            "epoch": epoch,
                            "task": task,
                            "present": task in losses,
                            "weight": weights[task],
                            "grad_norm": grad_norms.get(task, np.nan) if task in losses else np.nan,
                        }
                    )
                progress.step += 1
            sums, seen = parallel.end_epoch(sums, seen)
            weighting.end_epoch({t: sums[t] / seen[t] if seen[t] else float("nan") for t in tasks})
            validation = parallel.agree(
                validation_losses(network, validation_loader, speed, task_losses)
            )
            live_row = {}
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
                live_row[f"train/loss/{task}"] = train_loss
                live_row[f"val/loss/{task}"] = validation.get(task, np.nan)
                live_row[f"weight/{task}"] = weighting.weights()[task]
            for name, value in live_row.items():
                live.log_metric(name, value)
            live.next_step()
            progress.live_rows.append(live_row)
            improved = False
            for task in tasks:
                loss = validation.get(task, np.nan)
                better = bool(np.isfinite(loss)) and loss < best[task][0]
                # Epoch 1 always writes the checkpoint, so every head has one even when its
                # validation loss is missing (no validation label) or not finite (diverged).
                if better or best[task][1] == 0:
                    best[task] = (loss if better else float("inf"), epoch)
                    torch.save(
                        _checkpoint(network, weighting, spec, epoch), out_dir / f"best_{task}.pt"
                    )
                # The compared tasks decide when to stop, whatever auxiliary task a recipe adds.
                improved = improved or (better and task in TASKS)
            progress.stale = 0 if improved else progress.stale + 1
            progress.stopped = bool(config.patience and progress.stale >= config.patience)
            if resume is not None:
                resume.save(
                    {
                        "progress": progress,
                        "network": network.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "balancer": weighting.resume_state(),
                        "sampler": sampler.state_dict(),
                        "rng": rng_states(device),
                        "initial_losses": start_losses,
                        "files": files_of(out_dir, "best_*.pt"),
                    }
                )
        epoch = progress.epoch
        torch.save(_checkpoint(network, weighting, spec, epoch), out_dir / "last.pt")

    pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
    pd.DataFrame(balancer_log).to_csv(out_dir / "balancer_log.csv", index=False)
    best_epochs = {task: best[task][1] for task in tasks}
    summary = {
        "tasks": list(tasks),
        "recipe": recipe.name,
        "balancer": recipe.balancer,
        "balancer_family": weighting.family,
        "best_epochs": best_epochs,
        "best_epoch": max(best_epochs.values()),  # the latest per-task best (compatibility)
        "epochs_trained": epoch,
        "stopped_early": epoch < config.epochs,
        "optimizer_steps": progress.step,
        "steps_per_epoch": steps,
        "task_balanced_batches": balanced,
        "initial_losses": start_losses,
        "train_samples": len(train_subset),
        "parameters": count_parameters(network),
        "device": str(device),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    # Wall-clock time is returned, never written to out_dir (a hashed output): train_run puts
    # it in the run's timing file. The first epoch is left out (warm-up), unless it is the only one.
    seconds = progress.step_seconds
    result = {**summary, "mean_step_seconds": float(np.mean(seconds[steps:] or seconds))}
    if resume is not None:
        resume.save_finished(out_dir, result)
    return result


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
    recipe: Recipe | None = None,
    backbone_options: dict | None = None,
    timing_file: str | Path | None = None,
    resume: bool = True,
) -> dict:
    """Train every network of ``method`` (its ``recipe``; None = the default recipe of that
    name) and write the run folder atomically.

    The folder holds one sub-folder per network (checkpoints, DVCLive logs) and the run's
    tidy ``history.csv``, ``balancer_log.csv`` and ``summary.json``. ``backbone_options``:
    the backbone builder's options (``Config.backbone_options``; None = those ``config``
    gives the Attention-UNet, none for other backbones). Wall-clock time per optimiser step
    (``mean_step_seconds``, summed over the networks) varies between identical runs, so it is
    kept out of the folder: written to ``timing_file`` (if given) and added to the returned
    summary only.

    A run killed mid-way resumes when started again with the same arguments: the state of
    each network is saved after every epoch under :func:`wing.training.resume.resume_dir`
    (``out_dir``), keyed by everything that determines the run, and removed once the folder is
    written. ``resume=False`` neither saves nor reads that state (a distributed run).
    """
    spec = recipe or DEFAULT_RECIPES[method]
    if spec.name != method:
        raise ValueError(f"recipe {spec.name!r} handed to a run of method {method!r}")
    ids = {
        name: split.loc[split["split"] == name, "sample_id"].tolist()
        for name in ("train", "validation")
    }
    keys = {"method": method, "backbone": backbone, "seed": seed}
    key = run_key(
        dataset_root,
        **keys,
        ids=ids,
        image_size=image_size,
        train_config=asdict(config),
        recipe=asdict(spec),
        backbone_options=backbone_options,
    )
    run_resume = RunResume(resume_dir(out_dir), key) if resume else None
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
                    recipe=spec,
                    backbone=backbone,
                    image_size=image_size,
                    config=config,
                    seed=seed,
                    out_dir=network_dir,
                    backbone_options=backbone_options,
                    resume=run_resume.network(network_dir.name) if run_resume else None,
                )
            )
            histories.append(pd.read_csv(network_dir / "history.csv"))
            logs.append(
                pd.read_csv(network_dir / "balancer_log.csv").assign(network=network_dir.name)
            )
        history = pd.concat(histories, ignore_index=True).assign(**keys)
        log = pd.concat(logs, ignore_index=True).assign(**keys)
        history.to_csv(tmp / "history.csv", index=False)
        log.to_csv(tmp / "balancer_log.csv", index=False)
        seconds = {network_dir_name(s["tasks"]): s.pop("mean_step_seconds") for s in summaries}
        summary = {
            **keys,
            # Every network takes steps_per_epoch steps per epoch; they differ only when
            # early stopping ends one sooner (then this is the most any network took).
            "optimizer_steps": max(s["optimizer_steps"] for s in summaries),
            "steps_per_epoch": summaries[0]["steps_per_epoch"],
            "networks": summaries,
            "parameters": int(sum(s["parameters"] for s in summaries)),
            "train_config": asdict(config),
            "recipe": asdict(spec),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=list) + "\n")
    if run_resume is not None:
        run_resume.remove()
    timing = {"mean_step_seconds": float(sum(seconds.values())), "networks": seconds}
    if timing_file is not None:
        write_json(timing_file, {**keys, "device": summaries[0]["device"], **timing})
    return {**summary, "mean_step_seconds": timing["mean_step_seconds"]}
