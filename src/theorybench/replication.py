"""Replication on fresh seed blocks, and the power of a verdict to replicate.

**Replication** (``theorybench replicate``): a task's published verdict is compared with the
verdicts of the same spec on replication blocks ``b = 0, 1, ...`` (seeds ``10000 + 1000 b``
onwards, disjoint from the development, published and pilot blocks: see
:mod:`theorybench.status`). The reference is the record the spec publishes for the profile; when
it publishes none, the latest record of the published block with the same spec hash; when there
is none either, the published block is run first. A claim **replicates** when every block gets
the reference's verdict; a control when every block gets the reference's outcome (its required
decision on the rule it breaks, or not).

**Power** (``theorybench power``): from a record's measurement table (a pilot), resample the
seeds with replacement to ``n`` seeds, relabel them, re-apply each arm's rules with
:func:`theorybench.verdict.evaluate` and :func:`~theorybench.verdict.combine`, and count how often
the record's outcome (the claim's verdict and every control's) comes out again. This is a
bootstrap estimate of the probability that a fresh block of ``n`` seeds replicates the verdict,
treating the pilot's seeds as the population; the smallest ``n`` of the grid reaching the target
(90 %) is the seed count to publish with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from theorybench.results import load_records, load_table
from theorybench.runner import TaskOutcome, run_task, write_with_spec
from theorybench.spec import LoadedTask
from theorybench.status import outcome, record_purpose, replication_offset
from theorybench.verdict import combine, evaluate, parse_rule


@dataclass
class TaskReplication:
    """A task's reference record and its replication records, one per block."""

    task_id: str
    profile: str
    reference: dict[str, Any]
    reference_source: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    paths: list[Path | None] = field(default_factory=list)

    @property
    def claim_replicates(self) -> bool:
        return all(b.get("verdict") == self.reference.get("verdict") for b in self.blocks)

    @property
    def controls(self) -> dict[str, bool]:
        """Per control: whether every block got the reference's outcome."""
        _, ref = outcome(self.reference)
        got = [dict(outcome(b)[1]) for b in self.blocks]
        return {name: all(g.get(name) == ok for g in got) for name, ok in ref}

    @property
    def replicates(self) -> bool:
        return self.claim_replicates and all(self.controls.values())


