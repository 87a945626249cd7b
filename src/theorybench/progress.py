"""Progress of a run's cells (one task's or a whole suite's), whatever the executor: cells done
of total and an ETA.

The ETA sums the past wall times of the cells not done yet (from the cell cache: 0 for a cell
the cache will answer, the last wall time of a cell of the same size otherwise, the mean of the
known ones for a new cell), divides by the cells running side by side, and scales by how the
finished cells compared with their own past times. Without any past time there is no ETA.
"""

from __future__ import annotations

from typing import Any


def _fmt(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _key(cell: Any) -> tuple[str | None, int]:
    return getattr(cell, "task_id", None), cell.index


class Eta:
    def __init__(self, concurrent: int = 1) -> None:
        self.concurrent = max(1, concurrent)
        self.expected: dict[tuple[str | None, int], float] = {}
        self.actual = 0.0
        self.predicted = 0.0

    def plan(self, cells: list[Any], past: list[float | None]) -> str:
        known = [p for p in past if p is not None]
        if not known:
            self.expected = {}
            return ""
        fill = sum(known) / len(known)
        self.expected = {_key(c): (fill if p is None else p)
                         for c, p in zip(cells, past, strict=True)}
        return self.text()

    def done(self, out: Any) -> str:
        expected = self.expected.pop(_key(out.cell), None)
        if expected is not None and not out.cached and expected > 0:
            self.actual += out.wall_s
            self.predicted += expected
        return self.text()

    def seconds(self) -> float | None:
        if not self.expected:
            return None
        scale = self.actual / self.predicted if self.predicted > 0 else 1.0
        return sum(self.expected.values()) * scale / self.concurrent

    def text(self) -> str:
        left = self.seconds()
        return "" if left is None else f"ETA {_fmt(left)}"
