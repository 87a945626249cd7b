"""A content-addressed cache of cell outputs: a rerun computes only the cells whose inputs
changed, and a run killed part-way resumes where it stopped.

The **key** of a cell is the sha256 of the canonical JSON of

* the experiment kind's name and its parameters *resolved* by the kind's params model
  (defaults filled in, so writing a default explicitly does not change the key),
* the seeds (not the global guard seed the runner sets from the cell's position: kinds draw
  every random number from generators seeded by the seeds, so a cell keeps its key when
  another sweep point is added before it),
* the device type the cell runs on (``cpu`` or ``cuda``), resolved where the cell runs,
* the versions of Python, torch, numpy, pandas, scikit-learn and theorybench,
* :func:`source_hash` of the kind: the sha256 of its module and of every project module it
  imports, transitively (``models/``, ``data/``, ``ntk.py``, ``attacks.py``, ``device.py``, ...;
  for a kind of a claim package, its own package's modules too), plus the module of every
  registered method when the kind looks methods up in the registry (methods may come from other
  packages). The imports are read from the source (``ast``), so no list is kept by hand.

An **entry** (``<dir>/<key[:2]>/<key>.pkl``) holds the kind's table (before the runner adds
``arm``, ``cell`` and the swept values), the wall time of the run that computed it and the
device it ran on. Entries are written to a temporary file and renamed, so a reader never sees
a partial one and a killed run leaves at most a stray ``.tmp-*`` file (ignored, and removed by
``theorybench cache clear``). Errors are never cached. Entries are pickles: the cache folder,
like any pickle cache, must be writable only by people you trust.

The arms' judgments made on cached tables live beside the cells, under ``judgments/``
(:mod:`theorybench.judging`); ``clear`` removes them too.

The folder is ``results/cache/`` by default, ``$THEORYBENCH_CACHE_DIR`` or ``--cache-dir`` when
set (a shared path on a cluster); it git-ignores itself.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from theorybench import registry
from theorybench.paths import project_root
from theorybench.results import library_versions

ENV_DIR = "THEORYBENCH_CACHE_DIR"
# Plumbing whose changes cannot change a cell's numbers.
_NOT_SOURCES = {"theorybench", "theorybench.registry", "theorybench.paths"}


def default_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else project_root() / "results" / "cache"


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


_IMPORT_START = re.compile(r"^[ \t]*(?:import|from)[ \t]", re.MULTILINE)


def _import_statements(text: str) -> Iterator[ast.stmt]:
    """The import statements of a module's source, wherever they are (top level or inside a
    function), parsed one by one: parsing only these lines is many times quicker than parsing
    the module. A line that only looks like one (prose in a docstring) does not parse and is
    skipped; a docstring line that is a valid import only adds a file to the hash."""
    for match in _IMPORT_START.finditer(text):
        end = text.find("\n", match.start())
        line = text[match.start(): len(text) if end < 0 else end]
        while line.rstrip().endswith("\\") or line.count("(") > line.count(")"):
            end = text.find("\n", end + 1)  # a statement continued on the next line
            line = text[match.start(): len(text) if end < 0 else end]
            if end < 0:
                break
        try:
            yield from ast.parse(line.strip()).body
        except SyntaxError:
            continue


@cache
def _project_imports(path: Path, package: str | None,
                     roots: tuple[str, ...] = ("theorybench",)) -> tuple[frozenset[str], bool]:
    """The modules of the packages ``roots`` that ``path`` imports, and whether it uses
    registry methods (read once per process)."""
    found: set[str] = set()
    uses_methods = False
    for node in _import_statements(path.read_text()):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in roots)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and package:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] not in roots:
                continue
            found.add(base)
            for alias in node.names:
                # `from theorybench import attacks` imports a module, not a name
                if _module_file(f"{base}.{alias.name}") is not None:
                    found.add(f"{base}.{alias.name}")
            if base == "theorybench.registry" and any(
                    a.name in ("get_method", "methods") for a in node.names):
                uses_methods = True
    return frozenset(found), uses_methods


def _method_sources() -> dict[str, Path]:
    """The source file of every module that registers a method, by module name."""
    found = {}
    for family in registry.method_families():
        for obj in registry.methods(family).values():
            path = _module_file(obj.__module__)
            if path is not None:
                found[obj.__module__] = path
    return found


@cache
def source_hash(module: str) -> str:
    """sha256 over the source files ``module`` depends on (see the module docstring)."""
    files: dict[str, Path] = {}
    todo = [module]
    roots = tuple({"theorybench", module.split(".")[0]})
    uses_methods = False
    while todo:
        name = todo.pop()
        if name in files or name in _NOT_SOURCES:
            continue
        path = _module_file(name)
        if path is None:
            continue
        files[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imports, methods = _project_imports(path, package, roots)
        uses_methods |= methods
        todo.extend(imports - files.keys())
    if uses_methods:
        for name, path in _method_sources().items():
            files.setdefault(name, path)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].read_bytes() + b"\0")
    return digest.hexdigest()


def cell_key(kind: str, params: dict[str, Any], seeds: tuple[int, ...],
             device_type: str) -> str:
    """The cache key of a cell (see the module docstring)."""
    from theorybench.registry import get_experiment

    exp = get_experiment(kind)
    resolved = exp.params.model_validate(params).model_dump(mode="json")
    payload = {
        "kind": kind, "params": resolved, "seeds": list(seeds),
        "device": device_type, "versions": library_versions(),
        "source": source_hash(exp.fn.__module__),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def shape_key(kind: str, params: dict[str, Any], seeds: tuple[int, ...],
              device_type: str) -> str:
    """A looser key (no source hash, versions or guard seed): the cell's size. Its past wall
    time survives code edits and feeds the thread policy and the progress ETA."""
    text = json.dumps({"kind": kind, "params": params, "seeds": list(seeds),
                       "device": device_type}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Entry:
    table: pd.DataFrame
    wall_s: float
    device: str
    kind: str


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CellCache:
    """Cell outputs on disk under ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_dir()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> Entry | None:
        try:
            with self._path(key).open("rb") as handle:
                entry = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return None
        return entry if isinstance(entry, Entry) else None

    def has(self, key: str) -> bool:
        return self._path(key).is_file()

    def past_wall(self, shape: str) -> float | None:
        """Wall time of the last computed cell with this :func:`shape_key`, if any."""
        try:
            return float((self.folder / "times" / shape[:2] / shape).read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, entry: Entry, shape: str | None = None) -> None:
        """Store ``entry`` (and its wall time under ``shape``) atomically: a temporary file,
        then a rename. A failure to write only skips the entry."""
        try:
            self._ignore_self()
            write_atomic(self._path(key), pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
            if shape:
                write_atomic(self.folder / "times" / shape[:2] / shape,
                              f"{entry.wall_s!r}".encode())
        except OSError:
            return

    def _ignore_self(self) -> None:
        marker = self.folder / ".gitignore"
        if not marker.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            marker.write_text("# theorybench's cell cache: never committed\n*\n")

    def entries(self) -> list[Path]:
        return sorted(self.folder.glob("??/*.pkl")) if self.folder.is_dir() else []

    def info(self) -> dict[str, Any]:
        """Entry count and bytes, per kind, plus stray temporary files."""
        kinds: dict[str, int] = {}
        size = 0
        for path in self.entries():
            size += path.stat().st_size
            entry = self.get(path.stem)
            name = entry.kind if entry else "(unreadable)"
            kinds[name] = kinds.get(name, 0) + 1
        stray = self._stray()
        return {"folder": str(self.folder), "entries": sum(kinds.values()), "bytes": size,
                "kinds": dict(sorted(kinds.items())), "judgments": len(self._judgments()),
                "stray_temporary_files": len(stray)}

    def clear(self) -> int:
        """Remove every entry and stray temporary file; the number of files removed."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        times = list((self.folder / "times").glob("??/*"))
        for path in [*self.entries(), *self._stray(), *times, *self._judgments()]:
            path.unlink(missing_ok=True)
            removed += 1
        for sub in [*self.folder.glob("??"), *self.folder.glob("times/??"),
                    *self.folder.glob("judgments/??")]:
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        return removed

    def _judgments(self) -> list[Path]:
        """The arms' judgments stored beside the cells (``theorybench.judging``)."""
        return sorted(self.folder.glob("judgments/??/*.pkl")) if self.folder.is_dir() else []

    def _stray(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [*self.folder.glob("??/.tmp-*"), *self.folder.glob("times/??/.tmp-*"),
                *self.folder.glob("judgments/??/.tmp-*")]
