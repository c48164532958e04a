"""NCCL's double binary tree over ranks 0..p-1, as plain arithmetic (no torch: ``collectives.costs`` uses it).

``btree_parent`` follows NCCL ``src/graph/trees.cc`` ``ncclGetBtree``; the second tree is the first
mirrored (even p) or shifted by one (odd p), as ``ncclGetDtree`` builds it.
"""

from __future__ import annotations


def btree_parent(rank: int, p: int) -> int:
    """Parent in NCCL's binary tree over ranks 0..p-1 rooted at 0 (-1 for the root)."""
    if rank == 0:
        return -1
    bit = rank & -rank
    up = (rank ^ bit) | (bit << 1)
    return up if up < p else rank ^ bit


def dtree_parents(p: int) -> tuple[list[int], list[int]]:
    """Parent arrays of the two trees: tree 1 = btree, tree 2 = mirror (even p) or shift (odd p)."""
    t1 = [btree_parent(r, p) for r in range(p)]
    if p % 2 == 0:
        t2 = [-1 if (u := btree_parent(p - 1 - r, p)) < 0 else p - 1 - u for r in range(p)]
    else:
        t2 = [-1 if (u := btree_parent((r - 1) % p, p)) < 0 else (u + 1) % p for r in range(p)]
    return t1, t2


def heights_depths(parent: list[int]) -> tuple[list[int], list[int]]:
    """(height, depth) of every rank: height = longest path down to a leaf, depth = distance to the root."""
    p = len(parent)
    depth = [0] * p
    for r in range(p):
        d, x = 0, r
        while parent[x] >= 0:
            x, d = parent[x], d + 1
        depth[r] = d
    height = [0] * p
    for r in sorted(range(p), key=lambda x: -depth[x]):
        if parent[r] >= 0:
            height[parent[r]] = max(height[parent[r]], height[r] + 1)
    return height, depth
