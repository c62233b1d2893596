"""Methods compared by the compendium: which tasks share a network and how they are balanced.

``stl`` trains one network per task; any balancer name (``ew``, ``gradnorm``, ...) trains
one hard-sharing network for all tasks with that balancer.
"""

from __future__ import annotations

from dataclasses import dataclass

from wing.balancing import BALANCERS

TASKS = ("wound", "tissue")


@dataclass(frozen=True)
class Method:
    name: str
    balancer: str
    architecture: str
    task_groups: tuple[tuple[str, ...], ...]  # one network per group


def method(name: str) -> Method:
    if name == "stl":
        return Method("stl", "ew", "hard_sharing", tuple((task,) for task in TASKS))
    if name in BALANCERS:
        return Method(name, name, "hard_sharing", (TASKS,))
    raise KeyError(f"unknown method {name!r}; use 'stl' or a balancer: {BALANCERS.names()}")
