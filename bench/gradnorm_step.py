"""Benchmark: cost of a GradNorm step against an equal-weighting step (issue target <= 1.05x).

Interleaves, in one process and one run, training steps of the same network with
(a) equal weighting, (b) this project's GradNorm, and (c) the common GradNorm variant
(per-task gradient norms with ``create_graph=True``, then a second backward for the
weights), so that machine noise hits all three alike. Reports median step times and ratios
and records them in ``bench/results/gradnorm_step.json``.

    python bench/gradnorm_step.py [--image-size 96] [--batch-size 8] [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from wing.balancing import EqualWeighting, GradNorm, Step
from wing.balancing.base import Balancer
from wing.io import write_json
from wing.models import build_network
from wing.training.determinism import seed_everything, select_device
from wing.training.losses import segmentation_loss

TASKS = ("wound", "tissue")


class CreateGraphGradNorm(Balancer):
    """The common re-implementation, for comparison only (it is not used by the pipeline)."""

    def __init__(self, tasks, alpha=1.5, learning_rate=0.025):
        super().__init__(tasks)
        self.alpha = alpha
        self.task_weights = torch.nn.Parameter(torch.ones(len(tasks)))
        self.optimizer = torch.optim.Adam([self.task_weights], lr=learning_rate)
        self.initial = None

    def backward(self, losses, step):
        last = step.last_shared_parameters
        stacked = torch.stack([losses[t] for t in self.tasks])
        if self.initial is None:
            self.initial = stacked.detach()
        weighted = self.task_weights * stacked
        norms = torch.stack(
            [
                torch.cat(
                    [
                        g.flatten()
                        for g in torch.autograd.grad(
                            weighted[i], last, retain_graph=True, create_graph=True
                        )
                    ]
                ).norm()
                for i in range(len(self.tasks))
            ]
        )
        ratios = stacked.detach() / self.initial
        target = (norms.mean() * (ratios / ratios.mean()) ** self.alpha).detach()
        gradnorm_loss = (norms - target).abs().sum()
        self.task_weights.grad = None
        weighted.sum().backward(retain_graph=True)
        self.task_weights.grad = torch.autograd.grad(gradnorm_loss, self.task_weights)[0]
        self.optimizer.step()
        with torch.no_grad():
            self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())
        return {}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/gradnorm_step.json")
    args = parser.parse_args(argv)

    seed_everything(0, args.threads)
    device = select_device("auto")
    n_tissue = 5
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device)
    targets = {
        "wound": torch.randint(
            0, 2, (args.batch_size, args.image_size, args.image_size), device=device
        ),
        "tissue": torch.randint(
            0, n_tissue, (args.batch_size, args.image_size, args.image_size), device=device
        ),
    }
    variants = {}
    for name, balancer in (
        ("equal_weighting", EqualWeighting(TASKS)),
        ("gradnorm", GradNorm(TASKS)),
        ("gradnorm_create_graph", CreateGraphGradNorm(TASKS)),
    ):
        torch.manual_seed(0)
        network = build_network("attention_unet", {"wound": 2, "tissue": n_tissue}).to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        variants[name] = (network, optimizer, balancer)

    def step(name: str) -> float:
        network, optimizer, balancer = variants[name]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        representation, logits = network(images)
        losses = {t: segmentation_loss(logits[t], targets[t]) for t in TASKS}
        optimizer.zero_grad(set_to_none=True)
        balancer.backward(
            losses,
            Step(
                shared_parameters=network.shared_parameters(),
                task_parameters=network.task_parameters(),
                last_shared_parameters=network.last_shared_parameters(),
                representation=representation,
            ),
        )
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.warmup + args.rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            elapsed = step(name)
            if round_ >= args.warmup:
                times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items()}
    # Paired per round (the variants of one round ran back to back): robust to drifts in
    # machine load that shift all three alike.
    paired = {
        name: statistics.median(
            t / e for t, e in zip(values, times["equal_weighting"], strict=True)
        )
        for name, values in times.items()
    }
    base = median["equal_weighting"]
    result = {
        "benchmark": "gradnorm_step",
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "median_step_seconds": median,
        "ratio_to_equal_weighting": {name: value / base for name, value in median.items()},
        "paired_ratio_to_equal_weighting": paired,
        "target_ratio_gradnorm": 1.05,
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
