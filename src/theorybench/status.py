"""The publication protocol: which verdicts are published, for which seed block, and what they
carry beside the verdict.

**Seed blocks.** A task's seeds are ``seed_offset, ..., seed_offset + n - 1``. The blocks are
1000 seeds apart, so no block of fewer than 1000 seeds overlaps another:

* ``0 - 999``: development. The set-ups and thresholds were tuned on seeds ``0 ... n - 1``.
* ``experiment.seed_offset`` (1000 in every spec): the **published** block. A record measures
  the published verdict only when it ran exactly this block with the profile's seed count.
* ``2000 - 9999``: **pilot** blocks (``theorybench run --seed-offset K``), for power estimates
  and for trying a change; never published.
* ``10000 + 1000 b`` (``b = 0, 1, ...``): **replication** block ``b``
  (``theorybench replicate``), disjoint from all of the above.

A run's **purpose** follows from its block: ``published`` on the published block, ``replication``
at or above :data:`REPLICATION_START`, ``pilot`` otherwise.

**Statuses** beside a verdict: ``unmeasured`` (the spec names no record for that profile),
``out of regime`` (the spec says the set-up departs from the paper's regime in a way the claim
depends on, and why), ``validated`` (the claim holds and every control got its required decision
on the rule it is meant to break) and ``replicated on a fresh seed block`` ✓/✗ (every replication
record of the same spec got the same claim verdict and the same control outcomes).

**Spec hash.** :func:`spec_hash` hashes the parsed spec without ``expected_verdict``, ``notes``,
``tags`` and ``reference`` (canonical JSON, sorted keys): adopting a verdict or editing prose
leaves the hash of the experiment unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from theorybench.spec import LoadedTask, TaskSpec

BLOCK = 1000
PUBLISHED_OFFSET = 1000
REPLICATION_START = 10_000
PURPOSES: tuple[str, ...] = ("published", "replication", "pilot")
UNHASHED_FIELDS: tuple[str, ...] = ("expected_verdict", "notes", "tags", "reference")


# -- spec side ----------------------------------------------------------------------------------

def spec_hash(spec: TaskSpec) -> str:
    """sha256 of the spec's canonical JSON without the fields that do not change the
    experiment (:data:`UNHASHED_FIELDS`)."""
    data = spec.model_dump(mode="json", exclude=set(UNHASHED_FIELDS))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def rule_ids(raws: Sequence[dict[str, Any]]) -> tuple[str | None, ...]:
    """The ``id`` of each rule mapping of a spec's rule list (``None`` where it has none)."""
    return tuple(raw.get("id") if isinstance(raw, dict) else None for raw in raws)


def control_problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """``(field, message)`` for every rule-id or ``breaks`` problem of ``spec``: duplicate ids
    within a rule list, a ``breaks`` naming no rule of the control's list, a control of several
    rules without ``breaks``."""
    problems = []
    lists = [("expect", spec.expect)] + [
        (f"controls[{i}].expect", c.expect) for i, c in enumerate(spec.controls)
        if c.expect is not None]
    for field, raws in lists:
        ids = [i for i in rule_ids(raws) if i is not None]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            problems.append((field, f"rule id {dup[0]!r} is used twice; ids must be unique"))
    for i, control in enumerate(spec.controls):
        raws = control.expect if control.expect is not None else spec.expect
        ids = rule_ids(raws)
        if control.breaks is None:
            if len(raws) > 1:
                problems.append((f"controls[{i}].breaks", "required when the control's rule list "
                                 f"has several rules; expected one of {_known(ids)}"))
        elif control.breaks not in ids:
            problems.append((f"controls[{i}].breaks", f"no rule with id {control.breaks!r} in "
                             f"the control's rule list; expected one of {_known(ids)}"))
    return problems


def _known(ids: Iterable[str | None]) -> list[str]:
    return [i for i in ids if i is not None]


def purpose_of(seed_offset: int, n_seeds: int, published_offset: int,
               published_seeds: int) -> str:
    """``published`` on the spec's published block, ``replication`` at or above
    :data:`REPLICATION_START`, ``pilot`` otherwise."""
    if seed_offset >= REPLICATION_START:
        return "replication"
    if seed_offset == published_offset and n_seeds == published_seeds:
        return "published"
    return "pilot"


def replication_offset(block: int) -> int:
    """The first seed of replication block ``block`` (0-based)."""
    return REPLICATION_START + BLOCK * block


# -- records -------------------------------------------------------------------------------------

def headline(record: Any) -> dict[str, Any]:
    """The claim's first rule result (a record's dict or a ``RunRecord``), whose effect and
    interval stand for the record in tables, history and asv; ``{}`` when there is none."""
    claim = record.get("claim") if isinstance(record, dict) else getattr(record, "claim", None)
    rules = (claim.get("rules") if isinstance(claim, dict) else getattr(claim, "rules", None))
    return dict(rules[0]) if rules else {}


