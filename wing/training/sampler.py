"""Batches of a fixed optimiser-step budget, optionally task-balanced for partial labels.

Two rules of the training schedule live here (issue 7, §3 and §6):

- Budget: an epoch is ``steps`` batches, whatever the size of the pool. The sampler draws
  from shuffled passes over its pool and reshuffles whenever a pass is exhausted, so its
  epochs are not tied to passes over the data: a network trained on a small subset (the STL
  tissue network on partially labelled data) cycles it more often and takes as many
  optimiser steps as the shared network.
- Task-balanced batches: with partial labels, a batch of the shared network often holds no
  tissue-labelled sample at all, and a balancer that compares task losses (GradNorm) sees
  one task only. When ``balanced``, every batch first takes, for each task not yet covered
  by the batch, the next sample of that task's own shuffled cycle over the samples labelled
  for it, then fills up from the pool cycle without repeating a sample. Every batch then
  holds at least one sample labelled for each task (when the batch has room for one per
  task; otherwise the tasks take turns).

Unbalanced, the batches are consecutive chunks of successive shuffled passes, the last
chunk of a pass holding the remainder: a ``DataLoader(shuffle=True)`` that never restarts.
Everything is drawn from one seeded ``torch.Generator``: the same seed, the same batches.
``state_dict`` / ``load_state_dict`` carry the sampler's position to a resumed run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class _Cycle:
    """Indices in successive shuffled passes; a new pass is queued when one is needed."""

    def __init__(self, indices: Sequence[int], generator: torch.Generator):
        self.indices = list(indices)
        self.generator = generator
        self.queue: list[int] = []

    def _refill(self) -> None:
        order = torch.randperm(len(self.indices), generator=self.generator).tolist()
        self.queue.extend(self.indices[i] for i in order)

    def chunk(self, size: int) -> list[int]:
        """The next ``size`` indices of the current pass (fewer at the end of a pass)."""
        if not self.queue:
            self._refill()
        taken, self.queue = self.queue[:size], self.queue[size:]
        return taken

    def take(self, exclude: set[int]) -> int:
        """The next index not in ``exclude``; skipped indices stay first in line."""
        while True:
            for position, index in enumerate(self.queue):
                if index not in exclude:
                    return self.queue.pop(position)
            self._refill()


class TaskBatchSampler(Sampler[list[int]]):
    """``steps`` batches of indices into a pool of ``labelled.shape[0]`` samples per epoch.

    ``labelled`` is a (samples, tasks) boolean matrix: which sample carries a label of which
    task of the network. ``balanced`` switches task-balanced batches on (see the module).
    State carries over between epochs (``iter`` continues the cycles, it does not restart).
    """

    def __init__(
        self,
        labelled: torch.Tensor,
        batch_size: int,
        steps: int,
        seed: int,
        balanced: bool,
    ):
        labelled = torch.as_tensor(labelled, dtype=torch.bool)
        if labelled.ndim != 2 or labelled.shape[0] == 0:
            raise ValueError("labelled must be a non-empty (samples, tasks) boolean matrix")
        if batch_size < 1 or steps < 1:
            raise ValueError("batch_size and steps must be at least 1")
        if balanced and not bool(labelled.any(0).all()):
            raise ValueError("task-balanced batches need at least one labelled sample per task")
        self.labelled = labelled
        self.batch_size = min(batch_size, labelled.shape[0])  # never a sample twice per batch
        self.steps = steps
        self.balanced = balanced
        self.generator = torch.Generator().manual_seed(seed)
        self.pool = _Cycle(range(labelled.shape[0]), self.generator)
        self.task_cycles = [
            _Cycle(torch.nonzero(column).flatten().tolist(), self.generator)
            for column in labelled.T
        ]
        self.batches_drawn = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.steps):
            yield self._balanced_batch() if self.balanced else self.pool.chunk(self.batch_size)
            self.batches_drawn += 1

    def state_dict(self) -> dict:
        """Where the sampler stands: its generator and the queued rest of each cycle's pass
        (a resumed run draws the batches an uninterrupted one would have drawn next)."""
        return {
            "generator": self.generator.get_state(),
            "pool": list(self.pool.queue),
            "task_cycles": [list(cycle.queue) for cycle in self.task_cycles],
            "batches_drawn": self.batches_drawn,
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["task_cycles"]) != len(self.task_cycles):
            raise ValueError("sampler state of a network with another number of tasks")
        self.generator.set_state(state["generator"])
        self.pool.queue = list(state["pool"])
        for cycle, queue in zip(self.task_cycles, state["task_cycles"], strict=True):
            cycle.queue = list(queue)
        self.batches_drawn = int(state["batches_drawn"])

    def _balanced_batch(self) -> list[int]:
        tasks = len(self.task_cycles)
        first = self.batches_drawn % tasks  # tasks take turns when the batch is too small
        batch: list[int] = []
        for task in [*range(first, tasks), *range(first)]:
            if len(batch) == self.batch_size:
                break
            if not bool(self.labelled[batch, task].any()):
                batch.append(self.task_cycles[task].take(set(batch)))
        while len(batch) < self.batch_size:
            batch.append(self.pool.take(set(batch)))
        return batch


def has_partial_labels(labelled: torch.Tensor) -> bool:
    """Whether some sample lacks the label of one of the tasks (a (samples, tasks) matrix)."""
    return not bool(torch.as_tensor(labelled, dtype=torch.bool).all())


def task_balanced(setting: str, labelled: torch.Tensor) -> bool:
    """``train.task_balanced_batches`` resolved: ``auto`` = on iff labels are partial."""
    if setting == "auto":
        return has_partial_labels(labelled)
    if setting in ("on", "off"):
        return setting == "on"
    raise ValueError(f"task_balanced_batches must be auto, on or off, got {setting!r}")
