"""Task and suite specs: YAML files validated with pydantic, errors named by file and field.

A **task** (``tasks/<family>/<claim>.yaml``) is one claim: its text and source, the experiment
(kind, parameters, sweep, seeds), the decision rules (``expect``), negative controls (parameter
overrides under which the same rules must come out ``refuted``), profiles (``smoke``,
``standard``, ``paper``) and the verdict published for each profile. A **suite**
(``suites/<name>.yaml``) lists tasks (ids or glob patterns) and the profile to run them under.

Every problem in a spec raises :class:`SpecError`, whose one-line message names the file, the
field and what was expected. YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from theorybench.paths import suites_dir, tasks_dir
from theorybench.registry import Verdict, get_experiment
from theorybench.verdict import RuleSpec, parse_rule

Profile = Literal["smoke", "standard", "paper"]
PROFILES: tuple[str, ...] = ("smoke", "standard", "paper")
ParamValue = Any


class SpecError(ValueError):
    """A malformed spec: ``file: field: what was expected``."""

    def __init__(self, file: Path | str, field: str, message: str) -> None:
        self.file, self.field, self.message = str(file), field, message
        super().__init__(f"{file}: {field}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    paper: str = Field(description="authors, title, venue and year")
    where: str = Field(description="theorem, figure or table the claim comes from")
    url: str | None = None


class Experiment(_Strict):
    kind: str = Field(description="a registered experiment kind")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    sweep: dict[str, list[ParamValue]] = Field(
        default_factory=dict, description="parameters whose values form a grid of cells"
    )
    seeds: int = Field(ge=1, description="how many seeds (0, 1, ..., seeds - 1 + seed_offset)")
    seed_offset: int = Field(0, ge=0)
    cell_timeout_s: float | None = Field(
        None, gt=0, description="a cell running longer becomes an error (--cell-timeout wins)")

    @field_validator("sweep")
    @classmethod
    def _non_empty(cls, sweep: dict[str, list[ParamValue]]) -> dict[str, list[ParamValue]]:
        for name, values in sweep.items():
            if not values:
                raise ValueError(f"sweep of {name!r} has no values")
        return sweep


class ProfileSpec(_Strict):
    seeds: int | None = Field(None, ge=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    sweep: dict[str, list[ParamValue]] = Field(default_factory=dict)


class Control(_Strict):
    name: str
    description: str = ""
    override: dict[str, ParamValue] = Field(
        description="parameter values (dotted paths into params allowed) replacing the claim's"
    )
    sweep: dict[str, list[ParamValue]] = Field(default_factory=dict)
    expect: list[dict[str, Any]] | None = Field(
        None, description="rules for the control; the claim's rules when absent"
    )
    verdict: Verdict = Field("refuted", description="the verdict the control must get")


class Reference(_Strict):
    label: str
    value: float | str
    metric: str | None = None
    at: dict[str, ParamValue] = Field(default_factory=dict)
    note: str = ""


class TaskSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+/[a-z0-9_.-]+$", description="'<family>/<claim>'")
    version: int = Field(ge=1)
    title: str
    claim: str
    source: Source
    regime: str = Field("", description="the regime or scale the claim is tested in")
    experiment: Experiment
    expect: list[dict[str, Any]] = Field(min_length=1)
    controls: list[Control] = Field(min_length=1)
    profiles: dict[Profile, ProfileSpec] = Field(default_factory=dict)
    expected_verdict: dict[Profile, Verdict] = Field(
        description="the verdict theorybench publishes for each profile"
    )
    reference: list[Reference] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    notes: str = ""

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]


class SuiteSpec(_Strict):
    id: str
    title: str = ""
    profile: Profile
    tasks: list[str] = Field(min_length=1, description="task ids or glob patterns over ids")


@dataclass(frozen=True)
class LoadedTask:
    """A validated task spec with the file it came from and the file's sha256."""

    spec: TaskSpec
    path: Path
    sha256: str
    rules: tuple[RuleSpec, ...]
    control_rules: tuple[tuple[RuleSpec, ...], ...]


@dataclass(frozen=True)
class ResolvedArm:
    """One arm (the claim or a control) of a task under a profile: what the runner executes."""

    name: str
    kind: str
    params: dict[str, ParamValue]
    sweep: dict[str, list[ParamValue]]
    seeds: tuple[int, ...]
    rules: tuple[RuleSpec, ...]
    required_verdict: Verdict | None

    def grid(self) -> list[dict[str, ParamValue]]:
        """Every point of the sweep as a complete parameter mapping, in sweep order."""
        names = list(self.sweep)
        points = []
        for values in itertools.product(*(self.sweep[n] for n in names)):
            params = copy.deepcopy(self.params)
            for name, value in zip(names, values, strict=True):
                _set_path(params, name, value)
            points.append(params)
        return points


