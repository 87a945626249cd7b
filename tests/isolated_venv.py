"""A throw-away virtual environment that sees the running interpreter's third-party packages
(torch, pandas, pip, setuptools, ...) but not how theorybench is installed there.

``python -m venv --system-site-packages`` from inside a venv exposes the *base* interpreter's
site-packages, not the parent venv's, so it would not find torch. Instead the new venv has no
system site packages and one ``.pth`` file listing the parent's site-packages folders (plus any
``extra`` folder). Lines of a ``.pth`` file are only appended to ``sys.path``: the ``.pth``
files inside those folders, among them the editable-install hook that points at the checkout's
``src/``, are not processed, so ``import theorybench`` finds only what is installed in the new
venv (or an ``extra`` folder). Subprocesses run without ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def parent_site_packages() -> list[str]:
    """The running interpreter's site-packages folders (never a source checkout)."""
    found = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    return list(dict.fromkeys(str(Path(p).resolve()) for p in found if Path(p).is_dir()))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "THEORYBENCH_ROOT",
                        "VIRTUAL_ENV", "PYTHONNOUSERSITE")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1",
               **extra)
    return env


class Venv:
    def __init__(self, root: Path, extra: list[Path] | None = None) -> None:
        self.root = root
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                       capture_output=True, timeout=120)
        self.bin = root / ("Scripts" if os.name == "nt" else "bin")
        self.python = self.bin / "python"
        site = Path(self.run_python("import sysconfig; print(sysconfig.get_path('purelib'))")
                    .stdout.strip())
        lines = [*parent_site_packages(), *(str(p) for p in extra or [])]
        (site / "_theorybench_test_parent.pth").write_text("\n".join(lines) + "\n")
        self.site = site

    def run_python(self, code: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run([str(self.python), "-c", code], **kwargs)

    def run(self, args: list[str], cwd: Path | None = None, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}")
        return done

    def pip_install(self, target: str | Path, *options: str) -> subprocess.CompletedProcess:
        """pip (the parent's) installing into this venv, offline, without dependencies."""
        return self.run([str(self.python), "-m", "pip", "install", "--quiet", "--no-deps",
                         "--no-index", "--no-build-isolation", "--ignore-installed",
                         *options, str(target)])


def can_build_offline() -> str | None:
    """Why an offline install cannot work here, or None."""
    for module in ("pip", "setuptools"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed in the running interpreter"
    if not sysconfig.get_path("purelib"):
        return "no site-packages folder"
    return None
