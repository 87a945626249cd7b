"""The theorybench wheel works outside any checkout: built from the sources, installed into a
fresh venv (not the editable copy), it runs a min-max and an adversarial task from a folder of
its own, and carries its package data (site templates and static files, the calibration table)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from isolated_venv import Venv, can_build_offline

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["minmax/bilinear-eg-converges", "adversarial/danskin-counterexample"]
DATA = ["theorybench/verdict/calibration_table.json",
        "theorybench/leaderboard/templates/claim.html.j2",
        "theorybench/leaderboard/templates/base.html.j2",
        "theorybench/leaderboard/static/site.css",
        "theorybench/leaderboard/static/site.js"]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> tuple[Venv, Path]:
    why = can_build_offline()
    if why:
        pytest.skip(f"cannot build offline: {why}")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = Venv(tmp / "venv")
    venv.run([str(venv.python), "-m", "pip", "wheel", "--quiet", "--no-deps",
              "--no-build-isolation", "-w", str(tmp / "dist"), str(source)])
    (wheel,) = (tmp / "dist").glob("theorybench-*.whl")
    venv.pip_install(wheel)
    # The parent environment may hold claim packages (the example is installed by `make`): their
    # entry points are visible here, so install their own copies too, as a user would.
    package = tmp / "claim-package"
    shutil.copytree(ROOT / "examples" / "claim-package", package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv.pip_install(package)
    return venv, wheel


def test_wheel_carries_the_package_data(wheel_venv):
    _, wheel = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in DATA if name not in names]
    assert not missing, f"not in the wheel: {missing}"


def test_installed_wheel_runs_tasks_outside_the_checkout(wheel_venv, tmp_path):
    venv, _ = wheel_venv
    work = tmp_path / "bench"
    for task in TASKS:
        (work / "tasks" / task).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "tasks" / f"{task}.yaml", work / "tasks" / f"{task}.yaml")
    (work / "suites").mkdir()
    where = venv.run([str(venv.python), "-c", "import theorybench; print(theorybench.__file__)"],
                     cwd=work).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.root.resolve()), where
    assert not Path(where).resolve().is_relative_to(ROOT)
    # the min-max task writes its record under work/results and builds the site from the
    # wheel's templates; the adversarial one runs once at tiny sizes (--dry-run)
    done = venv.run([str(venv.bin / "theorybench"), "run", TASKS[0], "--profile", "smoke",
                     "--no-cache"], cwd=work, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (record,) = (work / "results" / "runs").glob("*.json")
    assert json.loads(record.read_text())["verdict"] != "error"
    assert (work / "results" / "site" / "index.html").is_file(), done.stdout[-2000:]
    done = venv.run([str(venv.bin / "theorybench"), "run", TASKS[1], "--dry-run"], cwd=work,
                    timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert TASKS[1] in done.stdout
