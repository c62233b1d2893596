"""Methods compared by the compendium: a method is a RECIPE, a name in params.yaml
(``recipes:``) mapping to an architecture and a balancer with its options.

    recipes:
      stl:      {balancer: ew, per_task_networks: true}   # one network per task
      gradnorm: {balancer: gradnorm, options: {alpha: 1.5, learning_rate: 0.025}}

      ctan:     {architecture: ctan, architecture_options: {heads: 2}, balancer: ew}

The train matrix's method axis names recipes. A recipe's options are checked once, when
params.yaml is read, against the signature of its balancer's constructor (``options``) and of
its architecture's (``architecture_options``), so a new option is one keyword argument and
one line of params.yaml.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wing.balancing import BALANCERS, Balancer
from wing.models import ARCHITECTURES, options_of
from wing.training.losses import SEGMENTATION_LOSSES
from wing.training.tasks import AUXILIARY_TASKS, COMPARED_TASKS, image_tasks

TASKS = COMPARED_TASKS
RECIPE_KEYS = (
    "balancer",
    "options",
    "architecture",
    "architecture_options",
    "per_task_networks",
    "auxiliary_tasks",
    "segmentation_loss",
    "label",
)


@dataclass(frozen=True)
class Recipe:
    name: str
    balancer: str
    options: Mapping[str, Any] = field(default_factory=dict)
    architecture: str = "hard_sharing"
    architecture_options: Mapping[str, Any] = field(default_factory=dict)
    per_task_networks: bool = False  # STL: one network per task, each with ``balancer``
    auxiliary_tasks: tuple[str, ...] = ()  # trained beside wound and tissue, never compared
    segmentation_loss: str = "dice_ce"  # wing.training.losses.SEGMENTATION_LOSSES
    label: str = ""  # how tables and figures name it (default: the recipe name)

    @property
    def task_groups(self) -> tuple[tuple[str, ...], ...]:
        """The tasks of each network the recipe trains."""
        if self.per_task_networks:
            return tuple((t,) for t in TASKS)
        return (TASKS + tuple(self.auxiliary_tasks),)

    def build_balancer(self, tasks: tuple[str, ...]) -> Balancer:
        return BALANCERS.get(self.balancer)(tasks, **dict(self.options))


def balancer_options(balancer: str) -> dict[str, inspect.Parameter]:
    """The keyword options of a balancer: its constructor's parameters after ``tasks``."""
    return options_of(BALANCERS.get(balancer).__init__, skip=1)


def architecture_options(architecture: str) -> dict[str, inspect.Parameter]:
    """The keyword options of an architecture: its constructor's parameters after
    ``backbone`` and ``task_classes`` (``image_tasks`` comes from the recipe's tasks)."""
    options = options_of(ARCHITECTURES.get(architecture).__init__, skip=2)
    options.pop("image_tasks", None)
    return options


def check_options(where: str, options: Any, allowed: Mapping[str, inspect.Parameter], owner: str):
    """ValueError naming ``where`` unless ``options`` is a mapping of known keyword options,
    each of the kind of its default (bool, number, sequence, mapping or string)."""
    if not isinstance(options, Mapping):
        raise ValueError(f"'{where}' must be a mapping, got {options!r}")
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(
            f"'{where}' has {bad}, which {owner} does not take; "
            f"its options: {sorted(allowed) or 'none'}"
        )
    for option, value in options.items():
        default = allowed[option].default
        if default is inspect.Parameter.empty or default is None:
            continue
        kinds = (bool, int | float, list | tuple, Mapping, str)
        expected = next((kind for kind in kinds if isinstance(default, kind)), None)
        if expected is None:
            continue
        if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, expected):
            raise ValueError(
                f"'{where}.{option}' must be like its default {default!r}, got {value!r}"
            )


def parse_recipe(name: str, raw: Any) -> Recipe:
    """One recipe from params.yaml; ValueError names the recipe and what is wrong."""
    where = f"recipes.{name}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"'{where}' must be a mapping with a 'balancer', got {raw!r}")
    unknown = sorted(set(raw) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} under '{where}'; known: {list(RECIPE_KEYS)}")
    balancer = raw.get("balancer")
    if balancer not in BALANCERS:
        raise ValueError(
            f"'{where}.balancer' is {balancer!r}; registered balancers: {BALANCERS.names()}"
        )
    options = raw.get("options") or {}
    check_options(f"{where}.options", options, balancer_options(balancer), f"balancer {balancer!r}")
    architecture = raw.get("architecture", "hard_sharing")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"'{where}.architecture' is {architecture!r}; "
            f"registered architectures: {ARCHITECTURES.names()}"
        )
    network_options = raw.get("architecture_options") or {}
    check_options(
        f"{where}.architecture_options",
        network_options,
        architecture_options(architecture),
        f"architecture {architecture!r}",
    )
    per_task = raw.get("per_task_networks", False)
    if not isinstance(per_task, bool):
        raise ValueError(f"'{where}.per_task_networks' must be true or false")
    auxiliary = raw.get("auxiliary_tasks") or []
    if not isinstance(auxiliary, list | tuple) or not set(auxiliary) <= set(AUXILIARY_TASKS):
        raise ValueError(
            f"'{where}.auxiliary_tasks' must be a list of {list(AUXILIARY_TASKS)}, "
            f"got {auxiliary!r}"
        )
    if auxiliary and per_task:
        raise ValueError(f"'{where}': auxiliary_tasks need a shared network, not per_task_networks")
    with_heads = [
        name
        for name in ARCHITECTURES.names()
        if getattr(ARCHITECTURES.get(name), "supports_image_tasks", False)
    ]
    if image_tasks(auxiliary) and architecture not in with_heads:
        raise ValueError(
            f"'{where}': architecture {architecture!r} has no head for the image-level task(s) "
            f"{list(image_tasks(auxiliary))}; architectures that have one: {with_heads}"
        )
    loss = raw.get("segmentation_loss", "dice_ce")
    if loss not in SEGMENTATION_LOSSES:
        raise ValueError(
            f"'{where}.segmentation_loss' is {loss!r}; one of {sorted(SEGMENTATION_LOSSES)}"
        )
    return Recipe(
        name=name,
        balancer=balancer,
        options=dict(options),
        architecture=architecture,
        architecture_options=dict(network_options),
        per_task_networks=per_task,
        auxiliary_tasks=tuple(auxiliary),
        segmentation_loss=loss,
        label=str(raw.get("label") or name),
    )


DEFAULT_RECIPES = {
    "stl": Recipe("stl", "ew", per_task_networks=True, label="STL"),
    "ew": Recipe("ew", "ew", label="EW"),
    "gradnorm": Recipe("gradnorm", "gradnorm", label="WING-MTL (GradNorm)"),
}
