"""A history that survives bad files: each unusable file under ``results/runs/`` is skipped
with one warning naming it; ``list``, ``publish`` and the site builder never crash on one; a
record's task id never reaches outside the tasks folder; the site is swapped atomically."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from theorybench.cli import app
from theorybench.leaderboard import build_site
from theorybench.leaderboard.build import _load_spec
from theorybench.results import RecordSkipped, load_history, load_records

ROOT = Path(__file__).resolve().parents[1]
GOOD = sorted((ROOT / "results" / "runs").glob("*overparam__random-labels*.json"))[0]


def good() -> dict:
    return json.loads(GOOD.read_text())


def with_field(**fields) -> str:
    return json.dumps(good() | fields)


BAD: dict[str, bytes | str] = {
    "schema-only": '{"schema": 1}',
    "invalid-utf8": b'{"schema": 1, "title": "\xff\xfe"}',
    "started-null": with_field(started=None),
    "claim-string": with_field(claim="x"),
    "environment-null": with_field(environment=None),
    "not-json": "{nope",
    "empty": "",
    "a-list": "[1, 2]",
    "deep": "[" * 100_000 + "]" * 100_000,
    "wall-string": with_field(wall_s="fast"),
    "controls-null": with_field(controls=None),
    "rules-strings": with_field(claim=good()["claim"] | {"rules": ["x"]}),
    "schema-2": with_field(schema=2),
    "leak": with_field(task_id="../../../../elsewhere/leak"),
    "absolute-id": with_field(task_id="/etc/passwd"),
}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / GOOD.name).write_bytes(GOOD.read_bytes())
    odd = good() | {"verdict": "maybe [/x]", "run_id": "f" * 32, "title": "[bold]k [/x]"}
    (folder / "odd-verdict.json").write_text(json.dumps(odd))
    for name, content in BAD.items():
        path = folder / f"{name}.json"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (folder / "a-folder.json").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "a-fifo.json")
    return folder


def test_each_bad_file_is_skipped_with_one_warning_naming_it(runs: Path) -> None:
    skipped: list[str] = []
    records = load_records(runs, skipped)
    assert sorted(Path(r["_path"]).name for r in records) == sorted([GOOD.name,
                                                                    "odd-verdict.json"])
    names = {f"{n}.json" for n in BAD} | {"a-folder.json"}
    if hasattr(os, "mkfifo"):
        names.add("a-fifo.json")
    assert len(skipped) == len(names)
    for name in names:
        assert sum(name in message for message in skipped) == 1, name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(load_history(runs)) == 2
    assert sum(issubclass(w.category, RecordSkipped) for w in caught) == len(names)


def test_list_and_publish_survive_and_print_user_text_literally(runs: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    listed = CliRunner().invoke(app, ["list", "--results-dir", str(runs)])
    assert listed.exit_code == 0, listed.output
    assert "skipped" in listed.output and "schema-only.json" in listed.output
    published = CliRunner().invoke(app, ["publish", "--results-dir", str(runs), "--out",
                                         str(tmp_path / "site")])
    assert published.exit_code == 0, published.output
    assert "invalid-utf8.json" in published.output


def test_a_task_id_never_reaches_outside_the_tasks_folder(tmp_path: Path) -> None:
    tasks = tmp_path / "deep" / "er" / "tasks"
    tasks.mkdir(parents=True)
    secret = tmp_path / "elsewhere" / "leak.yaml"
    secret.parent.mkdir()
    secret.write_text("title: SECRET-TEXT\n")
    runs = tmp_path / "runs"
    runs.mkdir()
    rec = good() | {"task_id": "fam/x", "title": "t"}
    (runs / "ok.json").write_text(json.dumps(rec))
    leak = good() | {"task_id": "../../../elsewhere/leak", "run_id": "e" * 32}
    (runs / "leak.json").write_text(json.dumps(leak))
    assert (tasks / "../../../elsewhere/leak.yaml").resolve() == secret.resolve()
    assert _load_spec(tasks, "../../../elsewhere/leak", {})[0] is None
    site = build_site(runs, tmp_path / "site", tasks)
    assert any("leak.json" in note for note in site.notes)
    for page in site.path.rglob("*.html"):
        assert "SECRET-TEXT" not in page.read_text()
    for page in site.path.rglob("*"):
        assert page.resolve().is_relative_to(site.path.resolve())


def test_the_site_is_a_link_swapped_atomically_and_stale_builds_are_removed(runs: Path,
                                                                             tmp_path: Path):
    out = tmp_path / "site"
    stale = tmp_path / ".site.build-99999999-abc"
    stale.mkdir()
    legacy = tmp_path / ".site.new-xyz"
    legacy.mkdir()
    first = build_site(runs, out, tmp_path / "no-tasks")
    assert out.is_symlink() and (out / "index.html").is_file()
    assert not stale.exists() and not legacy.exists()
    target = out.resolve()
    second = build_site(runs, out, tmp_path / "no-tasks")
    assert out.resolve() != target and not target.exists()
    assert first.index == second.index and second.index.is_file()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.")]
    assert leftovers == [out.resolve().name]


def test_gitignore_covers_the_site_and_its_staging_folders() -> None:
    lines = (ROOT / ".gitignore").read_text().splitlines()
    assert "results/site" in lines and "results/.site.*" in lines
