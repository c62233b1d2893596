"""params.yaml: profiles overlay the top-level sections; errors name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from wing.config import ConfigError, load_config


def project_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def load(tmp_path: Path, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return load_config(path)


def test_every_profile_of_the_project_loads(tmp_path: Path):
    params = project_params()
    assert params["profile"] == "quick"
    sizes = {}
    for name in params["profiles"]:
        matrix = params["profiles"][name].get("matrix") or {}  # set as the error says
        config = load(tmp_path, {**params, "train": {**params["train"], **matrix}, "profile": name})
        assert config.profile == name
        sizes[name] = (config.data.image_size, config.train.epochs)
    assert sizes["tiny"] < sizes["quick"] < sizes["paper"]
    assert sizes["paper"][0] == 512


def test_top_level_is_quick_and_overlay_wins(tmp_path: Path):
    params = project_params()
    quick = load(tmp_path, params)
    assert quick.train.epochs == params["train"]["epochs"]
    params["train"]["epochs"] = 3  # what `dvc exp run -S train.epochs=3` does
    assert load(tmp_path, params).train.epochs == 3
    tiny = load(tmp_path, {**params, "profile": "tiny"})
    assert tiny.train.epochs == params["profiles"]["tiny"]["train"]["epochs"]
    assert tiny.train.learning_rate == quick.train.learning_rate  # not overlaid: inherited


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["train"].update(epochs="ten"), "train.epochs' must be an integer"),
        (lambda p: p["train"].update(learning_rate="1e-3"), "YAML needs 1.0e-3"),
        (lambda p: p["train"].update(epoch=3), "unknown key(s) ['epoch'] under 'train'"),
        (lambda p: p.update(profile="huge"), "profile 'huge' is not defined"),
        (lambda p: p["profiles"]["quick"]["train"].update(seeds=[0]), "matrix axis"),
        (lambda p: p["data"].update(image_size=100), "must be divisible by 8"),
        (lambda p: p["data"]["split"].update(test=0.5), "sum to 1"),
    ],
)
def test_bad_params_are_named(tmp_path: Path, change, message: str):
    params = project_params()
    change(params)
    with pytest.raises(ConfigError) as error:
        load(tmp_path, params)
    assert str(tmp_path / "params.yaml") in str(error.value)
    assert message in str(error.value)


def test_a_profiles_declared_matrix_must_match_the_top_level_axes(tmp_path: Path):
    """``-S profile=zoo`` alone would train quick's methods: the error gives the command."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**params, "profile": "zoo"}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dvc exp run -S profile=zoo -S 'train.methods=\[stl,"):
        load_config(path)
    methods = params["profiles"]["zoo"]["matrix"]["methods"]
    train = {**params["train"], "methods": methods}
    path.write_text(yaml.safe_dump({**params, "train": train, "profile": "zoo"}), "utf-8")
    assert load_config(path).train.methods == tuple(methods)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"balancer": "gradnorm", "options": {"alpah": 1.0}}, r"does not take; its options"),
        ({"balancer": "no_such"}, r"registered balancers"),
        ({"balancer": "ew", "colour": "red"}, r"unknown key\(s\) \['colour'\]"),
        ({"balancer": "dwa", "options": {"temperature": "hot"}}, r"must be like its default"),
    ],
)
def test_recipe_options_are_checked_against_the_balancer(tmp_path: Path, recipe, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["recipes"]["gradnorm"] = recipe
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ") and "'recipes.gradnorm" in str(error.value)


def test_train_methods_must_name_recipes(tmp_path: Path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["train"]["methods"] = ["stl", "famo"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"train.methods names \['famo'\], which are not recipes"):
        load_config(path)


@pytest.mark.parametrize(
    "profile",
    [
        name
        for name, body in yaml.safe_load((ROOT / "params.yaml").read_text("utf-8"))[
            "profiles"
        ].items()
        if body.get("matrix")
    ],
)
def test_every_profile_with_a_matrix_loads_with_its_matrix(tmp_path: Path, profile: str):
    """Each declared matrix names recipes and backbones that exist, and the profile's image
    size suits every backbone of it (checked when params.yaml is read)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    matrix = params["profiles"][profile]["matrix"]
    params["train"] = {**params["train"], **matrix}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**params, "profile": profile}), encoding="utf-8")
    config = load_config(path)
    for axis, values in matrix.items():
        assert getattr(config.train, axis) == tuple(values)


def test_backbone_options_and_image_size_are_checked_against_the_backbone(tmp_path: Path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "params.yaml"
    bad = {**params, "backbones": {"resnet_unet": {"decoder_chanels": [8] * 5}}}
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"backbones.resnet_unet.*does not take"):
        load_config(path)
    train = {**params["train"], "backbones": ["attention_unet", "segformer"]}
    data = {**params["data"], "image_size": 80}  # divisible by 8, not by 32
    path.write_text(yaml.safe_dump({**params, "train": train, "data": data}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"image_size 80 must be divisible by 32 for backbone"):
        load_config(path)
    unknown = {**params, "train": {**params["train"], "backbones": ["vgg"]}}
    path.write_text(yaml.safe_dump(unknown), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"train.backbones names 'vgg'"):
        load_config(path)


def test_checking_a_backbone_draws_no_random_numbers():
    import torch

    torch.manual_seed(0)
    load_config(ROOT / "params.yaml", overrides={"train": {"backbones": ["resnet_unet"]}})
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))
