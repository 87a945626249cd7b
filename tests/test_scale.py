"""Running at scale: the cell cache (keys, hits, no cached errors), the judgments made on cached
tables, resume after kill -9, per-cell time limits, devices and thread choices recorded per
cell, and the ETA."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict

from theorybench import judging, threads
from theorybench.cache import CellCache, cell_key, source_hash
from theorybench.executors import LocalExecutor
from theorybench.judging import JudgmentCache, judge_arm, judgment_key, table_digest
from theorybench.progress import Eta
from theorybench.registry import experiment
from theorybench.results import load_records, table_from_json
from theorybench.runner import plan_task, run_task, run_tasks
from theorybench.spec import load_task, resolve

LOG_ENV = "THEORYBENCH_TEST_CELL_LOG"


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float = 0.0
    sleep: float = 0.0
    fail: bool = False


@experiment("test_sleep", family="testing", params=SleepParams, columns=("y",),
            example={"x": 1.0})
def sleep_experiment(p: SleepParams, seeds, device) -> pd.DataFrame:
    """y = x + seed/10 after sleeping; each computed cell appends a line to $LOG_ENV (so tests
    can count computations; a test-only side effect)."""
    log = os.environ.get(LOG_ENV)
    if p.fail:
        raise RuntimeError("failed on purpose")
    time.sleep(p.sleep)
    if log:
        with open(log, "a") as handle:
            handle.write(f"{p.x}\n")
    return pd.DataFrame({"seed": list(seeds), "y": [p.x + s / 10 for s in seeds]})


def sleep_task(root: Path, name: str = "sleepy", points: int = 4, sleep: float = 0.0,
               **extra: Any) -> Path:
    spec = {
        "id": f"testing/{name}", "version": 1, "title": "y grows with x", "claim": "y grows",
        "source": {"paper": "none", "where": "here"},
        "experiment": {"kind": "test_sleep", "params": {"sleep": sleep, **extra},
                       "sweep": {"x": [float(i) for i in range(points)]}, "seeds": 6},
        "expect": [{"rule": "trend", "metric": "y", "along": "x", "direction": "increasing",
                    "min_effect": 0.5}],
        "controls": [{"name": "flat", "override": {"x": -1.0}, "sweep": {"sleep": [sleep]},
                      "verdict": "refuted"}],
        "expected_verdict": {},
    }
    path = root / "tasks" / "testing" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec))
    return path


def computed(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_rerun_takes_every_cell_from_the_cache(tmp_path, monkeypatch) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv(LOG_ENV, str(log))
    task = load_task(sleep_task(tmp_path))
    first = run_task(task, "smoke", device="cpu", cache_dir=tmp_path / "cache", write=False)
    assert computed(log) == 5 and not any(c.cached for c in first.record.cells)
    second = run_task(task, "smoke", device="cpu", cache_dir=tmp_path / "cache", write=False)
    assert computed(log) == 5, "a warm rerun computed cells"
    assert all(c.cached for c in second.record.cells)
    assert [c.wall_s for c in second.record.cells] == [c.wall_s for c in first.record.cells]
    assert second.record.table == first.record.table
    assert second.record.verdict == first.record.verdict == "holds"
    assert {c.device for c in second.record.cells} == {"cpu"}


def test_only_changed_cells_are_recomputed(tmp_path, monkeypatch) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv(LOG_ENV, str(log))
    run_task(load_task(sleep_task(tmp_path, points=3)), "smoke", device="cpu",
             cache_dir=tmp_path / "cache", write=False)
    assert computed(log) == 4
    run_task(load_task(sleep_task(tmp_path, points=5)), "smoke", device="cpu",
             cache_dir=tmp_path / "cache", write=False)
    assert computed(log) == 6  # x = 3 and x = 4 are new; the rest (and the control) cached


def test_errors_are_never_cached(tmp_path, monkeypatch) -> None:
    task = load_task(sleep_task(tmp_path, fail=True))
    out = run_task(task, "smoke", device="cpu", cache_dir=tmp_path / "cache", write=False)
    assert out.record.verdict == "error"
    assert CellCache(tmp_path / "cache").entries() == []


def test_the_key_follows_resolved_params_seeds_device_and_source() -> None:
    base = cell_key("test_sleep", {"x": 1.0}, (0, 1), "cpu")
    assert cell_key("test_sleep", {"x": 1.0, "sleep": 0.0}, (0, 1), "cpu") == base
    for other in (cell_key("test_sleep", {"x": 2.0}, (0, 1), "cpu"),
                  cell_key("test_sleep", {"x": 1.0}, (0, 2), "cpu"),
                  cell_key("test_sleep", {"x": 1.0}, (0, 1), "cuda")):
        assert other != base


def test_the_source_hash_follows_the_imports(tmp_path, monkeypatch) -> None:
    from theorybench.cache import _module_file, _project_imports

    path = _module_file("theorybench.experiments.adversarial")
    imports, uses_methods = _project_imports(path, "theorybench.experiments")
    assert {"theorybench.attacks", "theorybench.models.resnet",
            "theorybench.data.torchvision_local", "theorybench.streams",
            "theorybench.methods.adversarial"} <= imports
    # an import inside a function counts (image_pool reads the digits on use)
    assert "theorybench.data.digits" in _project_imports(
        _module_file("theorybench.data.torchvision_local"), "theorybench.data")[0]
    assert uses_methods  # looks methods up: every method's module is part of its source
    assert source_hash("theorybench.experiments.adversarial") != \
        source_hash("theorybench.experiments.stability")


def test_cache_entries_are_written_atomically(tmp_path) -> None:
    cache = CellCache(tmp_path / "cache")
    from theorybench.cache import Entry

    cache.put("ab" * 32, Entry(pd.DataFrame({"seed": [0]}), 1.5, "cpu", "k"), "cd" * 32)
    assert cache.get("ab" * 32).wall_s == 1.5 and cache.past_wall("cd" * 32) == 1.5
    assert not list((tmp_path / "cache").rglob(".tmp-*"))
    assert (tmp_path / "cache" / ".gitignore").read_text().strip().endswith("*")
    info = cache.info()
    assert info["entries"] == 1 and info["kinds"] == {"k": 1}
    assert cache.clear() == 2 and cache.info()["entries"] == 0


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
import test_scale  # registers test_sleep
from theorybench.cli import app
app()
"""


