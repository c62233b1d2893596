"""Seeding and deterministic kernels: same seed, same numbers on CPU."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, num_threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch, force deterministic algorithms; return a torch Generator."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.benchmark = False
    if num_threads:
        torch.set_num_threads(num_threads)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def rng_states(device: torch.device | None = None) -> dict:
    """Every global random stream of a run (Python, NumPy, torch, and CUDA when ``device``
    is a GPU): dropout and augmentation draw from torch's. Reading them draws nothing."""
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Put back the streams :func:`rng_states` read (a resumed run continues them)."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
