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
import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

# The synthetic cohort's own configuration is the data.synthetic section, knob for knob.
from wing.data.synthetic import SHARE_KNOBS
from wing.data.synthetic import CohortConfig as SyntheticConfig
from wing.models import BACKBONES, options_of
from wing.training.methods import (
    DEFAULT_RECIPES,
    RECIPE_KEYS,
    Recipe,
    check_options,
    parse_recipe,
)

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
    # Speed (wing.training.speed; bench/training_throughput.py measured each on the CPU):
    # channels_last network and input (0.90x the contiguous step, deterministic), autocast
    # precision (auto = bfloat16 on a CUDA device that has it, float32 elsewhere), torch.compile
    # of the trunk (1.46x slower on the CPU: off), DataLoader workers (pinned memory on CUDA).
    memory_format: str = "channels_last"
    precision: str = "auto"
    compile: bool = False
    loader_workers: int = 0


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


def _unknown_keys(raw: dict, known: Any, where: str, source: Path) -> None:
    """ConfigError naming each key of ``raw`` not in ``known`` by its dotted path, with the
    nearest known key as the likely fix."""
    unknown = sorted((key for key in raw if key not in known), key=str)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        fix = f"did you mean '{_join(where, close[0])}'?" if close else "remove it"
        hints.append(f"'{_join(where, key)}' ({fix})")
    place = f"under '{where}'" if where else "at the top level"
    raise ConfigError(
        f"{source}: unknown key(s) {unknown} {place}: {', '.join(hints)}; "
        f"known: {sorted(map(str, known))}"
    )


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
PLURAL_NAMES = {bool: "true/false values", int: "integers", float: "numbers", str: "names"}


