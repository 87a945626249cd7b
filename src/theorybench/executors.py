"""Executors run cells and hand back their outputs as each finishes (in completion order; the
runner puts them back in cell order).

* :class:`LocalExecutor` runs cells in this process (``jobs=1``, the fast default) or in a
  pool of ``jobs`` worker processes, kept from one ``map`` to the next until ``close()`` (a
  suite's tasks share them), forked from the server of :mod:`theorybench.forkserver`, which
  imported torch and the plug-ins once (spawned where there is none). With a per-cell time limit it
  always uses worker processes (one is enough for ``jobs=1``), because only a process can be
  stopped part-way: a cell past its limit is killed with its worker, reported through
  ``on_failure``, and a new worker takes the next cell.
* :class:`DaskExecutor` runs cells on a ``dask.distributed`` cluster: an existing one
  (``scheduler="tcp://host:port"``) or a ``LocalCluster`` of ``workers`` single-threaded
  worker processes on 127.0.0.1. Workers that declare a ``GPU`` resource get one cell at a time
  per GPU (``resources={"GPU": 1}``) unless the run asks for the CPU.

Every executor has ``map(fn, items, timeout=None, on_failure=None)`` (``timeout``: seconds for
every item, or a function giving each item's limit or None), ``concurrent`` (how many
cells run side by side, for the thread policy and the ETA), ``local`` (whether cells run on
this machine, so ``auto`` resolves here as it would there) and ``close()``.
"""

from __future__ import annotations

import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, TypeVar

from theorybench import forkserver, registry
from theorybench.threads import environment, worker_environment

In = TypeVar("In")
Out = TypeVar("Out")
FailureFn = Callable[[Any, str], Any]
Timeout = float | Callable[[Any], float | None] | None


def limit_of(timeout: Timeout, item: Any) -> float | None:
    """``item``'s time limit in seconds (None: none)."""
    return timeout(item) if callable(timeout) else timeout


class Executor(Protocol):
    concurrent: int
    local: bool

    def map(self, fn: Callable[[In], Out], items: Sequence[In], timeout: Timeout = None,
            on_failure: FailureFn | None = None) -> Iterator[Out]:
        """Yield ``fn(item)`` for each item as each finishes; an item past its time limit
        (or whose worker died) yields ``on_failure(item, message)`` instead."""
        ...

    def close(self) -> None: ...


def timeout_message(timeout: float) -> str:
    return f"cell timed out: it ran longer than its limit of {timeout:g} s"


_STARTED = "theorybench: cell started"


def _serve(conn: Connection, env: dict[str, str]) -> None:
    """A worker process: run ``fn(item)`` for each pair received until ``None``. It says when
    it starts a cell (after unpickling, which imports torch the first time, and after loading
    the registry's plug-ins), so that the time limit counts the cell only. ``env``: the
    caller's environment when it started the worker, with the runner's variables (a worker
    forked from the server would otherwise have the server's)."""
    os.environ.clear()
    os.environ.update(env)
    settled = False
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, item = job
        registry.load()
        if not settled:  # torch and the plug-ins, imported: out of every later collection
            gc.freeze()  # (as in ``__main__``)
            settled = True
        conn.send(_STARTED)
        conn.send(fn(item))