def _cli(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, THEORYBENCH_ROOT=str(tmp_path), **{LOG_ENV: str(tmp_path / "log")})
    env.pop("THEORYBENCH_CACHE_DIR", None)
    script = RUNNER.format(tests=str(Path(__file__).parent))
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_run_killed_part_way_resumes_with_the_missing_cells(tmp_path) -> None:
    """kill -9 in the middle of a suite, run it again: only the cells the first run had not
    finished are computed, and the records folder holds complete records only."""
    for name, sleep in (("a", 0.4), ("b", 0.45)):  # different cells: nothing shared
        sleep_task(tmp_path, name, points=6, sleep=sleep)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "both.yaml").write_text(
        yaml.safe_dump({"id": "both", "profile": "smoke", "tasks": ["testing/*"]}))
    log, runs = tmp_path / "log", tmp_path / "results" / "runs"
    args = ("run", "both", "--device", "cpu", "--results-dir", str(runs))
    first = _cli(tmp_path, *args)
    deadline = time.monotonic() + 120
    while computed(log) < 9 and time.monotonic() < deadline:  # task a done, b part-way
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    first.stdout.close()
    done_before = computed(log)
    cached = len(CellCache(tmp_path / "results" / "cache").entries())
    assert 7 <= done_before < 14 and cached >= done_before - 1
    before = load_records(runs)
    assert len(before) <= 1 and not list(runs.glob(".tmp-*"))

    second = _cli(tmp_path, *args)
    output = second.communicate(timeout=300)[0]
    assert second.returncode == 0, output
    assert computed(log) - done_before == 14 - cached
    records = load_records(runs)
    assert len(records) == len(list(runs.glob("*.json"))) == len(before) + 2
    latest = {r["task_id"]: r for r in records}
    assert sorted(latest) == ["testing/a", "testing/b"]
    assert all(r["verdict"] == "holds" for r in latest.values())
    assert any(c["cached"] for c in latest["testing/b"]["cells"])
    for path in runs.glob("*.json"):
        json.loads(path.read_text())  # every file is a complete record


