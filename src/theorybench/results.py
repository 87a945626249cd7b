"""Run records: one JSON file per (suite run, task), written atomically and never edited.

A record holds what is needed to trust and reproduce a verdict: the spec's id, version and
sha256, the profile, the verdict with per-rule statistics, the controls' verdicts, the
measurement table, per-cell wall times, the seeds and the environment (package versions, device,
git commit). :func:`write_record` writes to a temporary file in the same folder and renames it,
so an interrupted run never leaves a broken record and an existing record is never replaced.
:func:`load_history` returns every record as one row of a DataFrame.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from theorybench.paths import project_root, runs_dir
from theorybench.yaml_safe import YAMLInputError, decode, read_bytes, short

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 512 * 1024 * 1024
TASK_ID_PATTERN = r"^[a-z0-9_-]+/[a-z0-9_-][a-z0-9_.-]*$"


@dataclass
class CellTiming:
    arm: str
    index: int
    params: dict[str, Any]
    seeds: list[int]
    wall_s: float
    rows: int
    error: str | None = None
    device: str | None = None  # where the cell ran (GPU model for CUDA)
    cached: bool = False  # from the cell cache; wall_s is then the original run's
    threads: dict[str, Any] | None = None  # the thread policy's choice and its inputs


@dataclass
class ArmResult:
    """The claim's arm or one control: its verdict and per-rule statistics."""

    name: str
    verdict: str
    required_verdict: str | None
    rules: list[dict[str, Any]]
    error: str | None = None
    breaks: str | None = None
    breaks_decision: str | None = None

    @property
    def as_required(self) -> bool:
        """Whether the control got its required decision on the rule it breaks (its combined
        verdict when it names none); always true for the claim."""
        if self.required_verdict is None:
            return True
        judged = self.breaks_decision if self.breaks else self.verdict
        return judged == self.required_verdict


@dataclass
class RunRecord:
    run_id: str
    suite: str | None
    task_id: str
    task_version: int
    title: str
    family: str
    tags: list[str]
    spec_path: str
    spec_sha256: str
    profile: str
    expected_verdict: str | None
    verdict: str
    validated: bool
    claim: ArmResult
    controls: list[ArmResult]
    error: str | None
    seeds: list[int]
    device: str
    started: str
    finished: str
    wall_s: float
    cells: list[CellTiming]
    table: dict[str, Any]
    environment: dict[str, Any]
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    purpose: str = "published"
    seed_offset: int = 0
    expected_record: str | None = None
    out_of_regime: str | None = None
    paper_regime: str = ""
    statuses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def table_to_json(table: pd.DataFrame) -> dict[str, Any]:
    return {"columns": [str(c) for c in table.columns],
            "data": _jsonable(table.to_numpy(dtype=object).tolist())}


def table_from_json(payload: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    return frame.replace({"inf": np.inf, "-inf": -np.inf}).infer_objects()


def git_commit(root: Path | None = None) -> tuple[str | None, bool]:
    """The checkout's HEAD commit and whether tracked files differ from it."""
    root = root or project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=root, capture_output=True, text=True, check=True,
                                timeout=10).stdout
        return head, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return None, False


def environment(device_name: str) -> dict[str, Any]:
    import sklearn
    import torch

    import theorybench

    commit, dirty = git_commit()
    return {
        "theorybench": theorybench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit_learn": sklearn.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device_name,
        "git_commit": commit,
        "git_dirty": dirty,
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_filename(record: RunRecord) -> str:
    stamp = record.started.replace(":", "").replace("-", "").replace("+0000", "Z")
    return f"{stamp}_{record.task_id.replace('/', '__')}_{record.run_id[:8]}.json"


def write_record(record: RunRecord, folder: Path | None = None) -> Path:
    """Write ``record`` as a new file; never replaces an existing one."""
    folder = folder or runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / record_filename(record)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record.to_dict(), handle, separators=(",", ":"), allow_nan=False)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; records are for everyone
        os.link(tmp, final)  # fails if the name exists: a record is never overwritten
    finally:
        os.unlink(tmp)
    return final