class _Worker:
    def __init__(self, context: Any, env: dict[str, str]) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, env), daemon=True)
        with environment(env):  # what a spawned worker (no forkserver) starts with
            self.process.start()
        child.close()
        self.item: Any = None
        self.deadline = float("inf")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class LocalExecutor:
    local = True

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.concurrent = jobs
        self.threads = threads
        self._idle: list[_Worker] = []

    def map(self, fn: Callable[[In], Out], items: Sequence[In], timeout: Timeout = None,
            on_failure: FailureFn | None = None) -> Iterator[Out]:
        limited = any(limit_of(timeout, item) for item in items)
        if not limited and (self.jobs == 1 or len(items) <= 1):
            for item in items:
                yield fn(item)
            return
        yield from self._pool(fn, items, timeout, on_failure)

    def _pool(self, fn: Callable[[In], Out], items: Sequence[In], timeout: Timeout,
              on_failure: FailureFn | None) -> Iterator[Out]:
        context = forkserver.context()
        env = dict(os.environ) | worker_environment(self.threads)
        todo = deque(items)
        idle, self._idle = self._idle, []
        busy: list[_Worker] = []
        done = False

        def start(worker: _Worker) -> None:
            worker.item = todo.popleft()
            worker.deadline = float("inf")  # the clock starts with the cell
            worker.conn.send((fn, worker.item))
            busy.append(worker)

        try:
            while todo or busy:
                while todo and (idle or len(busy) < self.jobs):
                    start(idle.pop() if idle else _Worker(context, env))
                soonest = min(w.deadline for w in busy)
                wait_s = None if soonest == float("inf") else max(0.0, soonest - time.monotonic())
                ready = wait([w.conn for w in busy], timeout=wait_s)
                for worker in list(busy):
                    if worker.conn in ready:
                        try:
                            result = worker.conn.recv()
                        except (EOFError, OSError):
                            busy.remove(worker)
                            worker.kill()
                            yield self._failed(on_failure, worker.item,
                                               "cell's worker process died")
                            continue
                        if isinstance(result, str) and result == _STARTED:
                            limit = limit_of(timeout, worker.item)
                            if limit:
                                worker.deadline = time.monotonic() + limit
                            continue
                        busy.remove(worker)
                        # the next cell goes out before the caller sees this one: a worker
                        # never waits while the caller judges a task or writes its record
                        if todo:
                            start(worker)
                        else:
                            idle.append(worker)
                        yield result
                    elif time.monotonic() >= worker.deadline:
                        busy.remove(worker)
                        worker.kill()
                        yield self._failed(on_failure, worker.item, timeout_message(
                            limit_of(timeout, worker.item) or 0.0))
            done = True
        finally:
            if done:  # every cell came back: the workers serve the next map
                self._idle = idle
            else:  # interrupted (or the caller stopped reading): stop them all
                self._stop([*idle, *busy])

    @staticmethod
    def _stop(workers: list[_Worker]) -> None:
        for worker in workers:
            with suppress(OSError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(0.5)
            worker.kill()

    @staticmethod
    def _failed(on_failure: FailureFn | None, item: Any, message: str) -> Any:
        if on_failure is None:
            raise RuntimeError(message)
        return on_failure(item, message)

    def close(self) -> None:
        self._stop(self._idle)
        self._idle = []


class DaskExecutor:
    """Cells on a Dask cluster (see the module docstring). The cluster (or the connection to
    one) starts on the first ``map`` and stops at ``close``."""

    local = False

    def __init__(self, scheduler: str | None = None, workers: int = 2,
                 threads: int | None = None, use_gpus: bool = True) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.threads = threads
        self.use_gpus = use_gpus
        # cells side by side on one machine: the local cluster's workers; on a remote cluster
        # each cell's thread policy sees its neighbours through the load they put on its node
        self.concurrent = workers if scheduler is None else 1
        self.local = scheduler is None
        self._client: Any = None
        self._cluster: Any = None

    def client(self) -> Any:
        if self._client is None:
            from distributed import Client, LocalCluster

            if self.scheduler:
                self._client = Client(self.scheduler, timeout="30s")
            else:
                self._cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None,
                    env=worker_environment(self.threads))
                self._client = Client(self._cluster)
        return self._client

    def _slots(self) -> tuple[int, dict[str, float] | None]:
        """Cells that can run at once, and the resources one cell asks for."""
        workers = self.client().scheduler_info()["workers"].values()
        gpus = sum(w.get("resources", {}).get("GPU", 0) for w in workers)
        if self.use_gpus and gpus:
            return int(gpus), {"GPU": 1}
        return max(1, sum(w.get("nthreads", 1) for w in workers)), None

    def map(self, fn: Callable[[In], Out], items: Sequence[In], timeout: Timeout = None,
            on_failure: FailureFn | None = None) -> Iterator[Out]:
        from distributed import wait as dask_wait

        client = self.client()
        slots, resources = self._slots()
        todo = deque(items)
        running: dict[Any, tuple[Any, float]] = {}
        # With a time limit, only as many cells as can run are submitted, so that a cell's
        # clock starts when it is submitted; without one, everything is submitted at once.
        limited = any(limit_of(timeout, item) for item in items)
        window = slots if limited else len(items)
        try:
            while todo or running:
                while todo and len(running) < window:
                    item = todo.popleft()
                    # earlier items first (the runner orders them longest first)
                    future = client.submit(fn, item, pure=False, resources=resources,
                                           priority=len(todo))
                    limit = limit_of(timeout, item)
                    running[future] = (item, time.monotonic() + limit if limit else float("inf"))
                soonest = min((d for _, d in running.values()), default=float("inf"))
                wait_s = None if soonest == float("inf") else max(0.1, soonest - time.monotonic())
                done, _ = dask_wait(list(running), timeout=wait_s, return_when="FIRST_COMPLETED")
                for future in done:
                    item, _ = running.pop(future)
                    try:
                        yield future.result()
                    except Exception as exc:  # noqa: BLE001  (a lost worker, a killed task)
                        yield self._failed(on_failure, item, f"dask: {type(exc).__name__}: {exc}")
                for future, (item, deadline) in list(running.items()):
                    if future not in done and time.monotonic() >= deadline:
                        running.pop(future)
                        self._stop(future)
                        yield self._failed(on_failure, item,
                                           timeout_message(limit_of(timeout, item) or 0.0))
        finally:
            for future in running:
                future.cancel()

    def _stop(self, future: Any) -> None:
        """Cancel a cell past its limit and restart the worker running it (a thread cannot be
        stopped; its process can)."""
        client = self.client()
        holders = [w for w, keys in client.processing().items() if future.key in keys]
        future.cancel()
        if holders:
            with suppress(Exception):  # the cell is reported as timed out either way
                client.restart_workers(holders, raise_for_error=False)

    _failed = staticmethod(LocalExecutor._failed)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None
