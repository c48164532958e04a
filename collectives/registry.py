"""Name -> implementation table of every collective algorithm."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from collectives import builtin
from collectives.spec import COLLECTIVES, UnknownCollectiveError


def _collect() -> dict[str, dict[str, Callable[..., None]]]:
    """Each collective's module ``collectives.<name>`` exports ``ALGORITHMS``; builtin is the backend's call."""
    table = {}
    for name in COLLECTIVES:
        module = importlib.import_module(f"collectives.{name}")
        table[name] = {"builtin": getattr(builtin, name), **module.ALGORITHMS}
    return table


_REGISTRY: dict[str, dict[str, Callable[..., None]]] = _collect()


class UnknownAlgorithmError(UnknownCollectiveError):
    """An unknown collective or algorithm name (a KeyError); the message lists the known ones."""


def algorithms(collective: str) -> list[str]:
    """Algorithm names of ``collective``, builtin first."""
    if collective not in _REGISTRY:
        raise UnknownAlgorithmError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")
    names = list(_REGISTRY[collective])
    return ["builtin"] + sorted(n for n in names if n != "builtin")


def get(collective: str, algorithm: str) -> Callable[..., None]:
    """The implementation; UnknownAlgorithmError (a KeyError) listing the known names otherwise."""
    table = _REGISTRY.get(collective)
    if table is None:
        raise UnknownAlgorithmError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")
    fn = table.get(algorithm)
    if fn is None:
        raise UnknownAlgorithmError(
            f"unknown algorithm {algorithm!r} for {collective}; known: {', '.join(algorithms(collective))}"
        )
    return fn
