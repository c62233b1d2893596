"""What the benchmarks share: interleaved timing, peak tensor memory, and the machine's name.

A sibling module of the benchmarks, not part of the ``wing`` package: ``python bench/X.py``
puts ``bench/`` on ``sys.path``, and the tests that run the benchmarks add it.

Timing: :func:`interleaved_times` times every step once per round, in an order shuffled with
a seeded generator, so drifts in machine load hit all steps alike; warm-up rounds are
discarded. :func:`ratios` turns two such series into per-round ratios.

Memory: :func:`peak_memory` runs one step, never timed. On CUDA,
``torch.cuda.max_memory_allocated`` during the step. On the CPU, torch's allocator keeps no
statistics and ``tracemalloc`` sees only Python's allocator (a step that allocates 16 MB of
tensors shows 600 traced bytes), so :class:`TensorMemoryPeak` counts tensor storages at the
ATen dispatcher (a ``TorchDispatchMode``, backward and torchjd's vmap included): the peak of
the live storage bytes, those that live across steps (parameters, gradients, optimiser state,
the batch) counted from the start. A lower bound: kernel-internal scratch buffers are not seen.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from wing.io import write_json
from wing.training.determinism import seed_everything, select_device


class TensorMemoryPeak(TorchDispatchMode):
    """Peak bytes of live tensor storages: those registered before, plus every storage an
    ATen op allocates while the mode is on (forward, autograd's backward, vmap), minus those
    freed (a weak reference's callback). Views and in-place results share their input's
    storage and are not counted again."""

    def __init__(self, tensors: Iterable[torch.Tensor] = ()):
        super().__init__()
        self.live: dict[int, int] = {}
        self._refs: dict[int, weakref.ref] = {}
        self.current = 0
        self.peak = 0
        for tensor in tensors:
            self._track(tensor)
        self.baseline = self.current

    @staticmethod
    def _storage(tensor):
        try:
            return tensor.untyped_storage()
        except (NotImplementedError, RuntimeError):  # sparse, nested, meta-like tensors
            return None

    def _track(self, tensor: torch.Tensor, inputs: frozenset[int] = frozenset()) -> None:
        storage = self._storage(tensor)
        if storage is None:
            return
        key = storage._cdata
        if key in self.live or key in inputs:
            return
        self.live[key] = storage.nbytes()
        self.current += self.live[key]
        self.peak = max(self.peak, self.current)
        self._refs[key] = weakref.ref(storage, lambda _, key=key: self._free(key))

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)
        self._refs.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        flat_inputs = tree_flatten((args, kwargs))[0]
        inputs = frozenset(
            storage._cdata
            for storage in (self._storage(t) for t in flat_inputs if isinstance(t, torch.Tensor))
            if storage is not None
        )
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, inputs)
        return out


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = TensorMemoryPeak._storage(tensor)
        if storage is not None:
            seen[storage._cdata] = storage.nbytes()
    return sum(seen.values())


def module_state(
    modules: Iterable[torch.nn.Module], optimizers: Iterable[torch.optim.Optimizer | None] = ()
) -> Iterable[torch.Tensor]:
    """What lives across steps: the modules' parameters, buffers and gradients, and the
    optimisers' state tensors."""
    for module in modules:
        yield from module.parameters()
        yield from module.buffers()
        yield from (p.grad for p in module.parameters() if p.grad is not None)
    for optimizer in optimizers:
        if optimizer is not None:
            for state in optimizer.state.values():
                yield from (v for v in state.values() if isinstance(v, torch.Tensor))


def peak_memory(
    step: Callable[[], None], state: Iterable[torch.Tensor], device: torch.device
) -> tuple[int, int]:
    """Peak live tensor bytes while ``step`` runs, ``state`` (what lives across steps, the
    batch included) counted from the start, and the bytes of that state alone. Tensors
    outside ``state`` that exist before the step (other subjects' networks) are not counted."""
    gc.collect()
    own = list(state)
    state_bytes = storage_bytes(own)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before + state_bytes, state_bytes
    with TensorMemoryPeak(own) as tracker:
        step()
    return tracker.peak, state_bytes


def timed(step: Callable[[], None], device: torch.device) -> float:
    """Wall-clock seconds of ``step`` (CUDA synchronised before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def interleaved_times(
    steps: Mapping[Hashable, Callable[[], None]],
    rounds: int,
    warmup: int,
    seed: int,
    device: torch.device,
) -> dict[Hashable, list[float]]:
    """Every step timed once per round, in an order shuffled by ``random.Random(seed)``;
    the first ``warmup`` rounds are discarded. One series of ``rounds`` times per step."""
    order_rng = random.Random(seed)
    times: dict[Hashable, list[float]] = {name: [] for name in steps}
    for round_ in range(warmup + rounds):
        order = list(steps)
        order_rng.shuffle(order)
        for name in order:
            elapsed = timed(steps[name], device)
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def ratios(times: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per-round ratios of one step's times to the reference step's of the same round."""
    return [t / r for t, r in zip(times, reference, strict=True)]


def quartiles(values: Sequence[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], q[2]]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def timing_device(name: str, seed: int, threads: int) -> torch.device:
    """Seed as the trainer does and pick the device. On CUDA the benchmarks only time steps,
    so ops without a deterministic CUDA kernel (bilinear upsampling's backward, the 2-D
    negative log-likelihood) warn instead of stopping the run; what the training stages
    promise on a GPU is not decided here."""
    seed_everything(seed, threads)
    device = select_device(name)
    if device.type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return device


def memory_counter(device: torch.device) -> str:
    """How the peak-memory pass counts bytes on ``device`` (the end of a JSON's
    ``memory_measure``)."""
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated)"
    return (
        "tensor storages counted at the ATen dispatcher with a TorchDispatchMode, a lower "
        "bound: kernel-internal scratch buffers are not seen; tracemalloc does not see "
        "torch's CPU allocator at all)"
    )


def run_header(benchmark: str, device: torch.device, args) -> dict:
    """The fields every benchmark JSON opens with: what, when, where, how many rounds."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "warmup": args.warmup,
        "seed": args.seed,
    }


def record(result: dict, out: str, table: str, wall_start: float, load_start: list) -> dict:
    """Close ``result`` with the machine's load and the wall time, write it to ``out`` and
    print ``table``."""
    result["load_average"] = {"start": load_start, "end": list(os.getloadavg())}
    result["wall_seconds"] = time.perf_counter() - wall_start
    write_json(out, result)
    print(table)
    print(f"wrote {out} ({result['wall_seconds']:.0f} s)")
    return result
