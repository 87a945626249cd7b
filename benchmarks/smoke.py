"""asv benchmarks of the smoke suite, each a number where lower is better (asv's convention),
so that asv's "regression" means a worse benchmark:

* ``time_task``: the task's wall time;
* ``track_verdict_differs``: 1 when the verdict differs from the published smoke verdict (the
  spec's ``expected_verdict.smoke``), 0 when it is the same, nan when none is published;
* ``track_effect_shift``: the distance ``|effect − published effect|`` between the claim's first
  rule's effect and that of the published record, nan when either is missing.

Thin by design: each benchmark calls the runner (``run_task`` with ``write=False``, so no run
record is written) on the task spec; nothing is measured here that the suite does not measure.
``setup_cache`` runs every smoke task once and the ``track_`` benchmarks read that run;
``time_task`` runs its task once more, timed (one round, one repeat, no warm-up: a task takes
seconds to minutes, and its own cells are the repetitions that matter). A full ``asv run``
therefore costs about twice the smoke suite's wall time. See ``docs/asv.md``.

``THEORYBENCH_ASV_TASKS`` (comma-separated task ids) restricts the parameters to those tasks;
the test of the asv command uses it to run one task.
"""

from __future__ import annotations

import math
import os
from typing import Any

from theorybench.numbers import as_number
from theorybench.paths import runs_dir, suites_dir
from theorybench.results import RunRecord
from theorybench.runner import run_task
from theorybench.spec import load_suite, load_task, suite_tasks, task_id_of
from theorybench.status import headline, records_by_id


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


def effect(record: Any) -> float:
    """The effect size of the claim's first rule (nan when the task errored)."""
    return as_number(headline(record).get("effect"))


def verdict_differs(verdict: str, published: str | None) -> float:
    """1 when ``verdict`` differs from the ``published`` one, 0 when equal, nan when none is
    published."""
    return math.nan if published is None else float(verdict != published)


def effect_shift(value: float, published: float) -> float:
    """How far an effect moved from the published one (nan when either is missing)."""
    return abs(value - published)


def compare(record: RunRecord, records: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """``(verdict_differs, effect_shift)`` of ``record`` against the published smoke record."""
    reference = records.get(str(record.expected_record)) if record.expected_record else None
    published = effect(reference) if reference is not None else math.nan
    return (verdict_differs(record.verdict, record.expected_verdict),
            effect_shift(effect(record), published))


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
        records = records_by_id(runs_dir())
        return {task_id: compare(run_smoke(task_id), records) for task_id in TASKS}

    setup_cache.timeout = 7200  # type: ignore[attr-defined]  (asv reads this attribute)

    def time_task(self, cache: dict[str, tuple[float, float]], task: str) -> None:
        run_smoke(task)

    def track_verdict_differs(self, cache: dict[str, tuple[float, float]], task: str) -> float:
        return cache[task][0]

    track_verdict_differs.unit = "1 differs from published, 0 same"  # type: ignore[attr-defined]

    def track_effect_shift(self, cache: dict[str, tuple[float, float]], task: str) -> float:
        return cache[task][1]

    track_effect_shift.unit = "|effect - published effect|"  # type: ignore[attr-defined]
