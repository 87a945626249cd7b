"""The publication protocol end to end on a tiny task: controls judged by the rule they break,
published verdicts that must name their record, seed blocks, replication, adoption, power, and
the statuses the site shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from theorybench.cli import app
from theorybench.leaderboard import build_site
from theorybench.leaderboard.build import page_path
from theorybench.registry import experiment
from theorybench.replication import power, resample_seeds
from theorybench.results import load_records
from theorybench.runner import run_task
from theorybench.spec import load_task
from theorybench.status import (
    REPLICATION_START,
    benjamini_hochberg,
    claim_p_value,
    purpose_of,
    replication_offset,
    spec_hash,
    with_published,
)


class NoisyLineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slope: float = 1.0
    x: float = 0.0


@experiment("test_noisy_line", family="testing", params=NoisyLineParams, columns=("y",),
            example={"slope": 1.0})
def noisy_line(p: NoisyLineParams, seeds, device) -> pd.DataFrame:
    """y = slope·x + N(0, 0.1²) noise drawn from the seed alone."""
    return pd.DataFrame({"seed": list(seeds), "y": [
        p.slope * p.x + 0.1 * np.random.default_rng(int(s)).standard_normal() for s in seeds]})


TREND = {"id": "grows", "rule": "trend", "metric": "y", "along": "x",
         "direction": "increasing", "min_effect": 0.5}
POSITIVE = {"id": "positive", "rule": "threshold", "metric": "y", "op": ">", "value": -100.0}


def spec(**changes: Any) -> dict[str, Any]:
    data = {
        "id": "testing/line", "version": 1, "title": "y grows with x", "claim": "y grows",
        "source": {"paper": "none", "where": "here"},
        "paper_regime": "any line",
        "out_of_regime": None,
        "experiment": {"kind": "test_noisy_line", "params": {"slope": 1.0},
                       "sweep": {"x": [0.0, 1.0, 2.0, 3.0]}, "seeds": 6, "seed_offset": 1000},
        "expect": [TREND],
        "controls": [{"name": "flat", "override": {"slope": 0.0}, "breaks": "grows"}],
        # the trend rule is a sign test on per-seed Kendall tau: it decides from 6 seeds on, and
        # a control refuted by one of two rules needs p <= 0.025 / 2 under Holm (7 seeds on)
        "profiles": {"smoke": {"seeds": 8}, "standard": {"seeds": 8}},
        "tags": ["x"],
        "notes": "a line",
    }
    data.update(changes)
    return data


def write_spec(root: Path, data: dict[str, Any]) -> Path:
    path = root / "tasks" / "testing" / "line.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A JSON round trip breaks shared sub-objects, which YAML would write as (refused) aliases.
    path.write_text(yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False,
                                   allow_unicode=True))
    (root / "suites").mkdir(exist_ok=True)
    return path


@pytest.fixture
def root(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("THEORYBENCH_ROOT", str(tmp_path))
    write_spec(tmp_path, spec())
    return tmp_path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, [*args])


# -- controls --------------------------------------------------------------------------------

def test_a_control_counts_only_when_the_rule_it_breaks_gets_the_required_decision(root):
    # The control's list has two rules: the trend (refuted on a flat line) and a threshold that
    # always holds. Its combined verdict is refuted either way; only the rule named in
    # `breaks` decides whether the control is as required.
    control = {"name": "flat", "override": {"slope": 0.0}, "expect": [TREND, POSITIVE]}
    by_trend = load_task(write_spec(root, spec(controls=[control | {"breaks": "grows"}])))
    rec = run_task(by_trend, "smoke", device="cpu", write=False).record
    assert rec.controls[0].verdict == "refuted" and rec.controls[0].as_required
    assert rec.controls[0].breaks == "grows" and rec.controls[0].breaks_decision == "refuted"
    assert rec.validated and "validated" in rec.statuses

    by_threshold = load_task(write_spec(root, spec(controls=[control | {"breaks": "positive"}])))
    rec = run_task(by_threshold, "smoke", device="cpu", write=False).record
    assert rec.controls[0].verdict == "refuted"  # "any rule refuted" is not enough any more
    assert not rec.controls[0].as_required and not rec.validated
    assert "validated" not in rec.statuses


def test_validated_needs_the_claim_to_hold(root):
    rec = run_task(load_task(write_spec(root, spec(experiment={
        **spec()["experiment"], "params": {"slope": -1.0}}))), "smoke", device="cpu",
        write=False).record
    assert rec.verdict == "refuted" and not rec.validated


# -- seed blocks -----------------------------------------------------------------------------

def test_seed_blocks_and_purposes(root):
    task = load_task(root / "tasks" / "testing" / "line.yaml")
    published = run_task(task, "smoke", device="cpu", write=False).record
    assert published.seeds == list(range(1000, 1008))
    assert published.purpose == "published" and published.seed_offset == 1000
    pilot = run_task(task, "smoke", device="cpu", write=False, seed_offset=2000).record
    assert pilot.seeds[0] == 2000 and pilot.purpose == "pilot" and "pilot" in pilot.statuses
    assert run_task(task, "smoke", device="cpu", write=False, seeds=3).record.purpose == "pilot"
    assert replication_offset(0) == REPLICATION_START and replication_offset(2) == 12000
    assert purpose_of(12000, 5, 1000, 5) == "replication"


def test_cli_run_takes_a_seed_offset(root):
    result = invoke("run", "testing/line", "--seed-offset", "2000", "--results-dir",
                    str(root / "runs"), "--device", "cpu")
    assert result.exit_code == 0, result.output
    (rec,) = load_records(root / "runs")
    assert rec["seeds"][0] == 2000 and rec["purpose"] == "pilot"
    assert "unmeasured" in result.output


# -- the spec hash and validate --------------------------------------------------------------

def test_the_spec_hash_ignores_prose_and_published_verdicts(root):
    base = load_task(write_spec(root, spec()))
    prose = load_task(write_spec(root, spec(
        notes="other words", tags=["y"], reference=[{"label": "r", "value": 1}],
        expected_verdict={"smoke": {"verdict": "holds", "record": "abc"}})))
    assert base.sha256 == prose.sha256 == spec_hash(base.spec)
    changed = load_task(write_spec(root, spec(experiment={**spec()["experiment"], "seeds": 7})))
    assert changed.sha256 != base.sha256


def published_record(root: Path) -> dict[str, Any]:
    task = load_task(root / "tasks" / "testing" / "line.yaml")
    out = run_task(task, "smoke", device="cpu", results_dir=root / "results" / "runs")
    return json.loads(out.path.read_text()) | {"_path": str(out.path)}


@pytest.mark.parametrize(("entry", "field", "message"), [
    ({"verdict": "holds", "record": "f" * 32}, "expected_verdict.smoke.record", "no record"),
    ({"verdict": "refuted", "record": None}, "expected_verdict.smoke.verdict",
     "expected 'refuted'"),
])
def test_validate_rejects_a_published_verdict_its_record_does_not_support(root, entry, field,
                                                                       message):
    rec = published_record(root)
    assert rec["verdict"] == "holds"
    entry = entry | {"record": entry["record"] or rec["run_id"]}
    path = write_spec(root, spec(expected_verdict={"smoke": entry}))
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    (line,) = [x for x in result.output.splitlines() if x.startswith(str(path))]
    assert f": {field}: " in line and message in line


def test_validate_rejects_a_record_of_another_profile_or_spec(root):
    rec = published_record(root)
    path = write_spec(root, spec(expected_verdict={
        "standard": {"verdict": "holds", "record": rec["run_id"]}}))
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "has profile 'smoke', expected 'standard'" in result.output
    path = write_spec(root, spec(
        experiment={**spec()["experiment"], "seeds": 9},
        expected_verdict={"smoke": {"verdict": "holds", "record": rec["run_id"]}}))
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "has spec hash" in result.output


def test_validate_accepts_the_measuring_record(root):
    rec = published_record(root)
    path = write_spec(root, spec(expected_verdict={
        "smoke": {"verdict": "holds", "record": rec["run_id"]}}))
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output


# -- adopt -----------------------------------------------------------------------------------

def test_adopt_rewrites_only_the_expected_verdict_block(root):
    path = root / "tasks" / "testing" / "line.yaml"
    text = path.read_text().replace("tags:", "# a comment the rewrite must keep\ntags:")
    path.write_text(text + "expected_verdict: {}\n")
    rec = published_record(root)
    before = path.read_bytes()
    result = invoke("adopt", rec["_path"])
    assert result.exit_code == 0, result.output
    after = path.read_bytes()
    block = (f'expected_verdict:\n  smoke: {{verdict: holds, record: "{rec["run_id"]}"}}\n'
             .encode())
    assert after == before.replace(b"expected_verdict: {}\n", block)
    task = load_task(path)
    assert task.spec.expected_verdict["smoke"].record == rec["run_id"]
    assert task.sha256 == rec["spec_sha256"]  # adopting does not change the spec's hash
    assert invoke("validate", str(path)).exit_code == 0


def test_adopt_refuses_pilots_replications_and_other_specs(root):
    task = load_task(root / "tasks" / "testing" / "line.yaml")
    pilot = run_task(task, "smoke", device="cpu", seed_offset=2000,
                     results_dir=root / "runs").path
    result = invoke("adopt", str(pilot))
    assert result.exit_code == 2 and "pilot, not a run of the published seed block" in result.output
    rec = published_record(root)
    write_spec(root, spec(experiment={**spec()["experiment"], "seeds": 9}))
    before = (root / "tasks" / "testing" / "line.yaml").read_bytes()
    result = invoke("adopt", rec["_path"])
    assert result.exit_code == 2 and "ran a different spec" in result.output
    assert (root / "tasks" / "testing" / "line.yaml").read_bytes() == before


def test_with_published_keeps_other_profiles_and_appends_when_absent():
    text = "a: 1\nexpected_verdict:\n  paper: {verdict: holds, record: \"x\"}\n\nb: 2\n"
    out = with_published(text, "smoke", "refuted", "123e4")
    assert out.startswith("a: 1\nexpected_verdict:\n  smoke: {verdict: refuted, record: "
                          "\"123e4\"}\n  paper:") and out.endswith("\nb: 2\n")
    assert yaml.safe_load(out)["expected_verdict"]["smoke"]["record"] == "123e4"
    assert with_published("a: 1", "smoke", "holds", "r").endswith(
        "a: 1\nexpected_verdict:\n  smoke: {verdict: holds, record: \"r\"}\n")


# -- replicate -------------------------------------------------------------------------------

def test_replicate_runs_disjoint_blocks_and_reports_per_claim_and_control(root):
    runs = root / "out"
    result = invoke("replicate", "testing/line", "--blocks", "2", "--results-dir", str(runs),
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    records = load_records(runs)
    by_purpose = {r["purpose"]: [] for r in records}
    for r in records:
        by_purpose[r["purpose"]].append(r)
    assert len(by_purpose["published"]) == 1 and len(by_purpose["replication"]) == 2
    seeds = [set(r["seeds"]) for r in records]
    assert all(a.isdisjoint(b) for i, a in enumerate(seeds) for b in seeds[i + 1:])
    assert sorted(r["seed_offset"] for r in by_purpose["replication"]) == [10000, 11000]
    ref = by_purpose["published"][0]["run_id"]
    assert all(r["replicates"] == ref for r in by_purpose["replication"])
    assert "flat ✓" in result.output and "holds, holds" in result.output


def test_replicate_fails_when_a_verdict_does_not_replicate(root):
    # A published record whose verdict no fresh block can reproduce.
    rec = published_record(root)
    path = Path(rec["_path"])
    data = json.loads(path.read_text()) | {"verdict": "refuted"}
    path.write_text(json.dumps(data))
    result = invoke("replicate", "testing/line", "--blocks", "1", "--no-record", "--device",
                    "cpu")
    assert result.exit_code == 1 and "✗" in result.output


# -- the site --------------------------------------------------------------------------------

def test_the_site_shows_statuses_replication_and_unmeasured_profiles(root):
    runs = root / "results" / "runs"
    assert invoke("replicate", "testing/line", "--blocks", "1", "--results-dir", str(runs),
                  "--device", "cpu").exit_code == 0
    published = next(r for r in load_records(runs) if r["purpose"] == "published")
    path = root / "tasks" / "testing" / "line.yaml"
    data = spec(out_of_regime="the line is too short")
    write_spec(root, data)
    site = build_site(runs, root / "site", root / "tasks")
    html = site.index.read_text()
    smoke = html.split('data-task="testing/line" data-profile="smoke"')[1].split("</tr>")[0]
    # not adopted and a different spec hash (out_of_regime changed): unmeasured
    assert "unmeasured" in smoke and "out of regime" not in smoke
    data = spec(out_of_regime=None)
    text = yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False)
    path.write_text(with_published(text, "smoke", "holds", published["run_id"]))
    site = build_site(runs, root / "site", root / "tasks")
    html = site.index.read_text()
    smoke = html.split('data-task="testing/line" data-profile="smoke"')[1].split("</tr>")[0]
    assert "unmeasured" not in smoke and ">validated<" in smoke
    assert "replicated on a fresh seed block ✓" in smoke
    assert "2 decisions" in smoke  # one rule × (claim + one control)
    standard = html.split('data-task="testing/line" data-profile="standard"')[1].split("</tr>")[0]
    assert "unmeasured" in standard and "no record" in standard
    assert 'id="profile-summary"' in html
    page = (site.path / page_path("testing/line", "smoke")).read_text()
    assert 'id="replication"' in page and "10000" in page
    assert "The paper&#39;s regime" in page or "The paper's regime" in page


def test_out_of_regime_is_shown_with_its_reason(root):
    write_spec(root, spec(out_of_regime="the line is too short"))
    runs = root / "results" / "runs"
    rec = published_record(root)
    assert rec["out_of_regime"] == "the line is too short"
    site = build_site(runs, root / "site", root / "tasks")
    html = site.index.read_text()
    assert 'title="out of regime: the line is too short"' in html and ">out of regime<" in html
    page = (site.path / page_path("testing/line", "smoke")).read_text()
    assert 'id="out-of-regime"' in page and "the line is too short" in page


def test_the_calibration_page_is_rendered_from_the_table(root, monkeypatch, tmp_path):
    from theorybench.leaderboard import build

    table = tmp_path / "calibration_table.json"
    table.write_text(json.dumps([
        {"rule": "trend", "seeds": 8, "levels": 4, "noise": "normal", "threshold": 0.3,
         "rate_holds": 0.021, "mc_se": 0.002, "nominal": 0.025, "power": 0.9,
         "power_effect": 0.6},
        {"rule": "peak", "seeds": 3, "levels": 5, "noise": "t3", "threshold": 0.0,
         "rate_holds": 0.06, "mc_se": 0.005, "nominal": 0.025, "power": 0.5,
         "power_effect": 1.0}]))
    monkeypatch.setattr(build, "CALIBRATION_TABLE", table)
    published_record(root)
    site = build_site(root / "results" / "runs", root / "site", root / "tasks")
    page = (site.path / "calibration.html").read_text()
    assert page.count("<tr") == 3 and 'class="bad-row"' in page and "t3" in page
    assert 'href="calibration.html"' in site.index.read_text()


def test_no_calibration_page_without_a_table(root, monkeypatch, tmp_path):
    from theorybench.leaderboard import build

    monkeypatch.setattr(build, "CALIBRATION_TABLE", tmp_path / "absent.json")
    published_record(root)
    site = build_site(root / "results" / "runs", root / "site", root / "tasks")
    assert not (site.path / "calibration.html").exists()


# -- multiplicity ----------------------------------------------------------------------------

def test_benjamini_hochberg_on_a_known_case():
    # m = 5, q = 0.05: thresholds k q / m = 0.01, 0.02, 0.03, 0.04, 0.05 for the sorted
    # p-values 0.001, 0.015, 0.03, 0.2, 0.5; the largest k with p(k) <= k q / m is 3.
    assert benjamini_hochberg([0.001, 0.5, 0.03, 0.015, 0.2], 0.05) == [
        True, False, True, True, False]
    assert benjamini_hochberg([0.04, 0.045], 0.05) == [True, True]
    assert benjamini_hochberg([0.9], 0.05) == [False]


def test_claim_p_values_follow_the_decision_and_tolerate_old_records():
    rules = [{"p_holds": 0.01, "p_refuted": 0.9}, {"p_holds": 0.02, "p_refuted": 0.4}]
    assert claim_p_value({"verdict": "holds", "claim": {"rules": rules}}) == 0.02
    refuted = [{"p_holds": 0.9, "p_refuted": 0.01}, {"p_holds": 0.5, "p_refuted": 0.3}]
    assert claim_p_value({"verdict": "refuted", "claim": {"rules": refuted}}) == 0.02
    assert claim_p_value({"verdict": "holds", "claim": {"rules": [{"effect": 1}]}}) is None


# -- power -----------------------------------------------------------------------------------

def test_resampling_relabels_seeds():
    table = pd.DataFrame({"seed": [5, 5, 9, 9], "y": [1, 2, 3, 4]})
    out = resample_seeds(table, [9, 9, 5])
    assert list(out["seed"]) == [0, 0, 1, 1, 2, 2] and list(out["y"]) == [3, 4, 3, 4, 1, 2]


def test_power_of_a_clear_effect_is_high_and_names_the_smallest_seed_count(root):
    task = load_task(root / "tasks" / "testing" / "line.yaml")
    rec = run_task(task, "smoke", device="cpu", seed_offset=2000, write=False).record.to_dict()
    # the sign test on per-seed tau cannot decide below 6 seeds at confidence 0.95
    result = power(rec, [5, 6, 8], draws=20)
    assert [r.seeds for r in result.rows] == [5, 6, 8]
    assert result.rows[0].claim == 0.0
    assert all(r.joint == 1.0 and r.claim == 1.0 for r in result.rows[1:])
    assert result.smallest == 6


def test_power_of_a_borderline_effect_grows_with_seeds(root):
    # slope 0.03 with noise sd 0.1: Kendall tau per seed is noisy around the 0.5 threshold
    write_spec(root, spec(experiment={**spec()["experiment"], "params": {"slope": 0.1},
                                      "seeds": 12}, profiles={}))
    task = load_task(root / "tasks" / "testing" / "line.yaml")
    rec = run_task(task, "smoke", device="cpu", seed_offset=2000, write=False).record.to_dict()
    result = power(rec, [3, 24], draws=30, seed=1)
    small, large = result.rows
    assert 0.0 <= small.joint <= 1.0 and 0.0 <= large.joint <= 1.0
    if rec["verdict"] == "holds":
        assert large.claim >= small.claim


def test_cli_power_reads_a_record_and_prints_the_seed_count(root):
    task = load_task(root / "tasks" / "testing" / "line.yaml")
    path = run_task(task, "smoke", device="cpu", seed_offset=2000,
                    results_dir=root / "results" / "runs").path
    result = invoke("power", str(path), "--seeds", "5,6", "--draws", "10")
    assert result.exit_code == 0, result.output
    assert "smallest seed count reaching 90%: 6" in result.output
    result = invoke("power", "testing/line", "--seeds", "3", "--draws", "10")
    assert result.exit_code == 0, result.output


def test_a_withdrawal_in_the_adoption_log_unpublishes_the_profile(tmp_path) -> None:
    from theorybench.specstore import adoptions, record_adoption, record_withdrawal

    record = {"task_id": "f/x", "profile": "smoke", "verdict": "holds", "run_id": "a" * 32,
              "spec_sha256": "0" * 64}
    record_adoption(record, tmp_path)
    assert adoptions(tmp_path)[("f/x", "smoke")]["record"] == "a" * 32
    record_withdrawal("f/x", "smoke", tmp_path)
    assert ("f/x", "smoke") not in adoptions(tmp_path)
    record_adoption(record | {"run_id": "b" * 32}, tmp_path)
    assert adoptions(tmp_path)[("f/x", "smoke")]["record"] == "b" * 32


def test_sync_logs_what_the_specs_withdrew(tmp_path) -> None:
    import shutil

    from theorybench.paths import tasks_dir
    from theorybench.specstore import adoptions, record_adoption, sync_adoptions

    root = tmp_path / "tasks" / "overparam"
    root.mkdir(parents=True)
    shutil.copy(tasks_dir() / "overparam" / "random-labels.yaml", root)  # publishes nothing
    runs = tmp_path / "runs"
    record_adoption({"task_id": "overparam/random-labels", "profile": "smoke",
                     "verdict": "inconclusive", "run_id": "c" * 32}, runs)
    assert sync_adoptions(tmp_path / "tasks", runs) == 1
    assert ("overparam/random-labels", "smoke") not in adoptions(runs)
    assert sync_adoptions(tmp_path / "tasks", runs) == 0
