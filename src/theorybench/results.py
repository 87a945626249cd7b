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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from theorybench.paths import project_root, runs_dir

SCHEMA_VERSION = 1


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

    @property
    def as_required(self) -> bool:
        return self.required_verdict is None or self.verdict == self.required_verdict


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


def load_records(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every record under ``folder`` (oldest first); unreadable files are skipped."""
    folder = folder or runs_dir()
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA_VERSION:
            data["_path"] = str(path)
            records.append(data)
    records.sort(key=lambda r: (r["started"], r["run_id"]))
    return records


HISTORY_COLUMNS = [
    "run_id", "suite", "task_id", "task_version", "family", "title", "profile", "verdict",
    "expected_verdict", "validated", "effect", "ci_low", "ci_high", "wall_s", "device",
    "git_commit", "spec_sha256", "started", "path",
]


def load_history(folder: Path | None = None) -> pd.DataFrame:
    """One row per run record: the verdict, the first rule's effect and interval, timing and
    provenance."""
    rows = []
    for rec in load_records(folder):
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
