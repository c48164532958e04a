"""Name -> implementation table of every collective algorithm."""

from __future__ import annotations

from collections.abc import Callable

from collectives import builtin
from collectives.costs import COLLECTIVES

_REGISTRY: dict[str, dict[str, Callable[..., None]]] = {
    "broadcast": {"builtin": builtin.broadcast},
    "reduce": {"builtin": builtin.reduce},
    "all_reduce": {"builtin": builtin.all_reduce},
    "all_gather": {"builtin": builtin.all_gather},
    "reduce_scatter": {"builtin": builtin.reduce_scatter},
}


class UnknownAlgorithmError(KeyError):
    """An unknown collective or algorithm name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def algorithms(collective: str) -> list[str]:
    if collective not in _REGISTRY:
        raise UnknownAlgorithmError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")
    names = list(_REGISTRY[collective])
    return ["builtin"] + sorted(n for n in names if n != "builtin")


def get(collective: str, algorithm: str) -> Callable[..., None]:
    table = _REGISTRY.get(collective)
    if table is None:
        raise UnknownAlgorithmError(f"unknown collective {collective!r}; known: {', '.join(COLLECTIVES)}")
    fn = table.get(algorithm)
    if fn is None:
        raise UnknownAlgorithmError(
            f"unknown algorithm {algorithm!r} for {collective}; known: {', '.join(algorithms(collective))}"
        )
    return fn