def test_a_cell_past_its_time_limit_is_an_error_and_the_task_goes_on(tmp_path) -> None:
    path = sleep_task(tmp_path, points=2)
    spec = yaml.safe_load(path.read_text())
    spec["experiment"]["sweep"] = {"sleep": [0.0, 300.0]}
    spec["experiment"]["cell_timeout_s"] = 3.0
    spec["expect"] = [{"rule": "threshold", "metric": "y", "op": ">", "value": -1.0}]
    spec["controls"][0]["sweep"] = {"sleep": [0.0]}
    path.write_text(yaml.safe_dump(spec))
    out = run_task(load_task(path), "smoke", device="cpu", write=False)
    assert out.record.verdict == "error"
    errors = [c.error for c in out.record.cells if c.error]
    assert len(errors) == 1 and "limit of 3 s" in errors[0]
    assert sum(c.rows for c in out.record.cells) == 2 * 6


def test_the_pool_kills_only_the_late_cell() -> None:
    results = list(LocalExecutor(2).map(time.sleep, [0.0, 300.0, 0.1], timeout=2.0,
                                        on_failure=lambda item, msg: ("failed", item, msg)))
    assert results.count(None) == 2
    (failed,) = [r for r in results if r is not None]
    assert failed[1] == 300.0 and "limit of 2 s" in failed[2]


def test_a_worker_goes_on_while_the_caller_holds_a_result(tmp_path) -> None:
    """The pool sends a worker its next cell before handing the caller the last one, so a
    caller busy judging a task (or writing its record) never leaves a worker idle."""
    first, second = tmp_path / "first", tmp_path / "second"
    with closing(LocalExecutor(1)) as executor:
        results = executor.map(Path.touch, [first, second], timeout=60.0)  # a limit: the pool
        next(results)
        patience = time.monotonic() + 60.0
        while not second.exists() and time.monotonic() < patience:
            time.sleep(0.05)
        assert second.exists()
        assert list(results) == [None]


