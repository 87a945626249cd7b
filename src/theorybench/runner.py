"""From a task spec to a run record: resolve the profile, expand cells, execute them, build the
measurement table, apply the decision rules, write the record.

A **cell** is one point of an arm's sweep with all its seeds: a pure, picklable call of an
experiment kind. The **measurement table** stacks every cell's rows with the columns ``arm``
(``claim`` or a control's name), ``cell``, ``seed``, the swept parameters, and the kind's own
columns. A cell that raises makes the task's verdict ``error`` (with the message recorded); other
tasks of the suite still run, and records already written are left as they are.
"""

from __future__ import annotations

import json
import os
import traceback
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd
import torch

from theorybench import cellrun, registry
from theorybench.device import resolve_device
from theorybench.executors import Executor, LocalExecutor
from theorybench.judging import JudgmentCache, judge_arm, table_digest
from theorybench.registry import get_experiment
from theorybench.results import (
    ArmResult,
    CellTiming,
    RunRecord,
    environment,
    now_iso,
    table_to_json,
    write_record,
)
from theorybench.spec import LoadedTask, ResolvedArm, resolve
from theorybench.specstore import save_snapshot
from theorybench.status import purpose_of, statuses


@dataclass(frozen=True)
class Cell:
    task_id: str
    arm: str
    index: int
    kind: str
    params: dict[str, Any]
    point: dict[str, Any]
    seeds: tuple[int, ...]
    device: str  # as asked for (``auto`` resolves where the cell runs)


@dataclass
class CellOutput:
    cell: Cell
    table: pd.DataFrame | None
    wall_s: float
    error: str | None = None
    device: str | None = None  # the device it ran on (GPU model for CUDA)
    cached: bool = False  # taken from the cell cache (wall_s is the original run's)
    threads: dict[str, Any] | None = None  # the thread policy's choice (threads.ThreadChoice)


@dataclass
class TaskOutcome:
    record: RunRecord
    path: Path | None
    arms: dict[str, pd.DataFrame] = field(default_factory=dict)


def expand(task_id: str, arms: list[ResolvedArm], device: str,
           data_root: str | None = None, dry_run: bool = False) -> list[Cell]:
    """One cell per arm and sweep point. ``data_root`` fills the parameters a kind's params
    model marks as its data root (``dryrun.data_root_fields``), where the spec leaves them unset.
    ``dry_run`` caps each cell's sizes (``dryrun.cap_params``)."""
    from theorybench.dryrun import cap_params, fill_data_root

    cells = []
    for arm in arms:
        model = get_experiment(arm.kind).params
        for params in arm.grid():
            if data_root:
                fill_data_root(model, params, data_root)
            if dry_run:
                params = cap_params(model, params)
            point = {name: _get_path(params, name) for name in arm.sweep}
            cells.append(Cell(task_id, arm.name, len(cells), arm.kind, params, point,
                              arm.seeds, device))
    return cells


def _get_path(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for key in dotted.split("."):
        node = node[key]
    return node


def _short_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
    return f"{type(exc).__name__}: {exc} (at {where})"


def run_cell(cell: Cell, options: cellrun.CellOptions | None = None) -> CellOutput:
    """Run one cell where it is called (the device, thread count and cache lookup are decided
    here); never raises (an exception becomes the output's ``error``)."""
    start = perf_counter()
    try:
        ran = cellrun.execute(cell, options or cellrun.CellOptions())
        return CellOutput(cell, _labelled(cell, ran.table), ran.wall_s, None, ran.device,
                          ran.cached, ran.threads)
    except Exception as exc:  # noqa: BLE001  (any failure of user code becomes a recorded error)
        return CellOutput(cell, None, perf_counter() - start, _short_error(exc))


def _labelled(cell: Cell, rows: pd.DataFrame) -> pd.DataFrame:
    """The kind's rows with the cell's ``arm``, ``cell`` and sweep-point columns in front."""
    table = rows.copy()
    for pos, (name, value) in enumerate(cell.point.items()):
        table.insert(pos, name, value if not isinstance(value, list | dict) else str(value))
    table.insert(0, "cell", cell.index)
    table.insert(0, "arm", cell.arm)
    return table


def _same_computation(cell: Cell) -> str:
    """Cells with equal keys compute the same rows (a control that reads the claim's own run)."""
    return json.dumps([cell.kind, cell.params, cell.seeds, cell.device], sort_keys=True,
                      default=str)


def _shared(out: CellOutput, cell: Cell) -> CellOutput:
    """``out``, computed for an identical cell of the same run, as ``cell``'s output: marked as
    cached (as the cell cache would have answered it), with the computation's wall time."""
    rows = None if out.table is None else out.table.iloc[:, 2 + len(out.cell.point):]
    return CellOutput(cell, None if rows is None else _labelled(cell, rows), out.wall_s,
                      out.error, out.device, True, None)


def _failed_cell(cell: Cell, message: str) -> CellOutput:
    return CellOutput(cell, None, 0.0, message)


def _devices(outputs: list[CellOutput], asked: str) -> str:
    """The device(s) the cells ran on, e.g. ``cpu`` or ``NVIDIA A100 (3), cpu (1)``; the asked
    device when no cell reported one."""
    counts: dict[str, int] = {}
    for out in outputs:
        if out.device:
            counts[out.device] = counts.get(out.device, 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), asked)
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))


