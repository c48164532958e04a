"""Hand-written collectives on torch.distributed point-to-point ops.

``get(collective, algorithm)`` returns a callable with torch.distributed's signature;
``algorithms(collective)`` lists the names.  torch is imported only when an algorithm is
asked for, so ``collectives.costs`` stays importable without torch (``analysis`` uses it).

A collective is one descriptor (``collectives.spec``, torch-free) plus its module ``collectives/<name>.py``
(algorithms, builtin, harness), its entry in ``collectives.costs`` and its section of docs/costs.md
(docs/add-a-collective.md).
"""

from __future__ import annotations

from collections.abc import Callable

from collectives.spec import COLLECTIVES

__all__ = ["COLLECTIVES", "get", "algorithms"]


def get(collective: str, algorithm: str) -> Callable[..., None]:
    """The implementation of ``algorithm`` for ``collective``; KeyError naming the choices if unknown."""
    from collectives.registry import get as _get

    return _get(collective, algorithm)


def algorithms(collective: str) -> list[str]:
    """Algorithm names for ``collective``, ``builtin`` first."""
    from collectives.registry import algorithms as _algorithms

    return _algorithms(collective)
