"""One training run across processes, GPUs or nodes: data parallelism under ``torchrun``.

    torchrun --nproc-per-node 2 -m wing.training.distributed --method gradnorm --seed 0

trains a run (method x backbone x seed) of ``params.yaml`` on the prepared dataset (or
several, one after the other) and writes the same run folder as the train stage, from rank
0 (the other ranks write theirs to a temporary folder and delete it). Each of the N
processes (ranks) holds a replica of the network; what makes the N replicas one run:

- Batches: the global batch stays ``train.batch_size``. Every rank draws the same
  :class:`~wing.training.sampler.TaskBatchSampler` order (same seed) and keeps every N-th
  sample of each batch (:class:`RankShare`), so together the ranks see exactly the batches
  of a single process.
- Losses: a task's loss is a mean over its labelled samples, so rank r's loss L_r enters as
  its share ``N n_r / n L_r`` (n_r labelled samples here, n in the global batch): the mean
  of the shares over the ranks is the global loss, and the mean of their gradients its
  gradient. A task labelled on another rank only is still present here, with a zero loss
  attached to the graph, so every rank calls the same balancer code and the same
  collectives (the counts n_r are all-reduced first: one small collective per step).
- Gradients: one rule for every balancer. After ``Balancer.backward`` the trainer
  all-reduces (mean) the ``.grad`` of every network parameter (:meth:`Distributed.
  reduce_gradients`). DistributedDataParallel's gradient hooks are not used: GradNorm and
  the torchjd aggregators fill ``.grad`` by hand, which bypasses them, and the same rule
  for all is simpler than two. What a balancer computes from the batch beyond the loss
  (a nonlinear function of the gradients) goes through its ``reduce`` hook
  (:attr:`wing.balancing.base.Balancer.reduce`, the identity in one process): GradNorm's
  per-task gradients on W (whose norms are G_i) and its loss values (r_i, and L_i(0) when
  measured on the first batch), the task Jacobian of a gradient aggregator before it is
  aggregated, MT-CooL's ascent direction, and the gradients of a balancer's own parameters
  (uncertainty weighting). The balancer's update is then computed from the same numbers on
  every rank.
- Parameters start as rank 0's (broadcast) and stay identical: after every epoch every rank
  compares its parameters, buffers and balancer state with rank 0's, bit for bit, and all
  ranks stop with an error if one differs.
- BatchNorm normalises with the statistics of the rank's local batch (SyncBatchNorm does
  not run on CPU); its running statistics, which only eval mode uses, are averaged over the
  ranks after every epoch, before validation (it is linear in the batch statistics, so
  averaging once per epoch equals averaging every step). The running mean is then the
  single-process one (the mean of equal shares' means is the batch's); the running
  variance misses the spread between the shares' means, so it is slightly smaller.
- Validation and initial losses are computed on every rank over the whole set (identical
  parameters and buffers) and rank 0's values are broadcast, so checkpoints and early
  stopping agree on every rank; the epoch's training losses are summed over the ranks.
- Random streams (augmentation, dropout) are reseeded per rank after the network is built,
  so ranks draw different augmentations; with augmentation or dropout on, a distributed run
  agrees with a single process in distribution, not in numbers.

What differs from one process, and so the tolerance of the comparison
(``tests/test_distributed.py``): BatchNorm's batch statistics over the local share, and the
Dice half of the loss, a ratio of sums over the batch (the mean of the ranks' Dice is not
the Dice of the batch). The cross-entropy half splits exactly when every labelled image
has as many labelled pixels (the shares weigh samples, the loss pixels), and every other
step of the algorithm splits exactly. A distributed run does not
resume (``train_run(resume=False)``): a restarted ``torchrun`` trains from the start.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import Sampler


def mean_over_ranks(tensors: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """The element-wise mean over the ranks of each tensor (None stays None): one
    all-reduce per device and dtype of the flattened tensors. The result is the same bits on
    every rank. In one process (no process group, or a group of one) the tensors themselves."""
    tensors = list(tensors)
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return tensors
    world = dist.get_world_size()
    groups: dict[tuple, list[int]] = {}
    for i, tensor in enumerate(tensors):
        if tensor is not None:
            groups.setdefault((tensor.device, tensor.dtype), []).append(i)
    reduced = list(tensors)
    for indices in groups.values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in indices])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for i in indices:
            size = tensors[i].numel()
            reduced[i] = flat[offset : offset + size].view_as(tensors[i])
            offset += size
    return reduced


class RankShare(Sampler[list[int]]):
    """This rank's share of each batch of ``batches``: every ``world``-th index from
    ``rank`` on, so the N ranks together hold exactly the batch of one process."""

    def __init__(self, batches: Sampler[list[int]], rank: int, world: int):
        batch_size = getattr(batches, "batch_size", world)
        if batch_size < world:
            raise ValueError(
                f"a batch of {batch_size} samples (train.batch_size, at most the network's "
                f"training samples) cannot be shared by {world} processes: each needs one"
            )
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield batch[self.rank :: self.world]


def _batch_norms(network: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in network.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


class SingleProcess:
    """The training loop's hooks in one process: each leaves everything as it is, so a
    single-process run computes exactly what it computed before the hooks existed."""

    world_size = 1
    rank = 0

    def start(self, network: nn.Module, balancer: nn.Module, seed: int) -> None:
        """Before the first step (nothing to synchronise)."""

    def share(self, batches: Sampler[list[int]]) -> Sampler[list[int]]:
        return batches

    def task_losses(self, task_losses, logits: dict, targets: dict) -> tuple[dict, dict]:
        """The batch's task losses and each one's labelled-sample count."""
        losses = task_losses(logits, targets)
        return losses, {task: task_losses.labelled_count(targets, task) for task in losses}

    def reduce_gradients(self, network: nn.Module) -> None:
        """Before the optimiser step (the gradients are the batch's already)."""

    def end_epoch(self, sums: dict, seen: dict) -> tuple[dict, dict]:
        """The epoch's summed training losses and labelled counts, as they are."""
        return sums, seen

    def agree(self, values: dict[str, float]) -> dict[str, float]:
        """Values every rank must share (validation and initial losses), as they are."""
        return values


class Distributed(SingleProcess):
    """The hooks under a process group of ``world_size`` > 1 (see the module docstring)."""

    def __init__(self):
        self.world_size = dist.get_world_size()
        self.rank = dist.get_rank()
        # NCCL reduces GPU tensors only; gloo CPU tensors.
        nccl = dist.get_backend() == dist.Backend.NCCL
        self.device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
        self.network: nn.Module | None = None
        self.balancer: nn.Module | None = None

    def _tensor(self, values, dtype=torch.float64) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=self.device)

    def start(self, network, balancer, seed):
        """Rank 0's parameters and buffers everywhere, the balancer's reduce set to the mean
        over ranks, and a random stream of this rank's own."""
        self.network, self.balancer = network, balancer
        with torch.no_grad():
            for tensor in self._state(network) + self._state(balancer):
                dist.broadcast(tensor, src=0)
        balancer.reduce = mean_over_ranks
        rank_seed = int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])
        random.seed(rank_seed)
        np.random.seed(rank_seed)
        torch.manual_seed(rank_seed)

    @staticmethod
    def _state(module: nn.Module) -> list[torch.Tensor]:
        return [*module.parameters(), *module.buffers()]

    def share(self, batches):
        return RankShare(batches, self.rank, self.world_size)

    def task_losses(self, task_losses, logits, targets):
        """Each task present in the global batch, as this rank's share ``N n_r / n L_r``;
        the counts returned (n / N) make the loop's epoch sums, summed over the ranks, the
        global ones."""
        local = task_losses(logits, targets)
        tasks = list(task_losses.specs)
        here = [task_losses.labelled_count(targets, t) if t in local else 0 for t in tasks]
        counts = self._tensor(here)
        dist.all_reduce(counts)
        losses, shares = {}, {}
        for task, n_here, n in zip(tasks, here, counts.tolist(), strict=True):
            if n == 0:
                continue  # absent from the global batch: absent on every rank
            if n_here:
                losses[task] = local[task] * (self.world_size * n_here / n)
            else:  # labelled on another rank only: a zero share, still on the graph
                losses[task] = logits[task].sum() * 0.0
            shares[task] = n / self.world_size
        return losses, shares

    def reduce_gradients(self, network):
        parameters = [p for p in network.parameters() if p.grad is not None]
        grads = mean_over_ranks([p.grad for p in parameters])
        for parameter, grad in zip(parameters, grads, strict=True):
            parameter.grad = grad

    def end_epoch(self, sums, seen):
        """BatchNorm's running statistics averaged over the ranks, the replicas checked
        identical, the epoch's loss sums and counts summed over the ranks."""
        statistics = [
            s for m in _batch_norms(self.network) for s in (m.running_mean, m.running_var)
        ]
        with torch.no_grad():
            for tensor, mean in zip(statistics, mean_over_ranks(statistics), strict=True):
                tensor.copy_(mean)
        self.check_identical()
        tasks = list(sums)
        totals = self._tensor([[sums[t] for t in tasks], [seen[t] for t in tasks]])
        dist.all_reduce(totals)
        summed, counted = totals.tolist()
        return dict(zip(tasks, summed, strict=True)), dict(zip(tasks, counted, strict=True))

    def check_identical(self) -> None:
        """RuntimeError on every rank unless this rank's parameters, buffers and balancer
        state equal rank 0's bit for bit."""
        state = [
            t.detach()
            for t in self._state(self.network) + self._state(self.balancer)
            if t.dtype.is_floating_point
        ]
        if not state:
            return
        mine = torch.cat([t.reshape(-1) for t in state])
        theirs = mine.clone()
        dist.broadcast(theirs, src=0)
        differs = self._tensor([float(not torch.equal(mine, theirs))])
        dist.all_reduce(differs)
        if differs.item():
            raise RuntimeError(
                f"the network replicas differ from rank 0's on {int(differs.item())} of "
                f"{self.world_size} ranks: a gradient or balancer state was not reduced"
            )

    def agree(self, values):
        """Rank 0's values on every rank (all ranks compute the same keys)."""
        if not values:
            return values
        tasks = list(values)
        shared = self._tensor([values[t] for t in tasks])
        dist.broadcast(shared, src=0)
        return dict(zip(tasks, shared.tolist(), strict=True))


