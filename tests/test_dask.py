"""The Dask executor on a real LocalCluster (two single-threaded worker processes, loopback
only): the same cells give the same measurement tables as the local executor, cell for cell."""

from __future__ import annotations

import pytest

from theorybench.executors import DaskExecutor, LocalExecutor
from theorybench.paths import tasks_dir
from theorybench.results import table_from_json
from theorybench.runner import run_task
from theorybench.spec import load_task

pytest.importorskip("distributed")

TASKS = ("adversarial/danskin-counterexample", "minmax/bilinear-eg-converges")


def test_dask_tables_equal_the_local_executor_tables() -> None:
    tasks = [load_task(tasks_dir() / f"{t}.yaml") for t in TASKS]
    local = [run_task(t, "smoke", device="cpu", threads=1, write=False,
                      executor=LocalExecutor()).record for t in tasks]
    dask = DaskExecutor(workers=2, threads=1)
    try:
        remote = [run_task(t, "smoke", device="cpu", threads=1, write=False,
                           executor=dask).record for t in tasks]
        workers = dask.client().scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
    finally:
        dask.close()
    for a, b in zip(local, remote, strict=True):
        assert [(c.arm, c.index) for c in a.cells] == [(c.arm, c.index) for c in b.cells]
        assert b.environment["executor"] == "DaskExecutor"
        assert {c.device for c in b.cells} == {"cpu"}
        for i in sorted({c.index for c in a.cells}):
            ta, tb = table_from_json(a.table), table_from_json(b.table)
            assert ta[ta["cell"] == i].equals(tb[tb["cell"] == i]), (a.task_id, i)
        assert a.table == b.table
        assert a.verdict == b.verdict
