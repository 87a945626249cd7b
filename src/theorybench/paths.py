"""Where the project's folders are: tasks/, suites/, results/.

The root is ``$THEORYBENCH_ROOT`` when set, else the nearest folder at or above the working
directory holding both ``tasks/`` and ``suites/``, else the checkout this package lives in.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("THEORYBENCH_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "tasks").is_dir() and (folder / "suites").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


def tasks_dir() -> Path:
    return project_root() / "tasks"


def suites_dir() -> Path:
    return project_root() / "suites"


def runs_dir() -> Path:
    return project_root() / "results" / "runs"


def site_dir() -> Path:
    return project_root() / "results" / "site"
