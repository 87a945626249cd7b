"""What the site needs from the specs, kept beside the records: spec snapshots and adoptions.

* **Spec store** ``<runs>/specs/<spec_sha256>.json``: the display fields of a spec (title, claim,
  source, regimes, profiles, controls with their description, override and rules, reference
  values, the rules with their ``where`` and their description in words), keyed by the hash
  every record of that spec carries (:func:`theorybench.status.spec_hash`). Written when a
  record is written, if absent; never overwritten (content-addressed, append-only). The hash
  leaves out prose fields (``notes``, ``tags``, ``reference``), so a snapshot holds them as they
  were when its first record was written.
* **Adoption log** ``<runs>/adoptions.jsonl``: one JSON line per ``theorybench adopt`` (task,
  profile, verdict, record's run id, spec hash, time); the last line of a (task, profile) names
  its published record, as ``expected_verdict`` in the spec does. Append-only.

With both, the site renders from the records folder alone (no ``tasks/``). :func:`backfill`
fills them from the current specs for records written before they existed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from theorybench.numbers import jsonable
from theorybench.paths import runs_dir

if TYPE_CHECKING:
    from theorybench.spec import LoadedTask

STORE = "specs"
ADOPTIONS = "adoptions.jsonl"
SHA_PATTERN = r"[0-9a-f]{64}"


# -- rules in words ------------------------------------------------------------------------------

def rule_entry(name: Any) -> Any | None:
    """The registered rule ``name`` (:class:`theorybench.registry.Rule`: its ``describe`` and
    ``figure``), or ``None`` for a name no rule has."""
    from theorybench.registry import UnknownEntryError, get_rule

    if not isinstance(name, str):
        return None
    try:
        return get_rule(name)
    except UnknownEntryError:
        return None


def words(fields: dict[str, Any]) -> str | None:
    """A rule's claim and decision in words, from its spec fields (the rule's ``describe``);
    ``None`` when the rule is unknown here or cannot describe these fields."""
    entry = rule_entry(fields.get("rule"))
    if entry is None or getattr(entry, "describe", None) is None:
        return None
    try:
        return str(entry.describe(fields))
    except Exception:  # noqa: BLE001  (odd fields of an old record)
        return None


def describe(fields: dict[str, Any]) -> str:
    """:func:`words`, or the rule's fields as text when there are none."""
    text = words(fields)
    if text is not None:
        return text
    rest = {k: v for k, v in fields.items() if k not in ("rule", "metric") and v is not None}
    return f"{fields.get('rule')} rule on {fields.get('metric')}: {rest}"


def rule_fields(rule: Any) -> dict[str, Any]:
    """A validated rule spec's fields (``where`` included) with its ``description`` (``None``
    when the rule has no ``describe``)."""
    fields = rule.model_dump(mode="json")
    return fields | {"description": words(fields)}


# -- snapshots -----------------------------------------------------------------------------------

def snapshot(task: LoadedTask) -> dict[str, Any]:
    """The display fields of ``task``'s spec, as stored."""
    spec = task.spec
    controls = [{"name": c.name, "description": c.description.strip(), "override": c.override,
                 "verdict": c.verdict, "breaks": c.breaks,
                 "rules": [rule_fields(r) for r in rules]}
                for c, rules in zip(spec.controls, task.control_rules, strict=True)]
    return jsonable({
        "spec_sha256": task.sha256, "id": spec.id, "version": spec.version,
        "family": spec.family, "title": spec.title, "claim": spec.claim,
        "source": spec.source.model_dump(mode="json"), "regime": spec.regime,
        "paper_regime": spec.paper_regime, "out_of_regime": spec.out_of_regime,
        "tags": list(spec.tags), "notes": spec.notes,
        "profiles": {n: p.model_dump(mode="json") for n, p in spec.profiles.items()},
        "rules": [rule_fields(r) for r in task.rules], "controls": controls,
        "reference": [r.model_dump(mode="json") for r in spec.reference],
    })


def snapshot_path(folder: Path, sha256: str) -> Path | None:
    """Where the snapshot of hash ``sha256`` lives (``None`` for a malformed hash)."""
    if not isinstance(sha256, str) or not re.fullmatch(SHA_PATTERN, sha256):
        return None
    return folder / STORE / f"{sha256}.json"


def save_snapshot(task: LoadedTask, folder: Path | None = None) -> Path | None:
    """Store ``task``'s snapshot under ``folder`` (default ``results/runs``) unless one of the
    same hash is there; returns its path."""
    path = snapshot_path(folder or runs_dir(), task.sha256)
    if path is None or path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(snapshot(task), handle, indent=1, ensure_ascii=False, allow_nan=False)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        with contextlib.suppress(FileExistsError):  # a snapshot written meanwhile stays
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path


