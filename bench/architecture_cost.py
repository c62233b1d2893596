"""Benchmark: cost of every backbone and architecture: parameters, MACs, step time, memory.

Subjects. For every registered backbone (``wing.models.BACKBONES``, options from params.yaml
at the quick profile: ``load_config(...).backbone_options(name)``, so the Attention-UNet gets
the top-level ``train.channels`` / ``strides``) the benchmark builds every architecture that
a recipe in params.yaml uses (``recipes:``; each architecture once, with the first such
recipe's ``architecture_options``; hard sharing always, as the reference), for the wound
(2 classes) and tissue (5 classes) tasks, and the STL pair: two single-task hard-sharing
networks, one per task. Every network of a backbone starts from the same seed (the generator
is re-seeded before each is built), so the STL networks' trunks start as hard sharing's.

Parameters: total, shared (``network.shared_parameters()``: those reaching both task losses)
and task-specific (``network.task_parameters()``, per task), from the architecture's own
split. The STL pair shares nothing between the tasks: all its parameters are task-specific.

MACs: multiply-accumulates of one forward at batch 1 (the benchmark's image size), counted
by ``torch.utils.flop_counter.FlopCounterMode`` (no extra dependency) and halved: the
counter reports 2 FLOPs per multiply-accumulate. It counts convolutions, matrix products and
attention (CPU fused attention added here, which the counter does not register); element-wise
operations, normalisation, softmax, pooling and interpolation are not counted. Counted in
eval mode with gradients enabled (``nn.MultiheadAttention``'s fused inference path is not
counted by the counter). STL pair: both networks' forwards.

Step time: one training step with equal weighting, the same for every architecture: forward,
the sum of the task losses (Dice + CE for wound and tissue; binary cross-entropy for an
image-level auxiliary task, which a recipe such as ResFormer's adds: an architecture is
measured with its first recipe's tasks, its image head included), backward, an
Adam step; the STL pair is one step of each of its networks, back to back. Batches are
synthetic (random images, random labels of both tasks). Interleaved rounds in one process:
every round times every subject of every backbone once, in an order shuffled with a seeded
generator, so drifts in machine load hit all alike; warm-up rounds are discarded. Per
subject: the median step time and the median over rounds of the per-round ratio to the hard
sharing step of the same backbone and round. Every architecture on a backbone trains for the
same budget of optimiser steps (``train.epochs`` x the steps per epoch, the same for every
network; early stopping may end one sooner), so the step ratio is the ratio of training
time at that budget.

Memory: a separate pass after the timing rounds, one step per subject, never timed: the peak
of live tensor bytes during the step, the subject's parameters, gradients, Adam state and the
batch counted from the start (``bench/_measure.py``: ``torch.cuda.max_memory_allocated`` on
CUDA; on the CPU, tensor storages counted at the ATen dispatcher, a lower bound). The STL
pair: both networks held and stepped back to back, as timed; and, alongside, the larger of
its two networks stepped alone (a run trains them one after the other).

    python bench/architecture_cost.py [--rounds 20] [--warmup 3] [--backbones ...] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from wing.config import SECTIONS, Config, input_multiple, load_config, resolve
from wing.models import BACKBONES, MultiTaskNetwork, build_network, count_parameters
from wing.training.methods import Recipe
from wing.training.tasks import image_tasks, task_spec

TASK_CLASSES = {"wound": 2, "tissue": 5}
# An auxiliary task of a recipe (ResFormer's image-level head) is measured with its network.
AUXILIARY_CLASSES = {"tissue_presence": 3}
REFERENCE = "hard_sharing"
STL = "stl"
LABELS = {
    "hard_sharing": "hard sharing",
    "ctan": "CTAN",
    "mt_ids": "MT-IDS",
    "resformer": "ResFormer",
    STL: "STL pair",
}
RATIO = "median over rounds of (step / hard sharing step on the same backbone in the same round)"
MACS = (
    "multiply-accumulates of one forward at batch 1 = FLOPs / 2 of "
    "torch.utils.flop_counter.FlopCounterMode (convolutions, matrix products, attention; "
    "element-wise, normalisation, softmax, pooling and interpolation not counted)"
)
BUDGET = (
    "every architecture on a backbone trains for the same number of optimiser steps, so the "
    "step ratio is the training-time ratio; the STL pair's step is one step of each network"
)


def _cpu_attention_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# The counter registers CUDA's fused attention kernels but not the CPU one that
# torch.nn.functional.scaled_dot_product_attention (and so nn.MultiheadAttention) runs.
CPU_ATTENTION = (
    {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flop}
    if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
    else {}
)


@dataclass
class Subject:
    """What one row steps: its networks (one, or the STL pair's two), each with its Adam
    optimiser and the targets of its own tasks."""

    architecture: str
    networks: list[MultiTaskNetwork]
    optimizers: list[torch.optim.Optimizer]
    targets: list[dict[str, torch.Tensor]]

    def step(self, images: torch.Tensor, index: int | None = None) -> None:
        """One step of every network (or of network ``index`` only), one after the other."""
        for i in range(len(self.networks)) if index is None else (index,):
            train_step(self.networks[i], self.optimizers[i], images, self.targets[i])

    def state_tensors(self, index: int | None = None) -> Iterable[torch.Tensor]:
        """What lives across steps (the memory pass's baseline), of every network or one."""
        chosen = range(len(self.networks)) if index is None else (index,)
        yield from module_state(
            [self.networks[i] for i in chosen], [self.optimizers[i] for i in chosen]
        )
        for i in chosen:
            yield from self.targets[i].values()


def train_step(
    network: MultiTaskNetwork,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    targets: Mapping[str, torch.Tensor],
) -> None:
    """One equal-weighting step: forward, the sum of the task losses (each task's own loss,
    :mod:`wing.training.tasks`), backward, Adam."""
    network.train()
    _, logits = network(images)
    loss = sum(task_spec(task).loss(logits[task], targets[task]) for task in network.tasks)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def build_subject(
    backbone: str,
    backbone_options: Mapping[str, Any],
    architecture: str,
    architecture_options: Mapping[str, Any],
    targets: Mapping[str, torch.Tensor],
    device: torch.device,
    seed: int,
    auxiliary_tasks: Sequence[str] = (),
) -> Subject:
    """One network for both tasks (and a recipe's auxiliary tasks), or (``architecture`` STL)
    one hard-sharing network per task; the generator is re-seeded before each is built."""
    groups = (
        [(task,) for task in TASK_CLASSES]
        if architecture == STL
        else [(*TASK_CLASSES, *auxiliary_tasks)]
    )
    classes = {**TASK_CLASSES, **AUXILIARY_CLASSES}
    networks, optimizers, own = [], [], []
    for tasks in groups:
        torch.manual_seed(seed)
        network = build_network(
            backbone,
            {task: classes[task] for task in tasks},
            REFERENCE if architecture == STL else architecture,
            backbone_options=backbone_options,
            architecture_options=architecture_options,
            image_tasks=image_tasks(tasks),
        ).to(device)
        networks.append(network)
        optimizers.append(torch.optim.Adam(network.parameters(), lr=1e-3))
        own.append({task: targets[task] for task in tasks})
    return Subject(architecture, networks, optimizers, own)


def parameter_counts(subject: Subject) -> dict[str, Any]:
    """Total, shared and task-specific parameters (per task and summed)."""
    total = sum(count_parameters(network) for network in subject.networks)
    if subject.architecture == STL:  # nothing is shared between the tasks
        per_task = {network.tasks[0]: count_parameters(network) for network in subject.networks}
        shared = 0
    else:
        (network,) = subject.networks
        per_task = {
            task: sum(p.numel() for p in group) for task, group in network.task_parameters().items()
        }
        shared = sum(p.numel() for p in network.shared_parameters())
    return {
        "parameters": total,
        "shared_parameters": shared,
        "task_specific_parameters": sum(per_task.values()),
        "task_parameters": per_task,
    }


def forward_macs(network: MultiTaskNetwork, image: torch.Tensor) -> int:
    """Multiply-accumulates of one forward of ``image`` (FlopCounterMode's FLOPs / 2), in
    eval mode with gradients enabled (so no running statistic moves and no fused inference
    kernel the counter cannot see runs)."""
    network.eval()
    with torch.enable_grad(), FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION) as c:
        network(image)
    network.train()
    return c.get_total_flops() // 2


def quick_config(params: Path) -> Config:
    """params.yaml at the quick profile (its top-level sections), whatever profile is active;
    recipes and backbones as written."""
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    quick = resolve({**raw, "profile": "quick"}, params)
    return load_config(params, overrides={name: quick[name] for name in SECTIONS})


def recipe_architectures(recipes: Mapping[str, Recipe]) -> dict[str, dict[str, Any]]:
    """Each architecture a shared-network recipe uses, once, with the first such recipe's
    options and auxiliary tasks and the recipes that use it so; hard sharing first (the
    reference)."""
    found: dict[str, dict[str, Any]] = {
        REFERENCE: {"options": {}, "recipes": [], "auxiliary_tasks": ()}
    }
    for name, recipe in recipes.items():
        if recipe.per_task_networks:  # STL: the pair's own row
            continue
        options = dict(recipe.architecture_options)
        entry = found.setdefault(
            recipe.architecture,
            {"options": options, "recipes": [], "auxiliary_tasks": tuple(recipe.auxiliary_tasks)},
        )
        if options == entry["options"]:
            entry["recipes"].append(name)
        else:
            warnings.warn(
                f"recipe {name!r}: {recipe.architecture} with {options} is not measured "
                f"(measured with {entry['options']}, the first recipe's)",
                stacklevel=2,
            )
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="bench/results/architecture_cost.json")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--params", default="params.yaml", help="recipes and backbone options")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES.names(), help="default: all")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--channels", type=int, nargs="+", help="attention_unet; default: the quick profile's"
    )
    parser.add_argument(
        "--strides", type=int, nargs="+", help="attention_unet; default: the quick profile's"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    args.backbones = list(dict.fromkeys(args.backbones or BACKBONES.names()))
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    load_start = list(os.getloadavg())  # 1, 5, 15 min: other work on the machine
    params = Path(args.params)
    config = quick_config(params)
    architectures = recipe_architectures(config.recipes)
    size, batch = args.image_size, args.batch_size
    options: dict[str, dict[str, Any]] = {}
    for backbone in args.backbones:
        options[backbone] = config.backbone_options(backbone)
        if backbone == "attention_unet" and args.channels:
            options[backbone]["channels"] = list(args.channels)
        if backbone == "attention_unet" and args.strides:
            options[backbone]["strides"] = list(args.strides)
        multiple = input_multiple(backbone, options[backbone], params)
        if size % multiple:
            raise SystemExit(f"--image-size {size}: {backbone} needs a multiple of {multiple}")

    device = timing_device(args.device, args.seed, args.threads)
    images = torch.rand(batch, 3, size, size, device=device)
    targets = {
        task: torch.randint(0, n, (batch, size, size), device=device)
        for task, n in TASK_CLASSES.items()
    }
    for task, n in AUXILIARY_CLASSES.items():  # image-level: multi-label presence
        targets[task] = torch.randint(0, 2, (batch, n), device=device).float()

    # One subject per (backbone, architecture), and the STL pair per backbone.
    subjects: dict[tuple[str, str], Subject] = {}
    for backbone in args.backbones:
        for architecture in [*architectures, STL]:
            entry = architectures.get(architecture, {"options": {}, "auxiliary_tasks": ()})
            subjects[backbone, architecture] = build_subject(
                backbone,
                options[backbone],
                architecture,
                entry["options"],
                targets,
                device,
                args.seed,
                entry["auxiliary_tasks"],
            )
    macs = {
        key: sum(forward_macs(network, images[:1]) for network in subject.networks)
        for key, subject in subjects.items()
    }

    steps = {key: lambda s=subject: s.step(images) for key, subject in subjects.items()}
    times = interleaved_times(steps, args.rounds, args.warmup, args.seed, device)
    memory: dict[tuple[str, str], tuple[int, int]] = {}
    alone: dict[tuple[str, str], int] = {}
    if not args.no_memory:
        for key, s in subjects.items():
            memory[key] = peak_memory(
                lambda s=s: s.step(images), [*s.state_tensors(), images], device
            )
            if len(s.networks) > 1:  # the STL pair: also each network on its own
                alone[key] = max(
                    peak_memory(
                        lambda s=s, i=i: s.step(images, i), [*s.state_tensors(i), images], device
                    )[0]
                    for i in range(len(s.networks))
                )

    rows = []
    for (backbone, architecture), subject in subjects.items():
        reference = (backbone, REFERENCE)
        per_round = ratios(times[backbone, architecture], times[reference])
        counts = parameter_counts(subject)
        reference_parameters = count_parameters(subjects[reference].networks[0])
        peak = memory.get((backbone, architecture))
        rows.append(
            {
                "backbone": backbone,
                "architecture": architecture,
                "label": LABELS.get(architecture, architecture),
                "architecture_options": architectures[architecture]["options"]
                if architecture != STL
                else {},
                "recipes": architectures[architecture]["recipes"]
                if architecture != STL
                else [n for n, r in config.recipes.items() if r.per_task_networks],
                "networks": len(subject.networks),
                "tasks": list(subject.networks[0].tasks)
                if architecture != STL
                else [network.tasks[0] for network in subject.networks],
                **counts,
                "parameter_ratio_to_hard_sharing": counts["parameters"] / reference_parameters,
                "macs": macs[backbone, architecture],
                "macs_ratio_to_hard_sharing": macs[backbone, architecture] / macs[reference],
                "median_step_seconds": statistics.median(times[backbone, architecture]),
                "step_ratio_to_hard_sharing": statistics.median(per_round),
                "step_ratio_quartiles": quartiles(per_round),
                "step_seconds": times[backbone, architecture],
                "peak_memory_bytes": None if peak is None else peak[0],
                "state_memory_bytes": None if peak is None else peak[1],
                "peak_memory_ratio_to_hard_sharing": None
                if peak is None
                else peak[0] / memory[reference][0],
                "peak_memory_bytes_one_network_at_a_time": alone.get((backbone, architecture)),
            }
        )
    result = {
        **run_header("architecture_cost", device, args),
        "image_size": size,
        "batch_size": batch,
        "backbones": options,
        "architectures": {name: entry["options"] for name, entry in architectures.items()},
        "task_classes": {**TASK_CLASSES, **AUXILIARY_CLASSES},
        "reference": REFERENCE,
        "step": "equal weighting: forward, sum of the task losses (each task's own loss: "
        "segmentation Dice + CE, image-level BCE), backward, Adam step",
        "ratio": RATIO,
        "macs_measure": MACS,
        "budget": BUDGET,
        "memory_measure": None
        if args.no_memory
        else (
            "separate untimed pass, one step per subject: peak live tensor bytes of the step "
            "(own parameters, gradients, Adam state and the batch included; STL pair: both "
            "networks held and stepped back to back, and each alone; " + memory_counter(device)
        ),
        "rows": rows,
    }
    return record(result, args.out, format_table(result), wall_start, load_start)


def format_table(result: dict) -> str:
    """The result as a Markdown table (the one bench/README.md records)."""
    lines = [
        "| backbone | architecture | parameters | shared | task-specific | MACs / forward (M) "
        "| × HS MACs | median step (s) | × HS step [IQR] | peak memory (MiB) | × HS memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        q1, q3 = row["step_ratio_quartiles"]
        peak, alone = row["peak_memory_bytes"], row["peak_memory_bytes_one_network_at_a_time"]
        memory = "–" if peak is None else f"{peak / 2**20:.0f}"
        if alone is not None:
            memory += f" ({alone / 2**20:.0f} one at a time)"
        memory_ratio = row["peak_memory_ratio_to_hard_sharing"]
        lines.append(
            f"| {row['backbone']} | {row['label']} | {row['parameters']:,} "
            f"| {row['shared_parameters']:,} | {row['task_specific_parameters']:,} "
            f"| {row['macs'] / 1e6:,.1f} | {row['macs_ratio_to_hard_sharing']:.2f} "
            f"| {row['median_step_seconds']:.3f} "
            f"| {row['step_ratio_to_hard_sharing']:.2f} [{q1:.2f}, {q3:.2f}] | {memory} "
            f"| {'–' if memory_ratio is None else f'{memory_ratio:.2f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
