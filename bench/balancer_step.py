"""Benchmark: cost of one training step of every recipe in params.yaml against equal weighting.

Only recipes on hard sharing are timed here, so a ratio measures the balancer alone; the
seed architectures' cost (CTAN, MT-IDS) is ``bench/architecture_cost.py``'s. Every
shared-network recipe (``recipes:`` in params.yaml, ``per_task_networks`` false) gets
its own copy of the same Attention-UNet (the quick profile's channels and strides, the same
initial weights) and takes full training steps exactly as ``wing.training.loop`` takes them:
forward, the task losses, ``balancer.backward(losses, Step(...))`` with the trainer's
parameter groups and closure (BatchNorm statistics frozen in the second pass), and an Adam
step. STL is one row: its two single-task networks (wound, tissue), one step each, timed
back to back. Batches are synthetic (random images, random labels of both tasks).

Timing: interleaved rounds in one process; every round times every method once, in an order
shuffled with a seeded generator, so drifts in machine load hit all methods alike; warm-up
rounds are discarded. Per method: the median step time and the median over rounds of the
per-round ratio to the equal-weighting step of the same round.

Memory: a separate pass after the timing rounds, one step per method, never timed. On CUDA,
``torch.cuda.max_memory_allocated`` during the step. On the CPU, torch's allocator keeps no
statistics and ``tracemalloc`` sees only Python's allocator (a step that allocates 16 MB of
tensors shows 600 traced bytes), so the pass counts tensor storages at the ATen dispatcher
(a ``TorchDispatchMode``, backward and torchjd's vmap included): the peak of the live storage
bytes. Both count the method's own network, gradients, optimiser and balancer state and the
batch, so the numbers are comparable across methods (STL: the larger of its two networks,
which a run trains one after the other). The timing loop and the memory tracker are in
``bench/_measure.py``, shared with ``bench/architecture_cost.py``.

    python bench/balancer_step.py [--rounds 40] [--warmup 3] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch
import yaml
from _measure import (
    interleaved_times,
    memory_counter,
    module_state,
    peak_memory,
    quartiles,
    ratios,
    record,
    run_header,
    timing_device,
)

from wing.balancing import Balancer, Step
from wing.config import load_config, resolve
from wing.data.format import Legend
from wing.models import build_network, count_parameters
from wing.training.loop import TaskLosses, frozen_batchnorm_statistics, validation_losses
from wing.training.methods import TASKS, Recipe

BACKBONE = "attention_unet"
TASK_CLASSES = {"wound": 2, "tissue": 5}
# The trainer's task losses (Dice + CE) for the benchmark's wound and 4-class tissue labels.
TASK_LOSSES = TaskLosses(
    tuple(TASK_CLASSES), Legend(("granulation", "slough", "necrosis", "epithelium"))
)
REFERENCE = "ew"
STL = "stl"
TARGET_RATIO = 1.05  # the target: GradNorm and every loss-weighting method <= 1.05x EW
NO_TARGET = "measured, no target"
# Passes per step through the shared trunk, by balancer family (T = tasks in the batch).
PASSES = {
    "loss weighting": {
        "forward": 1,
        "backward": 1,
        "bound": "1 forward + 1 backward of sum_i w_i L_i (GradNorm: per-task passes stop at "
        "the shared representation, then one trunk backward)",
    },
    "gradient aggregation": {
        "forward": 1,
        "backward": len(TASKS),
        "bound": "1 forward + T backward through the trunk (torchjd's vmap'd Jacobian), "
        "T x the shared parameters' gradient memory",
    },
    "cooperative optimisation": {
        "forward": 2,
        "backward": 2,
        "bound": "2 forward + 2 backward (SAM-style perturbation, then the closure's pass)",
    },
    "single-task": {
        "forward": 2,
        "backward": 2,
        "bound": "2 networks x (1 forward + 1 backward), one task each",
    },
}


@dataclass
class Subject:
    """One network, its optimiser and balancer, and its batch: what one method steps."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    balancer: Balancer
    targets: dict[str, torch.Tensor]
    last_shared: list[torch.nn.Parameter]
    task_parameters: dict[str, list[torch.nn.Parameter]]

    def state_tensors(self) -> Iterable[torch.Tensor]:
        """Everything that lives across steps: parameters, gradients, buffers, optimiser and
        balancer state (the memory pass's baseline)."""
        yield from module_state(
            (self.network, self.balancer),
            (self.optimizer, getattr(self.balancer, "optimizer", None)),
        )
        yield from self.targets.values()