def record_purpose(record: dict[str, Any]) -> str:
    """A record's purpose; records written before purposes existed count as ``published``."""
    return str(record.get("purpose") or "published")


def control_ok(control: dict[str, Any]) -> bool:
    """Whether a control (a record's dict) got its required decision: on the rule it breaks
    when it names one, else its combined verdict."""
    required = control.get("required_verdict")
    if required is None:
        return True
    judged = control.get("breaks_decision") if control.get("breaks") else control.get("verdict")
    return judged == required


def is_validated(record: dict[str, Any]) -> bool:
    """The claim holds and every control got its required decision."""
    return record.get("verdict") == "holds" and all(
        control_ok(c) for c in record.get("controls") or [])


def outcome(record: dict[str, Any]) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """What a replication must reproduce: the claim's verdict and each control's outcome."""
    return str(record.get("verdict")), tuple(
        (str(c.get("name")), control_ok(c)) for c in record.get("controls") or [])


@dataclass
class Replication:
    """How a published record fared on fresh seed blocks."""

    blocks: int
    claim_ok: bool | None
    controls_ok: dict[str, bool]
    verdicts: list[str]

    @property
    def ok(self) -> bool | None:
        if self.claim_ok is None:
            return None
        return self.claim_ok and all(self.controls_ok.values())

    @property
    def text(self) -> str:
        if self.ok is None:
            return "not replicated yet"
        mark = "✓" if self.ok else "✗"
        return f"replicated on a fresh seed block {mark}"


def replication_of(published: dict[str, Any], records: Iterable[dict[str, Any]]) -> Replication:
    """Compare ``published`` with every replication record of the same task, profile and spec
    hash in ``records``."""
    reps = [r for r in records if record_purpose(r) == "replication"
            and r.get("task_id") == published.get("task_id")
            and r.get("profile") == published.get("profile")
            and r.get("spec_sha256") == published.get("spec_sha256")]
    if not reps:
        return Replication(0, None, {}, [])
    verdict, controls = outcome(published)
    ctl = {name: all(dict(outcome(r)[1]).get(name) == ok for r in reps) for name, ok in controls}
    return Replication(len(reps), all(r.get("verdict") == verdict for r in reps), ctl,
                       [str(r.get("verdict")) for r in reps])


def statuses(record: dict[str, Any] | None, published: bool,
             replication: Replication | None = None) -> list[str]:
    """The statuses shown beside a verdict, in a fixed order."""
    out = []
    if not published:
        out.append("unmeasured")
    if record is not None:
        if record.get("out_of_regime"):
            out.append("out of regime")
        if is_validated(record):
            out.append("validated")
        purpose = record_purpose(record)
        if purpose != "published":
            out.append(purpose)
    if replication is not None and published:
        out.append(replication.text)
    return out


# -- multiplicity --------------------------------------------------------------------------------

def n_decisions(record: dict[str, Any]) -> int:
    """Rule decisions a record publishes: its rules over the claim and every control."""
    arms = [record.get("claim") or {}, *(record.get("controls") or [])]
    return sum(len(a.get("rules") or []) for a in arms)


def claim_p_value(record: dict[str, Any]) -> float | None:
    """The claim's p-value for its decided direction: for ``holds`` the largest ``p_holds``
    (intersection-union), for ``refuted`` the smallest Holm-adjusted ``p_refuted``
    (k times the smallest); otherwise the smaller of the two. ``None`` when a rule lacks them
    (records of older engines)."""
    rules = (record.get("claim") or {}).get("rules") or []
    if not rules:
        return None
    try:
        holds = [float(r["p_holds"]) for r in rules]
        refuted = [float(r["p_refuted"]) for r in rules]
    except (KeyError, TypeError, ValueError):
        return None
    if any(math.isnan(p) for p in holds + refuted):
        return None
    p_holds, p_refuted = max(holds), min(1.0, len(rules) * min(refuted))
    verdict = record.get("verdict")
    if verdict == "holds":
        return p_holds
    if verdict == "refuted":
        return p_refuted
    return min(p_holds, p_refuted)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at FDR ``q``."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= q * rank / m:
            cutoff = rank
    rejected = [False] * m
    for i in order[:cutoff]:
        rejected[i] = True
    return rejected


@dataclass
class ProfileSummary:
    """What a profile publishes: claims, decisions (rules x arms) and the BH summary."""

    profile: str
    claims: int
    decisions: int
    with_p: int
    decided: int
    bh_q: float
    bh_kept: int
    not_kept: list[str]