def spec_path(task: LoadedTask) -> str:
    """The spec file relative to the task root: ``<family>/<claim>.yaml``."""
    return f"{task.path.parent.name}/{task.path.name}"


def write_with_spec(record: RunRecord, task: LoadedTask, folder: Path | None = None,
                    data: dict[str, Any] | None = None) -> Path:
    """Write ``record`` (``data``: its :meth:`~RunRecord.to_dict`, when the caller has it) and,
    when absent, its spec's snapshot beside it (:mod:`specstore`)."""
    path = write_record(record, folder, data)
    save_snapshot(task, path.parent)
    return path


ProgressFn = Callable[[CellOutput, int, int], None]
PlanFn = Callable[[list[Cell], list[float | None]], None]


@dataclass
class PlannedTask:
    """A task ready to run: its resolved arms, its cells and how to record it."""

    task: LoadedTask
    profile: str
    arms: list[ResolvedArm]
    cells: list[Cell]
    options: cellrun.CellOptions
    timeout: float | None
    device: str
    suite: str | None = None
    results_dir: Path | None = None
    write: bool = True
    dry_run: bool = False
    started: str = field(default_factory=now_iso)
    t0: float = field(default_factory=perf_counter)


def plan_task(
    task: LoadedTask,
    profile: str,
    *,
    device: str = "auto",
    seeds: int | None = None,
    suite: str | None = None,
    concurrent: int = 1,
    results_dir: Path | None = None,
    write: bool = True,
    data_root: str | None = None,
    seed_offset: int | None = None,
    cache_dir: Path | str | None = None,
    threads: int | None = None,
    cell_timeout: float | None = None,
    dry_run: bool = False,
) -> PlannedTask:
    """Resolve ``task`` under ``profile`` into its cells (the arguments as for
    :func:`run_task`; ``concurrent`` is how many cells the executor runs side by side)."""
    arms = resolve(task, profile, seeds, seed_offset)
    cells = expand(task.spec.id, arms, device,
                   data_root or os.environ.get("THEORYBENCH_DATA_ROOT"), dry_run)
    options = cellrun.CellOptions(str(cache_dir) if cache_dir else None, concurrent, threads,
                                  cellrun.kind_modules({arm.kind for arm in arms}),
                                  registry.included())
    timeout = cell_timeout or getattr(task.spec.experiment, "cell_timeout_s", None)
    return PlannedTask(task, profile, arms, cells, options, timeout, device, suite,
                       results_dir, write, dry_run)


