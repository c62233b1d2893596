"""One registry per family (backbones, architectures, balancers, data sources).

A new method is one module plus one ``REGISTRY.register(...)`` line in its package's
``__init__``; the trainer and the pipeline only ever look names up here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, family: str):
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise KeyError(f"{self.family} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def __call__(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@REGISTRY("name")``."""
        return lambda entry: self.register(name, entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.family} {name!r}; registered: {sorted(self._entries)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
