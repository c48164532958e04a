"""Rounds of disjoint rank pairs that meet every pair once: the schedule of ``collbench pairs`` (torch-free).

The ranks measure one round at a time (``bench.pairs``) and the command counts the rounds for its header and
run.json, so both sides read the schedule from here.
"""

from __future__ import annotations


def one_factorisation(p: int) -> list[list[tuple[int, int]]]:
    """Rounds of disjoint pairs covering every pair once (the circle method): p - 1 rounds for even p, p for
    odd p (one rank sits out each round). Each pair is (smaller rank, larger rank)."""
    if p < 2:
        return []
    n = p + (p % 2)  # odd p: a dummy rank n - 1 = p; its partner sits out
    rounds = []
    for r in range(n - 1):
        pairs = []
        for i in range(n // 2):
            a = (r + i) % (n - 1)
            b = (r - i) % (n - 1) if i else n - 1
            if a != b and a < p and b < p:
                pairs.append((min(a, b), max(a, b)))
        rounds.append(sorted(pairs))
    return rounds
