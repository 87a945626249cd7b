"""Unit tests call experiment kinds directly, outside the runner: give the test process the
runner's thread policy once (explicit OMP_NUM_THREADS or THEORYBENCH_THREADS still win), so
that a bare `pytest` is not slowed down by torch threads spinning against other processes."""

from __future__ import annotations

from theorybench.threads import apply_threads, choose_threads


def pytest_sessionstart(session) -> None:
    apply_threads(choose_threads())
