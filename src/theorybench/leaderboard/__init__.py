"""The leaderboard: a static site rendered from run records and task specs.

``build_site`` (``theorybench publish``) writes ``results/site/``; ``serve`` (``theorybench
serve``) shows it on localhost; ``history`` reads verdict and timing history from the records.
"""

from theorybench.leaderboard.build import Site, SiteError, build_site

__all__ = ["Site", "SiteError", "build_site"]
