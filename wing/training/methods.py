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

TASKS = ("wound", "tissue")
RECIPE_KEYS = (
    "balancer",
    "options",
    "architecture",
    "architecture_options",
    "per_task_networks",
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
    label: str = ""  # how tables and figures name it (default: the recipe name)

    @property
    def task_groups(self) -> tuple[tuple[str, ...], ...]:
        """The tasks of each network the recipe trains."""
        return tuple((t,) for t in TASKS) if self.per_task_networks else (TASKS,)

    def build_balancer(self, tasks: tuple[str, ...]) -> Balancer:
        return BALANCERS.get(self.balancer)(tasks, **dict(self.options))


def balancer_options(balancer: str) -> dict[str, inspect.Parameter]:
    """The keyword options of a balancer: its constructor's parameters after ``tasks``."""
    return options_of(BALANCERS.get(balancer).__init__, skip=1)


def architecture_options(architecture: str) -> dict[str, inspect.Parameter]:
    """The keyword options of an architecture: its constructor's parameters after
    ``backbone`` and ``task_classes``."""
    return options_of(ARCHITECTURES.get(architecture).__init__, skip=2)


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
    return Recipe(
        name=name,
        balancer=balancer,
        options=dict(options),
        architecture=architecture,
        architecture_options=dict(network_options),
        per_task_networks=per_task,
        label=str(raw.get("label") or name),
    )


DEFAULT_RECIPES = {
    "stl": Recipe("stl", "ew", per_task_networks=True, label="STL"),
    "ew": Recipe("ew", "ew", label="EW"),
    "gradnorm": Recipe("gradnorm", "gradnorm", label="WING-MTL (GradNorm)"),
}
