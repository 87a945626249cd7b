"""The plug-in registry: typed entries, clashes and protocol mismatches rejected at registration,
discovery from entry points and ``--include`` folders, and an import graph without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Literal, Protocol

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from theorybench import registry
from theorybench.cli import app
from theorybench.forkserver import BUILTIN_PACKAGES

SRC = Path(registry.__file__).parent


@pytest.fixture
def clean_registry(monkeypatch):
    """A registry holding the built-ins only, restored after the test."""
    registry.load()
    saved = registry._ENTRIES
    fresh = registry._Entries()
    fresh.experiments = dict(saved.experiments)
    fresh.families = dict(saved.families)
    fresh.methods = {k: dict(v) for k, v in saved.methods.items()}
    fresh.rules = dict(saved.rules)
    fresh.datasets = dict(saved.datasets)
    fresh.loaded, fresh.included = True, set(saved.included)
    monkeypatch.setattr(registry, "_ENTRIES", fresh)
    return fresh


class Params(BaseModel):
    n: int = 3


def _kind(params: Params, seeds, device):
    import pandas as pd

    return pd.DataFrame({"seed": list(seeds), "value": [float(s) for s in seeds]})


def _other_kind(params: Params, seeds, device):
    return _kind(params, seeds, device)


def test_a_name_registered_twice_is_an_error(clean_registry) -> None:
    register = registry.experiment("toy", family="toy", params=Params, columns=["value"],
                                   example={})
    register(_kind)
    register(_kind)  # the same function again (a module imported twice): fine
    with pytest.raises(registry.RegistryError, match="registered twice"):
        registry.experiment("toy", family="toy", params=Params, columns=["value"],
                            example={})(_other_kind)


class Stepper(Protocol):
    def step(self, z: float, lr: float) -> float: ...


def test_methods_are_checked_against_their_family_protocol(clean_registry) -> None:
    registry.method_family("toy-steppers", Stepper, "toy")

    @registry.method("toy-steppers", "good")
    class Good:
        def step(self, z: float, lr: float) -> float:
            return z - lr * z

    with pytest.raises(registry.RegistryError, match="has no attribute 'step'"):
        registry.method("toy-steppers", "no-step")(type("NoStep", (), {}))

    class WrongArity:
        def step(self, z: float) -> float:
            return z

    with pytest.raises(registry.RegistryError, match="does not accept"):
        registry.method("toy-steppers", "arity")(WrongArity)
    with pytest.raises(registry.RegistryError, match="unknown method family"):
        registry.method("nobody", "x")(Good)
    assert registry.get_method("toy-steppers", "good") is Good
    with pytest.raises(KeyError, match="unknown toy-steppers method 'bad'; known: \\['good'\\]"):
        registry.get_method("toy-steppers", "bad")


def test_a_rule_needs_its_name_words_and_figure(clean_registry) -> None:
    class NoName(BaseModel):
        metric: str

    with pytest.raises(registry.RegistryError, match="rule: Literal"):
        registry.rule(NoName, describe=str, figure=str)

    class Named(BaseModel):
        rule: Literal["toy-rule"]
        metric: str

    registry.rule(Named, describe=lambda f: "words", figure=lambda *a: None)(_kind)
    assert registry.get_rule("toy-rule").describe({}) == "words"


PLUGIN = '''
import pandas as pd
from pydantic import BaseModel
from theorybench.registry import experiment

class P(BaseModel):
    n: int = 2

@experiment("included_kind", family="toy", params=P, columns=["value"], example={})
def included_kind(p, seeds, device):
    """One row per seed."""
    return pd.DataFrame({"seed": list(seeds), "value": [float(p.n + s % 3) for s in seeds]})
'''

TASK = '''
id: toy/included
version: 1
title: a kind from an included folder
claim: value stays below 10
source: {paper: "none", where: "test"}
experiment:
  kind: included_kind
  seeds: 8
  seed_offset: 1000
expect:
  - {id: small, rule: threshold, metric: value, op: "<", value: 10}
controls:
  - name: larger-n
    description: n = 20 puts every value above 10
    override: {n: 20}
    breaks: small
    verdict: refuted
profiles:
  smoke: {}
'''


def test_include_imports_a_folder_of_plugins_once(clean_registry, tmp_path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy.py").write_text(PLUGIN)
    registry.include([tmp_path / "plugins"])
    registry.include([tmp_path / "plugins"])  # once
    assert "included_kind" in registry.experiment_kinds()
    assert registry.included() == (str((tmp_path / "plugins").resolve()),)
    with pytest.raises(registry.RegistryError, match="no such folder"):
        registry.include([tmp_path / "missing"])


def test_the_cli_runs_a_task_of_an_included_kind(clean_registry, tmp_path, monkeypatch) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy.py").write_text(PLUGIN)
    (tmp_path / "included.yaml").write_text(TASK)
    monkeypatch.setenv("THEORYBENCH_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(tmp_path / "included.yaml"), "--no-record",
                                 "--include", str(tmp_path / "plugins")])
    assert result.exit_code == 0, result.output
    assert "holds" in result.output
    bad = runner.invoke(app, ["run", str(tmp_path / "included.yaml"), "--no-record",
                              "--include", str(tmp_path / "nowhere")])
    assert bad.exit_code != 0 and "no such folder" in bad.output


def test_entry_points_are_loaded(clean_registry, tmp_path, monkeypatch) -> None:
    (tmp_path / "toy_claims.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = metadata.EntryPoint(name="toy", value="toy_claims", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group=None: [point] if group == registry.ENTRY_POINT_GROUP else [])
    clean_registry.loaded = False
    registry.load()
    assert registry.get_experiment("included_kind").fn.__module__ == "toy_claims"


def test_a_broken_entry_point_names_itself(clean_registry, monkeypatch) -> None:
    point = metadata.EntryPoint(name="broken", value="no_such_module_xyz",
                                group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [point])
    clean_registry.loaded = False
    with pytest.raises(registry.RegistryError, match="'broken'.*no_such_module_xyz"):
        registry.load()


def _module_imports(path: Path, name: str) -> set[str]:
    """Modules imported at module level (not inside functions or ``if TYPE_CHECKING``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("theorybench")}


