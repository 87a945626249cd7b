"""asv benchmarks of the smoke suite: for each smoke task, its wall time (``time_task``), the
effect size of its claim's first rule (``track_effect``) and its verdict as a number
(``track_verdict``: holds = 1, inconclusive = 0, refuted = -1, error = nan).

Thin by design: each benchmark calls the runner (``run_task`` with ``write=False``, so no run
record is written) on the task spec; nothing is measured here that the suite does not measure.
``setup_cache`` runs every smoke task once and the ``track_`` benchmarks read that run;
``time_task`` runs its task once more, timed (one round, one repeat, no warm-up: a task takes
seconds to minutes, and its own cells are the repetitions that matter). A full ``asv run``
therefore costs about twice the smoke suite's wall time.

``THEORYBENCH_ASV_TASKS`` (comma-separated task ids) restricts the parameters to those tasks;
the test of the asv command uses it to run one task.
"""

from __future__ import annotations

import math
import os

from theorybench.leaderboard.history import verdict_number
from theorybench.paths import suites_dir
from theorybench.results import RunRecord
from theorybench.runner import run_task
from theorybench.spec import load_suite, load_task, suite_tasks, task_id_of


def smoke_tasks() -> dict[str, str]:
    """Task id -> spec path of every task in ``suites/smoke.yaml`` (or those named in
    ``THEORYBENCH_ASV_TASKS``), in the suite's order."""
    path = suites_dir() / "smoke.yaml"
    tasks = {task_id_of(p): str(p) for p in suite_tasks(load_suite(path), path)}
    chosen = [t for t in os.environ.get("THEORYBENCH_ASV_TASKS", "").split(",") if t]
    missing = [t for t in chosen if t not in tasks]
    if missing:
        raise ValueError(f"THEORYBENCH_ASV_TASKS names tasks outside the smoke suite: {missing}")
    return {t: tasks[t] for t in chosen} if chosen else tasks


TASKS = smoke_tasks()


def run_smoke(task_id: str) -> RunRecord:
    return run_task(load_task(TASKS[task_id]), "smoke", suite="smoke", write=False).record


def effect(record: RunRecord) -> float:
    """The effect size of the claim's first rule (nan when the task errored)."""
    rules = record.claim.rules
    value = rules[0].get("effect") if rules else None
    return math.nan if value is None else float(value)


class SmokeTask:
    """One smoke task per parameter."""

    params = list(TASKS)
    param_names = ["task"]
    timeout = 1800
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0.0

    def setup_cache(self) -> dict[str, tuple[float, float]]:
        results = {}
        for task_id in TASKS:
            record = run_smoke(task_id)
            results[task_id] = (effect(record), verdict_number(record.verdict))
        return results

    setup_cache.timeout = 7200  # type: ignore[attr-defined]  (asv reads this attribute)

    def time_task(self, cache: dict[str, tuple[float, float]], task: str) -> None:
        run_smoke(task)

    def track_effect(self, cache: dict[str, tuple[float, float]], task: str) -> float:
        return cache[task][0]

    track_effect.unit = "effect size"  # type: ignore[attr-defined]

    def track_verdict(self, cache: dict[str, tuple[float, float]], task: str) -> float:
        return cache[task][1]

    track_verdict.unit = "verdict (1 holds, 0 inconclusive, -1 refuted)"  # type: ignore[attr-defined]
