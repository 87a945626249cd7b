"""The runner end to end on tiny tasks: cells, tables, verdicts, errors that do not stop a
suite, and records that are written once and never replaced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from theorybench.cli import app
from theorybench.registry import experiment
from theorybench.results import load_history, load_records, load_table
from theorybench.runner import run_task
from theorybench.spec import load_task


class LineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slope: float = 1.0
    x: float = 0.0
    fail_at: float | None = None


@experiment("test_line", family="testing", params=LineParams, columns=("y",),
            example={"slope": 1.0})
def line_experiment(p: LineParams, seeds, device) -> pd.DataFrame:
    """y = slope·x + seed-dependent offset; raises at ``fail_at``."""
    if p.fail_at is not None and p.x == p.fail_at:
        raise RuntimeError("the experiment crashed on purpose")
    return pd.DataFrame({"seed": list(seeds),
                         "y": [p.slope * p.x + 0.01 * ((s * 7) % 5) for s in seeds]})


def task_file(root: Path, name: str = "line", **experiment_params: Any) -> Path:
    spec = {
        "id": f"testing/{name}", "version": 1, "title": "y grows with x", "claim": "y grows",
        "source": {"paper": "none", "where": "here"},
        "experiment": {"kind": "test_line", "params": {"slope": 1.0, **experiment_params},
                       "sweep": {"x": [0.0, 1.0, 2.0, 3.0]}, "seeds": 8},
        "expect": [{"rule": "trend", "metric": "y", "along": "x", "direction": "increasing",
                    "min_effect": 0.5}],
        "controls": [{"name": "flat", "override": {"slope": 0.0}, "verdict": "refuted"}],
        # the trend rule is a sign test on per-seed Kendall tau: it can decide from 6 seeds on
        "profiles": {"smoke": {"seeds": 6}},
    }
    path = root / "tasks" / "testing" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_task_runs_to_a_validated_verdict(tmp_path: Path) -> None:
    out = run_task(load_task(task_file(tmp_path)), "smoke", device="cpu",
                   results_dir=tmp_path / "runs")
    rec = out.record
    assert rec.verdict == "holds" and rec.validated
    assert rec.controls[0].verdict == "refuted"
    assert rec.seeds == [0, 1, 2, 3, 4, 5]
    assert len(rec.cells) == 8 and all(c.wall_s >= 0 for c in rec.cells)
    table = load_table(json.loads(out.path.read_text()))
    assert list(table.columns[:4]) == ["arm", "cell", "x", "seed"]
    assert len(table) == 2 * 4 * 6


def test_a_crashing_experiment_is_an_error_and_the_rest_goes_on(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    bad = run_task(load_task(task_file(tmp_path, "bad", fail_at=2.0)), "smoke", device="cpu",
                   results_dir=runs)
    good = run_task(load_task(task_file(tmp_path, "good")), "smoke", device="cpu",
                    results_dir=runs)
    assert bad.record.verdict == "error"
    assert "crashed on purpose" in bad.record.error
    assert good.record.verdict == "holds"
    assert sorted(r["task_id"] for r in load_records(runs)) == ["testing/bad", "testing/good"]


def test_records_are_never_overwritten(tmp_path: Path) -> None:
    task = load_task(task_file(tmp_path))
    first = run_task(task, "smoke", device="cpu", results_dir=tmp_path / "runs")
    before = first.path.read_bytes()
    first.record.verdict = "refuted"
    from theorybench.results import write_record

    with pytest.raises(FileExistsError):
        write_record(first.record, tmp_path / "runs")
    assert first.path.read_bytes() == before
    assert not list((tmp_path / "runs").glob(".tmp-*"))


def test_history_has_provenance(tmp_path: Path) -> None:
    task = load_task(task_file(tmp_path))
    for _ in range(2):
        run_task(task, "smoke", device="cpu", results_dir=tmp_path / "runs")
    history = load_history(tmp_path / "runs")
    assert len(history) == 2
    assert set(history.verdict) == {"holds"}
    rec = load_records(tmp_path / "runs")[0]
    assert rec["spec_sha256"] == task.sha256
    for key in ("python", "torch", "numpy", "device", "git_commit"):
        assert key in rec["environment"]


def test_seeds_determine_the_table(tmp_path: Path) -> None:
    task = load_task(task_file(tmp_path))
    a = run_task(task, "smoke", device="cpu", write=False).record.table
    b = run_task(task, "smoke", device="cpu", write=False).record.table
    assert a == b


def test_cli_run_prints_the_verdict_table(tmp_path: Path, monkeypatch) -> None:
    task_file(tmp_path)
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THEORYBENCH_ROOT", raising=False)
    result = CliRunner().invoke(app, ["run", "testing/line", "--results-dir",
                                      str(tmp_path / "runs"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "testing/line" in result.output and "holds" in result.output
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


def test_cli_reports_a_bad_spec_in_one_line(tmp_path: Path, monkeypatch) -> None:
    path = task_file(tmp_path)
    path.write_text(path.read_text().replace("seeds: 8", "seeds: many"))
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THEORYBENCH_ROOT", raising=False)
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "experiment.seeds" in result.output and "Traceback" not in result.output


def test_cli_exit_status_is_one_for_an_error_verdict(tmp_path: Path, monkeypatch) -> None:
    task_file(tmp_path, "bad", fail_at=1.0)
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THEORYBENCH_ROOT", raising=False)
    result = CliRunner().invoke(app, ["run", "testing/bad", "--no-record", "--device", "cpu"])
    assert result.exit_code == 1
    assert "crashed on purpose" in result.output


def test_work_smaller_than_starting_workers_runs_in_process():
    """A tiny task (or a suite the cache holds) is not worth spawning workers that import torch:
    the local pool hands it to the in-process path; unknown or larger work keeps the pool."""
    from theorybench.executors import DaskExecutor, LocalExecutor
    from theorybench.runner import WORKER_START_S, _quickest

    pool = LocalExecutor(2, threads=3)
    quick = _quickest(pool, [0.0, 0.5, 1.0])
    assert isinstance(quick, LocalExecutor) and quick.jobs == 1 and quick.threads == 3
    assert _quickest(pool, [0.5, None]) is pool
    assert _quickest(pool, [WORKER_START_S, 0.1]) is pool
    single = LocalExecutor(1)
    assert _quickest(single, [0.1]) is single
    dask = DaskExecutor(None, 2)
    assert _quickest(dask, [0.1]) is dask


def test_a_table_is_stored_column_by_column_as_jsonable_gives_it() -> None:
    """NaN as null, infinities as strings, numpy scalars and lists in object columns as JSON
    values; read back, the same table."""
    import numpy as np

    from theorybench.numbers import jsonable
    from theorybench.results import table_from_json, table_to_json

    table = pd.DataFrame({
        "arm": ["claim", "claim", "ctl"], "seed": [1000, 1001, 1002],
        "x": [0.5, np.nan, np.inf], "y": np.array([-np.inf, 1.0, 2.0], dtype=np.float32),
        "ok": [True, False, True], "misc": [np.float64(2.0), [1, np.nan], None]})
    stored = table_to_json(table)
    assert stored == {"columns": list(table.columns),
                      "data": jsonable(table.to_numpy(dtype=object).tolist())}
    assert stored["data"][0][3] == "-inf" and stored["data"][1][2] is None
    back = table_from_json(json.loads(json.dumps(stored)))
    pd.testing.assert_frame_equal(back[["seed", "x", "ok"]], table[["seed", "x", "ok"]])


def test_a_spec_edited_between_two_loads_is_validated_again(tmp_path: Path) -> None:
    path = task_file(tmp_path, name="line", slope=1.0)
    first = load_task(path)
    assert load_task(path) is first  # the same content: validated once
    path.write_text(path.read_text().replace("title:", "title: edited"))
    assert load_task(path) is not first
