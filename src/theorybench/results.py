"""Run records: one JSON file per (suite run, task), written atomically and never edited.

A record holds what is needed to trust and reproduce a verdict: the spec's id, version and
sha256, the profile, the verdict with per-rule statistics, the controls' verdicts, the
measurement table, per-cell wall times, the seeds and the environment (package versions, device,
git commit). :func:`write_record` writes to a temporary file in the same folder and renames it,
so an interrupted run never leaves a broken record and an existing record is never replaced.
:func:`check_record` validates a file against :class:`RunRecord` itself (its field types and
constraints), so the reader and the writer share one definition. Files in subfolders (the spec
store, :mod:`theorybench.specstore`) and ``adoptions.jsonl`` are not records.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
from pydantic import Field, TypeAdapter, ValidationError

from theorybench.numbers import jsonable
from theorybench.paths import project_root, runs_dir
from theorybench.yaml_safe import YAMLInputError, decode, read_bytes, short

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 512 * 1024 * 1024
TASK_ID_PATTERN = r"^[a-z0-9_-]+/[a-z0-9_-][a-z0-9_.-]*$"
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, max_length=200)]
SUMMARY_CELL_FIELDS = ("arm", "index", "params", "wall_s", "error")


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
    """One run of one task under one profile. ``spec_path`` is relative to the task root
    (``<family>/<claim>.yaml``); each rule result carries its ``spec`` (the validated rule's
    fields) and its ``description`` in words. ``nonfinite``: per arm, the seeds and columns with
    non-finite values (:mod:`theorybench.divergence`); ``replicates``: the run id a replication
    record replicates, on block ``replication_block``."""

    run_id: RunId
    suite: str | None
    task_id: TaskId
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
    nonfinite: dict[str, Any] = field(default_factory=dict)
    replicates: str | None = None
    replication_block: int | None = None
    purpose: str = "published"
    seed_offset: int = 0
    expected_record: str | None = None
    out_of_regime: str | None = None
    paper_regime: str = ""
    statuses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data. The measurement table is JSON-ready already
        (:func:`table_to_json`) and is not copied or walked again."""
        out = jsonable(asdict(replace(self, table={})))
        out["table"] = self.table
        return out


def _column_to_json(column: pd.Series) -> list[Any]:
    """One column's values as :func:`jsonable` gives them, numeric columns without a walk."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        values = column.to_numpy()
        out = values.astype(object)  # Python int, float and bool
        if values.dtype.kind in "fc":
            out[np.isnan(values)] = None
            out[values == np.inf] = "inf"
            out[values == -np.inf] = "-inf"
        return out.tolist()
    values = column.tolist()
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return [jsonable(v) for v in values]


def table_to_json(table: pd.DataFrame) -> dict[str, Any]:
    """The measurement table as ``{"columns": [...], "data": [row, ...]}`` of JSON values
    (:func:`jsonable`'s NaN and infinities)."""
    columns = [_column_to_json(table.iloc[:, j]) for j in range(table.shape[1])]
    return {"columns": [str(c) for c in table.columns],
            "data": [list(row) for row in zip(*columns, strict=True)] if columns
            else [[] for _ in range(len(table))]}


def table_from_json(payload: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    return frame.replace({"inf": np.inf, "-inf": -np.inf}).infer_objects()


def git_commit(root: Path | None = None) -> tuple[str | None, bool]:
    """The checkout's HEAD commit and whether tracked files differ from it, read once per
    process: the code a process runs is the code it imported, so the first answer is the one
    every record of a suite run states (and a suite does not pay two ``git`` calls per task)."""
    return _git_state(root or project_root())


@lru_cache(maxsize=4)
def _git_state(root: Path) -> tuple[str | None, bool]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=root, capture_output=True, text=True, check=True,
                                timeout=10).stdout
        return head, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return None, False


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a measurement depends on (scikit-learn's read
    from its metadata: importing it costs half a second)."""
    import torch

    import theorybench

    return {"theorybench": theorybench.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
            "scikit_learn": importlib.metadata.version("scikit-learn")}


def environment(device_name: str) -> dict[str, Any]:
    import torch

    commit, dirty = git_commit()
    return {
        **library_versions(),
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


def write_record(record: RunRecord, folder: Path | None = None,
                 data: dict[str, Any] | None = None) -> Path:
    """Write ``record`` as a new file; never replaces an existing one. ``data``: the record's
    :meth:`~RunRecord.to_dict`, when the caller has it already."""
    folder = folder or runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / record_filename(record)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:  # orjson: compact, and no NaN (jsonable's None)
            handle.write(orjson.dumps(record.to_dict() if data is None else data,
                                      option=orjson.OPT_APPEND_NEWLINE))
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; records are for everyone
        os.link(tmp, final)  # fails if the name exists: a record is never overwritten
    finally:
        os.unlink(tmp)
    return final


class RecordSkipped(UserWarning):
    """A file under the records folder that is not a readable, well-formed record."""


_RECORD = TypeAdapter(RunRecord)


def check_record(data: Any) -> str | None:
    """Why ``data`` is not a record this version reads, or None when it is."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    if data.get("schema") != SCHEMA_VERSION:
        return f"schema {short(data.get('schema'))} is not {SCHEMA_VERSION}"
    try:
        _RECORD.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{short(where, 80, raw=True)}: {short(err['msg'], 120, raw=True)}{more}"
    return None


def read_record(path: Path) -> dict[str, Any]:
    """One record file, parsed and checked; ValueError saying why it cannot be used."""
    try:  # orjson: the site reads every record on each build; about twice json's speed
        data = orjson.loads(decode(read_bytes(path, MAX_RECORD_BYTES)))
    except YAMLInputError as exc:
        raise ValueError(exc.message) from None
    except ValueError as exc:  # JSONDecodeError (also past orjson's nesting limit of 1024)
        raise ValueError(f"not JSON: {short(str(exc), 120, raw=True)}") from None
    problem = check_record(data)
    if problem:
        raise ValueError(f"not a valid record: {problem}")
    return data


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its measurement table, its cells reduced to :data:`SUMMARY_CELL_FIELDS`:
    what the site reads of most records (verdicts, effects, controls, provenance, cell wall
    times), a small part of their bytes."""
    out = {k: v for k, v in record.items() if k != "table"}
    out["cells"] = [{k: cell[k] for k in SUMMARY_CELL_FIELDS if k in cell}
                    for cell in record.get("cells") or []]
    return out


def load_records(folder: Path | None = None, skipped: list[str] | None = None,
                 read: Callable[[Path], dict[str, Any]] = read_record) -> list[dict[str, Any]]:
    """Every record under ``folder`` (oldest first), each read by ``read`` (the whole record, or
    its :func:`summary`). A file that cannot be read or is not a valid record is skipped with
    one message naming it: appended to ``skipped`` when given, else issued as a
    :class:`RecordSkipped` warning."""
    folder = folder or runs_dir()
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = read(path)
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


def load_history(folder: Path | None = None, skipped: list[str] | None = None) -> pd.DataFrame:
    """One row per run record, oldest first (:func:`theorybench.leaderboard.history.runs_frame`
    of :func:`load_records`)."""
    from theorybench.leaderboard.history import runs_frame

    return runs_frame(load_records(folder, skipped))


def load_table(record: dict[str, Any]) -> pd.DataFrame:
    return table_from_json(record["table"])
