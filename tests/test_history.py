"""History over run records: verdict changes per (task, profile), timings per cell, commit and
machine."""

from __future__ import annotations

import math
from typing import Any

from theorybench.leaderboard.history import (
    by_series,
    cell_history,
    cell_timings,
    commit_label,
    latest_records,
    machine_label,
    runs_frame,
    wall_time_by_commit,
)


def record(task: str, verdict: str, day: int, *, profile: str = "smoke", commit: str = "c1",
           cores: int = 2, wall: float = 10.0) -> dict[str, Any]:
    return {
        "run_id": f"{task}-{profile}-{day}", "task_id": task, "profile": profile,
        "family": task.split("/")[0], "title": task, "suite": "smoke",
        "started": f"2026-01-{day:02d}T00:00:00+00:00", "verdict": verdict,
        "expected_verdict": "holds", "validated": True, "seeds": [0, 1, 2],
        "claim": {"rules": [{"rule": "trend", "effect": 0.5, "ci_low": 0.1, "ci_high": "inf"}]},
        "wall_s": wall,
        "environment": {"git_commit": commit, "git_dirty": False, "device": "cpu",
                        "machine": "x86_64", "cpu_count": cores, "torch_threads": cores},
        "cells": [{"arm": "claim", "index": i, "params": {"depth": d}, "wall_s": wall / 2,
                   "error": None} for i, d in enumerate((2, 4))],
    }


RECORDS = [
    record("f/a", "holds", 1, commit="c1"),
    record("f/a", "holds", 2, profile="standard"),
    record("f/b", "refuted", 2, commit="c1"),
    record("f/a", "refuted", 3, commit="c2", wall=12.0),
    record("f/a", "refuted", 4, commit="c3"),
    record("f/a", "holds", 5, commit="c3", cores=8, wall=4.0),
]


def test_a_verdict_change_is_flagged_against_the_previous_run_of_the_same_series():
    runs = by_series(runs_frame(RECORDS))
    assert list(runs) == [("f/a", "smoke"), ("f/a", "standard"), ("f/b", "smoke")]
    a = runs[("f/a", "smoke")]
    assert list(a["verdict"]) == ["holds", "refuted", "refuted", "holds"]
    assert list(a["changed"]) == [False, True, False, True]
    assert list(a["previous_verdict"].fillna("-")) == ["-", "holds", "refuted", "refuted"]
    assert not runs[("f/a", "standard")]["changed"].any()  # profiles are separate series
    assert not runs[("f/b", "smoke")]["changed"].any()


def test_losing_a_control_is_a_change_too():
    missed = record("f/a", "holds", 6) | {"controls": [
        {"name": "c", "verdict": "holds", "required_verdict": "refuted"}]}
    a = by_series(runs_frame([*RECORDS, missed]))[("f/a", "smoke")]
    assert a["changed"].iloc[-1] and a["status"].iloc[-1] == "holds, control missed"
    assert a["previous_status"].iloc[-1] == "holds"


def test_runs_frame_reads_effects_including_infinite_bounds():
    runs = runs_frame(RECORDS)
    assert runs["effect"].iloc[0] == 0.5 and math.isinf(runs["ci_high"].iloc[0])
    assert runs["n_seeds"].iloc[0] == 3


def test_latest_record_per_task_and_profile():
    latest = latest_records(RECORDS)
    assert list(latest) == [("f/a", "smoke"), ("f/a", "standard"), ("f/b", "smoke")]
    assert latest[("f/a", "smoke")]["started"].startswith("2026-01-05")


def test_cell_timings_and_cell_history():
    cells = cell_timings(RECORDS)
    assert len(cells) == 2 * len(RECORDS)
    columns, table = cell_history(by_series(cells)[("f/a", "smoke")], last=3)
    assert len(columns) == 3  # the last three runs
    assert [p for _, _, p in table] == ["depth=2", "depth=4"]  # two cells
    assert table[("claim", 0, "depth=2")] == [6.0, 5.0, 2.0]
    assert "8 cores" in columns[-1]
    assert cell_history(cells.iloc[:0]) == ([], {})


def test_wall_time_by_commit_keeps_machines_apart():
    table = wall_time_by_commit(runs_frame(RECORDS))
    columns = list(table.columns)  # one per (commit, machine), in order of first run
    assert [c.split(" · ")[0] for c in columns] == ["c1", "c2", "c3", "c3"]
    assert "2 cores" in columns[2] and "8 cores" in columns[3]
    assert list(table.index) == [("f/a", "smoke"), ("f/a", "standard"), ("f/b", "smoke")]
    assert table.loc[("f/a", "smoke")].dropna().tolist() == [10.0, 12.0, 10.0, 4.0]


def test_labels():
    assert commit_label({"git_commit": "0123456789abcdef", "git_dirty": True}) == "0123456789+"
    assert commit_label({}) == "no commit"
    assert machine_label({"device": "cpu", "machine": "x86_64", "cpu_count": 2,
                          "torch_threads": 1}) == "cpu · x86_64 · 2 cores · 1 threads"
