"""The ``theorybench`` command (and ``python -m theorybench``): :mod:`theorybench.cli`, imported
with the garbage collector held off, after starting the server cells' workers fork from.

Importing torch, scipy, pandas and pydantic builds about a million objects that live as long as
the process. Collecting them while importing, again in every later full collection and once
more when the process exits costs about 2 s of a warm suite run on a small CPU, and frees
nothing. So the collector is off during the imports, what they built is frozen
(:func:`gc.freeze`: left out of every later collection), and whatever is alive when the
process ends is frozen too (the operating system reclaims it). Objects made after the imports
are collected as usual. A library user importing :mod:`theorybench` is not affected.

For ``run`` and ``replicate``, the worker server (:mod:`theorybench.forkserver`) starts first,
so that it imports torch and the plug-ins on another core while this process imports the CLI.
"""

from __future__ import annotations

import atexit
import gc
import sys

from theorybench import forkserver

RUNS_CELLS = ("run", "replicate")


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in RUNS_CELLS:
        forkserver.start()
    gc.disable()
    try:
        from theorybench.cli import app
    finally:
        gc.freeze()
        gc.enable()
    atexit.register(gc.freeze)
    app()


if __name__ == "__main__":
    main()