def build_subject(
    recipe: Recipe,
    tasks: tuple[str, ...],
    backbone_options: dict,
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    device: torch.device,
    seed: int,
) -> Subject:
    """A network for ``tasks`` set up as ``train_network`` sets it up (same initial weights
    for every method: the generator is re-seeded before each network is built)."""
    torch.manual_seed(seed)
    classes = {task: TASK_CLASSES[task] for task in tasks}
    network = build_network(
        BACKBONE,
        classes,
        recipe.architecture,
        backbone_options=backbone_options,
        architecture_options=recipe.architecture_options,
    ).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    balancer = recipe.build_balancer(tasks).to(device)
    own = {task: targets[task] for task in tasks}
    # L_i(0) as the trainer measures it: eval mode, no grad (here on the benchmark batch).
    balancer.start(validation_losses(network, [{"image": images, **targets}], device, TASK_LOSSES))
    return Subject(
        network,
        optimizer,
        balancer,
        own,
        network.last_shared_parameters(),
        network.task_parameters(),
    )


def train_step(subject: Subject, images: torch.Tensor) -> None:
    """One optimiser step, as in ``wing.training.loop.train_network``."""
    network, targets = subject.network, subject.targets
    network.train()
    representation, logits = network(images)
    losses = TASK_LOSSES(logits, targets)
    subject.optimizer.zero_grad(set_to_none=True)

    def closure(image=images, targets=targets):
        with frozen_batchnorm_statistics(network):
            return TASK_LOSSES(network(image)[1], targets)

    subject.balancer.backward(
        losses,
        Step(
            shared_parameters=network.shared_parameters(),
            task_parameters=subject.task_parameters,
            last_shared_parameters=subject.last_shared,
            representation=representation,
            closure=closure,
        ),
    )
    subject.optimizer.step()


def peak_step_memory(
    subject: Subject, images: torch.Tensor, device: torch.device
) -> tuple[int, int]:
    """Peak live tensor bytes of one step of ``subject`` (its own state and the batch
    included; other methods' networks excluded) and the bytes of that state alone."""
    return peak_memory(
        lambda: train_step(subject, images), [*subject.state_tensors(), images], device
    )


