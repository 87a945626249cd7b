"""Random splits of a data set into disjoint index sets, and shuffled minibatches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


def random_split(
    n: int, sizes: Sequence[int | None], gen: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Disjoint index sets of ``range(n)`` of the given sizes, in order, from one random
    permutation drawn from ``gen``; a size ``None`` takes all the examples left."""
    fixed = sum(s for s in sizes if s is not None)
    if fixed > n:
        raise ValueError(f"split sizes {list(sizes)} exceed the {n} available examples")
    perm = torch.randperm(n, generator=gen)
    out, start = [], 0
    for size in sizes:
        stop = n if size is None else start + size
        out.append(perm[start:stop])
        start = stop
    return tuple(out)


def epoch_orders(gens: Sequence[torch.Generator], epochs: int, n: int) -> torch.Tensor:
    """Per seed, a random order of ``range(n)`` for each epoch: shape (S, epochs, n)."""
    return torch.stack([torch.rand(epochs, n, generator=g).argsort(dim=-1) for g in gens])


def minibatches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive index batches (S, ≤ batch_size) of one epoch's orders ``order`` (S, n); the
    last batch may be smaller."""
    for start in range(0, order.shape[-1], batch_size):
        yield order[..., start : start + batch_size]
