"""Malformed specs give one clear line naming the file and the field, never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from theorybench.spec import SpecError, load_suite, load_task, resolve, suite_tasks

VALID: dict[str, Any] = {
    "id": "stability/tiny",
    "version": 1,
    "title": "A tiny valid task",
    "claim": "P/eps falls with depth under LeCun initialization.",
    "source": {"paper": "Zhu et al. NeurIPS 2022", "where": "lazy-regime bound"},
    "experiment": {
        "kind": "perturbation_stability",
        "params": {"init": "lecun", "width": 8, "train_steps": 0},
        "sweep": {"depth": [2, 3, 4]},
        "seeds": 3,
    },
    "expect": [{"rule": "trend", "metric": "stability_per_eps", "along": "depth",
                "direction": "decreasing", "where": {"phase": "init"}}],
    "controls": [{"name": "he", "override": {"init": "he"}, "verdict": "refuted"}],
    "profiles": {"smoke": {"seeds": 3, "params": {"width": 4}}},
    "expected_verdict": {"smoke": {"verdict": "holds", "record": "0123abcd"}},
}


def write(tmp_path: Path, data: Any, name: str = "tiny") -> Path:
    folder = tmp_path / "tasks" / "stability"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    # A JSON round trip breaks shared sub-objects, which YAML would write as (refused) aliases.
    text = data if isinstance(data, str) else yaml.safe_dump(json.loads(json.dumps(data)),
                                                             sort_keys=False)
    path.write_text(text)
    return path


def mutate(change) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    change(data)
    return data


def test_the_valid_spec_loads_and_resolves(tmp_path: Path) -> None:
    task = load_task(write(tmp_path, VALID))
    claim, control = resolve(task, "smoke")
    assert claim.params["width"] == 4 and control.params["init"] == "he"
    assert [p["depth"] for p in claim.grid()] == [2, 3, 4]
    assert claim.seeds == (0, 1, 2)


CASES = [
    ("yaml-syntax", "id: [unclosed\n", "(yaml)", "YAML syntax error"),
    ("not-a-mapping", "- just\n- a list\n", "(top level)", "expected a mapping"),
    ("unknown-top-key", mutate(lambda d: d.update(claimz="x")), "claimz", "unknown field"),
    ("missing-claim", mutate(lambda d: d.pop("claim")), "claim", "required"),
    ("version-not-int", mutate(lambda d: d.update(version="one")), "version", "integer"),
    ("version-zero", mutate(lambda d: d.update(version=0)), "version", "greater than"),
    ("bad-id-pattern", mutate(lambda d: d.update(id="Stability Depth")), "id", "pattern"),
    ("id-not-file-name", mutate(lambda d: d.update(id="stability/other")), "id", "tiny"),
    ("source-missing-paper", mutate(lambda d: d["source"].pop("paper")), "source.paper",
     "required"),
    ("source-unknown-key", mutate(lambda d: d["source"].update(year=2022)), "source.year",
     "unknown field"),
    ("unknown-kind", mutate(lambda d: d["experiment"].update(kind="perturbation")),
     "experiment.kind", "unknown experiment kind"),
    ("seeds-not-int", mutate(lambda d: d["experiment"].update(seeds="many")),
     "experiment.seeds", "integer"),
    ("seeds-zero", mutate(lambda d: d["experiment"].update(seeds=0)), "experiment.seeds",
     "greater than"),
    ("unknown-param", mutate(lambda d: d["experiment"]["params"].update(widht=8)),
     "experiment.params.widht", "unknown parameter"),
    ("param-wrong-type", mutate(lambda d: d["experiment"]["params"].update(width="wide")),
     "experiment.params.width", "integer"),
    ("param-bad-choice", mutate(lambda d: d["experiment"]["params"].update(init="glorot")),
     "experiment.params.init", "lecun"),
    ("sweep-value-wrong-type", mutate(lambda d: d["experiment"]["sweep"].update(depth=[2, "x"])),
     "experiment.sweep.depth[1]", "integer"),
    ("sweep-empty", mutate(lambda d: d["experiment"]["sweep"].update(depth=[])),
     "experiment.sweep", "no values"),
    ("no-rules", mutate(lambda d: d.update(expect=[])), "expect", "at least 1"),
    ("unknown-rule", mutate(lambda d: d["expect"][0].update(rule="trnd")), "expect[0].rule",
     "unknown rule"),
    ("rule-missing-field", mutate(lambda d: d["expect"][0].pop("along")), "expect[0].along",
     "required"),
    ("rule-unknown-field", mutate(lambda d: d["expect"][0].update(alpha=0.1)),
     "expect[0].alpha", "unknown field"),
    ("rule-bad-direction", mutate(lambda d: d["expect"][0].update(direction="up")),
     "expect[0].direction", "increasing"),
    ("rule-not-a-mapping", mutate(lambda d: d.update(expect=["trend"])), "expect[0]",
     "dictionary"),
    ("no-controls", mutate(lambda d: d.pop("controls")), "controls", "required"),
    ("control-bad-override", mutate(lambda d: d["controls"][0].update(override={"widht": 3})),
     "controls[0].override.widht", "unknown parameter"),
    ("control-bad-verdict", mutate(lambda d: d["controls"][0].update(verdict="false")),
     "controls[0].verdict", "refuted"),
    ("control-override-crosses-value",
     mutate(lambda d: d["controls"][0].update(override={"width.x": 3})),
     "controls[0].override.width.x", "non-mapping"),
    ("unknown-profile", mutate(lambda d: d["profiles"].update(fast={"seeds": 2})),
     "profiles.fast", "smoke"),
    ("profile-unknown-param", mutate(lambda d: d["profiles"]["smoke"]["params"].update(lr0=1)),
     "profiles.smoke.params.lr0", "unknown parameter"),
    ("bad-expected-verdict",
     mutate(lambda d: d["expected_verdict"]["smoke"].update(verdict="maybe")),
     "expected_verdict.smoke.verdict", "holds"),
    ("verdict-without-record", mutate(lambda d: d.update(expected_verdict={"paper": "holds"})),
     "expected_verdict", "record"),
    ("control-breaks-no-rule", mutate(lambda d: d["controls"][0].update(breaks="nope")),
     "controls[0].breaks", "no rule with id 'nope'"),
    ("control-of-two-rules-without-breaks",
     mutate(lambda d: d["expect"].append({"rule": "threshold", "metric": "stability_per_eps",
                                          "op": "<", "value": 1.0})),
     "controls[0].breaks", "required"),
    ("duplicate-rule-id",
     mutate(lambda d: (d["expect"].extend([{**d["expect"][0], "id": "a"},
                                            {**d["expect"][0], "id": "a"}]),
                       d["controls"][0].update(breaks="a"))),
     "expect", "used twice"),
]


@pytest.mark.parametrize(("name", "data", "field", "expected"), CASES, ids=[c[0] for c in CASES])
def test_malformed_task_names_file_and_field(tmp_path: Path, name: str, data: Any, field: str,
                                             expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_task(path)
    err = info.value
    message = str(err)
    assert err.file == str(path) and message.startswith(f"{path}: ")
    assert err.field == field, message
    assert expected.lower() in err.message.lower(), message
    assert "\n" not in message and "Traceback" not in message


def test_there_are_at_least_twenty_distinct_cases() -> None:
    assert len({c[2] for c in CASES}) >= 20


def test_malformed_suite(tmp_path: Path) -> None:
    path = tmp_path / "suites" / "bad.yaml"
    path.parent.mkdir()
    path.write_text("id: bad\nprofile: quick\ntasks: ['x/*']\n")
    with pytest.raises(SpecError) as info:
        load_suite(path)
    assert info.value.field == "profile" and "smoke" in info.value.message


def test_a_suite_excludes_tasks_by_pattern(tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    for name in ("a", "b", "slow"):
        (root / "fam").mkdir(parents=True, exist_ok=True)
        (root / "fam" / f"{name}.yaml").write_text("id: fam/" + name + "\n")
    path = tmp_path / "suites" / "s.yaml"
    path.parent.mkdir()
    path.write_text("id: s\nprofile: smoke\ntasks: ['fam/*']\nexclude: ['fam/slow']\n")
    chosen = suite_tasks(load_suite(path), path, root)
    assert [p.stem for p in chosen] == ["a", "b"]
    path.write_text("id: s\nprofile: smoke\ntasks: ['fam/*']\nexclude: ['other/*']\n")
    with pytest.raises(SpecError) as info:
        suite_tasks(load_suite(path), path, root)
    assert info.value.field == "exclude[0]" and "no task id matches" in info.value.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_task(tmp_path / "tasks" / "stability" / "missing.yaml")
    assert info.value.field == "(file)"
