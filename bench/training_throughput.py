"""Benchmark: training throughput at the quick profile's size, and what it is made of.

Questions (issue 11, "Performance"), all from one interleaved run:

- Throughput: images per second and peak tensor memory of a training step, per backbone x
  method (default: the Attention-UNet; STL, EW, GradNorm), the step end to end as
  ``wing.training.loop.train_network`` takes it: the next batch from a ``DataLoader`` over
  the in-memory ``WoundDataset`` with augmentation and the loop's ``TaskBatchSampler``, to
  the device, the targets, forward, the task losses, the balancer's backward, Adam. STL is
  one step of each of its two networks (each with its own loader), so every method's
  images per second is a batch of training on both tasks.
- The loader's cost: the end-to-end step against the model-only step (the same network
  stepped on one batch already on the device). Target: the loader is not the bottleneck,
  end to end <= 1.10 x model only.
- One shared network against the STL pair (EW and GradNorm): step-time ratio (end to end)
  and parameter ratio. The issue states 0.55x the pair's step time and 0.50x its
  parameters; targets <= 0.6 and <= 0.55.
- CPU speed options on the GradNorm model-only step: ``channels_last`` (network and input)
  and ``torch.compile`` (default mode, its compile time recorded apart; skipped with the
  reason when it fails or exceeds ``--compile-limit``), each as a per-round ratio to the
  eager contiguous step, and a determinism check outside the timing: from the same seed,
  ``--determinism-steps`` steps on the same fixed batches, then the losses of one more
  step, run twice per variant; are they bit-identical to each other and to eager's? No
  target: measured, for deciding what the trainer should use.

``torch.compile`` is applied to the trunk only (``network.encoder.compile()``,
``network.decoder.compile()``), the heads left eager: GradNorm differentiates each task loss
to the representation (``Step.representation``, the decoder's output) and compiling the
whole network would make that representation and the logits outputs of one autograd node,
so no task loss would reach the representation through autograd.

Data: the quick profile's synthetic cohort (``data.synthetic`` of params.yaml, its image
size set to ``--image-size``) generated into a temporary folder, or ``--dataset`` (a
canonical folder); the training split is the patient-level split of ``data.split``. Training
settings (learning rate, augmentation, task-balanced batches, ``initial_loss_batches``) are
the quick profile's; ``--batch-size`` replaces its batch size.

Timing: ``bench/_measure.py``'s interleaved rounds, every subject once per round in a
shuffled order. Memory: a separate untimed pass, one end-to-end step per method (STL: the
larger of its two networks, trained one after the other), as ``bench/balancer_step.py``.

    python bench/training_throughput.py [--rounds 20] [--warmup 3] [--methods stl ew gradnorm]
        [--backbones attention_unet] [--speed-options channels_last compile] [--device auto]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
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
    timed,
    timing_device,
)
from torch.utils.data import DataLoader, Subset

from wing.balancing import Balancer, Step
from wing.config import SECTIONS, Config, TrainConfig, input_multiple, load_config, resolve
from wing.data.dataset import WoundDataset
from wing.data.format import Legend, read_legend
from wing.data.split import patient_split
from wing.data.synthetic import generate_cohort
from wing.models import BACKBONES, build_network, count_parameters
from wing.training.loop import (
    TaskLosses,
    frozen_batchnorm_statistics,
    initial_losses,
    steps_per_epoch,
)
from wing.training.methods import TASKS, Recipe
from wing.training.sampler import TaskBatchSampler, task_balanced
from wing.training.tasks import image_tasks, task_classes, task_spec

SPEED_METHOD = "gradnorm"  # the method the CPU speed options are measured on (WING-MTL)
CHANNELS_LAST, COMPILE, EAGER = "channels_last", "compile", "eager"
SPEED_OPTIONS = (CHANNELS_LAST, COMPILE)
LOADER_TARGET = 1.10  # end-to-end step <= 1.10 x the model-only step
MTL_TIME_TARGET = 0.6  # one shared network's step <= 0.6 x the STL pair's
MTL_PARAMETER_TARGET = 0.55  # and <= 0.55 x its parameters
ISSUE_STATES = {"time_ratio": 0.55, "parameter_ratio": 0.50}


@dataclass
class Cohort:
    """The training split held in memory, with and without augmentation."""

    root: Path
    legend: Legend
    train_ids: list[str]
    augmented: WoundDataset
    unaugmented: WoundDataset
    any_task_samples: int  # the budget's N: training samples labelled for any task


@dataclass
class Batches:
    """A network's training batches as the loop draws them: its ``DataLoader`` cycled
    epoch after epoch (a new iterator when one ends), each batch moved to the device."""

    loader: DataLoader
    task_losses: TaskLosses
    device: torch.device
    memory_format: torch.memory_format = torch.contiguous_format
    _iterator: Iterator | None = field(default=None, repr=False)

    def next(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = next(self._iterator, None) if self._iterator is not None else None
        if batch is None:
            self._iterator = iter(self.loader)
            batch = next(self._iterator)
        image = batch["image"].to(self.device).contiguous(memory_format=self.memory_format)
        return image, self.task_losses.targets(batch, self.device)


@dataclass
class Trainee:
    """One network as ``train_network`` sets it up, with its batches: what a step moves."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    balancer: Balancer
    task_losses: TaskLosses
    last_shared: list[torch.nn.Parameter]
    task_parameters: dict[str, list[torch.nn.Parameter]]
    batches: Batches
    memory_format: torch.memory_format
    fixed: tuple[torch.Tensor, dict[str, torch.Tensor]] = field(init=False)

    def __post_init__(self) -> None:
        self.fixed = self.batches.next()  # the model-only step's batch: the first one

    def step(self, image: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step as the loop takes it; the task losses of the step."""
        network = self.network
        network.train()
        image = image.contiguous(memory_format=self.memory_format)  # no-op when already so
        representation, logits = self.network(image)
        losses = self.task_losses(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)

        def closure(image=image, targets=targets):
            with frozen_batchnorm_statistics(network):
                return self.task_losses(self.network(image)[1], targets)

        self.balancer.backward(
            losses,
            Step(
                shared_parameters=network.shared_parameters(),
                task_parameters=self.task_parameters,
                last_shared_parameters=self.last_shared,
                representation=representation,
                closure=closure,
            ),
        )
        self.optimizer.step()
        return {task: float(loss.detach()) for task, loss in losses.items()}

    def end_to_end(self) -> dict[str, float]:
        return self.step(*self.batches.next())

    def model_only(self) -> dict[str, float]:
        return self.step(*self.fixed)

    def state_tensors(self) -> Iterable[torch.Tensor]:
        """What lives across steps (the memory pass's baseline)."""
        yield from module_state(
            (self.network, self.balancer),
            (self.optimizer, getattr(self.balancer, "optimizer", None)),
        )
        yield self.fixed[0]
        yield from self.fixed[1].values()


class CompileLimit(Exception):
    """torch.compile ran past ``--compile-limit``."""


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`CompileLimit` in the main thread after ``seconds`` (SIGALRM)."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def stop(signum, frame):
        raise CompileLimit(f"compilation ran past --compile-limit {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_cohort(
    config: Config, image_size: int, dataset: str | None, patients: int | None, folder: Path
) -> Cohort:
    """The training split of ``dataset``, or of the quick profile's synthetic cohort written
    into ``folder`` (``patients`` replacing its patient count)."""
    if dataset:
        root = Path(dataset)
    else:
        synthetic = dataclasses.replace(config.data.synthetic, image_size=image_size)
        if patients:
            synthetic = dataclasses.replace(synthetic, n_patients=patients)
        root = folder / "dataset"
        generate_cohort(root, synthetic)
    metadata = pd.read_csv(root / "metadata.csv", dtype={"sample_id": str, "patient_id": str})
    if "split" in metadata.columns:
        split = metadata
    else:
        s = config.data.split
        split = patient_split(metadata, (s.train, s.validation, s.test), s.seed)
    train_ids = split.loc[split["split"] == "train", "sample_id"].tolist()
    augmented = WoundDataset(root, train_ids, image_size, augment=config.train.augment)
    unaugmented = copy.copy(augmented)  # shares the tensors, drops the augmentation
    unaugmented.transform = None
    any_task = torch.stack([augmented.labelled(t) for t in TASKS], 1).any(1)
    return Cohort(root, read_legend(root), train_ids, augmented, unaugmented, int(any_task.sum()))


def training_batches(
    tasks: tuple[str, ...],
    task_losses: TaskLosses,
    cohort: Cohort,
    train: TrainConfig,
    seed: int,
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[Batches, Subset, torch.Tensor]:
    """The loop's loader for a network of ``tasks``: the samples labelled for any of them,
    ``steps_per_epoch`` batches per epoch from a ``TaskBatchSampler``; with the unaugmented
    subset and its (samples, tasks) label matrix (for the initial losses)."""
    labelled_all = torch.stack([cohort.augmented.labelled(task_spec(t).mask) for t in tasks], 1)
    keep = torch.nonzero(labelled_all.any(1)).flatten().tolist()
    labelled = labelled_all[keep]
    steps = steps_per_epoch(train, cohort.any_task_samples)
    balanced = task_balanced(train.task_balanced_batches, labelled)
    sampler = TaskBatchSampler(labelled, train.batch_size, steps, seed, balanced)
    loader = DataLoader(Subset(cohort.augmented, keep), batch_sampler=sampler, num_workers=0)
    batches = Batches(loader, task_losses, device, memory_format)
    return batches, Subset(cohort.unaugmented, keep), labelled


def build_trainee(
    recipe: Recipe,
    tasks: tuple[str, ...],
    backbone: str,
    backbone_options: dict,
    cohort: Cohort,
    train: TrainConfig,
    seed: int,
    device: torch.device,
    option: str = EAGER,
) -> Trainee:
    """One network for ``tasks``, set up as ``train_network`` sets it up (the generator
    re-seeded first, so every network of a backbone starts from the same weights); ``option``
    one of the speed options, or eager. A compiled trunk compiles at its first step."""
    torch.manual_seed(seed)
    network = build_network(
        backbone,
        task_classes(cohort.legend, tasks),
        recipe.architecture,
        backbone_options=backbone_options,
        architecture_options=recipe.architecture_options,
        image_tasks=image_tasks(tasks),
    ).to(device)
    memory_format = torch.channels_last if option == CHANNELS_LAST else torch.contiguous_format
    network = network.to(memory_format=memory_format)
    task_losses = TaskLosses(tasks, cohort.legend, recipe.segmentation_loss)
    optimizer = torch.optim.Adam(
        network.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay
    )
    balancer = recipe.build_balancer(tasks).to(device)
    batches, unaugmented, labelled = training_batches(
        tasks, task_losses, cohort, train, seed, device, memory_format
    )
    balancer.start(
        initial_losses(
            network,
            unaugmented,
            labelled,
            tasks,
            train.initial_loss_batches,
            train.batch_size,
            device,
            task_losses,
        )
    )
    if option == COMPILE:  # the trunk only: the representation stays an autograd boundary
        network.encoder.compile()
        network.decoder.compile()
    return Trainee(
        network,
        optimizer,
        balancer,
        task_losses,
        network.last_shared_parameters(train.last_shared_layer),
        network.task_parameters(),
        batches,
        memory_format,
    )


def quick_config(params: Path) -> Config:
    """params.yaml at the quick profile (its top-level sections), whatever profile is active."""
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    quick = resolve({**raw, "profile": "quick"}, params)
    return load_config(params, overrides={name: quick[name] for name in SECTIONS})


def compile_first_step(trainee: Trainee, limit: float, device: torch.device) -> float:
    """Seconds of the compiled trainee's first step (compilation and one step)."""
    with time_limit(limit):
        return timed(trainee.model_only, device)


def determinism(
    build: Callable[[str], Trainee],
    batches: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
    options: Sequence[str],
    limit: float,
) -> dict[str, dict[str, Any]]:
    """Per variant (eager first): twice from the same seed, ``len(batches) - 1`` steps on
    ``batches``, then the losses of the step on the last batch; bit-identical between the
    two runs (``reproducible``) and to eager's first run (``identical_to_eager``)."""

    def losses_after(option: str) -> dict[str, float]:
        trainee = build(option)
        with time_limit(limit if option == COMPILE else 0):
            for image, targets in batches[:-1]:
                trainee.step(image, targets)
            return trainee.step(*batches[-1])

    found: dict[str, dict[str, Any]] = {}
    for option in (EAGER, *options):
        try:
            first, second = losses_after(option), losses_after(option)
        except Exception as error:  # e.g. a compilation past the limit: recorded, not raised
            if option == EAGER:
                raise
            found[option] = {
                "error": f"{type(error).__name__}: {error}"[:2000],
                "reproducible": None,
                "identical_to_eager": None,
            }
            continue
        reference = found[EAGER]["losses"] if option != EAGER else first
        found[option] = {
            "losses": first,
            "losses_second_run": second,
            "reproducible": first == second,
            "identical_to_eager": first == reference,
            "max_abs_loss_difference_to_eager": max(
                abs(first[task] - reference[task]) for task in reference
            ),
        }
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="bench/results/training_throughput.json")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--params", default="params.yaml", help="recipes and quick profile")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES.names())
    parser.add_argument("--methods", nargs="+", help="recipes (default: stl ew gradnorm)")
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
    parser.add_argument("--dataset", help="a canonical dataset folder (default: synthetic)")
    parser.add_argument("--patients", type=int, help="synthetic cohort size (default: quick's)")
    parser.add_argument(
        "--speed-options",
        nargs="*",
        choices=SPEED_OPTIONS,
        default=list(SPEED_OPTIONS),
        help="on the GradNorm step; none: skip",
    )
    parser.add_argument("--determinism-steps", type=int, default=5)
    parser.add_argument(
        "--compile-limit", type=float, default=600, help="seconds per compilation (0: none)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.determinism_steps < 1:
        parser.error("--rounds and --determinism-steps at least 1, --warmup at least 0")
    args.backbones = list(dict.fromkeys(args.backbones or ["attention_unet"]))
    args.methods = list(dict.fromkeys(args.methods or ["stl", "ew", SPEED_METHOD]))
    args.speed_options = list(dict.fromkeys(args.speed_options))
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    load_start = list(os.getloadavg())  # 1, 5, 15 min: other work on the machine
    params = Path(args.params)
    config = quick_config(params)
    unknown = [m for m in args.methods if m not in config.recipes]
    if unknown:
        raise SystemExit(f"--methods {unknown}: not recipes of {params}")
    train = dataclasses.replace(config.train, batch_size=args.batch_size)
    options: dict[str, dict[str, Any]] = {}
    for backbone in args.backbones:
        options[backbone] = config.backbone_options(backbone)
        if backbone == "attention_unet" and args.channels:
            options[backbone]["channels"] = list(args.channels)
        if backbone == "attention_unet" and args.strides:
            options[backbone]["strides"] = list(args.strides)
        multiple = input_multiple(backbone, options[backbone], params)
        if args.image_size % multiple:
            raise SystemExit(
                f"--image-size {args.image_size}: {backbone} needs a multiple of {multiple}"
            )
    speed = args.speed_options if SPEED_METHOD in args.methods else []
    speed_skipped = (
        None if speed or not args.speed_options else f"{SPEED_METHOD} is not among --methods"
    )

    device = timing_device(args.device, args.seed, args.threads)
    with tempfile.TemporaryDirectory(prefix="wing-throughput-") as folder:
        cohort = load_cohort(config, args.image_size, args.dataset, args.patients, Path(folder))
        result = measure(args, config, train, options, speed, cohort, device)
    result["speed_options_skipped"] = speed_skipped
    return record(result, args.out, format_table(result), wall_start, load_start)


def measure(
    args: argparse.Namespace,
    config: Config,
    train: TrainConfig,
    options: dict[str, dict[str, Any]],
    speed: list[str],
    cohort: Cohort,
    device: torch.device,
) -> dict:
    """Build every subject, time them in one interleaved run, then the untimed passes."""
    trainees: dict[tuple[str, str], list[Trainee]] = {}
    for backbone in args.backbones:
        for method in args.methods:
            recipe = config.recipes[method]
            trainees[backbone, method] = [
                build_trainee(
                    recipe, tasks, backbone, options[backbone], cohort, train, args.seed, device
                )
                for tasks in recipe.task_groups
            ]
    # A loader alone, as the shared network's: the fetch without a step.
    shared_losses = TaskLosses(TASKS, cohort.legend)
    loader = training_batches(TASKS, shared_losses, cohort, train, args.seed, device)[0]

    def run(kind: str, key: tuple[str, str]) -> None:
        for trainee in trainees[key]:
            getattr(trainee, kind)()

    steps: dict[Hashable, Callable[[], None]] = {"loader": loader.next}
    for key in trainees:
        steps["end_to_end", *key] = lambda key=key: run("end_to_end", key)
        steps["model_only", *key] = lambda key=key: run("model_only", key)

    variants: dict[tuple[str, str], Trainee] = {}
    speed_rows: list[dict[str, Any]] = []
    compile_seconds: dict[str, float] = {}
    recipe = config.recipes[SPEED_METHOD]
    for backbone in args.backbones if speed else []:
        for option in speed:
            row = {"backbone": backbone, "option": option, "status": "measured", "reason": None}
            speed_rows.append(row)
            try:
                variant = build_trainee(
                    recipe,
                    TASKS,
                    backbone,
                    options[backbone],
                    cohort,
                    train,
                    args.seed,
                    device,
                    option,
                )
                if option == COMPILE:
                    compile_seconds[backbone] = compile_first_step(
                        variant, args.compile_limit, device
                    )
            except Exception as error:  # a failed compilation is a finding, not a crash
                row.update(status="skipped", reason=f"{type(error).__name__}: {error}"[:2000])
                continue
            variants[backbone, option] = variant
            steps[option, backbone] = variant.model_only

    times = interleaved_times(steps, args.rounds, args.warmup, args.seed, device)

    memory: dict[tuple[str, str], tuple[int, int]] = {}
    if not args.no_memory:  # STL: the larger of its networks, trained one after the other
        for key, group in trainees.items():
            memory[key] = max(peak_memory(t.end_to_end, t.state_tensors(), device) for t in group)

    checks: dict[str, dict[str, dict[str, Any]]] = {}
    for backbone in args.backbones if speed else []:
        measured = [o for o in speed if (backbone, o) in variants]
        source = training_batches(TASKS, shared_losses, cohort, train, args.seed, device)[0]
        batches = [source.next() for _ in range(args.determinism_steps + 1)]

        def build(option: str, backbone: str = backbone) -> Trainee:
            return build_trainee(
                recipe,
                TASKS,
                backbone,
                options[backbone],
                cohort,
                train,
                args.seed,
                device,
                option,
            )

        checks[backbone] = determinism(build, batches, measured, args.compile_limit)

    rows = []
    for (backbone, method), group in trainees.items():
        end_to_end = times["end_to_end", backbone, method]
        model_only = times["model_only", backbone, method]
        per_round = ratios(end_to_end, model_only)
        loader_ratio = statistics.median(per_round)
        peak = memory.get((backbone, method))
        rows.append(
            {
                "backbone": backbone,
                "method": method,
                "label": config.recipes[method].label or method,
                "networks": len(group),
                "parameters": sum(count_parameters(t.network) for t in group),
                "median_end_to_end_seconds": statistics.median(end_to_end),
                "median_model_only_seconds": statistics.median(model_only),
                "images_per_second": args.batch_size / statistics.median(end_to_end),
                "model_only_images_per_second": args.batch_size / statistics.median(model_only),
                "loader_ratio": loader_ratio,
                "loader_ratio_quartiles": quartiles(per_round),
                "loader_target": LOADER_TARGET,
                "loader_target_met": bool(loader_ratio <= LOADER_TARGET),
                "end_to_end_seconds": end_to_end,
                "model_only_seconds": model_only,
                "peak_memory_bytes": None if peak is None else peak[0],
                "state_memory_bytes": None if peak is None else peak[1],
            }
        )
    by_key = {(row["backbone"], row["method"]): row for row in rows}
    stl = [m for m in args.methods if config.recipes[m].per_task_networks]
    shared = [
        m
        for m in args.methods
        if not config.recipes[m].per_task_networks
        and config.recipes[m].architecture == "hard_sharing"
    ]
    comparisons = []
    for backbone in args.backbones:
        for pair in stl[:1]:
            for method in shared:
                time_rounds = ratios(
                    times["end_to_end", backbone, method], times["end_to_end", backbone, pair]
                )
                model_rounds = ratios(
                    times["model_only", backbone, method], times["model_only", backbone, pair]
                )
                time_ratio = statistics.median(time_rounds)
                parameters = by_key[backbone, method]["parameters"]
                pair_parameters = by_key[backbone, pair]["parameters"]
                comparisons.append(
                    {
                        "backbone": backbone,
                        "method": method,
                        "stl": pair,
                        "time_ratio": time_ratio,
                        "time_ratio_quartiles": quartiles(time_rounds),
                        "model_only_time_ratio": statistics.median(model_rounds),
                        "parameters": parameters,
                        "stl_parameters": pair_parameters,
                        "parameter_ratio": parameters / pair_parameters,
                        "time_target": MTL_TIME_TARGET,
                        "time_target_met": bool(time_ratio <= MTL_TIME_TARGET),
                        "parameter_target": MTL_PARAMETER_TARGET,
                        "parameter_target_met": bool(
                            parameters / pair_parameters <= MTL_PARAMETER_TARGET
                        ),
                        "issue_states": ISSUE_STATES,
                    }
                )

    for row in speed_rows:
        backbone, option = row["backbone"], row["option"]
        check = checks.get(backbone, {})
        row["determinism"] = check.get(option)
        row["eager_reproducible"] = check[EAGER]["reproducible"] if check else None
        row["compile_seconds"] = compile_seconds.get(backbone) if option == COMPILE else None
        if row["status"] != "measured":
            row.update(median_step_seconds=None, ratio_to_eager=None, ratio_quartiles=None)
            continue
        reference = times["model_only", backbone, SPEED_METHOD]
        per_round = ratios(times[option, backbone], reference)
        row.update(
            median_step_seconds=statistics.median(times[option, backbone]),
            eager_median_step_seconds=statistics.median(reference),
            ratio_to_eager=statistics.median(per_round),
            ratio_quartiles=quartiles(per_round),
            step_seconds=times[option, backbone],
        )

    fetch = times["loader"]
    return {
        **run_header("training_throughput", device, args),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "methods": args.methods,
        "backbones": options,
        "data": {
            "dataset": str(args.dataset) if args.dataset else "synthetic (quick profile)",
            "train_samples": len(cohort.train_ids),
            "steps_per_epoch": steps_per_epoch(train, cohort.any_task_samples),
            "augment": train.augment,
        },
        "end_to_end_step": "the next batch from the DataLoader (WoundDataset in memory, "
        "augmentation, TaskBatchSampler, num_workers 0), to the device, targets, forward, "
        "task losses, balancer backward, Adam step; STL: one such step per network",
        "model_only_step": "the same step on one batch already on the device",
        "ratio": "median over rounds of per-round ratios (same round, interleaved)",
        "loader_fetch": {
            "median_seconds": statistics.median(fetch),
            "seconds": fetch,
            "what": "one batch from the shared network's loader to the device, no step",
        },
        "memory_measure": None
        if args.no_memory
        else (
            "separate untimed pass, one end-to-end step per method: peak live tensor bytes "
            "(own parameters, gradients, optimiser and balancer state and the fixed batch "
            "included; STL: the larger of its two networks; " + memory_counter(device)
        ),
        "rows": rows,
        "mtl_vs_stl": comparisons,
        "speed_method": SPEED_METHOD,
        "determinism_steps": args.determinism_steps,
        "compile_scope": "network.encoder.compile() and network.decoder.compile() (default "
        "mode); heads eager, so GradNorm's representation stays an autograd boundary",
        "speed_options": speed_rows,
    }


def format_table(result: dict) -> str:
    """The result as Markdown tables (the ones bench/README.md records)."""
    lines = [
        "| backbone | method | parameters | images/s | model-only images/s "
        "| end to end / model only [IQR] | ≤ 1.10× | peak memory (MiB) |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        q1, q3 = row["loader_ratio_quartiles"]
        peak = row["peak_memory_bytes"]
        lines.append(
            f"| {row['backbone']} | {row['label']} | {row['parameters']:,} "
            f"| {row['images_per_second']:.1f} | {row['model_only_images_per_second']:.1f} "
            f"| {row['loader_ratio']:.2f} [{q1:.2f}, {q3:.2f}] "
            f"| {'met' if row['loader_target_met'] else 'not met'} "
            f"| {'–' if peak is None else f'{peak / 2**20:.0f}'} |"
        )
    if result["mtl_vs_stl"]:
        lines += [
            "",
            "| backbone | method | × STL pair step [IQR] | ≤ 0.6× | × STL parameters | ≤ 0.55× |",
            "|---|---|---:|---|---:|---|",
        ]
        for c in result["mtl_vs_stl"]:
            q1, q3 = c["time_ratio_quartiles"]
            lines.append(
                f"| {c['backbone']} | {c['method']} | {c['time_ratio']:.2f} [{q1:.2f}, {q3:.2f}] "
                f"| {'met' if c['time_target_met'] else 'not met'} "
                f"| {c['parameter_ratio']:.3f} "
                f"| {'met' if c['parameter_target_met'] else 'not met'} |"
            )
    if result["speed_options"]:
        lines += [
            "",
            "| backbone | option | × eager step [IQR] | compile (s) | reproducible "
            "| bit-identical to eager |",
            "|---|---|---:|---:|---|---|",
        ]
        for s in result["speed_options"]:
            check = s["determinism"] or {}
            if s["ratio_to_eager"] is None:
                ratio = f"skipped: {s['reason'][:60]}"
            else:
                q1, q3 = s["ratio_quartiles"]
                ratio = f"{s['ratio_to_eager']:.2f} [{q1:.2f}, {q3:.2f}]"
            compiled = s["compile_seconds"]
            lines.append(
                f"| {s['backbone']} | {s['option']} | {ratio} "
                f"| {'–' if compiled is None else f'{compiled:.1f}'} "
                f"| {check.get('reproducible', '–')} | {check.get('identical_to_eager', '–')} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
