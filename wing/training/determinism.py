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
