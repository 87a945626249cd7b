"""The asv suite (``asv.conf.json``, ``benchmarks/``) and the documented command of
``docs/asv.md``: ``asv run --python=same --set-commit-hash <HEAD>`` then ``asv publish``."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asv import util as asv_util

from theorybench.paths import project_root, suites_dir
from theorybench.results import ArmResult
from theorybench.spec import load_suite, suite_tasks, task_id_of

ROOT = project_root()
ASV = Path(sys.executable).with_name("asv")
SMOKE = [task_id_of(p) for p in suite_tasks(load_suite(suites_dir() / "smoke.yaml"),
                                            suites_dir() / "smoke.yaml")]
BENCHMARKS = ("smoke.SmokeTask.time_task", "smoke.SmokeTask.track_effect_shift",
              "smoke.SmokeTask.track_verdict_differs")


@pytest.fixture
def smoke_module(monkeypatch):
    """``benchmarks/smoke.py`` loaded from its file (``tests/benchmarks`` is another folder)."""
    monkeypatch.delenv("THEORYBENCH_ASV_TASKS", raising=False)
    spec = importlib.util.spec_from_file_location("asv_smoke", ROOT / "benchmarks" / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_puts_results_under_results_asv():
    config = asv_util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    assert config["benchmark_dir"] == "benchmarks"
    assert config["results_dir"] == "results/asv/results"
    assert config["html_dir"] == "results/asv/html"
    assert config["repo"] == "."


def test_benchmarks_are_parametrized_over_the_smoke_tasks(smoke_module):
    assert smoke_module.SmokeTask.params == SMOKE
    names = {n for n in dir(smoke_module.SmokeTask) if n.startswith(("time_", "track_"))}
    assert names == {"time_task", "track_effect_shift", "track_verdict_differs"}


def test_the_task_list_can_be_restricted(smoke_module, monkeypatch):
    monkeypatch.setenv("THEORYBENCH_ASV_TASKS", SMOKE[-1])
    assert list(smoke_module.smoke_tasks()) == [SMOKE[-1]]
    monkeypatch.setenv("THEORYBENCH_ASV_TASKS", "nope/nothing")
    with pytest.raises(ValueError, match="nope/nothing"):
        smoke_module.smoke_tasks()


def test_track_benchmarks_return_the_cached_numbers(smoke_module):
    bench = smoke_module.SmokeTask()
    cache = {"a/b": (1.0, 0.42)}
    assert bench.track_verdict_differs(cache, "a/b") == 1.0
    assert bench.track_effect_shift(cache, "a/b") == 0.42


def test_lower_is_better_for_every_track(smoke_module):
    """asv counts a lower value as better: a flip away from the published verdict and an effect
    moving away from the published one both go up."""
    assert smoke_module.verdict_differs("refuted", "holds") == 1.0
    assert smoke_module.verdict_differs("holds", "holds") == 0.0
    assert math.isnan(smoke_module.verdict_differs("holds", None))
    assert smoke_module.effect_shift(0.5, 0.8) == pytest.approx(0.3)
    assert math.isnan(smoke_module.effect_shift(0.5, math.nan))


def test_effect_is_nan_without_a_rule_result(smoke_module):
    class Record:
        claim = ArmResult("claim", "error", None, [])

    assert math.isnan(smoke_module.effect(Record()))
    Record.claim = ArmResult("claim", "holds", None, [{"effect": 0.5}])
    assert smoke_module.effect(Record()) == 0.5


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(home), THEORYBENCH_ROOT=str(ROOT))
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def test_asv_check_finds_no_problem(tmp_path):
    done = subprocess.run([str(ASV), "check", "--python=same"], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def _head() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@pytest.mark.suite
def test_the_documented_asv_commands_record_and_publish(tmp_path):
    head = _head()
    if head is None:
        pytest.skip("the checkout has no commit: asv records results against a commit")
    config = asv_util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    config |= {"repo": str(ROOT), "benchmark_dir": str(ROOT / "benchmarks"),
               "results_dir": str(tmp_path / "results"), "html_dir": str(tmp_path / "html"),
               "env_dir": str(tmp_path / "env")}
    conf = tmp_path / "asv.conf.json"
    conf.write_text(json.dumps(config))
    env = _env(tmp_path) | {"THEORYBENCH_ASV_TASKS": SMOKE[0]}
    commands = [
        ["machine", "--yes", "--machine", "ci"],
        ["run", "--python=same", "--set-commit-hash", head, "--machine", "ci",
         "--show-stderr"],
        ["publish"],
    ]
    for args in commands:
        done = subprocess.run([str(ASV), *args, "--config", str(conf)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=3000)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    results = [p for p in (tmp_path / "results" / "ci").glob("*.json") if p.name != "machine.json"]
    assert len(results) == 1
    recorded = json.loads(results[0].read_text())["results"]
    for name in BENCHMARKS:
        value = recorded[name][0][0]
        assert value is not None, (name, recorded[name])
    assert recorded["smoke.SmokeTask.time_task"][0][0] > 0
    assert (tmp_path / "html" / "index.html").is_file()
