"""wing.training.speed: the device's speed settings change the layout and the precision of a
step, never what the run computes beyond floating-point rounding, and a GPU setting the device
cannot honour stops with the key named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import make_dataset
from wing.config import TrainConfig
from wing.data.split import patient_split
from wing.models import build_network
from wing.training import speed as speed_module
from wing.training.loop import train_run
from wing.training.speed import Speed, autocast_dtype

TINY = TrainConfig(epochs=2, batch_size=4, channels=(4, 8, 16), strides=(2, 2), num_threads=1)
CPU = torch.device("cpu")
CUDA = torch.device("cuda")
OPTIONS = {"channels": (4, 8, 16), "strides": (2, 2)}


def test_cpu_runs_float32_whatever_the_precision():
    for precision in ("auto", "float32", "bfloat16"):
        assert autocast_dtype(precision, CPU) is None
        speed = Speed.of(dataclasses.replace(TINY, precision=precision), CPU)
        assert speed.autocast is None
        assert isinstance(speed.autocast_context(), type(speed.autocast_context()))


@pytest.mark.parametrize(
    ("supported", "precision", "expected"),
    [(True, "auto", torch.bfloat16), (True, "bfloat16", torch.bfloat16),
     (True, "float32", None), (False, "auto", None), (False, "float32", None)],
)  # fmt: skip
def test_gpu_precision_rule(monkeypatch, supported, precision, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "a test GPU")
    assert autocast_dtype(precision, CUDA) == expected


def test_gpu_without_bfloat16_refuses_an_explicit_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "a test GPU")
    with pytest.raises(ValueError, match="train.precision is bfloat16.*a test GPU"):
        autocast_dtype("bfloat16", CUDA)


def test_loader_pins_memory_only_for_a_gpu():
    assert Speed(CPU, loader_workers=2).loader_options() == {"num_workers": 2}
    assert Speed(CUDA).loader_options() == {"num_workers": 0, "pin_memory": True}


def test_channels_last_network_and_input():
    speed = Speed.of(TINY, CPU)  # channels_last is the default
    assert speed.memory_format == torch.channels_last and not speed.compile
    network = speed.network(build_network("attention_unet", {"wound": 2}, backbone_options=OPTIONS))
    convolutions = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(
        m.weight.is_contiguous(memory_format=torch.channels_last) for m in convolutions
    )
    image = speed.input(torch.rand(2, 3, 16, 16))
    assert image.is_contiguous(memory_format=torch.channels_last)
    contiguous = Speed.of(dataclasses.replace(TINY, memory_format="contiguous"), CPU)
    assert contiguous.input(torch.rand(2, 3, 16, 16)).is_contiguous()


def test_compile_wraps_the_trunk_only(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **k: compiled.append(self))
    network = build_network("attention_unet", {"wound": 2}, backbone_options=OPTIONS)
    Speed(CPU, compile=True).network(network)
    assert compiled == [network.encoder, network.decoder]


def test_memory_format_changes_rounding_only(tmp_path: Path):
    """The same run in both layouts: deterministic each, equal to float tolerance."""
    root = tmp_path / "data"
    split = patient_split(make_dataset(root, n_patients=5, visits=2, size=32), (0.6, 0.2, 0.2), 0)
    histories = {}
    for layout in ("channels_last", "contiguous"):
        train_run(
            method="gradnorm", backbone="attention_unet", seed=0, dataset_root=root,
            split=split, image_size=32, out_dir=tmp_path / layout,
            config=dataclasses.replace(TINY, memory_format=layout),
        )  # fmt: skip
        histories[layout] = pd.read_csv(tmp_path / layout / "history.csv")
    a, b = histories["channels_last"], histories["contiguous"]
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-3)


def test_memory_formats_are_the_ones_params_yaml_allows():
    from wing.config import RULES

    check = RULES["train.memory_format"]
    assert all(check(name) is None for name in speed_module.MEMORY_FORMATS)
    assert check("nhwc") is not None
