"""``pytest -m suite``: every smoke task gets its published verdict and its controls theirs."""

from __future__ import annotations

import pytest

from theorybench.paths import suites_dir
from theorybench.spec import load_suite, suite_tasks, task_id_of

pytestmark = pytest.mark.suite

SUITE = suites_dir() / "smoke.yaml"
TASK_IDS = [task_id_of(p) for p in suite_tasks(load_suite(SUITE), SUITE)]


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_verdict_is_the_published_one(smoke_run, task_id: str) -> None:
    rec = smoke_run.outcomes[task_id].record
    assert rec.verdict != "error", rec.error
    summaries = [r["summary"] for r in rec.claim.rules]
    assert rec.verdict == rec.expected_verdict, summaries


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_controls_get_their_required_verdict(smoke_run, task_id: str) -> None:
    rec = smoke_run.outcomes[task_id].record
    for control in rec.controls:
        summaries = [r["summary"] for r in control.rules]
        assert control.verdict == control.required_verdict, (control.name, summaries)
    assert rec.validated


def test_every_record_was_written(smoke_run) -> None:
    written = sorted(smoke_run.records_dir.glob("*.json"))
    assert len(written) >= len(TASK_IDS)
    assert all(o.path is not None and o.path.is_file() for o in smoke_run.outcomes.values())
