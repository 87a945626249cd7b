"""The ``theorybench`` command (and ``python -m theorybench``): :mod:`theorybench.cli`, imported
with the garbage collector held off, after starting the server cells' workers fork from, and
left without tearing the heap down.

Importing torch, scipy, pandas and pydantic builds about a million objects that live as long as
the process. Collecting them while importing, and again in every later full collection, costs
about 2 s of a warm suite run on a small CPU and frees nothing; so the collector is off during
the imports and what they built is frozen (:func:`gc.freeze`: left out of every later
collection). Objects made after the imports are collected as usual. Tearing the interpreter
down at the end (clearing every module, freeing every object one by one) costs about 2 s more
after a suite: once the command is done, its output flushed and the ``atexit`` handlers run
(the worker server and pools are closed by then), the process ends at once
(:func:`os._exit`) with the command's exit status. A library user importing
:mod:`theorybench` is not affected by any of this.

For ``run`` and ``replicate``, the worker server (:mod:`theorybench.forkserver`) starts first,
so that it imports torch and the plug-ins on another core while this process imports the CLI.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

from theorybench import forkserver

RUNS_CELLS = ("run", "replicate")


def _status(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives (a message is printed, as it would be)."""
    if code is None or isinstance(code, bool | int):
        return int(code or 0)
    print(code, file=sys.stderr)
    return 1


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in RUNS_CELLS:
        forkserver.start()
    gc.disable()
    try:
        from theorybench.cli import app
    finally:
        gc.freeze()
        gc.enable()
    try:
        app()
        status = 0
    except SystemExit as done:
        status = _status(done.code)
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(status)


if __name__ == "__main__":
    main()
