"""How many threads a cell gets: chosen where the cell runs, from the cores that are free.

Torch's intra-op threads (OpenMP) spin at every parallel region's barrier. On a machine where
another process keeps one core busy, two torch threads on two cores wait for the descheduled
one at every operation, and a run becomes 10-25 times slower than with one thread. On a quiet
machine the same two threads make the larger cells about 1.5 times faster. So the count is
chosen per cell, from what is free *now*:

* ``cores``: the CPUs this process may use: ``os.sched_getaffinity`` capped by the cgroup's CPU
  quota (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in v1);
* ``busy_elsewhere``: CPU time used by *other* processes on the machine since the last look
  (``/proc/stat`` busy time minus this process's own CPU time, over the wall time between the
  two looks; the first look waits ``PROBE_S``), in cores;
* ``share``: ``cores // concurrent``, the cores one of ``concurrent`` cells running side by side
  may take;
* the cell's size: a cell whose past wall time (from the cell cache) is under ``SMALL_CELL_S``
  gets one thread, as thread start-up and barriers cost more than they save there.

``threads = clamp(round(cores − busy_elsewhere), 1, share)``, or 1 for a small cell; numpy's
BLAS gets the same count (``threadpoolctl``), as it too defaults to every core. An explicit
choice wins: ``--threads N``, ``$THEORYBENCH_THREADS`` or ``$OMP_NUM_THREADS``.
The choice and its inputs go into the cell's timing entry of the run record.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROBE_S = 0.05
SMALL_CELL_S = 0.5
ENV_THREADS = "THEORYBENCH_THREADS"


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    source: str  # --threads, THEORYBENCH_THREADS, OMP_NUM_THREADS, auto, auto (small cell)
    cores: int
    free_cores: float | None
    concurrent: int
    wait_policy: str | None = None  # OMP_WAIT_POLICY of the process running the cell

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's quota, or None when unlimited or unreadable."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """CPUs this process may run on, capped by the cgroup's CPU quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    return max(1, cores)


def _busy_seconds(cpus: set[int] | None) -> float | None:
    """Busy CPU time (seconds) of the given CPUs (all when None) since boot, from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
        total += busy
    return total / tick


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class LoadProbe:
    """Cores busy with other processes, measured between successive calls of :meth:`free`."""

    def __init__(self) -> None:
        self._last: tuple[float, float, float] | None = None
        try:
            self._cpus: set[int] | None = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self._cpus = None

    def _look(self) -> tuple[float, float, float] | None:
        busy = _busy_seconds(self._cpus)
        return None if busy is None else (time.monotonic(), busy, _own_seconds())

    def free(self, cores: int) -> float | None:
        """Cores not used by other processes since the previous call (None if unknown)."""
        now = self._look()
        if now is None:
            return None
        if self._last is None or now[0] - self._last[0] < PROBE_S:
            self._last = now
            time.sleep(PROBE_S)
            now = self._look()
            if now is None:
                return None
        wall = now[0] - self._last[0]
        others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall
        self._last = now
        return max(0.0, cores - others)


_PROBE = LoadProbe()
_interop_set = False


def _explicit(threads: int | None) -> tuple[int, str] | None:
    if threads is not None:
        return threads, "--threads"
    for name in (ENV_THREADS, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                n = int(value.split(",")[0])
            except ValueError:
                continue
            if n >= 1:
                return n, name
    return None


def choose_threads(concurrent: int = 1, past_wall_s: float | None = None,
                   threads: int | None = None) -> ThreadChoice:
    """The thread count for one cell run now, in this process, beside ``concurrent - 1``
    other cells of the same run (see the module docstring); ``threads`` is ``--threads``."""
    concurrent = max(1, concurrent)
    cores = available_cores()
    explicit = _explicit(threads)
    if explicit is not None:
        return ThreadChoice(explicit[0], explicit[1], cores, None, concurrent)
    share = max(1, cores // concurrent)
    if past_wall_s is not None and past_wall_s < SMALL_CELL_S:
        return ThreadChoice(1, "auto (small cell)", cores, None, concurrent)
    free = _PROBE.free(cores) if share > 1 else None
    threads = share if free is None else min(share, max(1, int(free + 0.5)))
    return ThreadChoice(threads, "auto", cores, free, concurrent)


def apply_threads(choice: ThreadChoice) -> None:
    """Set torch's intra-op thread count (and inter-op count, which torch accepts only once
    per process, before any parallel work), and the same count for numpy's BLAS (OpenBLAS,
    MKL: by default every core, spinning against the cells beside it)."""
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=choice.threads, user_api="blas")
    global _interop_set
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    if not _interop_set:
        _interop_set = True
        with suppress(RuntimeError):  # parallel work has started: torch keeps its value
            torch.set_num_interop_threads(max(1, choice.threads))


def worker_environment(threads: int | None = None) -> dict[str, str]:
    """Variables for processes the runner starts (pool and Dask workers, the timeout worker):
    a passive OpenMP wait policy (threads sleep at barriers rather than spin against other
    processes) unless the user chose one, and ``--threads`` when given."""
    env = {}
    if "OMP_WAIT_POLICY" not in os.environ:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if threads is not None:
        env[ENV_THREADS] = str(threads)
    return env


@contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``extra`` while worker processes (or the server they are forked from)
    start: they copy it."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
