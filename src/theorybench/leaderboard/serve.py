"""Serve a built site over HTTP on the loopback interface (``theorybench serve``).

:func:`make_server` binds a threading HTTP server to ``host:port`` (port 0: a free port) that
serves files from ``folder`` only; :func:`serve_in_thread` runs one in a daemon thread for tests
and returns it with its base URL, to be stopped with ``server.shutdown()``.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class SiteHandler(SimpleHTTPRequestHandler):
    """Static files from one folder, without directory listings."""

    def list_directory(self, path: str) -> Any:
        self.send_error(404, "no directory listing")
        return None


class QuietHandler(SiteHandler):
    """A :class:`SiteHandler` that logs no request (for tests)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
        return


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 0,
                quiet: bool = True) -> ThreadingHTTPServer:
    """An HTTP server of ``folder`` bound to ``host:port`` (not yet serving)."""
    if not (Path(folder) / "index.html").is_file():
        raise FileNotFoundError(f"{folder} has no index.html: run `theorybench publish` first")
    handler = QuietHandler if quiet else SiteHandler
    server = ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(folder)))
    server.daemon_threads = True
    return server


def base_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_in_thread(folder: Path, host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, str]:
    """Serve ``folder`` on a free port from a daemon thread; returns the server and its URL."""
    server = make_server(folder, host, 0)
    threading.Thread(target=server.serve_forever, name="theorybench-site", daemon=True).start()
    return server, base_url(server)