def run_task(
    task: LoadedTask,
    profile: str,
    *,
    executor: Executor | None = None,
    on_cell: ProgressFn | None = None,
    on_plan: PlanFn | None = None,
    **plan: Any,
) -> TaskOutcome:
    """Run every arm of ``task`` under ``profile`` and write its record (unless ``write`` is
    false); ``plan`` are :func:`plan_task`'s keyword arguments but ``concurrent`` (the
    executor's). Never raises for a failing experiment: the verdict becomes ``error``.
    ``data_root`` (default ``$THEORYBENCH_DATA_ROOT``) is where local torchvision data sets
    are. ``cache_dir`` turns the cell cache on (``cache.py``; off by default here, on by default
    in the CLI). ``threads`` overrides the thread policy (``threads.py``). ``cell_timeout``
    (default: the spec's ``experiment.cell_timeout_s``) turns a cell past it into an error.
    ``dry_run`` caps every cell's sizes (``dryrun.py``) to run each code path once.
    ``on_plan(cells, expected_wall_s)`` is called before the cells run (for an ETA).
    ``seed_offset`` moves the seed block off the published one (a pilot or a replication: see
    :mod:`theorybench.status`)."""
    own_executor = executor is None
    executor = executor or LocalExecutor()
    device = plan.get("device", "auto")
    if device != "auto" and getattr(executor, "local", True):
        resolve_device(device)  # a clear error here for a device this machine lacks
    planned = plan_task(task, profile, concurrent=getattr(executor, "concurrent", 1), **plan)
    if on_plan:
        on_plan(planned.cells, cellrun.expected_walls(task, profile, planned.cells,
                                                      planned.options))
    outputs: list[CellOutput] = []
    try:
        for out in executor.map(partial(run_cell, options=planned.options), planned.cells,
                                timeout=planned.timeout, on_failure=_failed_cell):
            outputs.append(out)
            if on_cell:
                on_cell(out, len(outputs), len(planned.cells))
    finally:
        if own_executor:
            executor.close()
    return finish_task(planned, outputs, type(executor).__name__)


def _run_numbered(item: tuple[int, Cell], options: cellrun.CellOptions
                  ) -> tuple[int, CellOutput]:
    return item[0], run_cell(item[1], options)


def _failed_numbered(item: tuple[int, Cell], message: str) -> tuple[int, CellOutput]:
    return item[0], _failed_cell(item[1], message)


def run_tasks(planned: list[PlannedTask], executor: Executor,
              on_cell: Callable[[PlannedTask, CellOutput], None] | None = None,
              on_plan: PlanFn | None = None) -> Iterator[TaskOutcome]:
    """Run several planned tasks through one executor, the cells of all of them side by side,
    longest first (:func:`cellrun.expected_walls`: so that the workers finish together), and
    yield each task's outcome as soon as its last cell is back (in that order, not the order
    given). A suite run this way keeps every worker busy across task boundaries; each task's
    record is the same as :func:`run_task`'s (its ``wall_s`` runs from the suite's start to
    its last cell). Identical cells (same kind, parameters, seeds and device: a control that
    reads the claim's own run) are computed once; the others are marked as cached, as the cell
    cache marks them. Work known to be smaller than starting a local pool's workers runs in
    process (:func:`_quickest`). ``on_plan(cells, expected_wall_s)`` is called once before the
    cells run (for an ETA); ``on_cell(task, output)`` sees every finished cell."""
    options = cellrun.CellOptions(
        planned[0].options.cache_dir, getattr(executor, "concurrent", 1),
        planned[0].options.threads,
        tuple(sorted({m for p in planned for m in p.options.modules})),
        registry.included()) if planned else cellrun.CellOptions()
    items = [(k, cell) for k, p in enumerate(planned) for cell in p.cells]
    expected = [w for p in planned for w in cellrun.expected_walls(p.task, p.profile, p.cells,
                                                                     p.options)]
    if on_plan:
        on_plan([cell for _, cell in items], expected)
    same: dict[str, list[int]] = {}  # identical cells, computed once (longest first)
    for i in sorted(range(len(items)), key=lambda i: -(expected[i] or 0.0)):
        same.setdefault(_same_computation(items[i][1]), []).append(i)
    outputs: list[list[CellOutput]] = [[] for _ in planned]
    for p in planned:
        if not p.cells:
            yield finish_task(p, [], type(executor).__name__)
    unique = [(group[0], items[group[0]][1]) for group in same.values()]
    runner = _quickest(executor, [expected[i] for i, _ in unique])
    for i, out in runner.map(partial(_run_numbered, options=options), unique,
                             timeout=lambda item: planned[items[item[0]][0]].timeout,
                             on_failure=_failed_numbered):
        for j in same[_same_computation(items[i][1])]:
            k, cell = items[j]
            outputs[k].append(out if j == i else _shared(out, cell))
            if on_cell:
                on_cell(planned[k], outputs[k][-1])
            if len(outputs[k]) == len(planned[k].cells):
                yield finish_task(planned[k], outputs[k], type(executor).__name__)