class Unlogged:
    """The DVCLive logger of a rank other than 0, which logs nothing. Such a rank's folder
    is dropped, and DVCLive on every rank would race: each process of the repository writes
    and then removes the same VS Code signal file (``.dvc/tmp/exps/run/
    DVCLIVE_STEP_COMPLETED``, checked, then removed), so one rank's ``Live.end`` can find
    it gone and raise ``FileNotFoundError`` (seen in CI)."""

    def __enter__(self) -> Unlogged:
        return self

    def __exit__(self, *exception) -> None:
        return None

    def log_metric(self, name: str, value: float) -> None:
        """Nothing."""

    def next_step(self) -> None:
        """Nothing."""


def context() -> SingleProcess:
    """The hooks of this process: :class:`Distributed` under a process group of more than
    one rank, else :class:`SingleProcess`."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        return Distributed()
    return SingleProcess()


def _override(text: str) -> dict:
    """``a.b=value`` (``value`` read as YAML, like ``dvc exp run -S``) as a nested mapping."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    tree: dict = yaml.safe_load(value)
    for part in reversed(key.split(".")):
        tree = {part: tree}
    return tree


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Train the runs named on the command line, one after the other, distributed when
    started by ``torchrun`` (in one process otherwise); return their summaries."""
    import pandas as pd

    from wing.config import deep_merge, load_config
    from wing.paths import RUNS, SPLIT, TIMINGS, run_dir, timing_path
    from wing.training.loop import train_run

    parser = argparse.ArgumentParser(
        prog="torchrun --nproc-per-node N -m wing.training.distributed",
        description="Train method x backbone x seed runs of params.yaml across processes.",
    )
    parser.add_argument("--method", nargs="+", required=True, help="one or more recipes")
    parser.add_argument("--backbone", default="attention_unet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--split", default=str(SPLIT), help="the split CSV (sample_id, split)")
    parser.add_argument("--runs", default=str(RUNS), help="run folders go under it, as the stage's")
    parser.add_argument("--timings", default=str(TIMINGS), help="wall-clock timing files")
    parser.add_argument(
        "-S", "--set", dest="overrides", action="append", type=_override, default=[],
        help="override a parameter, e.g. -S train.epochs=3 (as dvc exp run -S)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides: dict = {}
    for override in args.overrides:
        overrides = deep_merge(overrides, override)
    config = load_config(args.params, overrides)
    unknown = [m for m in args.method if m not in config.recipes]
    if unknown:
        parser.error(f"no recipe {unknown} in {args.params}; recipes: {sorted(config.recipes)}")

    started = "WORLD_SIZE" in os.environ and not dist.is_initialized()
    if started:
        gpu = config.train.device != "cpu" and torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if gpu else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    # Only rank 0 writes the runs; the others train into a temporary folder, then drop it.
    scratch = None if rank == 0 else Path(tempfile.mkdtemp(prefix=f"wing-rank{rank}-"))
    summaries = []
    try:
        for method in args.method:
            out = run_dir(args.backbone, method, args.seed, Path(args.runs))
            timing = timing_path(args.backbone, method, args.seed, Path(args.timings))
            summary = train_run(
                method=method,
                backbone=args.backbone,
                seed=args.seed,
                dataset_root=config.data.root,
                split=pd.read_csv(args.split, dtype=str),
                image_size=config.data.image_size,
                config=config.train,
                out_dir=out if scratch is None else scratch / method,
                recipe=config.recipes[method],
                backbone_options=config.backbone_options(args.backbone),
                timing_file=timing if scratch is None else None,
                resume=world == 1,
            )
            summaries.append(summary)
            if rank == 0:
                steps, seconds = summary["optimizer_steps"], summary["mean_step_seconds"]
                where = f" on {world} processes" if world > 1 else ""
                print(f"Trained {out}{where}: {steps} steps, {seconds:.3f} s per step")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if started:
            dist.destroy_process_group()
    return summaries


if __name__ == "__main__":
    main()
