"""The smoke suite, run once per test session on its published seed block and on one fresh
replication block (all cells of both side by side on the machine's cores, as
``theorybench run`` does), shared by the suite tests.

Records go to ``$THEORYBENCH_SUITE_RESULTS`` when set (CI keeps them), else to a temporary folder,
so a plain ``pytest`` never adds files to ``results/runs/``.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from theorybench.executors import LocalExecutor
from theorybench.paths import suites_dir
from theorybench.runner import TaskOutcome, plan_task, run_tasks
from theorybench.spec import LoadedTask, load_suite, load_task, suite_tasks
from theorybench.status import replication_offset
from theorybench.threads import available_cores

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
    tasks = {t.spec.id: t for t in map(load_task, suite_tasks(suite, path))}
    jobs = available_cores()
    planned = [plan_task(task, suite.profile, suite=suite.id, results_dir=records,
                         concurrent=jobs, seed_offset=offset)
               for offset in (None, replication_offset(FRESH_BLOCK)) for task in tasks.values()]
    published: dict[str, TaskOutcome] = {}
    fresh: dict[str, TaskOutcome] = {}
    with closing(LocalExecutor(jobs)) as executor:
        for outcome in run_tasks(planned, executor):
            block = published if outcome.record.purpose == "published" else fresh
            block[outcome.record.task_id] = outcome
    return SuiteRun(published, fresh, tasks, records)