WORKER_START_S = 4.0
"""About what starting a worker process costs (importing torch and the experiments) on a small
CPU; work expected to take less than this runs in the launching process instead."""


def _quickest(executor: Executor, expected: list[float | None]) -> Executor:
    """``executor``, or a one-job (in-process) executor of the same threads when it is a local
    pool and the work is known to be smaller than starting its workers (a tiny task, or a
    suite whose cells the cache holds)."""
    if (isinstance(executor, LocalExecutor) and executor.jobs > 1
            and all(w is not None for w in expected)
            and sum(w or 0.0 for w in expected) < WORKER_START_S):
        return LocalExecutor(1, executor.threads)
    return executor


def finish_task(planned: PlannedTask, outputs: list[CellOutput], executor_name: str
                ) -> TaskOutcome:
    """Judge a task's finished cells and build (and write, unless ``planned.write`` is false)
    its record."""
    task, profile, arms, device = planned.task, planned.profile, planned.arms, planned.device
    outputs = sorted(outputs, key=lambda o: o.cell.index)

    errors = [f"{o.cell.arm} cell {o.cell.index} {o.cell.point}: {o.error}"
              for o in outputs if o.error]
    tables = [o.table for o in outputs if o.table is not None]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    rule_seed = zlib.crc32(task.spec.id.encode())
    store = JudgmentCache(planned.options.cache_dir) if planned.options.cache_dir else None
    digest = table_digest(table) if store is not None and not errors else None
    judged = []
    reused = 0
    nonfinite: dict[str, dict[str, Any]] = {}
    by_arm: dict[str, pd.DataFrame] = {}
    for arm in arms:
        if errors:
            judged.append(ArmResult(arm.name, "error", arm.required_verdict, [], errors[0]))
            continue
        rows = table[table["arm"] == arm.name].reset_index(drop=True)
        by_arm[arm.name] = rows
        result, found, from_store = judge_arm(
            arm, rows, get_experiment(arm.kind).columns,
            task.spec.experiment.divergence_tolerance, rule_seed, store, digest)
        judged.append(result)
        reused += from_store
        if found.diverged_seeds:
            nonfinite[arm.name] = found.to_dict()
    claim, controls = judged[0], judged[1:]
    error = errors[0] if errors else next((a.error for a in judged if a.error), None)
    verdict = "error" if claim.verdict == "error" or errors else claim.verdict
    published = resolve(task, profile)[0].seeds
    purpose = purpose_of(arms[0].seeds[0], len(arms[0].seeds), published[0], len(published))
    expected = task.spec.expected_verdict.get(profile)  # type: ignore[call-overload]
    record = RunRecord(
        run_id=uuid.uuid4().hex,
        suite=planned.suite,
        task_id=task.spec.id,
        task_version=task.spec.version,
        title=task.spec.title,
        family=task.spec.family,
        tags=list(task.spec.tags),
        spec_path=spec_path(task),
        spec_sha256=task.sha256,
        profile=profile,
        expected_verdict=expected.verdict if expected else None,
        verdict=verdict,
        validated=verdict == "holds" and all(c.as_required for c in controls),
        claim=claim,
        controls=controls,
        error=error,
        seeds=list(arms[0].seeds),
        device=_devices(outputs, device),
        started=planned.started,
        finished=now_iso(),
        wall_s=perf_counter() - planned.t0,
        cells=[CellTiming(o.cell.arm, o.cell.index, o.cell.point, list(o.cell.seeds), o.wall_s,
                          0 if o.table is None else len(o.table), o.error, o.device, o.cached,
                          o.threads) for o in outputs],
        table=table_to_json(table),
        environment=environment(_devices(outputs, device)) | {
            "torch_threads": torch.get_num_threads(),
            "executor": executor_name, "dry_run": planned.dry_run,
            "judgments_reused": reused},
        purpose=purpose,
        seed_offset=arms[0].seeds[0],
        expected_record=expected.record if expected else None,
        out_of_regime=task.spec.out_of_regime,
        paper_regime=task.spec.paper_regime,
        nonfinite=nonfinite,
    )
    data = record.to_dict()
    record.statuses = data["statuses"] = statuses(data, expected is not None)
    path = write_with_spec(record, task, planned.results_dir, data) if planned.write else None
    return TaskOutcome(record, path, by_arm)