def test_an_explicit_thread_count_wins(monkeypatch) -> None:
    monkeypatch.delenv("THEORYBENCH_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads(1).threads == 3
    assert threads.choose_threads(1, threads=2).source == "--threads"
    monkeypatch.delenv("OMP_NUM_THREADS")
    choice = threads.choose_threads(1)
    assert choice.source == "auto" and 1 <= choice.threads <= choice.cores
    assert threads.choose_threads(2 * choice.cores).threads == 1
    assert threads.choose_threads(1, past_wall_s=0.01).threads == 1


def test_the_cgroup_quota_caps_the_cores(tmp_path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(tmp_path) is None


def test_each_cell_records_its_device_and_threads(tmp_path) -> None:
    out = run_task(load_task(sleep_task(tmp_path)), "smoke", device="auto", write=False)
    for cell in out.record.cells:
        assert cell.device == "cpu" or cell.device.startswith("NVIDIA")
        assert cell.threads["threads"] >= 1 and not cell.cached


def test_the_eta_uses_past_wall_times() -> None:
    class Cell:
        def __init__(self, i: int) -> None:
            self.index = i

    class Out:
        def __init__(self, i: int, wall: float) -> None:
            self.cell, self.wall_s, self.cached = Cell(i), wall, False

    eta = Eta(concurrent=2)
    assert eta.plan([Cell(0), Cell(1), Cell(2)], [None, None, None]) == ""
    assert eta.plan([Cell(0), Cell(1), Cell(2)], [10.0, 20.0, None]) == "ETA 22s"
    assert eta.done(Out(0, 20.0)) == "ETA 35s"  # twice as slow as before: 35 = (20+15)·2/2


def test_cli_cache_commands_and_options(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from theorybench.cli import app

    sleep_task(tmp_path)
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THEORYBENCH_ROOT", raising=False)
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "log"))
    cache = ["--cache-dir", str(tmp_path / "c")]
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["run", "testing/sleepy", "--no-record", "--device", "cpu",
                                     *cache])
        assert result.exit_code == 0, result.output
    assert computed(tmp_path / "log") == 5
    result = runner.invoke(app, ["cache", "info", *cache])
    assert "5 entries" in result.output and "test_sleep: 5" in result.output
    assert "judgments of arms: 1" in result.output  # the claim's (its control's rule errs)
    result = runner.invoke(app, ["run", "testing/sleepy", "--no-record", "--no-cache", *cache])
    assert result.exit_code == 0 and computed(tmp_path / "log") == 10
    assert "removed" in runner.invoke(app, ["cache", "clear", *cache]).output
    assert CellCache(tmp_path / "c").entries() == []
    result = runner.invoke(app, ["run", "testing/sleepy", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "--executor dask" in result.output


def test_a_pool_of_workers_gives_the_in_process_table(tmp_path) -> None:
    task = load_task(sleep_task(tmp_path))
    alone = run_task(task, "smoke", device="cpu", write=False).record
    pooled = run_task(task, "smoke", device="cpu", write=False,
                      executor=LocalExecutor(2)).record
    assert pooled.table == alone.table
    assert [c.index for c in pooled.cells] == [c.index for c in alone.cells]
    assert all(c.threads["concurrent"] == 2 for c in pooled.cells)


def test_a_suite_shares_the_workers_and_gives_each_task_its_own_table(tmp_path) -> None:
    """run_tasks: the cells of several tasks side by side, one outcome per task as it finishes,
    each with the table run_task gives it alone; a task's time limit applies to its cells only."""
    quick = load_task(sleep_task(tmp_path, "quick", points=3))
    slow_path = sleep_task(tmp_path, "slow", points=2)
    spec = yaml.safe_load(slow_path.read_text())
    spec["experiment"]["sweep"] = {"sleep": [0.0, 300.0]}
    spec["experiment"]["cell_timeout_s"] = 3.0
    spec["expect"] = [{"rule": "threshold", "metric": "y", "op": ">", "value": -1.0}]
    spec["controls"][0]["sweep"] = {"sleep": [0.0]}
    slow_path.write_text(yaml.safe_dump(spec))
    slow = load_task(slow_path)
    planned = [plan_task(t, "smoke", device="cpu", concurrent=2, write=False)
               for t in (slow, quick)]
    seen: list[str] = []
    with closing(LocalExecutor(2)) as executor:
        outcomes = {o.record.task_id: o.record
                    for o in run_tasks(planned, executor,
                                       on_cell=lambda p, out: seen.append(p.task.spec.id))}
    assert sorted(outcomes) == ["testing/quick", "testing/slow"]
    assert seen.count("testing/quick") == 4 and seen.count("testing/slow") == 3
    assert outcomes["testing/quick"].table == run_task(quick, "smoke", device="cpu",
                                                       write=False).record.table
    assert outcomes["testing/quick"].verdict == "holds"
    slow_errors = [c.error for c in outcomes["testing/slow"].cells if c.error]
    assert outcomes["testing/slow"].verdict == "error" and len(slow_errors) == 1
    assert "limit of 3 s" in slow_errors[0]


def test_identical_cells_of_a_suite_are_computed_once(tmp_path, monkeypatch) -> None:
    """A control that reads the claim's own run has the claim's cells: computed once, even with
    two workers free at the same time, and marked as cached in the record."""
    log = tmp_path / "log"
    monkeypatch.setenv(LOG_ENV, str(log))
    path = sleep_task(tmp_path, "same", points=2)
    spec = yaml.safe_load(path.read_text())
    spec["controls"][0].update(override={}, sweep={"x": [0.0, 1.0]})
    path.write_text(yaml.safe_dump(spec))
    task = load_task(path)
    planned = [plan_task(task, "smoke", device="cpu", concurrent=2, write=False)]
    with closing(LocalExecutor(2)) as executor:
        (outcome,) = run_tasks(planned, executor)
    assert computed(log) == 2
    cells = outcome.record.cells
    assert [c.cached for c in cells] == [False, False, True, True]
    table = table_from_json(outcome.record.table)
    claim, control = (table[table["arm"] == a].drop(columns=["arm", "cell"])
                      .reset_index(drop=True) for a in ("claim", "flat"))
    pd.testing.assert_frame_equal(claim, control)


def _arms(record) -> list[dict]:
    return [dataclasses.asdict(arm) for arm in [record.claim, *record.controls]]


def test_a_warm_rerun_reads_every_judgment_back(tmp_path) -> None:
    task = load_task(sleep_task(tmp_path))
    first = run_task(task, "smoke", device="cpu", cache_dir=tmp_path / "cache", write=False)
    second = run_task(task, "smoke", device="cpu", cache_dir=tmp_path / "cache", write=False)
    uncached = run_task(task, "smoke", device="cpu", cache_dir=None, write=False)
    assert first.record.environment["judgments_reused"] == 0
    # the claim; its control's rule errs (the control does not sweep x), and errors are judged
    # every time
    assert second.record.environment["judgments_reused"] == 1
    assert uncached.record.environment["judgments_reused"] == 0
    assert _arms(second.record) == _arms(first.record) == _arms(uncached.record)
    assert second.record.statuses == first.record.statuses


def test_a_changed_rule_is_judged_anew(tmp_path) -> None:
    cache = tmp_path / "cache"
    run_task(load_task(sleep_task(tmp_path)), "smoke", device="cpu", cache_dir=cache,
             write=False)
    path = sleep_task(tmp_path)
    path.write_text(path.read_text().replace("increasing", "decreasing"))
    out = run_task(load_task(path), "smoke", device="cpu", cache_dir=cache, write=False)
    assert out.record.environment["judgments_reused"] == 0
    assert out.record.verdict != "holds"


def _key_inputs(tmp_path):
    task = load_task(sleep_task(tmp_path))
    out = run_task(task, "smoke", device="cpu", cache_dir=None, write=False)
    return resolve(task, "smoke")[0], out.arms["claim"]


def test_the_key_follows_rows_rules_tolerance_seed_and_source(tmp_path, monkeypatch) -> None:
    arm, rows = _key_inputs(tmp_path)
    table = table_digest(rows)
    key = judgment_key(arm, table, ("y",), 0.0, 7)
    assert table == table_digest(rows.copy())
    changed = rows.copy()
    changed.loc[0, "y"] += 1e-12
    negative_zero = rows.assign(y=0.0), rows.assign(y=-0.0)
    assert table_digest(negative_zero[0]) != table_digest(negative_zero[1])
    for other in (changed, rows.astype({"y": "float32"}), rows.assign(arm="flat"),
                  rows.rename(columns={"y": "z"})):
        assert table_digest(other) != table
    assert judgment_key(arm, table_digest(changed), ("y",), 0.0, 7) != key
    assert judgment_key(arm, table, ("y",), 0.5, 7) != key
    assert judgment_key(arm, table, ("y",), 0.0, 8) != key
    assert judgment_key(dataclasses.replace(arm, name="flat"), table, ("y",), 0.0, 7) != key
    stricter = dataclasses.replace(
        arm, rules=[arm.rules[0].model_copy(update={"min_effect": 0.9})])
    assert judgment_key(stricter, table, ("y",), 0.0, 7) != key
    monkeypatch.setattr(judging, "source_hash", lambda module: f"edited {module}")
    assert judgment_key(arm, table, ("y",), 0.0, 7) != key


def test_errors_are_never_stored_and_clear_removes_judgments(tmp_path) -> None:
    arm, rows = _key_inputs(tmp_path)
    store = JudgmentCache(tmp_path / "cache")
    diverged = rows.assign(y=float("nan"))
    result, _, reused = judge_arm(arm, diverged, ("y",), 0.0, 7, store, table_digest(diverged))
    assert result.verdict == "error" and not reused
    assert not list((tmp_path / "cache").glob("judgments/??/*.pkl"))
    table = table_digest(rows)
    judge_arm(arm, rows, ("y",), 0.0, 7, store, table)
    again = judge_arm(arm, rows, ("y",), 0.0, 7, store, table)
    assert again[2] and again[0].verdict == "holds"
    assert not judge_arm(arm, rows, ("y",), 0.0, 7, store)[2]  # no digest: judged anew
    assert CellCache(tmp_path / "cache").info()["judgments"] == 1
    assert CellCache(tmp_path / "cache").clear() == 1
    assert not judge_arm(arm, rows, ("y",), 0.0, 7, store, table)[2]


def test_an_unreadable_judgment_is_a_miss(tmp_path) -> None:
    arm, rows = _key_inputs(tmp_path)
    store = JudgmentCache(tmp_path / "cache")
    table = table_digest(rows)
    key = judgment_key(arm, table, ("y",), 0.0, 7)
    path = tmp_path / "cache" / "judgments" / key[:2] / f"{key}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    result, _, reused = judge_arm(arm, rows, ("y",), 0.0, 7, store, table)
    assert not reused and result.verdict == "holds"
