"""How a training step is run fast on the device at hand, without changing what it computes.

``train.memory_format``, ``train.precision``, ``train.compile`` and ``train.loader_workers``
(params.yaml) are read here, once, into a :class:`Speed`; the loop asks it for the input's
layout, the autocast context and the DataLoader's options, and never branches on the device
itself. What each choice costs or saves on the CPU is measured by
``bench/training_throughput.py`` (recorded in ``bench/README.md``), which decided the
defaults: ``channels_last`` (0.90x the contiguous step and deterministic, though not bit for
bit the contiguous numbers), no ``torch.compile`` (1.46x slower on the CPU).

Determinism. On the CPU a run is the same to the byte for a given seed
(``tests/test_reproducible.py``, ``tests/test_resume.py``; ``torch.compile`` too in the
benchmark's check). On a GPU:

- ``precision: auto`` uses bfloat16 autocast where the device supports it (Ampere and later),
  float32 elsewhere. Losses, softmax and the balancers' arithmetic stay in float32 (autocast's
  own rules; the balancers run outside the autocast region). float16 is not offered: it needs
  a loss scaler, and the gradient-filling balancers (GradNorm's fast path, torchjd's
  aggregators, MT-CooL) back-propagate each task's loss themselves, so one scale factor on
  the summed loss would not reach them all alike; where bfloat16 is missing the run stays in
  float32 and says so.
- cuDNN runs with ``benchmark = False`` and deterministic algorithms are requested with
  ``warn_only=True`` on CUDA: kernels without a deterministic CUDA implementation (the
  backward of bilinear up-sampling and adaptive pooling, used by SegFormer and ResFormer's
  decoders) run anyway, with a warning, where on the CPU they would be exact. A GPU run is
  therefore reproducible to within floating-point tolerance, not to the byte, and its
  numbers differ from a CPU run's; the CPU pipeline's ``dvc.lock`` is the byte audit.
- ``loader_workers > 0`` draws the augmentation of each batch in a worker process whose
  random stream is seeded from the run's generator: deterministic for a given seed and
  worker count, but not the numbers of ``loader_workers: 0``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: run in float32)."""
    if device.type != "cuda" or precision == "float32":
        return None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if precision == "bfloat16":
        raise ValueError(
            f"train.precision is bfloat16 but {torch.cuda.get_device_name(device)} has no "
            "bfloat16 support; set train.precision: auto (float32 there) or float32"
        )
    print(f"{torch.cuda.get_device_name(device)} has no bfloat16: training in float32.")
    return None


@dataclass(frozen=True)
class Speed:
    """The speed settings of one network's training on one device."""

    device: torch.device
    memory_format: torch.memory_format = torch.contiguous_format
    autocast: torch.dtype | None = None
    compile: bool = False
    loader_workers: int = 0

    @classmethod
    def of(cls, config, device: torch.device) -> Speed:
        """From a :class:`wing.config.TrainConfig` (its memory_format, precision, compile,
        loader_workers) for ``device``; on CUDA also sets the cuDNN flags above."""
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)
        return cls(
            device=device,
            memory_format=MEMORY_FORMATS[config.memory_format],
            autocast=autocast_dtype(config.precision, device),
            compile=bool(config.compile),
            loader_workers=int(config.loader_workers),
        )

    def network(self, network: torch.nn.Module) -> torch.nn.Module:
        """The network in this memory format, its trunk compiled if asked.

        Only the encoder and decoder are compiled: GradNorm differentiates each task loss to
        the decoder's output (the shared representation), which a whole-network graph would
        fuse with the heads (``bench/training_throughput.py``)."""
        network = network.to(memory_format=self.memory_format)
        if self.compile:
            for part in ("encoder", "decoder"):
                module = getattr(network, part, None)
                if module is not None:
                    module.compile()
        return network

    def input(self, image: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device, in the network's memory format."""
        image = image.to(self.device, non_blocking=self.device.type == "cuda")
        return image.contiguous(memory_format=self.memory_format)

    def autocast_context(self):
        """The forward pass's autocast region (a no-op in float32)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def loader_options(self) -> dict:
        """DataLoader options: workers, and pinned memory when the batches go to a GPU."""
        options: dict = {"num_workers": self.loader_workers}
        if self.device.type == "cuda":
            options["pin_memory"] = True
        return options
