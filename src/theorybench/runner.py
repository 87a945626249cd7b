"""From a task spec to a run record: resolve the profile, expand cells, execute them, build the
measurement table, apply the decision rules, write the record.

A **cell** is one point of an arm's sweep with all its seeds: a pure, picklable call of an
experiment kind. The **measurement table** stacks every cell's rows with the columns ``arm``
(``claim`` or a control's name), ``cell``, ``seed``, the swept parameters, and the kind's own
columns. A cell that raises makes the task's verdict ``error`` (with the message recorded); other
tasks of the suite still run, and records already written are left as they are.
"""

from __future__ import annotations

import os
import traceback
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd
import torch

from theorybench import divergence
from theorybench.device import device_name, resolve_device, seed_everything
from theorybench.executors import Executor, LocalExecutor
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
from theorybench.status import purpose_of, statuses
from theorybench.verdict import RuleError, combine, evaluate


@dataclass(frozen=True)
class Cell:
    task_id: str
    arm: str
    index: int
    kind: str
    params: dict[str, Any]
    point: dict[str, Any]
    seeds: tuple[int, ...]
    device: str


@dataclass
class CellOutput:
    cell: Cell
    table: pd.DataFrame | None
    wall_s: float
    error: str | None = None


@dataclass
class TaskOutcome:
    record: RunRecord
    path: Path | None
    arms: dict[str, pd.DataFrame] = field(default_factory=dict)


def expand(task_id: str, arms: list[ResolvedArm], device: str,
           data_root: str | None = None) -> list[Cell]:
    """One cell per arm and sweep point. ``data_root`` fills the ``data_root`` parameter of
    kinds that read torchvision data from a local folder, where the spec leaves it unset."""
    cells = []
    for arm in arms:
        takes_root = "data_root" in get_experiment(arm.kind).params.model_fields
        for params in arm.grid():
            if takes_root and data_root and not params.get("data_root"):
                params["data_root"] = data_root
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


def run_cell(cell: Cell) -> CellOutput:
    """Run one cell; never raises (an exception becomes the output's ``error``)."""
    start = perf_counter()
    try:
        kind = get_experiment(cell.kind)
        seed_everything(zlib.crc32(f"{cell.task_id}/{cell.arm}/{cell.index}".encode()))
        table = kind(cell.params, cell.seeds, resolve_device(cell.device))
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"experiment {cell.kind!r} returned {type(table).__name__}, "
                            "expected a pandas DataFrame")
        missing = [c for c in ("seed", *kind.columns) if c not in table.columns]
        if missing:
            raise ValueError(f"experiment {cell.kind!r} returned no column {missing}")
        table = table.copy()
        for pos, (name, value) in enumerate(cell.point.items()):
            table.insert(pos, name, value if not isinstance(value, list | dict) else str(value))
        table.insert(0, "cell", cell.index)
        table.insert(0, "arm", cell.arm)
        return CellOutput(cell, table, perf_counter() - start)
    except Exception as exc:  # noqa: BLE001  (any failure of user code becomes a recorded error)
        return CellOutput(cell, None, perf_counter() - start, _short_error(exc))


def _judge(arm: ResolvedArm, table: pd.DataFrame, seed: int) -> ArmResult:
    try:
        results = evaluate(arm.rules, table, seed)
    except (RuleError, ValueError, KeyError) as exc:
        return ArmResult(arm.name, "error", arm.required_verdict, [], f"rule: {exc}")
    # Each rule's statistics travel with the rule as specified, so a record stays readable
    # after its spec changes. A control is judged by the rule it is meant to break.
    broken = results[arm.breaks_at].decision if arm.breaks_at is not None else None
    return ArmResult(arm.name, combine(results), arm.required_verdict,
                     [r.to_dict() | {"spec": spec.model_dump(mode="json")}
                      for r, spec in zip(results, arm.rules, strict=True)],
                     breaks=arm.breaks, breaks_decision=broken)


ProgressFn = Callable[[CellOutput, int, int], None]


def run_task(
    task: LoadedTask,
    profile: str,
    *,
    device: str = "auto",
    seeds: int | None = None,
    suite: str | None = None,
    executor: Executor | None = None,
    results_dir: Path | None = None,
    write: bool = True,
    on_cell: ProgressFn | None = None,
    data_root: str | None = None,
    seed_offset: int | None = None,
) -> TaskOutcome:
    """Run every arm of ``task`` under ``profile`` and write its record (unless ``write`` is
    false). Never raises for a failing experiment: the verdict becomes ``error``.
    ``data_root`` (default ``$THEORYBENCH_DATA_ROOT``) is where local torchvision data sets
    are. ``seed_offset`` moves the seed block off the published one (a pilot or a replication:
    see :mod:`theorybench.status`)."""
    started, t0 = now_iso(), perf_counter()
    dev = resolve_device(device)
    arms = resolve(task, profile, seeds, seed_offset)
    cells = expand(task.spec.id, arms, dev.type,
                   data_root or os.environ.get("THEORYBENCH_DATA_ROOT"))
    executor = executor or LocalExecutor()
    outputs: list[CellOutput] = []
    for out in executor.map(run_cell, cells):
        outputs.append(out)
        if on_cell:
            on_cell(out, len(outputs), len(cells))

    errors = [f"{o.cell.arm} cell {o.cell.index} {o.cell.point}: {o.error}"
              for o in outputs if o.error]
    tables = [o.table for o in outputs if o.table is not None]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    rule_seed = zlib.crc32(task.spec.id.encode())
    judged = []
    nonfinite: dict[str, dict[str, Any]] = {}
    by_arm: dict[str, pd.DataFrame] = {}
    for arm in arms:
        if errors:
            judged.append(ArmResult(arm.name, "error", arm.required_verdict, [], errors[0]))
            continue
        rows = table[table["arm"] == arm.name].reset_index(drop=True)
        by_arm[arm.name] = rows
        result, found = divergence.guard(
            arm.name, arm.required_verdict, rows, get_experiment(arm.kind).columns, arm.rules,
            task.spec.experiment.divergence_tolerance,
            lambda arm=arm, rows=rows: _judge(arm, rows, rule_seed))
        judged.append(result)
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
        suite=suite,
        task_id=task.spec.id,
        task_version=task.spec.version,
        title=task.spec.title,
        family=task.spec.family,
        tags=list(task.spec.tags),
        spec_path=str(task.path),
        spec_sha256=task.sha256,
        profile=profile,
        expected_verdict=expected.verdict if expected else None,
        verdict=verdict,
        validated=verdict == "holds" and all(c.as_required for c in controls),
        claim=claim,
        controls=controls,
        error=error,
        seeds=list(arms[0].seeds),
        device=device_name(dev),
        started=started,
        finished=now_iso(),
        wall_s=perf_counter() - t0,
        cells=[CellTiming(o.cell.arm, o.cell.index, o.cell.point, list(o.cell.seeds), o.wall_s,
                          0 if o.table is None else len(o.table), o.error) for o in outputs],
        table=table_to_json(table),
        environment=environment(device_name(dev)) | {"torch_threads": torch.get_num_threads()},
        purpose=purpose,
        seed_offset=arms[0].seeds[0],
        expected_record=expected.record if expected else None,
        out_of_regime=task.spec.out_of_regime,
        paper_regime=task.spec.paper_regime,
        extra={"nonfinite": nonfinite} if nonfinite else {},
    )
    record.statuses = statuses(record.to_dict(), expected is not None)
    path = write_record(record, results_dir) if write else None
    return TaskOutcome(record, path, by_arm)
