"""Name -> implementation table of every collective algorithm."""

from __future__ import annotations

from collections.abc import Callable

from collectives import all_gather, all_reduce, broadcast, builtin, reduce, reduce_scatter
from collectives.spec import COLLECTIVES

_REGISTRY: dict[str, dict[str, Callable[..., None]]] = {
    "broadcast": {
        "builtin": builtin.broadcast,
        "ring": broadcast.ring,
        "tree": broadcast.tree,
        "scatter_allgather": broadcast.scatter_allgather,
    },
    "reduce": {"builtin": builtin.reduce, "ring": reduce.ring, "tree": reduce.tree},
    "all_reduce": {
        "builtin": builtin.all_reduce,
        "ring": all_reduce.ring,
        "tree": all_reduce.tree,
        "reduce_broadcast": all_reduce.reduce_broadcast,
        "recursive_doubling": all_reduce.recursive_doubling,
        "rabenseifner": all_reduce.rabenseifner,
    },
    "all_gather": {
        "builtin": builtin.all_gather,
        "ring": all_gather.ring,
        "tree": all_gather.tree,
        "bruck": all_gather.bruck,
    },
    "reduce_scatter": {
        "builtin": builtin.reduce_scatter,
        "ring": reduce_scatter.ring,
        "tree": reduce_scatter.tree,
        "pairwise": reduce_scatter.pairwise,
    },
}


class UnknownAlgorithmError(KeyError):
    """An unknown collective or algorithm name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


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
