"""The leaderboard site, built from synthetic run records: pages, figures, escaping, robustness
to odd tables, the latest record per (task, profile), the figure cache, the CLI and the server."""

from __future__ import annotations

import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from theorybench.cli import app
from theorybench.leaderboard import SiteError, build, build_site, figures
from theorybench.leaderboard.build import page_path
from theorybench.leaderboard.serve import serve_in_thread
from theorybench.registry import experiment
from theorybench.results import (
    ArmResult,
    CellTiming,
    RunRecord,
    load_records,
    table_to_json,
    write_record,
)
from theorybench.specstore import describe

EVIL = "<script>alert('x')</script>"


class CurveParams(BaseModel):
    depth: int = 2


@experiment("test_site_curve", family="testing", params=CurveParams, columns=("phase", "y"),
            example={"depth": 2})
def site_curve(p: CurveParams, seeds, device) -> pd.DataFrame:
    """The columns the synthetic records below carry (specs name only columns that exist)."""
    return pd.DataFrame({"seed": list(seeds), "phase": "init", "y": float(p.depth)})


def curve_table(arms: tuple[str, ...] = ("claim", "flat-control"), seeds: int = 4) -> pd.DataFrame:
    """``y`` grows with ``depth`` in the claim's arm and is flat in the others."""
    rng = np.random.default_rng(0)
    rows = []
    for arm in arms:
        for cell, depth in enumerate((2, 4, 8)):
            for seed in range(seeds):
                slope = 1.0 if arm == "claim" else 0.0
                for phase in ("init", "trained"):
                    rows.append({"arm": arm, "cell": cell, "depth": depth, "seed": seed,
                                 "phase": phase, "y": slope * depth + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)


def trend_result(decision: str = "holds", effect: float = 0.8) -> dict[str, Any]:
    return {"rule": "trend", "metric": "y", "decision": decision, "effect": effect,
            "ci_low": effect - 0.2, "ci_high": effect + 0.2, "threshold": 0.3,
            "summary": f"Kendall tau of y along depth = {effect}",
            "detail": {"along": "depth", "direction": "increasing"}}


def make_record(
    *,
    task_id: str = "fam/claim-a",
    profile: str = "smoke",
    verdict: str = "holds",
    started: str = "2026-01-01T00:00:00+00:00",
    title: str = "A claim",
    tags: tuple[str, ...] = ("width",),
    table: pd.DataFrame | None = None,
    claim_rules: list[dict[str, Any]] | None = None,
    control_rules: list[dict[str, Any]] | None = None,
    control_verdict: str = "refuted",
    control_name: str = "flat-control",
    commit: str | None = "0123456789abcdef",
    wall_s: float = 12.5,
) -> RunRecord:
    table = curve_table(("claim", control_name)) if table is None else table
    claim_rules = [trend_result(verdict if verdict != "error" else "holds")] \
        if claim_rules is None else claim_rules
    control_rules = [trend_result(control_verdict, -0.5)] if control_rules is None \
        else control_rules
    cells = [CellTiming("claim", i, {"depth": d}, [0, 1, 2, 3], 1.0 + i, 8)
             for i, d in enumerate((2, 4, 8))]
    return RunRecord(
        run_id=uuid.uuid4().hex, suite="smoke", task_id=task_id, task_version=1, title=title,
        family=task_id.split("/")[0], tags=list(tags), spec_path=f"tasks/{task_id}.yaml",
        spec_sha256="0" * 64, profile=profile, expected_verdict="holds", verdict=verdict,
        validated=control_verdict == "refuted",
        claim=ArmResult("claim", verdict, None, claim_rules),
        controls=[ArmResult(control_name, control_verdict, "refuted", control_rules)],
        error="boom" if verdict == "error" else None, seeds=[0, 1, 2, 3], device="cpu",
        started=started, finished=started, wall_s=wall_s, cells=cells,
        table=table_to_json(table),
        environment={"git_commit": commit, "git_dirty": False, "device": "cpu",
                     "machine": "x86_64", "cpu_count": 2, "torch_threads": 2},
    )


def write(folder: Path, *records: RunRecord) -> Path:
    for rec in records:
        write_record(rec, folder)
    return folder


@pytest.fixture
def no_tasks(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    return folder


def spec_tasks_root(tmp_path: Path, task_id: str, title: str, **extra: Any) -> Path:
    """A tasks folder holding one valid spec for ``task_id``, on a registered experiment kind."""
    root = tmp_path / "tasks"
    (root / task_id.split("/")[0]).mkdir(parents=True, exist_ok=True)
    spec = {
        "id": task_id, "version": 1, "title": title,
        "claim": f"The claim text {EVIL} with <b>markup</b>.",
        "source": {"paper": f"Paper {EVIL}", "where": "Thm 1", "url": "javascript:alert(1)"},
        "experiment": {"kind": "test_site_curve", "sweep": {"depth": [2, 4, 8]}, "seeds": 4},
        "expect": [{"rule": "trend", "metric": "y", "along": "depth", "direction": "increasing",
                    "min_effect": 0.3, "where": {"phase": "trained"}, "label": f"y grows {EVIL}"}],
        "controls": [{"name": "flat-control", "description": f"flat {EVIL}", "override": {},
                      "verdict": "refuted"}],
        "reference": [{"label": f"paper's peak {EVIL}", "value": 4.0, "metric": "depth"}],
        **extra,
    }
    (root / f"{task_id}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return root


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img class="plot" src="([^"]+)"', html)


def test_index_has_one_row_per_task_and_profile_from_the_latest_record(tmp_path, no_tasks):
    runs = write(
        tmp_path / "runs",
        make_record(task_id="fam/a", verdict="holds", started="2026-01-01T00:00:00+00:00"),
        make_record(task_id="fam/a", verdict="refuted", started="2026-01-02T00:00:00+00:00"),
        make_record(task_id="fam/a", profile="standard", verdict="inconclusive"),
        make_record(task_id="other/b", verdict="holds", tags=("depth", "lazy regime")),
    )
    site = build_site(runs, tmp_path / "site", no_tasks)
    html = site.index.read_text()
    rows = re.findall(r'<tr class="claim-row" data-task="([^"]+)" data-profile="([^"]+)"', html)
    assert sorted(rows) == [("fam/a", "smoke"), ("fam/a", "standard"), ("other/b", "smoke")]
    fam_a = html.split('data-task="fam/a" data-profile="smoke"')[1].split("</tr>")[0]
    assert 'data-verdict="refuted|' in fam_a  # the latest record wins
    assert fam_a.count('class="dot') == 2 and "changed" in fam_a  # history strip, change ringed
    assert '<option value="smoke" selected>' in html  # smoke is shown by default
    assert 'data-tags="depth|lazy regime"' in html
    for rel in site.pages:
        page = (site.path / rel).read_text()
        for src in image_sources(page):
            assert (site.path / rel).parent.joinpath(src).is_file(), src
    assert (site.path / "static" / "site.js").is_file()
    assert (site.path / "history.html").is_file()


def test_claim_page_draws_the_curve_of_each_arm(tmp_path, no_tasks):
    runs = write(tmp_path / "runs", make_record())
    site = build_site(runs, tmp_path / "site", no_tasks)
    page = site.path / page_path("fam/claim-a", "smoke")
    html = page.read_text()
    sources = image_sources(html)
    assert "claim-a.smoke.rule0.svg" in sources and "claim-a.smoke.history.svg" in sources
    svg = (page.parent / "claim-a.smoke.rule0.svg").read_text()
    assert "control: flat-control" in svg and "predicted: increasing" in svg
    assert "flat-control" in html and "Provenance of the latest run" in html


def test_every_spec_and_record_string_is_escaped(tmp_path):
    tasks = spec_tasks_root(tmp_path, "fam/evil", EVIL, tags=[EVIL], notes=EVIL)
    rec = make_record(task_id="fam/evil", title=EVIL, tags=(EVIL,), control_name=EVIL,
                      table=curve_table(("claim", EVIL)))
    runs = write(tmp_path / "runs", rec)
    site = build_site(runs, tmp_path / "site", tasks)
    pages = [site.index, site.path / "history.html", *(site.path / p for p in site.pages)]
    for page in pages:
        html = page.read_text()
        assert "<script>alert" not in html, page
        assert "<b>markup" not in html
        assert 'href="javascript:' not in html
    claim = (site.path / site.pages[0]).read_text()
    assert "&lt;script&gt;alert(" in claim and "&lt;b&gt;markup&lt;/b&gt;" in claim
    for svg in site.path.rglob("*.svg"):
        assert "<script>" not in svg.read_text()


def test_spec_words_rules_and_reference_values_appear(tmp_path):
    tasks = spec_tasks_root(tmp_path, "fam/claim-a", "A claim")
    runs = write(tmp_path / "runs", make_record())
    site = build_site(runs, tmp_path / "site", tasks)
    page = site.path / page_path("fam/claim-a", "smoke")
    html = page.read_text()
    assert "The claim text" in html and "Thm 1" in html
    assert "y is increasing in depth (rows where phase = trained)" in html
    assert "the current spec file is" in html or "has changed since this run" in html
    assert 'id="reference"' in html and "paper&#39;s peak" in html
    svg = (page.parent / "claim-a.smoke.rule0.svg").read_text()
    assert "paper: paper" in svg  # the reference value is drawn on the curve


def test_a_control_with_its_own_row_filter_is_drawn_with_it(tmp_path):
    own = {"rule": "trend", "metric": "y", "along": "depth", "direction": "increasing",
           "where": {"phase": "init"}}
    tasks = spec_tasks_root(tmp_path, "fam/claim-a", "A claim", controls=[
        {"name": "flat-control", "override": {}, "expect": [own], "verdict": "refuted"}])
    site = build_site(write(tmp_path / "runs", make_record()), tmp_path / "site", tasks)
    page = site.path / page_path("fam/claim-a", "smoke")
    svg = (page.parent / "claim-a.smoke.rule0.svg").read_text()
    assert "control: flat-control [phase=init]" in svg


def test_a_record_with_an_unexpected_table_still_gets_a_page(tmp_path, no_tasks):
    odd = pd.DataFrame({"arm": ["claim"] * 3, "seed": [0, 1, 2], "colour": ["r", "g", "b"]})
    broken = make_record(task_id="fam/odd", table=odd)
    empty = make_record(task_id="fam/empty", table=pd.DataFrame(), verdict="error",
                        claim_rules=[], control_rules=[])
    text_along = curve_table().assign(depth=lambda t: t["depth"].map(str) + "L")
    strings = make_record(task_id="fam/strings", table=text_along)
    runs = write(tmp_path / "runs", broken, empty, strings)
    site = build_site(runs, tmp_path / "site", no_tasks)
    assert len(site.pages) == 3
    odd_html = (site.path / page_path("fam/odd", "smoke")).read_text()
    assert "no figure:" in odd_html and "rule0.svg" not in odd_html
    assert "no figure:" in (site.path / page_path("fam/strings", "smoke")).read_text()
    empty_html = (site.path / page_path("fam/empty", "smoke")).read_text()
    assert "boom" in empty_html
    assert 'data-verdict="error|' in site.index.read_text()


def test_a_missed_control_is_marked_and_filterable(tmp_path, no_tasks):
    runs = write(tmp_path / "runs", make_record(control_verdict="holds"))
    html = build_site(runs, tmp_path / "site", no_tasks).index.read_text()
    assert 'data-verdict="holds|control missed' in html
    assert ">control missed</span>" in html and "✗ 0/1" in html


def test_compare_rules_get_a_methods_ranking(tmp_path, no_tasks):
    rows = [{"arm": "claim", "cell": 0, "seed": s, "method": m, "gap": base + 0.01 * s}
            for s in range(4) for m, base in (("pgd", 0.3), ("trades", 0.2), ("beta", 0.05))]
    result = {"rule": "compare", "metric": "gap", "decision": "holds", "effect": -0.25,
              "ci_low": -0.3, "ci_high": -0.2, "threshold": 0.0, "summary": "beta < pgd",
              "detail": {"by": "method", "a": "beta", "b": "pgd", "direction": "a_less"}}
    rec = make_record(task_id="adv/gap", table=pd.DataFrame(rows), claim_rules=[result],
                      control_rules=[])
    site = build_site(write(tmp_path / "runs", rec), tmp_path / "site", no_tasks)
    html = (site.path / page_path("adv/gap", "smoke")).read_text()
    ranking = html.split("Ranking of method by mean gap")[1].split("</table>")[0]
    assert re.findall(r"<td>(pgd|trades|beta)</td>", ranking) == ["beta", "trades", "pgd"]
    assert "gap.smoke.rule0.svg" in image_sources(html)


def test_a_page_drawn_from_unchanged_inputs_reuses_its_rankings(tmp_path, no_tasks,
                                                                monkeypatch):
    """A rebuild whose page draws from the same numbers takes the rules' figures and ranking
    tables from the previous build without reading the table; new numbers rank anew."""
    rows = [{"arm": "claim", "cell": 0, "seed": s, "method": m, "gap": base + 0.01 * s}
            for s in range(4) for m, base in (("pgd", 0.3), ("trades", 0.2), ("beta", 0.05))]
    result = {"rule": "compare", "metric": "gap", "decision": "holds", "effect": -0.25,
              "ci_low": -0.3, "ci_high": -0.2, "threshold": 0.0, "summary": "beta < pgd",
              "detail": {"by": "method", "a": "beta", "b": "pgd", "direction": "a_less"}}
    runs = write(tmp_path / "runs", make_record(task_id="adv/gap", table=pd.DataFrame(rows),
                                                claim_rules=[result], control_rules=[]))
    out = tmp_path / "site"
    build_site(runs, out, no_tasks)
    first = (out / page_path("adv/gap", "smoke")).read_text()
    ranked = []
    real = figures.ranking_tables
    monkeypatch.setattr(figures, "ranking_tables",
                        lambda *a, **k: ranked.append(1) or real(*a, **k))
    build_site(runs, out, no_tasks)
    assert ranked == [] and (out / page_path("adv/gap", "smoke")).read_text() == first
    assert (out / "claims" / "adv" / "gap.smoke.rule0.svg").is_file()
    rows[0]["gap"] = 0.9  # pgd's seed 0: pgd stays last, its mean changes
    write(runs, make_record(task_id="adv/gap", table=pd.DataFrame(rows), claim_rules=[result],
                            control_rules=[], started="2026-02-01T00:00:00+00:00"))
    build_site(runs, out, no_tasks)
    again = (out / page_path("adv/gap", "smoke")).read_text()
    assert ranked == [1] and again != first


def test_verdict_changes_are_highlighted_in_history(tmp_path, no_tasks):
    runs = write(
        tmp_path / "runs",
        make_record(verdict="holds", started="2026-01-01T00:00:00+00:00", commit="aaaa"),
        make_record(verdict="refuted", started="2026-01-02T00:00:00+00:00", commit="bbbb"),
        make_record(verdict="refuted", started="2026-01-03T00:00:00+00:00", commit="cccc"),
    )
    site = build_site(runs, tmp_path / "site", no_tasks)
    history = (site.path / "history.html").read_text()
    changes = history.split('id="changes"')[1].split("</section>")[0]
    assert changes.count('<tr class="changed">') == 1 and "bbbb" in changes
    assert "aaaa" in history and "cccc" in history
    claim = (site.path / page_path("fam/claim-a", "smoke")).read_text()
    assert "changed (was holds)" in claim


def test_rebuild_replaces_the_previous_site_and_reuses_unchanged_figures(tmp_path, no_tasks,
                                                                         monkeypatch):
    runs = write(tmp_path / "runs", make_record(task_id="fam/a"), make_record(task_id="fam/b"))
    out = tmp_path / "site"
    build_site(runs, out, no_tasks)
    (out / "claims" / "stale.html").write_text("old")
    drawn = tmp_path / "drawn"  # a file: figures may be drawn in forked processes
    real = figures.curve_figure

    def counting(request, *args, **kwargs):
        with drawn.open("a") as log:
            log.write(request.path.name + "\n")
        return real(request, *args, **kwargs)

    monkeypatch.setattr(figures, "curve_figure", counting)
    remeasured = curve_table(("claim", "flat-control"))
    remeasured["y"] += 1.0
    write(runs, make_record(task_id="fam/b", started="2026-02-01T00:00:00+00:00",
                            table=remeasured))
    site = build_site(runs, out, no_tasks)
    # fam/a's figure is copied from the previous build
    assert drawn.read_text().split() == ["b.smoke.rule0.svg"]
    assert not (out / "claims" / "stale.html").exists()
    assert (out / "claims" / "fam" / "a.smoke.rule0.svg").is_file()
    assert len(site.pages) == 2


def test_a_run_that_measured_the_same_numbers_reuses_the_rule_figures(tmp_path, no_tasks,
                                                                      monkeypatch):
    """A published block run again (same table and results, new run id): its rule figures are
    copied; only the history figure, which shows the new run, is drawn again."""
    runs = write(tmp_path / "runs", make_record(task_id="fam/a"))
    out = tmp_path / "site"
    build_site(runs, out, no_tasks)
    drawn = tmp_path / "drawn"
    for name in ("curve_figure", "history_figure"):
        real = getattr(figures, name)

        def counting(*args, real=real, name=name, **kwargs):
            with drawn.open("a") as log:
                log.write(name + "\n")
            return real(*args, **kwargs)

        monkeypatch.setattr(figures, name, counting)
    write(runs, make_record(task_id="fam/a", started="2026-02-01T00:00:00+00:00"))
    build_site(runs, out, no_tasks)
    assert drawn.read_text().split() == ["history_figure"]


def test_refuses_to_replace_a_folder_that_is_not_a_site(tmp_path, no_tasks):
    runs = write(tmp_path / "runs", make_record())
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(SiteError):
        build_site(runs, precious, no_tasks)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_an_empty_records_folder_gives_an_empty_board(tmp_path, no_tasks):
    (tmp_path / "runs").mkdir()
    site = build_site(tmp_path / "runs", tmp_path / "site", no_tasks)
    assert "No run records yet" in site.index.read_text()


@pytest.mark.parametrize("fields, words", [
    ({"rule": "trend", "metric": "m", "along": "depth", "direction": "decreasing",
      "min_effect": 0.3}, "m is decreasing in depth"),
    ({"rule": "peak", "metric": "m", "along": "ratio", "window": [0.8, 1.25],
      "log_along": True, "min_excess": 0.7}, "maximum along log ratio inside [0.8, 1.25]"),
    ({"rule": "compare", "metric": "m", "by": "method", "a": "eg", "b": "gda",
      "direction": "a_less", "margin": 0.1}, "m(method = eg) − m(method = gda) < -0.1"),
    ({"rule": "threshold", "metric": "m", "op": "<", "value": 0.2, "per_seed": "max"},
     "the max of m per seed, averaged over seeds, is < 0.2"),
    ({"rule": "probability", "metric": "trapped", "op": ">", "value": 0.9},
     "fraction of trials with trapped = 1 is > 0.9"),
    ({"rule": "rate", "metric": "loss", "along": "step", "op": "<", "value": 0.0},
     "loss converges geometrically"),
    ({"rule": "degree", "metric": "out", "along": "h", "max_degree": 1},
     "polynomial of degree at most 1 in h"),
    ({"rule": "degree", "metric": "out", "along": "h", "max_degree": 1,
      "violation_tolerance": 0.4}, "on all but a fraction 0.4 of seeds"),
    ({"rule": "threshold", "metric": "m", "op": "<", "value": 0.2, "per_seed": "max",
      "form": "seeds", "violation_tolerance": 0.25},
     "at most a fraction 0.25 of seeds have the max of m per seed ≥ 0.2"),
    ({"rule": "trend", "metric": "m", "along": "depth", "direction": "decreasing",
      "min_effect": 0.3}, "for most seeds, Kendall's τ between depth and the seed's m"),
    ({"rule": "trend", "metric": "m", "along": "depth", "direction": "decreasing",
      "min_effect": 0.3, "monotone": True}, "every step from one level of depth to the next"),
    ({"rule": "peak", "metric": "m", "along": "ratio", "window": [0.8, 1.25],
      "min_excess": 0.7}, "grid level with the largest mean"),
])
def test_rules_are_described_in_words(fields, words):
    assert words in describe(fields)


def test_a_threshold_effect_goes_on_the_metric_axis_only_in_the_metric_units():
    from theorybench.verdict.rules.threshold import _threshold_on_axis

    assert _threshold_on_axis({"detail": {"form": "mean", "interval": "student-t"}})
    assert not _threshold_on_axis({"detail": {"form": "seeds"}})
    assert not _threshold_on_axis(
        {"detail": {"form": "mean", "interval": "sign test: every seed ..."}})


def test_the_site_builds_from_the_records_folder_alone(tmp_path):
    """A record written by the runner carries its rules' fields and words, and its spec's
    snapshot lands beside it; with no tasks folder the claim page still has the claim, the
    rules in words, the figures and the downloads, and the spec's other profiles are listed."""
    from theorybench.runner import run_task
    from theorybench.spec import load_task
    from theorybench.specstore import adoptions, record_adoption

    expect = [{"rule": "trend", "metric": "y", "along": "depth", "direction": "increasing",
               "min_effect": 0.3, "where": {"phase": "init"}}]
    tasks = spec_tasks_root(tmp_path, "fam/claim-a", "A claim", expect=expect,
                            profiles={"standard": {"seeds": 5}})
    task = load_task(tasks / "fam" / "claim-a.yaml")
    runs = tmp_path / "runs"
    out = run_task(task, "smoke", device="cpu", results_dir=runs)
    rec = out.record.to_dict()
    assert rec["spec_path"] == "fam/claim-a.yaml"
    rule = rec["claim"]["rules"][0]
    assert rule["spec"]["where"] == {"phase": "init"}
    assert "y is increasing in depth (rows where phase = init)" in rule["description"]
    assert (runs / "specs" / f"{task.sha256}.json").is_file()
    record_adoption(rec, runs)
    assert adoptions(runs)[("fam/claim-a", "smoke")]["record"] == rec["run_id"]
    skipped: list[str] = []
    assert [r["run_id"] for r in load_records(runs, skipped)] == [rec["run_id"]]
    assert skipped == []  # neither the spec store nor the adoption log is a record
    site = build_site(runs, tmp_path / "site", tmp_path / "no-such-tasks")
    html = (site.path / page_path("fam/claim-a", "smoke")).read_text()
    assert "The claim text" in html and "Thm 1" in html
    assert "y is increasing in depth (rows where phase = init)" in html
    assert "flat &lt;script&gt;" in html  # the control's description, escaped
    for src in image_sources(html):
        assert (site.path / page_path("fam/claim-a", "smoke")).parent.joinpath(src).is_file()
    links = re.findall(r'<a href="\.\./\.\./(data/[^"]+)" download>', html)
    assert any(link.endswith(".json") for link in links)
    assert any(link.endswith(".table.csv") for link in links)
    for link in links:
        assert (site.path / link).is_file()
    index = site.index.read_text()
    assert 'data-task="fam/claim-a" data-profile="standard"' in index  # unmeasured, from store
    assert "validated" in index or "holds" in index


def test_publish_command_and_server(tmp_path):
    runs = write(tmp_path / "runs", make_record())
    out = tmp_path / "site"
    result = CliRunner().invoke(app, ["publish", "--results-dir", str(runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file()
    server, url = serve_in_thread(out)
    try:
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert b'class="claim-row"' in response.read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "claims/", timeout=10)  # no directory listing
    finally:
        server.shutdown()
        server.server_close()


def test_run_rebuilds_the_default_site_and_only_warns_on_failure(tmp_path, monkeypatch, capsys):
    from theorybench import cli, leaderboard

    monkeypatch.setenv("THEORYBENCH_ROOT", str(tmp_path))
    write(tmp_path / "results" / "runs", make_record())
    cli._rebuild_site(None)
    assert (tmp_path / "results" / "site" / "index.html").is_file()

    cli._rebuild_site(tmp_path / "elsewhere")  # records written elsewhere: a hint, no site
    assert "theorybench publish --results-dir" in capsys.readouterr().out

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(leaderboard, "build_site", broken)
    cli._rebuild_site(None)
    assert "the site was not rebuilt: disk full" in capsys.readouterr().err


def test_figures_drawn_side_by_side_equal_those_drawn_in_place(tmp_path, no_tasks, monkeypatch):
    odd = pd.DataFrame({"arm": ["claim"] * 3, "seed": [0, 1, 2], "colour": ["r", "g", "b"]})
    runs = write(tmp_path / "runs", make_record(task_id="fam/a"),
                 make_record(task_id="fam/odd", table=odd))
    parallel = build_site(runs, tmp_path / "parallel", no_tasks)
    monkeypatch.setattr(build, "available_cores", lambda: 1)
    serial = build_site(runs, tmp_path / "serial", no_tasks)

    def files(site) -> dict[str, str]:
        return {p.relative_to(site.path).as_posix(): p.read_text()
                for p in site.path.rglob("*") if p.suffix in (".svg", ".html")}

    assert files(parallel) == files(serial)
    assert "no figure:" in (parallel.path / page_path("fam/odd", "smoke")).read_text()


def test_history_figure_is_svg_text_with_one_marker_per_run(tmp_path):
    import xml.etree.ElementTree as ET

    from theorybench.leaderboard.history import runs_frame

    records = [make_record(verdict=v, started=f"2026-01-0{i + 1}T00:00:00+00:00", commit=c,
                           wall_s=w).to_dict()
               for i, (v, c, w) in enumerate([("holds", EVIL, 3.0), ("refuted", "bbbb", 5.0),
                                              ("maybe", "cccc", float("nan"))])]
    path = tmp_path / "history.svg"
    assert figures.history_figure(runs_frame(records), path) is None
    root = ET.parse(path).getroot()
    svg = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{svg}svg"
    assert len([c for c in root.iter(f"{svg}circle") if c.get("class") == "run"]) == 3
    assert len(root.findall(f"{svg}rect[@width='5']")) == 2  # wall times (one is missing)
    assert "<script>" not in path.read_text() and "<script>al" in "".join(root.itertext())
    assert figures.history_figure(runs_frame([]), path) == "no runs"


def test_a_rebuild_parses_only_new_records_and_tables_it_needs(tmp_path, no_tasks, monkeypatch):
    """Records are summarised once; a claim page notes what it shows of its record's table, so
    a rebuild parses a record again only to draw from its table or write its CSV."""
    from theorybench.leaderboard import summaries

    runs = write(tmp_path / "runs", make_record(task_id="fam/a"), make_record(task_id="fam/b"),
                 make_record(task_id="fam/a", started="2026-01-02T00:00:00+00:00"))
    (runs / "broken.json").write_text("{nope")
    out = tmp_path / "site"
    first = build_site(runs, out, no_tasks)
    kept = orjson.loads((out / summaries.FILE).read_bytes())["records"]
    assert len(kept) == 3 and all("table" not in s for s in kept.values())
    assert set(next(iter(kept.values()))["cells"][0]) == {"arm", "index", "params", "wall_s",
                                                           "error"}
    read: list[str] = []
    real = summaries.read_record

    def counting(path):
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(summaries, "read_record", counting)
    build_site(runs, out, no_tasks)
    assert read == ["broken.json"]  # no longer a record, so never summarised
    read.clear()
    write(runs, make_record(task_id="fam/b", started="2026-02-01T00:00:00+00:00"))
    second = build_site(runs, out, no_tasks)
    new = next(runs.glob("20260201*.json")).name
    assert sorted(read) == sorted(["broken.json", new, new])  # summarised, then its table
    assert [n for n in second.notes if "broken.json" in n] == \
        [n for n in first.notes if "broken.json" in n] != []
    for task in ("fam/a", "fam/b"):
        html = (out / page_path(task, "smoke")).read_text()
        assert "Measurement table: 48 rows" in html and "measurement table, 48 rows (CSV)" in html