def load_snapshot(folder: Path, sha256: Any) -> dict[str, Any] | None:
    """The stored snapshot of hash ``sha256``, or ``None`` when absent or unreadable."""
    path = snapshot_path(folder, sha256)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("spec_sha256") == sha256 else None


def snapshots(folder: Path) -> dict[str, dict[str, Any]]:
    """Every readable snapshot under ``folder``, by hash."""
    found = {}
    for path in sorted((folder / STORE).glob("*.json")):
        data = load_snapshot(folder, path.stem)
        if data is not None:
            found[path.stem] = data
    return found


# -- adoptions -----------------------------------------------------------------------------------

def record_adoption(record: dict[str, Any], folder: Path | None = None,
                    source: str = "adopt") -> None:
    """Append the adoption of ``record`` as its (task, profile)'s published verdict."""
    from theorybench.results import now_iso

    folder = folder or runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    line = {"task_id": record.get("task_id"), "profile": record.get("profile"),
            "verdict": record.get("verdict"), "record": record.get("run_id"),
            "spec_sha256": record.get("spec_sha256"), "adopted": now_iso(), "source": source}
    with open(folder / ADOPTIONS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")


def record_withdrawal(task_id: str, profile: str, folder: Path | None = None,
                      source: str = "withdraw") -> None:
    """Append the withdrawal of (task, profile)'s published verdict: it is unmeasured again."""
    from theorybench.results import now_iso

    folder = folder or runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    line = {"task_id": task_id, "profile": profile, "verdict": None, "record": None,
            "adopted": now_iso(), "source": source}
    with open(folder / ADOPTIONS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")


def sync_adoptions(tasks_root: Path, folder: Path | None = None) -> int:
    """Append to the log what the specs under ``tasks_root`` publish and the log does not say:
    an adoption for each ``expected_verdict`` entry naming another record, a withdrawal for each
    profile the log publishes and its spec no longer does. Returns the lines appended."""
    from theorybench.spec import SpecError, load_task, task_paths

    folder = folder or runs_dir()
    logged = adoptions(folder)
    records: dict[str, dict[str, Any]] | None = None
    appended = 0
    for path in task_paths(tasks_root):
        try:
            task = load_task(path, allow_expensive=True)
        except SpecError:
            continue
        published = task.spec.expected_verdict
        for profile in task.spec.profiles:
            entry = published.get(profile)  # type: ignore[call-overload]
            line = logged.get((task.spec.id, profile))
            if entry is None and line is not None:
                record_withdrawal(task.spec.id, profile, folder, source="sync")
                appended += 1
            elif entry is not None and (line is None or line.get("record") != entry.record):
                if records is None:
                    from theorybench.status import records_by_id

                    records = records_by_id(folder)
                record = records.get(entry.record)
                if record is not None:
                    record_adoption(record, folder, source="sync")
                    appended += 1
    return appended


def adoptions(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest adoption of each (task, profile) in ``folder``'s log; a withdrawal (a line whose
    ``record`` is null) removes it (unreadable lines are skipped)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        lines = (folder / ADOPTIONS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return latest
    for text in lines:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        key = (str(line.get("task_id")), str(line.get("profile")))
        if isinstance(line.get("record"), str):
            latest[key] = line
        elif "record" in line and line["record"] is None:
            latest.pop(key, None)
    return latest


def backfill(tasks_root: Path, folder: Path | None = None) -> tuple[int, int]:
    """Snapshot each current spec under ``tasks_root`` that a record in ``folder`` ran (same
    hash), and log each published verdict of the specs the log does not already name. Returns
    (snapshots written, adoptions logged)."""
    from theorybench.spec import SpecError, load_task, task_paths
    from theorybench.status import records_by_id

    folder = folder or runs_dir()
    records = records_by_id(folder)
    hashes = {r.get("spec_sha256") for r in records.values()}
    logged = adoptions(folder)
    written = adopted = 0
    for path in task_paths(tasks_root):
        try:
            task = load_task(path, allow_expensive=True)
        except SpecError:
            continue
        if task.sha256 in hashes:
            target = snapshot_path(folder, task.sha256)
            if target is not None and not target.exists():
                save_snapshot(task, folder)
                written += 1
        for profile, entry in task.spec.expected_verdict.items():
            if (logged.get((task.spec.id, profile)) or {}).get("record") == entry.record:
                continue
            rec = records.get(entry.record) or {"task_id": task.spec.id, "profile": profile,
                                                "run_id": entry.record}
            record_adoption(rec | {"verdict": entry.verdict}, folder, source="backfill")
            adopted += 1
    return written, adopted
