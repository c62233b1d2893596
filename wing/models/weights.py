"""Loading a user's own encoder weights from a local file (no download, ever).

The backbones start from random weights by default; ``pretrained_path`` lets a user who has
an encoder state dict (for instance ImageNet weights saved beforehand) start from it instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


def load_encoder_weights(encoder: nn.Module, path: str | Path, backbone: str) -> None:
    """Load the state dict saved in ``path`` into ``encoder``, every key matching.

    Raises ``ValueError`` naming the file when it is missing, is not a state dict, or does
    not fit the encoder (a wrong option is a ``ValueError``, so the configuration check
    reports it against params.yaml).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"{backbone}: pretrained_path {str(path)!r} is not a file; give the path of a "
            f"local state-dict file of the encoder, or '' for random initial weights"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file it cannot unpickle
        raise ValueError(f"{backbone}: {path} is not a PyTorch state dict ({error})") from error
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{backbone}: {path} holds a {type(state).__name__}, not a state dict "
            f"(a mapping of parameter names to tensors)"
        )
    given = dict(state)
    try:
        with warnings.catch_warnings():
            # on the meta device (the configuration check) the keys and shapes are still
            # checked, and copying the values is a no-op torch warns about for every tensor
            warnings.filterwarnings("ignore", message=".*to a meta parameter.*")
            encoder.load_state_dict(given)
    except RuntimeError as error:
        # the library's encoders drop their classification head's keys from ``given`` first
        expected = set(encoder.state_dict())
        missing, unexpected = sorted(expected - set(given)), sorted(set(given) - expected)
        detail = (
            f"{len(missing)} keys missing (first {missing[:3]}), "
            f"{len(unexpected)} unexpected (first {unexpected[:3]})"
            if missing or unexpected
            else str(error)
        )
        raise ValueError(
            f"{backbone}: the state dict in {path} does not fit the encoder: {detail}"
        ) from error
