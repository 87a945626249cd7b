"""What happens where a cell runs (this process, a pool worker or a Dask worker): resolve the
device, look the cell up in the cache, choose and set the thread count, run the kind, check its
table, store it in the cache.

:class:`CellOptions` is the same for every cell of a run and travels with the cell to the worker
(it is small and picklable); the executor's ``concurrent`` goes into it for the thread policy.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

import pandas as pd

from theorybench import registry
from theorybench.cache import CellCache, Entry, cell_key, shape_key
from theorybench.device import device_name, resolve_device, seed_everything
from theorybench.registry import get_experiment
from theorybench.threads import apply_threads, choose_threads


@dataclass(frozen=True)
class CellOptions:
    cache_dir: str | None = None  # None: no cache
    concurrent: int = 1  # cells of this run running side by side
    threads: int | None = None  # --threads (explicit: wins over the policy)
    modules: tuple[str, ...] = ()  # modules registering the kinds (imported on the worker)
    include: tuple[str, ...] = ()  # plug-in folders (--include), imported on the worker


class CellLike(Protocol):
    task_id: str
    arm: str
    index: int
    kind: str
    params: dict[str, Any]
    seeds: tuple[int, ...]
    device: str


@dataclass
class Ran:
    table: pd.DataFrame
    wall_s: float
    device: str
    cached: bool
    threads: dict[str, Any] | None


def kind_modules(kinds: set[str]) -> tuple[str, ...]:
    """Importable modules outside ``theorybench.experiments`` that register ``kinds`` (tests,
    plug-ins): a worker imports them before looking a kind up. Kinds of ``--include`` folders
    reach the worker through :attr:`CellOptions.include` instead."""
    names = {get_experiment(k).fn.__module__ for k in kinds}
    return tuple(sorted(n for n in names if not n.startswith(("theorybench.experiments",
                                                              registry.INCLUDE_PREFIX))))


def guard_seed(cell: CellLike) -> int:
    return zlib.crc32(f"{cell.task_id}/{cell.arm}/{cell.index}".encode())


def execute(cell: CellLike, options: CellOptions) -> Ran:
    """Run ``cell`` (or take it from the cache); raises on any failure of the kind."""
    start = perf_counter()
    registry.include(options.include)
    for module in options.modules:
        importlib.import_module(module)
    kind = get_experiment(cell.kind)
    dev = resolve_device(cell.device)
    cache = CellCache(options.cache_dir) if options.cache_dir else None
    key = (cell_key(cell.kind, cell.params, cell.seeds, dev.type)
           if cache else None)
    if cache and key:
        entry = cache.get(key)
        if entry is not None:
            return Ran(entry.table, entry.wall_s, entry.device, True, None)
    past = cache.past_wall(shape_key(cell.kind, cell.params, cell.seeds, dev.type)) \
        if cache else None
    choice = choose_threads(options.concurrent, past, options.threads)
    apply_threads(choice)
    seed_everything(guard_seed(cell))
    table = kind(cell.params, cell.seeds, dev)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"experiment {cell.kind!r} returned {type(table).__name__}, "
                        "expected a pandas DataFrame")
    missing = [c for c in ("seed", *kind.columns) if c not in table.columns]
    if missing:
        raise ValueError(f"experiment {cell.kind!r} returned no column {missing}")
    wall = perf_counter() - start
    name = device_name(dev)
    if cache and key:
        cache.put(key, Entry(table, wall, name, cell.kind),
                  shape_key(cell.kind, cell.params, cell.seeds, dev.type))
    return Ran(table, wall, name, False, choice.to_dict())


def past_walls(cells: list[Any], options: CellOptions) -> list[float | None]:
    """Each cell's expected wall time from the cache: 0 when the cache holds the cell, its
    size's last wall time, or None (unknown, or the cache is off). ``auto`` is resolved on this
    machine, which for a remote cluster is only a guess."""
    if not options.cache_dir:
        return [None] * len(cells)
    cache = CellCache(options.cache_dir)
    out: list[float | None] = []
    for cell in cells:
        try:
            dev = resolve_device(cell.device).type
            if cache.has(cell_key(cell.kind, cell.params, cell.seeds, dev)):
                out.append(0.0)
                continue
        except ValueError:
            dev = cell.device
        out.append(cache.past_wall(shape_key(cell.kind, cell.params, cell.seeds, dev)))
    return out


def published_walls(task: Any, profile: str, cells: list[Any]) -> list[float | None]:
    """Each cell's wall time in the record the spec publishes for ``profile``
    (``expected_verdict.<profile>.record`` in ``results/runs/``), matched by arm and cell index
    when that record has the same cells and as many seeds; None where there is no such record."""
    from theorybench.paths import runs_dir
    from theorybench.results import read_record

    expected = task.spec.expected_verdict.get(profile)
    found = sorted(runs_dir().glob(f"*_{task.spec.id.replace('/', '__')}_"
                                   f"{expected.record[:8]}.json")) if expected else []
    try:
        record = read_record(found[-1]) if found else None
    except (OSError, ValueError):
        record = None
    if not record or len(record.get("cells", [])) != len(cells):
        return [None] * len(cells)
    walls = {(c["arm"], c["index"]): (c["wall_s"], len(c.get("seeds", ())))
             for c in record["cells"]}
    out: list[float | None] = []
    for cell in cells:
        wall, n_seeds = walls.get((cell.arm, cell.index), (None, 0))
        out.append(wall if n_seeds == len(cell.seeds) else None)
    return out


def expected_walls(task: Any, profile: str, cells: list[Any],
                   options: CellOptions) -> list[float | None]:
    """Each cell's expected wall time, for scheduling and the ETA: the cache's
    (:func:`past_walls`: 0 for a cell it holds), else the published record's
    (:func:`published_walls`), else None."""
    past = past_walls(cells, options)
    if all(p is not None for p in past):
        return past
    published = published_walls(task, profile, cells)
    return [p if p is not None else q for p, q in zip(past, published, strict=True)]