class RecordSkipped(UserWarning):
    """A file under the records folder that is not a readable, well-formed record."""


class _ArmShape(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    verdict: str
    rules: list[dict[str, Any]]
    error: str | None = None


class _RecordShape(BaseModel):
    """The fields every reader of a record relies on, with their types; others are free."""

    model_config = ConfigDict(extra="allow")
    schema_: int = Field(alias="schema")
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    suite: str | None
    task_id: str = Field(pattern=TASK_ID_PATTERN, max_length=200)
    task_version: int
    title: str
    family: str
    tags: list[str]
    profile: str
    verdict: str
    validated: bool
    claim: _ArmShape
    controls: list[_ArmShape]
    error: str | None
    seeds: list[int]
    device: str
    started: str
    finished: str
    wall_s: float
    cells: list[dict[str, Any]]
    table: dict[str, Any]
    environment: dict[str, Any]
    spec_sha256: str
    spec_path: str


def check_record(data: Any) -> str | None:
    """Why ``data`` is not a record this version reads, or None when it is."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if data.get("schema") != SCHEMA_VERSION:
        return f"schema {short(data.get('schema'))} is not {SCHEMA_VERSION}"
    try:
        _RecordShape.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{short(where, 80, raw=True)}: {short(err['msg'], 120, raw=True)}{more}"
    return None


def read_record(path: Path) -> dict[str, Any]:
    """One record file, parsed and checked; ValueError saying why it cannot be used."""
    try:
        data = json.loads(decode(read_bytes(path, MAX_RECORD_BYTES)))
    except YAMLInputError as exc:
        raise ValueError(exc.message) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError
        raise ValueError(f"not JSON: {short(str(exc), 120, raw=True)}") from None
    problem = check_record(data)
    if problem:
        raise ValueError(f"not a valid record: {problem}")
    return data


def load_records(folder: Path | None = None,
                 skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Every record under ``folder`` (oldest first). A file that cannot be read or is not a
    valid record is skipped with one message naming it: appended to ``skipped`` when given,
    else issued as a :class:`RecordSkipped` warning."""
    folder = folder or runs_dir()
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = read_record(path)
        except ValueError as exc:
            message = f"skipped {path}: {exc}"
            if skipped is not None:
                skipped.append(message)
            else:
                warnings.warn(message, RecordSkipped, stacklevel=2)
            continue
        data["_path"] = str(path)
        records.append(data)
    records.sort(key=lambda r: (r["started"], r["run_id"]))
    return records


HISTORY_COLUMNS = [
    "run_id", "suite", "task_id", "task_version", "family", "title", "profile", "verdict",
    "expected_verdict", "validated", "effect", "ci_low", "ci_high", "wall_s", "device",
    "git_commit", "spec_sha256", "started", "path",
]


def load_history(folder: Path | None = None, skipped: list[str] | None = None) -> pd.DataFrame:
    """One row per run record: the verdict, the first rule's effect and interval, timing and
    provenance. Unusable files are skipped as in :func:`load_records`."""
    rows = []
    for rec in load_records(folder, skipped):
        first = rec["claim"]["rules"][0] if rec["claim"]["rules"] else {}
        rows.append({
            "run_id": rec["run_id"], "suite": rec["suite"], "task_id": rec["task_id"],
            "task_version": rec["task_version"], "family": rec["family"], "title": rec["title"],
            "profile": rec["profile"], "verdict": rec["verdict"],
            "expected_verdict": rec["expected_verdict"], "validated": rec["validated"],
            "effect": first.get("effect"), "ci_low": first.get("ci_low"),
            "ci_high": first.get("ci_high"), "wall_s": rec["wall_s"], "device": rec["device"],
            "git_commit": rec["environment"].get("git_commit"),
            "spec_sha256": rec["spec_sha256"], "started": rec["started"], "path": rec["_path"],
        })
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def load_table(record: dict[str, Any]) -> pd.DataFrame:
    return table_from_json(record["table"])
