"""Methods compared by the compendium: a method is a RECIPE, a name in params.yaml
(``recipes:``) mapping to an architecture and a balancer with its options.

    recipes:
      stl:      {balancer: ew, per_task_networks: true}   # one network per task
      gradnorm: {balancer: gradnorm, options: {alpha: 1.5, learning_rate: 0.025}}

The train matrix's method axis names recipes. A recipe's options are checked once, when
params.yaml is read, against the signature of its balancer's constructor, so a new option
is one keyword argument of the balancer and one line of params.yaml.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wing.balancing import BALANCERS, Balancer

TASKS = ("wound", "tissue")
ARCHITECTURES = ("hard_sharing",)  # the architecture registry comes with the backbones issue
RECIPE_KEYS = ("balancer", "options", "architecture", "per_task_networks", "label")


@dataclass(frozen=True)
class Recipe:
    name: str
    balancer: str
    options: Mapping[str, Any] = field(default_factory=dict)
    architecture: str = "hard_sharing"
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
    signature = inspect.signature(BALANCERS.get(balancer).__init__)
    return {
        name: parameter
        for name, parameter in signature.parameters.items()
        if name not in ("self", "tasks")
    }


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
    if not isinstance(options, Mapping):
        raise ValueError(f"'{where}.options' must be a mapping, got {options!r}")
    allowed = balancer_options(balancer)
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(
            f"'{where}.options' has {bad}, which balancer {balancer!r} does not take; "
            f"its options: {sorted(allowed) or 'none'}"
        )
    for option, value in options.items():
        default = allowed[option].default
        if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, int | float) and not isinstance(value, int | float)
        ):
            raise ValueError(
                f"'{where}.options.{option}' must be like its default {default!r}, got {value!r}"
            )
    architecture = raw.get("architecture", "hard_sharing")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"'{where}.architecture' must be one of {list(ARCHITECTURES)}")
    per_task = raw.get("per_task_networks", False)
    if not isinstance(per_task, bool):
        raise ValueError(f"'{where}.per_task_networks' must be true or false")
    return Recipe(
        name=name,
        balancer=balancer,
        options=dict(options),
        architecture=architecture,
        per_task_networks=per_task,
        label=str(raw.get("label") or name),
    )


DEFAULT_RECIPES = {
    "stl": Recipe("stl", "ew", per_task_networks=True, label="STL"),
    "ew": Recipe("ew", "ew", label="EW"),
    "gradnorm": Recipe("gradnorm", "gradnorm", label="WING-MTL (GradNorm)"),
}
