"""The batch sampler: a fixed step budget per epoch, task-balanced batches for partial labels,
the plain shuffled cycle otherwise, and the same batches for the same seed."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from wing.training.sampler import TaskBatchSampler, has_partial_labels, task_balanced


def partial(n: int = 10, tissue: tuple[int, ...] = (2, 5)) -> torch.Tensor:
    """(samples, tasks) labels: every sample has a wound label, only ``tissue`` a tissue one."""
    labelled = torch.zeros(n, 2, dtype=torch.bool)
    labelled[:, 0] = True
    labelled[list(tissue), 1] = True
    return labelled


def epochs(sampler: TaskBatchSampler, count: int) -> list[list[list[int]]]:
    return [list(sampler) for _ in range(count)]


@pytest.mark.parametrize("batch_size", [2, 3, 4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_batches_hold_every_task(batch_size: int, seed: int):
    labelled = partial(n=11, tissue=(3,))  # one tissue image in eleven
    sampler = TaskBatchSampler(labelled, batch_size, steps=5, seed=seed, balanced=True)
    for epoch in epochs(sampler, 4):
        assert len(epoch) == len(sampler) == 5
        for batch in epoch:
            assert len(batch) == len(set(batch)) == batch_size  # no sample twice in a batch
            assert labelled[batch].any(0).all()  # wound and tissue in every batch


def test_balanced_batches_still_visit_every_sample():
    labelled = partial(n=12, tissue=(0, 5))
    sampler = TaskBatchSampler(labelled, 4, steps=3, seed=0, balanced=True)
    seen = {i for epoch in epochs(sampler, 4) for batch in epoch for i in batch}
    assert seen == set(range(12))


def test_tasks_take_turns_when_the_batch_is_smaller_than_the_task_count():
    labelled = torch.tensor([[True, False], [False, True], [True, False]])
    sampler = TaskBatchSampler(labelled, 1, steps=4, seed=0, balanced=True)
    batches = list(sampler)
    covered = [labelled[batch].any(0).tolist() for batch in batches]
    assert covered == [[True, False], [False, True]] * 2


@pytest.mark.parametrize("n", [7, 8])
def test_unbalanced_is_the_plain_shuffled_cycle(n: int):
    """Off: each pass over the pool is a permutation cut into batches (the last holds the
    remainder), as DataLoader(shuffle=True) gives; a pass-long budget is one pass per epoch."""
    batch_size = 3
    steps = math.ceil(n / batch_size)
    sampler = TaskBatchSampler(partial(n), batch_size, steps, seed=0, balanced=False)
    passes = epochs(sampler, 5)
    for epoch in passes:
        assert [len(b) for b in epoch] == [3] * (steps - 1) + [n - 3 * (steps - 1)]
        assert sorted(i for batch in epoch for i in batch) == list(range(n))
    assert len({tuple(map(tuple, epoch)) for epoch in passes}) > 1  # reshuffled each pass


def test_a_small_pool_is_cycled_to_fill_the_budget():
    """The STL tissue network on partial labels: 3 samples, the shared network's 5 steps."""
    sampler = TaskBatchSampler(torch.ones(3, 1, dtype=torch.bool), 2, 5, seed=0, balanced=False)
    batches = [i for epoch in epochs(sampler, 2) for batch in epoch for i in batch]
    assert len(epochs(sampler, 1)[0]) == 5
    # Passes of three samples cut in batches of two and one: every pass a permutation.
    assert all(sorted(batches[k : k + 3]) == [0, 1, 2] for k in range(0, len(batches), 3))


@pytest.mark.parametrize("balanced", [True, False])
def test_same_seed_same_batches(balanced: bool):
    make = lambda seed: TaskBatchSampler(partial(), 4, 6, seed=seed, balanced=balanced)  # noqa: E731
    assert epochs(make(0), 3) == epochs(make(0), 3)
    assert epochs(make(0), 3) != epochs(make(1), 3)


def test_drives_a_dataloader_for_the_budget():
    data = TensorDataset(torch.arange(10))
    sampler = TaskBatchSampler(partial(), 4, steps=7, seed=0, balanced=True)
    loader = DataLoader(data, batch_sampler=sampler)
    assert len(loader) == 7
    assert [len(b[0]) for b in loader] == [4] * 7


def test_auto_means_on_for_partial_labels_only():
    assert has_partial_labels(partial()) and task_balanced("auto", partial())
    full = torch.ones(5, 2, dtype=torch.bool)
    assert not has_partial_labels(full) and not task_balanced("auto", full)
    assert task_balanced("on", full) and not task_balanced("off", partial())
    with pytest.raises(ValueError, match="auto, on or off"):
        task_balanced("sometimes", full)


def test_balanced_needs_a_labelled_sample_per_task():
    with pytest.raises(ValueError, match="at least one labelled sample per task"):
        TaskBatchSampler(partial(tissue=()), 4, 3, seed=0, balanced=True)