def _set_path(params: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise KeyError(dotted)
    node[leaf] = value


def _field_of(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif "input" in err and err["type"] not in ("missing",):
        msg = f"{msg} (got {err['input']!r})"
    return _field_of(tuple(err["loc"])), msg


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(path, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(path, "(yaml)", f"YAML syntax error at {where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(path, "(top level)", f"expected a mapping, got {type(data).__name__}")
    return data


def _check_params(path: Path, field: str, kind: str, params: dict[str, Any]) -> None:
    model = get_experiment(kind).params
    try:
        model.model_validate(params)
    except ValidationError as exc:
        sub, msg = _first_error(exc)
        known = sorted(model.model_fields)
        if msg == "unknown field":
            msg = f"unknown parameter of experiment kind {kind!r}; expected one of {known}"
        raise SpecError(path, f"{field}.{sub}", msg) from None


def _parse_rules(path: Path, field: str, raws: list[dict[str, Any]]) -> tuple[RuleSpec, ...]:
    parsed = []
    for i, raw in enumerate(raws):
        where = f"{field}[{i}]"
        if not isinstance(raw, dict):
            raise SpecError(path, where, "expected a mapping with a 'rule' field")
        try:
            parsed.append(parse_rule(raw))
        except KeyError as exc:
            raise SpecError(path, f"{where}.rule", str(exc.args[0])) from None
        except ValidationError as exc:
            sub, msg = _first_error(exc)
            raise SpecError(path, f"{where}.{sub}", msg) from None
    return tuple(parsed)


def _apply(
    params: dict[str, Any],
    sweep: dict[str, list[Any]],
    new_params: dict[str, Any],
    new_sweep: dict[str, list[Any]],
    path: Path,
    params_field: str,
    sweep_field: str,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``params``/``sweep`` with ``new_params`` (dotted paths allowed; a swept parameter given a
    fixed value leaves the sweep) and ``new_sweep`` applied."""
    params, sweep = copy.deepcopy(params), dict(sweep)
    for name, value in new_params.items():
        sweep.pop(name, None)
        try:
            _set_path(params, name, value)
        except KeyError:
            raise SpecError(path, f"{params_field}.{name}", "path crosses a non-mapping") from None
    for name, values in new_sweep.items():
        if not isinstance(values, list) or not values:
            raise SpecError(path, f"{sweep_field}.{name}", "expected a non-empty list")
        sweep[name] = values
    return params, sweep


def _validate_grid(path: Path, field: str, kind: str, params: dict, sweep: dict,
                   params_field: str | None = None) -> None:
    """Each swept value must be valid on its own: check the first grid point fully, and each
    sweep value substituted into it. ``field`` names the origin (``experiment``,
    ``profiles.smoke``, ``controls[0]``) in error messages."""
    base = copy.deepcopy(params)
    for name, values in sweep.items():
        try:
            _set_path(base, name, values[0])
        except KeyError:
            raise SpecError(path, f"{field}.sweep.{name}", "path crosses a non-mapping") from None
    _check_params(path, params_field or f"{field}.params", kind, base)
    for name, values in sweep.items():
        for j, value in enumerate(values):
            point = copy.deepcopy(base)
            _set_path(point, name, value)
            try:
                get_experiment(kind).params.model_validate(point)
            except ValidationError as exc:
                sub, msg = _first_error(exc)
                raise SpecError(path, f"{field}.sweep.{name}[{j}]", f"{sub}: {msg}") from None


def load_task(path: Path | str) -> LoadedTask:
    """Read and validate one task file; raises SpecError naming the file and field."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        field, msg = _first_error(exc)
        raise SpecError(path, field, msg) from None
    expected_id = f"{path.parent.name}/{path.stem}"
    if path.parent.parent.name == "tasks" and spec.id != expected_id:
        raise SpecError(path, "id", f"expected {expected_id!r} (the file's folder and name)")
    try:
        get_experiment(spec.experiment.kind)
    except KeyError as exc:
        raise SpecError(path, "experiment.kind", str(exc.args[0])) from None
    rules = _parse_rules(path, "expect", spec.expect)
    control_rules = tuple(
        _parse_rules(path, f"controls[{i}].expect", c.expect) if c.expect is not None else rules
        for i, c in enumerate(spec.controls)
    )
    kind, exp = spec.experiment.kind, spec.experiment
    _validate_grid(path, "experiment", kind, exp.params, exp.sweep)
    for i, control in enumerate(spec.controls):
        c_params, c_sweep = _apply(exp.params, exp.sweep, control.override, control.sweep, path,
                                   f"controls[{i}].override", f"controls[{i}].sweep")
        _validate_grid(path, f"controls[{i}]", kind, c_params, c_sweep,
                       f"controls[{i}].override")
    for name, prof in spec.profiles.items():
        params, sweep = _apply(exp.params, exp.sweep, prof.params, prof.sweep, path,
                               f"profiles.{name}.params", f"profiles.{name}.sweep")
        _validate_grid(path, f"profiles.{name}", kind, params, sweep)
        for i, control in enumerate(spec.controls):
            c_params, c_sweep = _apply(params, sweep, control.override, control.sweep, path,
                                       f"controls[{i}].override", f"controls[{i}].sweep")
            _validate_grid(path, f"controls[{i}] (under profile {name})", kind, c_params,
                           c_sweep, f"controls[{i}].override (under profile {name})")
    missing = [p for p in spec.profiles if p not in spec.expected_verdict]
    if missing:
        raise SpecError(path, "expected_verdict", f"no published verdict for profile {missing}")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedTask(spec, path, sha, rules, control_rules)


def resolve(task: LoadedTask, profile: str, seeds: int | None = None) -> list[ResolvedArm]:
    """The claim's arm and one arm per control, with ``profile`` applied (a profile the spec
    does not define runs the base experiment) and ``seeds`` overriding the seed count."""
    spec, exp = task.spec, task.spec.experiment
    prof = spec.profiles.get(profile, ProfileSpec())  # type: ignore[call-overload]
    params, sweep = _apply(exp.params, exp.sweep, prof.params, prof.sweep, task.path,
                           f"profiles.{profile}.params", f"profiles.{profile}.sweep")
    n = seeds or prof.seeds or exp.seeds
    seed_list = tuple(range(exp.seed_offset, exp.seed_offset + n))
    arms = [ResolvedArm("claim", exp.kind, params, sweep, seed_list, task.rules, None)]
    for control, rules in zip(spec.controls, task.control_rules, strict=True):
        c_params, c_sweep = _apply(params, sweep, control.override, control.sweep, task.path,
                                   f"controls.{control.name}.override",
                                   f"controls.{control.name}.sweep")
        arms.append(ResolvedArm(control.name, exp.kind, c_params, c_sweep, seed_list, rules,
                                control.verdict))
    return arms


def task_paths(root: Path | None = None) -> list[Path]:
    root = root or tasks_dir()
    return sorted(p for p in root.rglob("*.yaml") if p.is_file())


def load_tasks(root: Path | None = None) -> dict[str, LoadedTask]:
    """Every task under ``tasks/``, by id; the first malformed file raises SpecError."""
    tasks: dict[str, LoadedTask] = {}
    for path in task_paths(root):
        task = load_task(path)
        if task.spec.id in tasks:
            raise SpecError(path, "id", f"duplicate id {task.spec.id!r} (also in "
                                        f"{tasks[task.spec.id].path})")
        tasks[task.spec.id] = task
    return tasks


def load_suite(path: Path | str) -> SuiteSpec:
    path = Path(path)
    data = _read_yaml(path)
    try:
        return SuiteSpec.model_validate(data)
    except ValidationError as exc:
        field, msg = _first_error(exc)
        raise SpecError(path, field, msg) from None


def find_suite(name: str) -> Path | None:
    path = suites_dir() / f"{name}.yaml"
    return path if path.is_file() else None


def task_id_of(path: Path, root: Path | None = None) -> str:
    return path.relative_to(root or tasks_dir()).with_suffix("").as_posix()


def suite_tasks(suite: SuiteSpec, path: Path | str, root: Path | None = None) -> list[Path]:
    """Task files a suite names (ids or glob patterns over ids), in its order; a pattern that
    matches no file is a SpecError."""
    root = root or tasks_dir()
    by_id = {task_id_of(p, root): p for p in task_paths(root)}
    chosen: list[Path] = []
    for i, pattern in enumerate(suite.tasks):
        matches = sorted(t for t in by_id if fnmatch.fnmatchcase(t, pattern))
        if not matches:
            raise SpecError(path, f"tasks[{i}]", f"no task id matches {pattern!r}")
        chosen.extend(by_id[m] for m in matches if by_id[m] not in chosen)
    return chosen