def find_reference(task: LoadedTask, profile: str,
                   records: Sequence[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The record a replication is compared with, and where it came from."""
    published = task.spec.expected_verdict.get(profile)  # type: ignore[call-overload]
    if published is not None:
        found = [r for r in records if r.get("run_id") == published.record]
        if found:
            return found[0], f"published record {published.record[:8]}"
    same = [r for r in records if r.get("task_id") == task.spec.id
            and r.get("profile") == profile and r.get("spec_sha256") == task.sha256
            and record_purpose(r) == "published" and r.get("verdict") != "error"]
    if same:
        return same[-1], f"latest record of the published block {str(same[-1]['run_id'])[:8]}"
    return None, "run now on the published block"


def replicate_task(task: LoadedTask, profile: str, blocks: int, *,
                   records: Sequence[dict[str, Any]] = (), results_dir: Path | None = None,
                   write: bool = True, **run: Any) -> TaskReplication:
    """Run ``task`` on replication blocks ``0 .. blocks - 1`` (and on the published block when
    no reference record exists); ``run`` goes to :func:`theorybench.runner.run_task`."""
    reference, source = find_reference(task, profile, records)
    paths: list[Path | None] = []
    if reference is None:
        ref = run_task(task, profile, results_dir=results_dir, write=write, **run)
        reference, paths = ref.record.to_dict(), [ref.path]
    rep = TaskReplication(task.spec.id, profile, reference, source, paths=paths)
    for b in range(blocks):
        out: TaskOutcome = run_task(task, profile, seed_offset=replication_offset(b),
                                    write=False, **run)
        out.record.replicates = reference.get("run_id")
        out.record.replication_block = b
        rep.blocks.append(out.record.to_dict())
        rep.paths.append(write_with_spec(out.record, task, results_dir) if write else None)
    return rep


def known_records(*folders: Path | None) -> list[dict[str, Any]]:
    """Records of every existing folder given, oldest first, each once."""
    seen: dict[str, dict[str, Any]] = {}
    for folder in folders:
        if folder is not None and folder.is_dir():
            for rec in load_records(folder):
                seen.setdefault(str(rec.get("run_id")), rec)
    return sorted(seen.values(), key=lambda r: (str(r.get("started")), str(r.get("run_id"))))


# -- power ---------------------------------------------------------------------------------------

@dataclass
class PowerRow:
    seeds: int
    claim: float
    joint: float


@dataclass
class Power:
    """Estimated probability that the record's outcome replicates, per seed count."""

    run_id: str
    task_id: str
    verdict: str
    pilot_seeds: int
    draws: int
    rows: list[PowerRow]
    target: float

    @property
    def smallest(self) -> int | None:
        """The smallest seed count whose joint probability reaches the target."""
        return next((r.seeds for r in self.rows if r.joint >= self.target), None)


def resample_seeds(table: pd.DataFrame, chosen: Sequence[Any]) -> pd.DataFrame:
    """The rows of each chosen seed (repeats allowed), relabelled ``0 .. len(chosen) - 1``."""
    parts = []
    for j, seed in enumerate(chosen):
        rows = table[table["seed"] == seed].copy()
        rows["seed"] = j
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def _arm_outcome(arm: dict[str, Any], specs: list[Any], table: pd.DataFrame,
                 seed: int) -> tuple[str, bool]:
    results = evaluate(specs, table, seed)
    verdict = combine(results)
    required = arm.get("required_verdict")
    if required is None:
        return verdict, True
    breaks = arm.get("breaks")
    if breaks:
        ids = [(r.get("spec") or {}).get("id") for r in arm.get("rules") or []]
        decision = results[ids.index(breaks)].decision if breaks in ids else None
        return verdict, decision == required
    return verdict, verdict == required


def power(record: dict[str, Any], seed_counts: Sequence[int], draws: int = 100,
          target: float = 0.9, seed: int = 0,
          progress: Callable[[int, int], None] | None = None) -> Power:
    """Bootstrap estimate, per seed count, of the probability that the claim's verdict and
    the whole outcome (claim and controls) of ``record`` come out again."""
    table = load_table(record)
    arms = [record["claim"], *(record.get("controls") or [])]
    specs = {str(a["name"]): [parse_rule(r["spec"]) for r in a.get("rules") or []] for a in arms}
    missing = [n for n, s in specs.items() if not s]
    if missing:
        raise ValueError(f"record {record.get('run_id')} has no rule specs for arm(s) {missing}")
    by_arm = {str(a["name"]): table[table["arm"] == a["name"]].reset_index(drop=True)
              for a in arms}
    pilot = sorted(pd.unique(table["seed"]).tolist())
    _, want = outcome(record)
    rng = np.random.default_rng(seed)
    rows = []
    for k, n in enumerate(seed_counts):
        claim_hits = joint_hits = 0
        for d in range(draws):
            chosen = rng.choice(pilot, size=n, replace=True)
            got = {name: _arm_outcome(arm, specs[name],
                                      resample_seeds(by_arm[name], chosen), d)
                   for name, arm in ((str(a["name"]), a) for a in arms)}
            claim_ok = got["claim"][0] == record.get("verdict")
            controls_ok = all(got[name][1] == ok for name, ok in want)
            claim_hits += claim_ok
            joint_hits += claim_ok and controls_ok
        rows.append(PowerRow(int(n), claim_hits / draws, joint_hits / draws))
        if progress:
            progress(k + 1, len(seed_counts))
    return Power(str(record.get("run_id")), str(record.get("task_id")),
                 str(record.get("verdict")), len(pilot), draws, rows, target)


def default_seed_counts(pilot_seeds: int) -> list[int]:
    """A grid from 3 to four times the pilot's seed count."""
    grid = [3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    return [n for n in grid if n <= max(4 * pilot_seeds, 8)]


def is_pilot(record: dict[str, Any]) -> bool:
    return record_purpose(record) == "pilot"