def profile_summary(profile: str, records: Sequence[dict[str, Any]],
                    q: float = 0.05) -> ProfileSummary:
    """Benjamini-Hochberg at FDR ``q`` over the claim p-values of ``records`` (one per claim):
    how many decided claims (holds or refuted) it keeps, and which it does not."""
    with_p = [(r, p) for r in records if (p := claim_p_value(r)) is not None]
    rejected = benjamini_hochberg([p for _, p in with_p], q) if with_p else []
    decided = [(r, keep) for (r, _), keep in zip(with_p, rejected, strict=True)
               if r.get("verdict") in ("holds", "refuted")]
    return ProfileSummary(
        profile=profile, claims=len(records), decisions=sum(n_decisions(r) for r in records),
        with_p=len(with_p), decided=len(decided), bh_q=q,
        bh_kept=sum(keep for _, keep in decided),
        not_kept=[str(r.get("task_id")) for r, keep in decided if not keep])


# -- published verdicts (validate) ---------------------------------------------------------------

def records_by_id(folder: Path) -> dict[str, dict[str, Any]]:
    """Every readable record under ``folder`` by run id."""
    from theorybench.results import load_records

    return {str(r.get("run_id")): r for r in load_records(folder)} if folder.is_dir() else {}


def published_problems(task: LoadedTask,
                       records: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """``(field, message)`` for each ``expected_verdict`` entry of ``task`` whose record is
    missing or measured something else (task id, profile, verdict, purpose, spec hash)."""
    problems = []
    for profile, entry in task.spec.expected_verdict.items():
        field = f"expected_verdict.{profile}.record"
        rec = records.get(entry.record)
        if rec is None:
            problems.append((field, f"no record with run id {entry.record!r} under the runs "
                                    "folder; expected the record that measured this verdict"))
            continue
        checks = [("task id", rec.get("task_id"), task.spec.id),
                  ("profile", rec.get("profile"), profile),
                  ("purpose", record_purpose(rec), "published"),
                  ("spec hash", rec.get("spec_sha256"), task.sha256)]
        for what, got, want in checks:
            if got != want:
                problems.append((field, f"record {entry.record} has {what} {got!r}, expected "
                                        f"{want!r}"))
                break
        else:
            if rec.get("verdict") != entry.verdict:
                problems.append((f"expected_verdict.{profile}.verdict",
                                 f"record {entry.record} measured {rec.get('verdict')!r}, "
                                 f"expected {entry.verdict!r}"))
    return problems


# -- adopting a record ---------------------------------------------------------------------------

def adopt_problem(record: dict[str, Any], task: LoadedTask) -> str | None:
    """Why ``record`` cannot be adopted as ``task``'s published verdict, or ``None``."""
    run_id = str(record.get("run_id"))
    if record.get("task_id") != task.spec.id:
        return f"record {run_id} is of task {record.get('task_id')!r}, not {task.spec.id!r}"
    purpose = record.get("purpose")
    if purpose != "published":
        what = purpose or "a record without a purpose (written before seed blocks existed)"
        return f"record {run_id} is {what}, not a run of the published seed block"
    if record.get("verdict") == "error":
        return f"record {run_id} is an error: {record.get('error')}"
    if record.get("spec_sha256") != task.sha256:
        return (f"record {run_id} ran a different spec (hash {str(record.get('spec_sha256'))[:12]}"
                f", the current spec's is {task.sha256[:12]}); run the published block again")
    return None


def with_published(text: str, profile: str, verdict: str, run_id: str,
                   order: Sequence[str] = ("smoke", "standard", "paper")) -> str:
    """``text`` (a task spec file) with ``expected_verdict.<profile>`` set to ``verdict`` and
    ``run_id``: only the top-level ``expected_verdict:`` block is rewritten (appended when
    absent); every other byte is kept."""
    import yaml

    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("expected_verdict:")),
                 None)
    if start is None:
        end = start = len(lines)
        current: dict[str, Any] = {}
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
    else:
        end = start + 1
        while end < len(lines) and _continues(lines, end):
            end += 1
        current = yaml.safe_load("".join(lines[start:end]))["expected_verdict"] or {}
    current = dict(current) | {profile: {"verdict": verdict, "record": run_id}}
    names = [p for p in order if p in current] + sorted(p for p in current if p not in order)
    block = "expected_verdict:\n" + "".join(
        f"  {p}: {{verdict: {current[p]['verdict']}, record: {json.dumps(current[p]['record'])}}}\n"
        for p in names)
    return "".join(lines[:start]) + block + "".join(lines[end:])


def _continues(lines: list[str], i: int) -> bool:
    """Whether line ``i`` belongs to the block above it: indented, or blank with an indented
    line next."""
    if lines[i][:1] in (" ", "\t") and lines[i].strip():
        return True
    if lines[i].strip():
        return False
    following = next((line for line in lines[i + 1:] if line.strip()), "")
    return following[:1] in (" ", "\t")