def quick_backbone_options(params: Path) -> dict:
    """The quick profile's Attention-UNet widths and strides, whatever profile is active."""
    tree = resolve({**yaml.safe_load(params.read_text(encoding="utf-8")), "profile": "quick"})
    return {
        "channels": tuple(tree["train"]["channels"]),
        "strides": tuple(tree["train"]["strides"]),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="bench/results/balancer_step.json")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--params", default="params.yaml", help="recipes and quick profile")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, nargs="+", help="default: the quick profile's")
    parser.add_argument("--strides", type=int, nargs="+", help="default: the quick profile's")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    load_start = list(os.getloadavg())  # 1, 5, 15 min: other work on the machine
    params = Path(args.params)
    recipes = {
        name: recipe
        for name, recipe in load_config(params).recipes.items()
        if recipe.architecture == "hard_sharing"
    }
    if REFERENCE not in recipes:
        raise SystemExit(f"{params}: no {REFERENCE!r} recipe to compare against")
    backbone_options = quick_backbone_options(params)
    if args.channels:
        backbone_options["channels"] = tuple(args.channels)
    if args.strides:
        backbone_options["strides"] = tuple(args.strides)

    device = timing_device(args.device, args.seed, args.threads)
    size, batch = args.image_size, args.batch_size
    images = torch.rand(batch, 3, size, size, device=device)
    targets = {
        task: torch.randint(0, n, (batch, size, size), device=device)
        for task, n in TASK_CLASSES.items()
    }

    # One entry per method; STL's entry holds its two single-task networks.
    subjects: dict[str, list[Subject]] = {}
    for name, recipe in recipes.items():
        groups = recipe.task_groups
        subjects[name] = [
            build_subject(recipe, tasks, backbone_options, images, targets, device, args.seed)
            for tasks in groups
        ]
    stl = [name for name, recipe in recipes.items() if recipe.per_task_networks]

    def run(name: str) -> None:
        for subject in subjects[name]:
            train_step(subject, images)

    with warnings.catch_warnings():
        # torchjd's Nash-MTL solves a non-DPP cvxpy problem: a speed note, not a fault.
        warnings.filterwarnings("ignore", message=".*not DPP.*")
        steps = {name: lambda name=name: run(name) for name in subjects}
        times = interleaved_times(steps, args.rounds, args.warmup, args.seed, device)
        memory: dict[str, tuple[int, int]] = {}
        if not args.no_memory:  # STL: the larger of its two networks (trained one by one)
            for name in subjects:
                memory[name] = max(peak_step_memory(s, images, device) for s in subjects[name])

    methods = {}
    for name, recipe in recipes.items():
        per_round = ratios(times[name], times[REFERENCE])
        ratio = statistics.median(per_round)
        family = "single-task" if name in stl else subjects[name][0].balancer.family
        target = TARGET_RATIO if family == "loss weighting" else None
        methods[name] = {
            "label": recipe.label,
            "balancer": recipe.balancer,
            "family": family,
            "networks": len(subjects[name]),
            "parameters": sum(count_parameters(s.network) for s in subjects[name]),
            "median_step_seconds": statistics.median(times[name]),
            "ratio_to_ew": ratio,
            "ratio_to_ew_quartiles": quartiles(per_round),
            "step_seconds": times[name],
            "peak_memory_bytes": memory[name][0] if memory else None,
            "state_memory_bytes": memory[name][1] if memory else None,
            "peak_memory_ratio_to_ew": memory[name][0] / memory[REFERENCE][0] if memory else None,
            "passes": PASSES.get(family, {"bound": "unknown family"}),
            "target_ratio": target,
            "meets_target": None if target is None else bool(ratio <= target),
            "target_status": NO_TARGET
            if target is None
            else ("met" if ratio <= target else "missed"),
        }
    result = {
        **run_header("balancer_step", device, args),
        "torchjd": version("torchjd"),
        "image_size": size,
        "batch_size": batch,
        "backbone": BACKBONE,
        "backbone_options": {k: list(v) for k, v in backbone_options.items()},
        "task_classes": TASK_CLASSES,
        "reference": REFERENCE,
        "target_ratio": TARGET_RATIO,
        "ratio": "median over rounds of (method step / EW step of the same round)",
        "memory_measure": None
        if args.no_memory
        else (
            "separate untimed pass, one step per method: peak live tensor bytes of the step "
            "(own parameters, gradients, optimiser and balancer state and the batch included; "
            + memory_counter(device)
        ),
        "order": list(recipes),
        "methods": methods,
    }
    return record(result, args.out, format_table(result), wall_start, load_start)


def format_table(result: dict) -> str:
    """The result as a Markdown table (the one bench/README.md records)."""
    lines = [
        "| method | family | parameters | median step (s) | ratio to EW [IQR] "
        "| peak memory (MB) | passes (fwd + bwd) | target |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for name in result["order"]:
        m = result["methods"][name]
        q1, q3 = m["ratio_to_ew_quartiles"]
        memory = m["peak_memory_bytes"]
        passes = m["passes"]
        target = (
            m["target_status"]
            if m["target_ratio"] is None
            else f"≤ {m['target_ratio']}×: {m['target_status']}"
        )
        lines.append(
            f"| {m['label']} | {m['family']} | {m['parameters']:,} "
            f"| {m['median_step_seconds']:.3f} | {m['ratio_to_ew']:.2f} [{q1:.2f}, {q3:.2f}] "
            f"| {'–' if memory is None else f'{memory / 2**20:.0f}'} "
            f"| {passes.get('forward', '?')} + {passes.get('backward', '?')} | {target} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
