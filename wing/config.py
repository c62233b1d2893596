"""Configuration: ``params.yaml`` read once per stage, the profile applied, then validated.

The top-level sections of ``params.yaml`` (``data``, ``train``, ``evaluate``, ``compare``,
``report``) are the default ``quick`` profile, so ``dvc exp run -S train.epochs=3`` changes
what runs. ``profile: NAME`` overlays the keys of ``profiles.NAME`` on them (the overlay wins),
which is how one code path scales from a minutes-long CPU run to the paper-sized GPU run.
The matrix axes of the train stage (``train.methods``, ``train.backbones``, ``train.seeds``)
are read by ``dvc.yaml`` itself and therefore live at the top level only. So do ``recipes``
(what a method is) and ``backbones`` (each backbone's options, checked against its builder;
the Attention-UNet's widths are ``train.channels`` / ``train.strides``, which profiles scale).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

# The synthetic cohort's own configuration is the data.synthetic section, knob for knob.
from wing.data.synthetic import CohortConfig as SyntheticConfig
from wing.models import BACKBONES, options_of
from wing.training.methods import DEFAULT_RECIPES, Recipe, check_options, parse_recipe

MATRIX_AXES = ("methods", "backbones", "seeds")


class ConfigError(ValueError):
    """``params.yaml`` is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class SplitConfig:
    """Patient-level split fractions (train, validation, test) and its seed."""

    train: float = 0.6
    validation: float = 0.2
    test: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class RawConfig:
    """Where each data source reads its raw files (the datasets' own published layouts)."""

    folder: str = ""
    dfutissue: str = "../shared/data/dfutissue"
    fuseg: str = "../shared/data/fuseg-256"
    links: str = "../shared/data/links"
    lutseg: str = "../shared/data/lutseg/LUTSeg/examples"
    # LUTSeg's Label Studio exports (every visit's polygons), read by the longitudinal stage
    lutseg_annotations: str = "../shared/data/lutseg/LUTSeg/annotations/raw"


@dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"
    root: str = "data/prepared/dataset"
    image_size: int = 96
    wound_label: str = "fuseg"
    validation_count: int = 16
    fuseg_limit: int = 0
    raw: RawConfig = field(default_factory=RawConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass(frozen=True)
class TrainConfig:
    methods: tuple[str, ...] = ("stl", "ew", "gradnorm")
    backbones: tuple[str, ...] = ("attention_unet",)
    seeds: tuple[int, ...] = (0, 1)
    epochs: int = 15
    batch_size: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    augment: bool = True
    num_threads: int = 2
    device: str = "auto"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    dropout: float = 0.0
    last_shared_layer: str = "last"
    # The budget and stopping rule, the same for every method (fair baselines, issue 7 §3):
    # every network takes steps_per_epoch optimiser steps per epoch (0 = ceil(training
    # samples labelled for any task / batch_size), so an STL network on a partially labelled
    # set takes as many steps as the shared one), for at most `epochs` epochs, and stops
    # early when no task's validation loss has improved for `patience` epochs (0 = never).
    steps_per_epoch: int = 0
    patience: int = 0
    # Every batch holds samples of each task of the network: auto = on for partial labels.
    task_balanced_batches: str = "auto"
    # L_i(0) of loss-rate balancers (GradNorm): mean task loss over this many fixed labelled
    # batches, measured before the first step.
    initial_loss_batches: int = 4


@dataclass(frozen=True)
class EvaluateConfig:
    batch_size: int = 16
    checkpoint: str = "best"  # the primary rule: per task, its best validation epoch; or "last"
    # External validation: data sources scored, never trained on (wing.evaluation.external).
    external: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompareConfig:
    reference: str = "gradnorm"
    metric: str = "dice"
    n_boot: int = 2000
    seed: int = 0
    significance: float = 0.05  # two-sided level of every test, after Holm
    test: str = "ttest"  # the test that decides a claim: ttest | wilcoxon (patient level)
    posthoc: str = "nemenyi"  # after Friedman: nemenyi | conover
    convergence_tolerance: float = 0.0  # relative: the first epoch within it of the minimum
    convergence_window: int = 0  # epochs: |wound - tissue| <= window counts as "same epoch"


@dataclass(frozen=True)
class ReportConfig:
    title: str = "WING-MTL compendium report"


@dataclass(frozen=True)
class Config:
    profile: str
    data: DataConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    compare: CompareConfig
    report: ReportConfig
    recipes: dict[str, Recipe] = field(default_factory=lambda: dict(DEFAULT_RECIPES))
    backbones: dict[str, dict[str, Any]] = field(default_factory=dict)

    def backbone_options(self, backbone: str) -> dict[str, Any]:
        return backbone_options(backbone, self.train, self.backbones)


def backbone_options(
    backbone: str, train: TrainConfig, backbones: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The options ``backbone``'s builder gets: ``backbones.<name>`` from params.yaml; for the
    Attention-UNet, ``train.channels`` / ``strides`` / ``dropout`` (which profiles scale)."""
    options = dict((backbones or {}).get(backbone, {}))
    if backbone == "attention_unet":
        options.update(
            channels=list(train.channels), strides=list(train.strides), dropout=train.dropout
        )
    return options


SECTIONS = {
    "data": DataConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "compare": CompareConfig,
    "report": ReportConfig,
}


def deep_merge(base: dict, overlay: dict) -> dict:
    """``base`` with ``overlay``'s keys written over it, recursively (the overlay wins)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(cls: type, raw: Any, where: str, source: Path) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {unknown} under '{where}'; known: {sorted(known)}"
        )
    values = {}
    defaults = cls()
    for name, value in raw.items():
        default, key = getattr(defaults, name), f"{source}: '{where}.{name}'"
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, f"{where}.{name}", source)
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{key} must be a list, got {value!r}")
            values[name] = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false, got {value!r}")
            values[name] = value
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"{key} must be a number (YAML needs 1.0e-3, not 1e-3), got {value!r}"
                )
            values[name] = float(value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{key} must be an integer, got {value!r}")
            values[name] = value
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{key} must be text, got {value!r}")
        else:
            values[name] = value
    return cls(**values)


def resolve(params: dict, source: Path = Path("params.yaml")) -> dict:
    """The effective parameter tree: top-level sections with the active profile overlaid."""
    profile = params.get("profile", "quick")
    profiles = params.get("profiles") or {}
    if profile not in profiles:
        raise ConfigError(
            f"{source}: profile {profile!r} is not defined under 'profiles' "
            f"(defined: {sorted(profiles)})"
        )
    overlay = profiles[profile] or {}
    for axis in MATRIX_AXES:
        if axis in (overlay.get("train") or {}):
            raise ConfigError(
                f"{source}: profiles.{profile}.train.{axis} is a dvc.yaml matrix "
                f"axis; set train.{axis} at the top level instead"
            )
    overlay = {key: value for key, value in overlay.items() if key != "matrix"}
    sections = {name: params.get(name) or {} for name in SECTIONS}
    return {
        "profile": profile,
        "matrix": profiles[profile].get("matrix") if profiles[profile] else None,
        "recipes": params.get("recipes"),
        "backbones": params.get("backbones"),
        **deep_merge(sections, overlay),
    }


def _recipes(raw: Any, path: Path) -> dict[str, Recipe]:
    """The ``recipes`` section (default: stl, ew, gradnorm), each checked once."""
    if raw is None:
        return dict(DEFAULT_RECIPES)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: 'recipes' must be a non-empty mapping of method names")
    try:
        return {str(name): parse_recipe(str(name), value) for name, value in raw.items()}
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from error


def _backbones(raw: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The ``backbones`` section: each name registered, its options known to its builder."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'backbones' must be a mapping of backbone names to options")
    for name, options in raw.items():
        if name not in BACKBONES:
            raise ConfigError(
                f"{path}: backbones.{name} is not a registered backbone: {BACKBONES.names()}"
            )
        allowed = options_of(BACKBONES.get(name), skip=0)
        if name == "attention_unet":  # set by train.channels / strides / dropout
            allowed = {k: v for k, v in allowed.items() if k not in ATTENTION_UNET_TRAIN_KEYS}
        try:
            check_options(f"backbones.{name}", options or {}, allowed, f"backbone {name!r}")
        except ValueError as error:
            raise ConfigError(f"{path}: {error}") from error
    return {str(name): dict(options or {}) for name, options in raw.items()}


ATTENTION_UNET_TRAIN_KEYS = ("channels", "strides", "dropout")


def _check_matrix(config: Config, declared: Any, path: Path) -> None:
    """A profile may declare the train matrix it needs (``profiles.NAME.matrix``); dvc.yaml
    reads the axes from the top-level ``train`` section, so they must agree, and the error
    gives the command that makes them agree."""
    if not declared:
        return
    if not isinstance(declared, dict) or set(declared) - set(MATRIX_AXES):
        raise ConfigError(
            f"{path}: profiles.{config.profile}.matrix may only set {list(MATRIX_AXES)}"
        )
    wrong = {
        axis: list(values)
        for axis, values in declared.items()
        if tuple(values) != tuple(getattr(config.train, axis))
    }
    if wrong:
        sets = " ".join(
            f"-S 'train.{axis}=[{','.join(map(str, values))}]'" for axis, values in wrong.items()
        )
        raise ConfigError(
            f"{path}: profile {config.profile!r} trains the matrix "
            f"{ {a: v for a, v in wrong.items()} } but train.{'/'.join(wrong)} differ; "
            f"dvc.yaml reads the matrix from the top level: "
            f"dvc exp run -S profile={config.profile} {sets}"
        )


def load_config(path: str | Path = "params.yaml", overrides: dict | None = None) -> Config:
    """Read, resolve and validate ``params.yaml``; ``overrides`` is overlaid last (tests)."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: parameters file not found") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: must be a mapping of sections")
    tree = resolve(params, path)
    if overrides:
        tree = deep_merge(tree, overrides)
    built = {name: _build(cls, tree.get(name), name, path) for name, cls in SECTIONS.items()}
    config = Config(
        profile=tree["profile"],
        recipes=_recipes(tree.get("recipes"), path),
        backbones=_backbones(tree.get("backbones"), path),
        **built,
    )
    _check(config, path)
    _check_matrix(config, tree.get("matrix"), path)
    return config


def input_multiple(backbone: str, options: dict[str, Any], path: Path) -> int:
    """What image sides must be divisible by for ``backbone`` (built on the meta device:
    no memory, no weights, no random numbers drawn)."""
    import torch

    try:
        with torch.device("meta"):
            return BACKBONES.get(backbone)(**options).input_multiple
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"{path}: backbone {backbone!r} with options {options}: {error}"
        ) from error


def _check(config: Config, path: Path) -> None:
    split = config.data.split
    total = split.train + split.validation + split.test
    if abs(total - 1.0) > 1e-6 or min(split.train, split.validation, split.test) <= 0:
        raise ConfigError(
            f"{path}: data.split fractions must be positive and sum to 1, got {total}"
        )
    levels = len(config.train.strides)
    if len(config.train.channels) != levels + 1:
        raise ConfigError(f"{path}: train.channels needs one more entry than train.strides")
    for backbone in config.train.backbones:
        if backbone not in BACKBONES:
            raise ConfigError(
                f"{path}: train.backbones names {backbone!r}; registered: {BACKBONES.names()}"
            )
        multiple = input_multiple(backbone, config.backbone_options(backbone), path)
        if config.data.image_size % multiple:
            raise ConfigError(
                f"{path}: data.image_size {config.data.image_size} must be divisible by "
                f"{multiple} for backbone {backbone!r}"
                + (" (the product of train.strides)" if backbone == "attention_unet" else "")
            )
    if config.train.epochs < 1 or config.train.batch_size < 1:
        raise ConfigError(f"{path}: train.epochs and train.batch_size must be at least 1")
    for key in ("steps_per_epoch", "patience", "initial_loss_batches"):
        if getattr(config.train, key) < 0:
            raise ConfigError(f"{path}: train.{key} must be 0 or more")
    unknown = [m for m in config.train.methods if m not in config.recipes]
    if unknown:
        raise ConfigError(
            f"{path}: train.methods names {unknown}, which are not recipes; "
            f"defined under 'recipes': {sorted(config.recipes)}"
        )
    if config.compare.reference not in config.recipes:
        raise ConfigError(f"{path}: compare.reference {config.compare.reference!r} is no recipe")
    choices = {
        "train.task_balanced_batches": (config.train.task_balanced_batches, ("auto", "on", "off")),
        "evaluate.checkpoint": (config.evaluate.checkpoint, ("best", "last")),
        "compare.test": (config.compare.test, ("ttest", "wilcoxon")),
        "compare.posthoc": (config.compare.posthoc, ("nemenyi", "conover")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{path}: {key} must be one of {list(allowed)}, got {value!r}")
    if not 0 < config.compare.significance < 1:
        raise ConfigError(f"{path}: compare.significance must be between 0 and 1")
    from wing.evaluation.external import check_external  # imports wing.config: not at the top

    check_external(config, path)