def _graph() -> dict[str, set[str]]:
    modules = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in _module_imports(path, name):
            # importing a.b.c runs a/__init__ and a/b/__init__ first
            pieces = target.split(".")
            edges |= {".".join(pieces[:i]) for i in range(2, len(pieces) + 1)} & modules.keys()
        graph[name] = edges - {name}
    return graph


def test_no_import_cycle_between_registry_verdict_experiments_and_methods() -> None:
    """Module-level imports between the four layers form no cycle (edges inside one package
    are not counted: a submodule importing a sibling runs the package's ``__init__``)."""
    layers = ("registry", "verdict", "experiments", "methods")

    def layer(module: str) -> str | None:
        part = module.split(".")[1] if "." in module else ""
        return part if part in layers else None

    edges: dict[str, set[str]] = {name: set() for name in layers}
    for source, targets in _graph().items():
        for target in targets:
            a, b = layer(source), layer(target)
            if a and b and a != b:
                edges[a].add(b)
    assert not edges["registry"], "the registry imports project modules at import"
    for start in layers:
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            assert node != start, f"import cycle through {start}: {edges}"
            if node not in seen:
                seen.add(node)
                todo.extend(edges[node])


def test_importing_the_registry_imports_no_plugin() -> None:
    code = ("import sys, theorybench.registry; "
            "print(sorted(m for m in sys.modules if m.startswith('theorybench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    modules = ast.literal_eval(out.strip())
    assert "theorybench.registry" in modules
    assert not [m for m in modules if m.startswith(tuple(f"{p}." for p in BUILTIN_PACKAGES))]


def test_the_worker_server_starts_before_torch_is_imported() -> None:
    """The command starts the server cells' workers fork from before its own imports, so that
    the two import side by side: the module that starts it imports neither torch nor pandas."""
    code = ("import sys, theorybench.forkserver; "
            "print(sorted(m for m in ('torch', 'pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out


def test_importing_the_package_leaves_matplotlib_alone() -> None:
    """No import-time side effect: the user's matplotlib backend survives importing the CLI and
    the site builder."""
    code = textwrap.dedent("""
        import matplotlib
        matplotlib.use("svg")
        import theorybench.cli, theorybench.leaderboard.build, theorybench.leaderboard.figures
        print(matplotlib.get_backend())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "svg"
