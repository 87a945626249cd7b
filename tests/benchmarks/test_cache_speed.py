"""A smoke task computed (cache cold) against the same task answered by the cell cache (warm):
the warm run should cost a small fraction of the cold one. ``pytest --benchmark-enable
tests/benchmarks/test_cache_speed.py`` times both; by default each runs once as a test."""

from __future__ import annotations

from theorybench.paths import tasks_dir
from theorybench.runner import run_task
from theorybench.spec import load_task

TASK = "overparam/sgd-vanishing-steps"


def test_cold(benchmark, tmp_path) -> None:
    task = load_task(tasks_dir() / f"{TASK}.yaml")
    folders = iter(range(10**6))

    def cold() -> None:
        run_task(task, "smoke", device="cpu", write=False,
                 cache_dir=tmp_path / f"cache{next(folders)}")

    benchmark.pedantic(cold, rounds=1, iterations=1)


def test_warm(benchmark, tmp_path) -> None:
    task = load_task(tasks_dir() / f"{TASK}.yaml")
    first = run_task(task, "smoke", device="cpu", write=False, cache_dir=tmp_path)
    record = benchmark(lambda: run_task(task, "smoke", device="cpu", write=False,
                                        cache_dir=tmp_path).record)
    assert all(c.cached for c in record.cells)
    assert record.table == first.record.table
