"""Worker processes that start in milliseconds: forked from one server process that imported
torch, the runner and the built-in plug-ins once (multiprocessing's ``forkserver``).

A spawned worker imports torch and the plug-ins itself, about 5 s on a small CPU before its
first cell. Forked from the server instead, it has them already. :func:`start` launches the
server, and the ``theorybench`` command calls it first thing, so the server imports on another
core while the command imports its own modules. The server never runs a torch operation, so
forking it is safe (no OpenMP pool or CUDA context exists yet). It starts with a passive OpenMP
wait policy unless the user chose one (``threads.worker_environment``); anything else a worker
needs in its environment is passed to the worker itself. Where ``forkserver`` does not exist
(Windows), workers are spawned.

No import of torch here (nor of a module that imports it): the command imports this module
before anything else.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import pkgutil
from multiprocessing.context import BaseContext
from pathlib import Path

from theorybench.threads import environment, worker_environment

BUILTIN_PACKAGES = ("theorybench.verdict.rules", "theorybench.methods", "theorybench.experiments",
                    "theorybench.data")
"""Packages whose every module is a plug-in module of the installed package."""

AVAILABLE = "forkserver" in multiprocessing.get_all_start_methods()


def preload_modules() -> list[str]:
    """The server's exit (:mod:`theorybench._server_exit`), the runner and every built-in
    plug-in module, by name, found without importing them (nor their packages:
    ``theorybench.verdict`` imports scipy)."""
    names = ["theorybench._server_exit", "theorybench.runner"]
    for package in BUILTIN_PACKAGES:
        folder = Path(__file__).parent.joinpath(*package.split(".")[1:])
        names += [f"{package}.{info.name}" for info in pkgutil.iter_modules([str(folder)])
                  if not info.name.startswith("_")]
    return names


def start() -> None:
    """Launch the server (once per process; later calls return at once)."""
    if not AVAILABLE:
        return
    multiprocessing.set_forkserver_preload(preload_modules())
    with environment(worker_environment()):  # every worker's environment at import
        multiprocessing.forkserver.ensure_running()


def context() -> BaseContext:
    """The context worker processes are started from: the running server, else spawn."""
    if not AVAILABLE:
        return multiprocessing.get_context("spawn")
    start()
    return multiprocessing.get_context("forkserver")
