"""History across run records: verdicts and wall times per task, per cell, per commit and machine.

Every function here is a pure function of the list returned by
:func:`theorybench.results.load_records` (oldest first). A **series** is the runs of one task
under one profile, in the order they started; a run's **status** is its verdict, with
", control missed" when a control missed its required decision, and it **changed** when it differs
from the status of the previous run of the same series. A run's **machine** is a label built
from its recorded environment (device, architecture, cores, torch threads), so timings from
different machines are never mistaken for a regression.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from theorybench.numbers import as_number
from theorybench.status import control_ok, headline, record_purpose

RUN_COLUMNS = [
    "run_id", "task_id", "profile", "family", "title", "suite", "started", "verdict", "status",
    "previous_verdict", "previous_controls_ok", "previous_status", "changed", "expected_verdict",
    "validated", "controls_ok", "purpose", "rule", "effect", "ci_low", "ci_high", "wall_s",
    "commit", "machine", "n_seeds",
]
CELL_COLUMNS = [
    "run_id", "task_id", "profile", "started", "commit", "machine", "arm", "cell", "point",
    "wall_s", "error",
]


def commit_label(environment: dict[str, Any]) -> str:
    """The short git commit of a run, ``+`` when tracked files differed from it."""
    commit = environment.get("git_commit")
    if not commit:
        return "no commit"
    return str(commit)[:10] + ("+" if environment.get("git_dirty") else "")


def machine_label(environment: dict[str, Any]) -> str:
    """Device, architecture, cores and torch threads of the machine a run used."""
    parts = [
        str(environment.get("device") or "?"),
        str(environment.get("machine") or "?"),
        f"{environment.get('cpu_count', '?')} cores",
        f"{environment.get('torch_threads', '?')} threads",
    ]
    return " · ".join(parts)


def status(verdict: str, controls_ok: bool) -> str:
    """The verdict, with ", control missed" when a control missed its required decision."""
    return verdict if controls_ok else f"{verdict}, control missed"


def controls_ok(record: dict[str, Any]) -> bool:
    """Every control of ``record`` got its required decision (on the rule it breaks)."""
    controls = record.get("controls")
    if controls is None:
        return bool(record.get("validated", True))
    return all(control_ok(c) for c in controls)


def series_key(record: dict[str, Any]) -> tuple[str, str]:
    return str(record["task_id"]), str(record["profile"])


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record, oldest first, with the claim's first rule's effect and interval and
    whether the status changed since the previous run of the same task and profile."""
    rows = []
    previous: dict[tuple[str, str], tuple[str, bool]] = {}
    for rec in records:
        key = series_key(rec)
        first = headline(rec)
        env = rec.get("environment") or {}
        before = previous.get(key)
        verdict, ok = str(rec.get("verdict")), controls_ok(rec)
        rows.append({
            "run_id": rec.get("run_id"), "task_id": key[0], "profile": key[1],
            "family": rec.get("family"), "title": rec.get("title"), "suite": rec.get("suite"),
            "started": rec.get("started"), "verdict": verdict,
            "status": status(verdict, ok),
            "previous_verdict": before[0] if before else None,
            "previous_controls_ok": before[1] if before else None,
            "previous_status": status(*before) if before else None,
            "changed": before is not None and before != (verdict, ok),
            "expected_verdict": rec.get("expected_verdict"),
            "validated": bool(rec.get("validated")), "controls_ok": ok,
            "purpose": record_purpose(rec),
            "rule": first.get("rule"),
            "effect": as_number(first.get("effect")), "ci_low": as_number(first.get("ci_low")),
            "ci_high": as_number(first.get("ci_high")), "wall_s": as_number(rec.get("wall_s")),
            "commit": commit_label(env), "machine": machine_label(env),
            "n_seeds": len(rec.get("seeds") or []),
        })
        previous[key] = (verdict, ok)
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def point_label(params: dict[str, Any]) -> str:
    """A cell's swept values as ``name=value, ...`` (``-`` when nothing is swept)."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def cell_timings(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (record, cell): the cell's arm, swept values and wall time."""
    rows = []
    for rec in records:
        env = rec.get("environment") or {}
        task_id, profile = series_key(rec)
        for cell in rec.get("cells") or []:
            rows.append({
                "run_id": rec.get("run_id"), "task_id": task_id, "profile": profile,
                "started": rec.get("started"), "commit": commit_label(env),
                "machine": machine_label(env), "arm": cell.get("arm"), "cell": cell.get("index"),
                "point": point_label(cell.get("params") or {}),
                "wall_s": as_number(cell.get("wall_s")), "error": cell.get("error"),
            })
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def latest_records(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The most recent record of each (task, profile), in order of task id then profile."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        latest[series_key(rec)] = rec
    return dict(sorted(latest.items()))


def by_series(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The rows of ``frame`` (runs or cells) of each task and profile, in their order."""
    return {(str(task_id), str(profile)): rows.reset_index(drop=True)
            for (task_id, profile), rows in frame.groupby(["task_id", "profile"], sort=False)}


def cell_history(cells: pd.DataFrame, last: int = 8) -> tuple[list[str],
                                                            dict[tuple[Any, Any, Any],
                                                                 list[float]]]:
    """Wall time of each cell in each of the ``last`` runs of one series' ``cells``: the runs'
    labels (start time, commit and machine; oldest first) and, per cell (arm, cell index, swept
    values), its wall time in each run (NaN where it has none). Cells are ordered by arm, then
    cell index, then swept values, each in order of first appearance. A run or cell without any
    wall time is left out."""
    runs = cells.drop_duplicates("run_id").tail(last)
    keep = set(runs["run_id"])
    values: dict[tuple[Any, Any, Any], dict[Any, float]] = {}
    first: tuple[dict[Any, int], ...] = ({}, {}, {})  # per key part: value -> rank
    columns = ("arm", "cell", "point", "run_id", "wall_s")
    for arm, cell, point, run_id, wall in zip(*(cells[c].tolist() for c in columns),
                                              strict=True):
        if run_id not in keep:
            continue
        for ranks, part in zip(first, (arm, cell, point), strict=True):
            ranks.setdefault(part, len(ranks))
        if wall == wall:  # NaN is no wall time
            values.setdefault((arm, cell, point), {}).setdefault(run_id, wall)
    order = sorted(values, key=lambda k: tuple(r[p] for r, p in zip(first, k, strict=True)))
    timed = [(run_id, f"{started} · {commit} · {machine}") for run_id, started, commit, machine
             in zip(*(runs[c].tolist() for c in ("run_id", "started", "commit", "machine")),
                    strict=True)
             if any(run_id in v for v in values.values())]
    return [label for _, label in timed], {
        cell: [values[cell].get(run_id, float("nan")) for run_id, _ in timed] for cell in order}


def wall_time_by_commit(runs: pd.DataFrame, last: int = 10) -> pd.DataFrame:
    """Wall time of each (task, profile) (rows) under the ``last`` (commit, machine) pairs
    (columns, in order of their first run); the latest run of a pair counts."""
    if runs.empty:
        return pd.DataFrame()
    groups = runs.drop_duplicates(["commit", "machine"])[["commit", "machine"]].tail(last)
    keep = runs.merge(groups, on=["commit", "machine"])
    keep = keep.assign(group=keep["commit"] + " · " + keep["machine"])
    table = keep.pivot_table(index=["task_id", "profile"], columns="group", values="wall_s",
                             aggfunc="last", sort=False)
    order = [f"{g.commit} · {g.machine}" for g in groups.itertuples()]
    return table[[c for c in order if c in table.columns]].sort_index()
