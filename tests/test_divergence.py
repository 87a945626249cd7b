"""Divergence is counted, not judged: non-finite values per arm, structure told apart from
blow-ups, and an arm beyond its tolerance recorded as ``error`` (``diverged: ...``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict

from theorybench.divergence import count
from theorybench.registry import experiment
from theorybench.runner import run_task
from theorybench.spec import load_task
from theorybench.verdict import parse_rule


class BlowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = 0.1
    x: float = 0.0
    blow_seeds: int = 0


@experiment("test_blow_up", family="testing", params=BlowParams, columns=("y", "loss"),
            example={"lr": 0.1})
def blow_up(p: BlowParams, seeds, device) -> pd.DataFrame:
    """y = x + small seed offset; the first ``blow_seeds`` seeds (or all when lr > 1) give NaN
    and inf."""
    rows = []
    for i, s in enumerate(seeds):
        bad = p.lr > 1 or i < p.blow_seeds
        rows.append({"seed": s, "y": math.nan if bad else p.x + 0.01 * (s % 3),
                     "loss": math.inf if bad else 0.1})
    return pd.DataFrame(rows)


def spec(root: Path, **params) -> Path:
    data = {
        "id": "testing/blow", "version": 1, "title": "y grows with x", "claim": "y grows",
        "source": {"paper": "none", "where": "here"},
        "experiment": {"kind": "test_blow_up", "params": params,
                       "sweep": {"x": [0.0, 1.0, 2.0]}, "seeds": 8},
        "expect": [{"rule": "trend", "metric": "y", "along": "x", "direction": "increasing"}],
        "controls": [{"name": "slower", "override": {"lr": 0.2}, "verdict": "refuted"}],
        "expected_verdict": {},
    }
    tolerance = params.pop("tolerance", None)
    if tolerance is not None:
        data["experiment"]["divergence_tolerance"] = tolerance
    data["experiment"]["params"] = params
    path = root / "blow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_structural_nan_is_not_divergence() -> None:
    rows = pd.DataFrame({"cell": 0, "seed": [0, 0, 1, 1], "phase": ["a", "b", "a", "b"],
                         "per_epoch": [1.0, np.nan, 2.0, np.nan],
                         "summary": [np.nan, 3.0, np.nan, 4.0]})
    assert count(rows, ["per_epoch", "summary"]).diverged_seeds == []


def test_inf_a_lone_nan_and_an_all_nan_column_are_divergence() -> None:
    rows = pd.DataFrame({"cell": 0, "seed": [0, 1, 2], "a": [1.0, np.inf, 2.0],
                         "b": [np.nan, 1.0, 1.0], "c": [np.nan] * 3})
    found = count(rows, ["a", "b", "c"])
    assert found.by_column == {"a": 1, "b": 1, "c": 3} and found.diverged_seeds == [0, 1, 2]


def test_a_compared_group_without_any_finite_value_is_divergence() -> None:
    rows = pd.DataFrame({"cell": 0, "seed": [0, 0, 1, 1], "solver": ["sgd", "mn"] * 2,
                         "err": [np.nan, 1.0, np.nan, 1.1]})
    rule = parse_rule({"rule": "compare", "metric": "err", "by": "solver", "a": "sgd",
                       "b": "mn", "direction": "a_less"})
    assert count(rows, ["err"]).diverged_seeds == []
    assert count(rows, ["err"], [rule]).diverged_seeds == [0, 1]


def test_a_diverged_arm_is_an_error_never_a_verdict(tmp_path: Path) -> None:
    out = run_task(load_task(spec(tmp_path, lr=10.0)), "smoke", device="cpu", write=False)
    rec = out.record
    assert rec.verdict == "error" and not rec.validated
    assert rec.claim.error.startswith("diverged: 8 of 8 seeds")
    assert rec.nonfinite["claim"]["by_column"] == {"y": 24, "loss": 24}


def test_divergence_within_the_tolerance_is_reported_by_the_rules(tmp_path: Path) -> None:
    task = load_task(spec(tmp_path, blow_seeds=1, tolerance=0.2))
    rec = run_task(task, "smoke", device="cpu", write=False).record
    assert rec.verdict == "holds", rec.error
    rule = rec.claim.rules[0]
    assert rule["diverged_seeds"] == [0] and "non-finite" in rule["summary"]
    strict = load_task(spec(tmp_path, blow_seeds=1))
    rec = run_task(strict, "smoke", device="cpu", write=False).record
    assert rec.verdict == "error" and rec.error.startswith("diverged: 1 of 8 seeds")
