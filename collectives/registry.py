"""Name -> implementation table of every collective algorithm, and each collective's harness.

Each collective's module ``collectives.<name>`` declares ``ALGORITHMS`` (its hand-written algorithms),
``BUILTIN`` (the backend's call and its checks: ``collectives.builtin``) and ``HARNESS`` (how the benchmark
drives it: ``collectives.harness``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from collectives import builtin
from collectives.harness import Harness
from collectives.spec import COLLECTIVES, UnknownCollectiveError


def _modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"collectives.{name}") for name in COLLECTIVES}


MODULES: dict[str, ModuleType] = _modules()
_REGISTRY: dict[str, dict[str, Callable[..., None]]] = {
    name: {"builtin": builtin.checked(m.BUILTIN, name), **m.ALGORITHMS} for name, m in MODULES.items()
}


class UnknownAlgorithmError(UnknownCollectiveError):
    """An unknown collective or algorithm name (a KeyError); the message lists the known ones."""


def _unknown(collective: str) -> UnknownAlgorithmError:
    return UnknownAlgorithmError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")


def algorithms(collective: str) -> list[str]:
    """Algorithm names of ``collective``, builtin first."""
    if collective not in _REGISTRY:
        raise _unknown(collective)
    names = list(_REGISTRY[collective])
    return ["builtin"] + sorted(n for n in names if n != "builtin")


def get(collective: str, algorithm: str) -> Callable[..., None]:
    """The implementation; UnknownAlgorithmError (a KeyError) listing the known names otherwise."""
    table = _REGISTRY.get(collective)
    if table is None:
        raise _unknown(collective)
    fn = table.get(algorithm)
    if fn is None:
        raise UnknownAlgorithmError(
            f"unknown algorithm {algorithm!r} for {collective}; known: {', '.join(algorithms(collective))}"
        )
    return fn


def harness(collective: str) -> Harness:
    """How the benchmark drives ``collective`` (its module's ``HARNESS``)."""
    if collective not in MODULES:
        raise _unknown(collective)
    return MODULES[collective].HARNESS
