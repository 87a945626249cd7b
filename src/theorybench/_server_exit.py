"""Imported first by the worker server of :mod:`theorybench.forkserver`, and only there: when
its clients are gone and it exits, it skips tearing down its heap (torch and every plug-in,
about 2 s of freeing objects one by one, during which a pipe reading the command's output,
which the server holds too, stays open). Its workers end through :func:`os._exit` already."""

import atexit
import os

atexit.register(os._exit, 0)
