"""The smoke suite, run once per test session on its published seed block and on one fresh
replication block, shared by the suite tests.

Records go to ``$THEORYBENCH_SUITE_RESULTS`` when set (CI keeps them), else to a temporary folder,
so a plain ``pytest`` never adds files to ``results/runs/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from theorybench.paths import suites_dir
from theorybench.runner import TaskOutcome, run_task
from theorybench.spec import LoadedTask, load_suite, load_task, suite_tasks
from theorybench.status import replication_offset

#: The replication block the suite runs besides the published one.
FRESH_BLOCK = 0


@dataclass
class SuiteRun:
    outcomes: dict[str, TaskOutcome]
    fresh: dict[str, TaskOutcome]
    tasks: dict[str, LoadedTask]
    records_dir: Path


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    folder = os.environ.get("THEORYBENCH_SUITE_RESULTS")
    records = Path(folder) if folder else tmp_path_factory.mktemp("runs")
    path = suites_dir() / "smoke.yaml"
    suite = load_suite(path)
    outcomes, fresh, tasks = {}, {}, {}
    for task_path in suite_tasks(suite, path):
        task = load_task(task_path)
        tasks[task.spec.id] = task
        outcomes[task.spec.id] = run_task(task, suite.profile, suite=suite.id,
                                          results_dir=records)
        fresh[task.spec.id] = run_task(task, suite.profile, suite=suite.id, results_dir=records,
                                       seed_offset=replication_offset(FRESH_BLOCK))
    return SuiteRun(outcomes, fresh, tasks, records)
