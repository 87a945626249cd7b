"""The example claim package (examples/claim-package) installs as a new user would install it and
runs with ``theorybench run`` from its own folder: its entry point registers its kind, methods
and rule, its task resolves by id against its own tasks/, and the record lands in its results/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from isolated_venv import Venv, can_build_offline

import theorybench

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "claim-package"
TASK = "early_stopping/gd-u-shape"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Venv, Path]:
    why = can_build_offline()
    if why:
        pytest.skip(f"cannot install offline: {why}")
    tmp = tmp_path_factory.mktemp("claim-package")
    package = tmp / "claim-package"  # a copy: building writes *.egg-info next to the sources
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns(
        "results", "*.egg-info", "__pycache__", "build"))
    # theorybench as this test process sees it (the checkout's src/); the package on its own
    venv = Venv(tmp / "venv", extra=[Path(theorybench.__file__).resolve().parents[1]])
    venv.pip_install(package)
    return venv, package


def test_the_installed_copy_declares_the_entry_point(installed):
    """Without importing anything heavy: the installed copy is the one found, and its
    distribution declares the plug-in module."""
    venv, _ = installed
    out = venv.run_python(
        "import importlib.util, importlib.metadata as m;"
        "print(importlib.util.find_spec('theorybench_example').origin);"
        "print([e.value for e in m.entry_points(group='theorybench.plugins')"
        " if e.dist.name == 'theorybench-example'])").stdout.splitlines()
    assert Path(out[0]).resolve().is_relative_to(venv.root.resolve())
    assert out[1] == "['theorybench_example']"


def test_theorybench_run_from_the_package_folder(installed):
    """No --include: the kind, the methods and the rule come from the entry point."""
    venv, package = installed
    # theorybench itself is the checkout's (not installed in this venv, so no console script)
    done = venv.run([str(venv.python), "-m", "theorybench.cli", "run", TASK, "--no-cache"],
                    cwd=package,
                    timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = sorted((package / "results" / "runs").glob("*.json"))
    assert len(records) == 1, done.stdout[-2000:]
    record = json.loads(records[0].read_text())
    assert record["task_id"] == TASK
    assert record["verdict"] != "error", record.get("error")
    assert record["spec_path"] == f"{TASK}.yaml"  # relative to the task root
    assert [c["name"] for c in record["controls"]] == ["noiseless-labels"]
    assert (package / "results" / "site" / "index.html").is_file()
