"""Executors run cells and hand back their outputs in order.

The local executor runs cells in this process (``jobs=1``) or in a pool of fresh worker
processes (``jobs>1``). Cells are pure and picklable, so a distributed executor (e.g. Dask) can
take their place behind the same ``map`` method.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Executor(Protocol):
    def map(self, fn: Callable[[In], Out], items: Sequence[In]) -> Iterator[Out]:
        """Yield ``fn(item)`` for each item, in order, as each finishes."""
        ...


class LocalExecutor:
    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs

    def map(self, fn: Callable[[In], Out], items: Sequence[In]) -> Iterator[Out]:
        if self.jobs == 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context) as pool:
            yield from pool.map(fn, items)
