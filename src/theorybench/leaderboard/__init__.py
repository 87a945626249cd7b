"""The leaderboard: a static site rendered from run records (and task specs when present).

``build_site`` (``theorybench publish``) writes ``results/site/``; ``serve`` (``theorybench
serve``) shows it on localhost; ``history`` reads verdict and timing history from the records.
The site's modules are imported on first use: reading history does not load the plotting
libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from theorybench.leaderboard.build import Site, SiteError, build_site

__all__ = ["Site", "SiteError", "build_site"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from theorybench.leaderboard import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