def _typed(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the declared type ``hint`` (ConfigError naming ``key`` if it is not)."""
    if get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        element = get_args(hint)[0]
        try:
            return tuple(_typed(item, element, key) for item in value)
        except ConfigError:
            raise ConfigError(
                f"{key} must be a list of {PLURAL_NAMES.get(element, element)}, got {value!r}"
            ) from None
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        if ok:
            value = float(value)
    elif hint is str:
        ok = isinstance(value, str)
    else:
        return value
    if not ok:
        # YAML 1.1 reads 1e-3 as text: the most common way a number arrives as a string
        fix = " (YAML needs 1.0e-3, not 1e-3)" if hint is float and isinstance(value, str) else ""
        raise ConfigError(f"{key} must be {TYPE_NAMES[hint]}{fix}, got {value!r}")
    return value


def _build(cls: type, raw: Any, where: str, source: Path, canonical: str | None = None) -> Any:
    """The dataclass ``cls`` from the mapping ``raw`` found at ``where`` (a dotted path, e.g.
    ``profiles.tiny.train``); each value is checked against its declared type and against
    ``RULES[canonical.name]``, and an error names ``where.name``."""
    canonical = canonical or where
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping of settings, got {raw!r}")
    hints = get_type_hints(cls)
    _unknown_keys(raw, hints, where, source)
    values = {}
    for name, value in raw.items():
        key = f"{source}: '{where}.{name}'"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{where}.{name}", source, f"{canonical}.{name}")
            continue
        values[name] = _typed(value, hint, key)
        rule = RULES.get(f"{canonical}.{name}")
        problem = rule(values[name]) if rule else None
        if problem:
            raise ConfigError(f"{key} {problem}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: '{where}': {error}") from error


def _at_least(lowest: float) -> Any:
    return lambda v: None if v >= lowest else f"must be at least {lowest}, got {v!r}"


def _above(lowest: float) -> Any:
    return lambda v: None if v > lowest else f"must be above {lowest}, got {v!r}"


def _share(v: float) -> str | None:
    return None if 0 <= v <= 1 else f"is a share: between 0 and 1, got {v!r}"


def _one_of(*allowed: str) -> Any:
    return lambda v: None if v in allowed else f"must be one of {list(allowed)}, got {v!r}"


def _names(v: tuple) -> str | None:
    """A matrix axis: at least one entry, none repeated."""
    if not v:
        return "must name at least one entry, got []"
    repeated = sorted({x for x in v if v.count(x) > 1}, key=str)
    return f"repeats {repeated}; list each once" if repeated else None


def _seeds(v: tuple) -> str | None:
    return _names(v) or (None if min(v) >= 0 else f"must be 0 or more, got {list(v)}")


def _each_at_least(lowest: int) -> Any:
    return lambda v: (
        None if all(x >= lowest for x in v) else f"must be {lowest} or more each, got {list(v)}"
    )


def _source(v: str) -> str | None:
    from wing.data.sources import SOURCES  # imported here: wing.data.sources imports this

    return None if v in SOURCES else f"must be one of {SOURCES.names()}, got {v!r}"


def _device(v: str) -> str | None:
    import torch

    try:
        if v != "auto":
            torch.device(v)
    except (RuntimeError, ValueError):
        return f"must be auto, cpu, cuda or cuda:N, got {v!r}"
    return None


def _metric(v: str) -> str | None:
    from wing.evaluation.metrics import METRICS

    return None if v in METRICS else f"must be one of {list(METRICS)}, got {v!r}"


def _significance(v: float) -> str | None:
    return None if 0 < v < 1 else f"must be between 0 and 1, got {v!r}"


def _dropout(v: float) -> str | None:
    return None if 0 <= v < 1 else f"is a probability: 0 or more and below 1, got {v!r}"


# Single-key rules by canonical dotted path (a profile's overlay is checked by the same rules,
# the error naming profiles.NAME.<key>); rules that tie keys together are in _check.
RULES: dict[str, Any] = {
    "data.source": _source,
    "data.image_size": _at_least(1),
    "data.wound_label": _one_of("fuseg", "tissue_union"),
    "data.validation_count": _at_least(1),
    "data.fuseg_limit": _at_least(0),
    **{f"data.split.{name}": _above(0) for name in ("train", "validation", "test")},
    "data.split.seed": _at_least(0),
    "data.synthetic.n_patients": _at_least(3),  # one patient at least in each split
    "data.synthetic.visits_per_patient": _at_least(1),
    "data.synthetic.image_size": _at_least(8),
    "data.synthetic.days_between_visits": _at_least(1),
    "data.synthetic.seed": _at_least(0),
    **{
        f"data.synthetic.{f.name}": _at_least(0.0)
        for f in fields(SyntheticConfig)
        if f.type in (float, "float")
    },
    **{f"data.synthetic.{name}": _share for name in SHARE_KNOBS},
    "train.methods": _names,
    "train.backbones": _names,
    "train.seeds": _seeds,
    "train.epochs": _at_least(1),
    "train.batch_size": _at_least(1),
    "train.learning_rate": _above(0),
    "train.weight_decay": _at_least(0),
    "train.num_threads": _at_least(1),
    "train.device": _device,
    "train.channels": _each_at_least(1),
    "train.strides": _each_at_least(1),
    "train.dropout": _dropout,
    "train.last_shared_layer": lambda v: None if v else "must name a layer: last or a module",
    "train.steps_per_epoch": _at_least(0),
    "train.patience": _at_least(0),
    "train.task_balanced_batches": _one_of("auto", "on", "off"),
    "train.initial_loss_batches": _at_least(0),
    "train.memory_format": _one_of("channels_last", "contiguous"),
    "train.precision": _one_of("auto", "float32", "bfloat16"),
    "train.loader_workers": _at_least(0),
    "evaluate.batch_size": _at_least(1),
    "evaluate.checkpoint": _one_of("best", "last"),
    "compare.metric": _metric,
    "compare.n_boot": _at_least(1),
    "compare.seed": _at_least(0),
    "compare.significance": _significance,
    "compare.test": _one_of("ttest", "wilcoxon"),
    "compare.posthoc": _one_of("nemenyi", "conover"),
    "compare.convergence_tolerance": _at_least(0.0),
    "compare.convergence_window": _at_least(0),
}

TOP_LEVEL = ("profile", *SECTIONS, "recipes", "backbones", "profiles")
PROFILE_KEYS = (*SECTIONS, "matrix")


def _check_profile(name: str, body: Any, source: Path) -> dict:
    """One entry of ``profiles``: its sections checked key by key like the top level (the
    error names ``profiles.NAME.<key>``), its matrix a mapping of the train axes to lists."""
    where = f"profiles.{name}"
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ConfigError(
            f"{source}: '{where}' must be a mapping of sections {list(PROFILE_KEYS)}, got {body!r}"
        )
    _unknown_keys(body, PROFILE_KEYS, where, source)
    for axis in MATRIX_AXES:
        if isinstance(body.get("train"), dict) and axis in body["train"]:
            raise ConfigError(
                f"{source}: profiles.{name}.train.{axis} is a dvc.yaml matrix "
                f"axis; set train.{axis} at the top level instead"
            )
    for section, cls in SECTIONS.items():
        if section in body:
            _build(cls, body[section], f"{where}.{section}", source, section)
    matrix = body.get("matrix")
    if matrix is not None:
        if not isinstance(matrix, dict):
            raise ConfigError(
                f"{source}: profiles.{name}.matrix may only set {list(MATRIX_AXES)} "
                f"(a mapping of axis to list), got {matrix!r}"
            )
        _unknown_keys(matrix, MATRIX_AXES, f"{where}.matrix", source)
        hints = get_type_hints(TrainConfig)
        for axis, values in matrix.items():
            _typed(values, hints[axis], f"{source}: '{where}.matrix.{axis}'")
    return body


def resolve(params: dict, source: Path = Path("params.yaml")) -> dict:
    """The effective parameter tree: top-level sections with the active profile overlaid.

    Every profile is checked (unknown keys, types, single-key rules), not only the active
    one, so a typo in the paper profile stops a quick run too."""
    _unknown_keys(params, TOP_LEVEL, "", source)
    profile = params.get("profile", "quick")
    profiles = params.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError(
            f"{source}: 'profiles' must be a mapping of profile names to overlays, got {profiles!r}"
        )
    if not isinstance(profile, str) or profile not in profiles:
        raise ConfigError(
            f"{source}: profile {profile!r} is not defined under 'profiles' "
            f"(defined: {sorted(map(str, profiles))}); set 'profile' to one of them"
        )
    for name in ("recipes", "backbones", *SECTIONS):
        if params.get(name) is not None and not isinstance(params[name], dict):
            raise ConfigError(f"{source}: '{name}' must be a mapping, got {params[name]!r}")
    overlays = {name: _check_profile(name, body, source) for name, body in profiles.items()}
    overlay = {key: value for key, value in overlays[profile].items() if key != "matrix"}
    sections = {name: params.get(name) or {} for name in SECTIONS}
    return {
        "profile": profile,
        "matrix": overlays[profile].get("matrix"),
        "recipes": params.get("recipes"),
        "backbones": params.get("backbones"),
        **deep_merge(sections, overlay),
    }


def _text_keys(options: Any, where: str, path: Path) -> None:
    """Option names are text (YAML reads ``1: 0.5`` as a number key)."""
    if isinstance(options, dict) and not all(isinstance(key, str) for key in options):
        raise ConfigError(f"{path}: '{where}' has option names that are not text: {list(options)}")


RECIPE_NAME_KEYS = ("balancer", "architecture", "segmentation_loss", "label")


def _recipes(raw: Any, path: Path) -> dict[str, Recipe]:
    """The ``recipes`` section (default: stl, ew, gradnorm), each checked once."""
    if raw is None:
        return dict(DEFAULT_RECIPES)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: 'recipes' must be a non-empty mapping of method names")
    for name, recipe in raw.items():
        if not isinstance(recipe, dict):
            continue  # parse_recipe names it
        _unknown_keys(recipe, RECIPE_KEYS, f"recipes.{name}", path)
        for key in RECIPE_NAME_KEYS:  # a list or mapping here is no registered name
            if key in recipe and not isinstance(recipe[key], str):
                raise ConfigError(
                    f"{path}: 'recipes.{name}.{key}' must be text, got {recipe[key]!r}"
                )
        for key in ("options", "architecture_options"):
            _text_keys(recipe.get(key), f"recipes.{name}.{key}", path)
        tasks = recipe.get("auxiliary_tasks") or []
        if isinstance(tasks, list) and not all(isinstance(task, str) for task in tasks):
            raise ConfigError(
                f"{path}: 'recipes.{name}.auxiliary_tasks' must be a list of task names, "
                f"got {tasks!r}"
            )
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
                f"{path}: backbones.{name} is not a registered backbone; "
                f"remove it or use one of {BACKBONES.names()}"
            )
        _text_keys(options, f"backbones.{name}", path)
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
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({error})") from error
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

    keys = (
        "train.channels / train.strides / train.dropout"
        if backbone == "attention_unet"
        else f"backbones.{backbone}"
    )
    try:
        with torch.device("meta"):
            return BACKBONES.get(backbone)(**options).input_multiple
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError) as error:
        raise ConfigError(
            f"{path}: backbone {backbone!r} cannot be built from {keys} ({options}): {error}"
        ) from error


def _check(config: Config, path: Path) -> None:
    """The rules that tie keys together (single keys are checked by ``RULES`` as read)."""
    split = config.data.split
    total = split.train + split.validation + split.test
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(
            f"{path}: data.split.train, data.split.validation and data.split.test are fractions "
            f"of the patients and must sum to 1, got {total:g}; e.g. 0.6, 0.2, 0.2"
        )
    levels = len(config.train.strides)
    if len(config.train.channels) != levels + 1:
        raise ConfigError(
            f"{path}: train.channels needs one more entry than train.strides "
            f"(got {len(config.train.channels)} and {levels})"
        )
    for backbone in config.train.backbones:
        if backbone not in BACKBONES:
            raise ConfigError(
                f"{path}: train.backbones names {backbone!r}; registered: {BACKBONES.names()}"
            )
        multiple = input_multiple(backbone, config.backbone_options(backbone), path)
        size = config.data.image_size
        if size % multiple:
            lower, upper = max(multiple, size - size % multiple), size - size % multiple + multiple
            raise ConfigError(
                f"{path}: data.image_size {size} must be divisible by "
                f"{multiple} for backbone {backbone!r}"
                + (" (the product of train.strides)" if backbone == "attention_unet" else "")
                + f"; e.g. {lower} or {upper}"
            )
    unknown = [m for m in config.train.methods if m not in config.recipes]
    if unknown:
        raise ConfigError(
            f"{path}: train.methods names {unknown}, which are not recipes; "
            f"defined under 'recipes': {sorted(config.recipes)}"
        )
    reference = config.compare.reference
    if reference not in config.recipes:
        raise ConfigError(
            f"{path}: compare.reference {reference!r} is no recipe; "
            f"set it to one of train.methods {list(config.train.methods)}"
        )
    if reference not in config.train.methods:
        raise ConfigError(
            f"{path}: compare.reference {reference!r} is not in train.methods "
            f"{list(config.train.methods)}, so the compare stage would find no runs of it; "
            "add it to train.methods or set compare.reference to one of them"
        )
    from wing.evaluation.external import check_external  # imports wing.config: not at the top

    check_external(config, path)
