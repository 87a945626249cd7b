"""Task and suite specs: YAML files validated with pydantic, errors named by file and field.

A **task** (``tasks/<family>/<claim>.yaml``) is one claim: its text and source, the experiment
(kind, parameters, sweep, seeds), the decision rules (``expect``), negative controls (parameter
overrides under which the same rules must come out ``refuted``), profiles (``smoke``,
``standard``, ``paper``), the paper's regime, and the verdict published for each profile with
the record that measured it (see :mod:`theorybench.status`). A **suite**
(``suites/<name>.yaml``) lists tasks (ids or glob patterns) and the profile to run them under.

Loading collects every problem of a file before raising :class:`SpecError`: one short line per
problem (``file: field: what was expected``), all of them in ``SpecError.problems``. YAML is read
by :mod:`theorybench.yaml_safe` (no aliases, no duplicate keys, bounded size and depth); the
checks beyond the schema (finite numbers, unique names, known columns, bounded cost) are in
:mod:`theorybench.spec_checks`.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from theorybench import cost, registry
from theorybench import spec_checks as checks
from theorybench.paths import suites_dir, tasks_dir
from theorybench.registry import get_experiment
from theorybench.status import control_problems, rule_ids, spec_hash
from theorybench.verdict import RuleSpec, Verdict, parse_rule
from theorybench.yaml_safe import YAMLInputError, decode, parse, read_bytes, short

Profile = Literal["smoke", "standard", "paper"]
PROFILES: tuple[str, ...] = ("smoke", "standard", "paper")
ParamValue = Any


MAX_FIELD = 120
MAX_MESSAGE = 240
MAX_PROBLEMS = 40
MAX_SEEDS = 10_000
MAX_SWEEP_VALUES = 1_000


class SpecError(ValueError):
    """A malformed spec: ``file: field: what was expected``. ``problems`` holds every problem
    found in the file (this one first); ``str()`` is one line per problem."""

    def __init__(self, file: Path | str, field: str, message: str,
                 problems: list[SpecError] | None = None) -> None:
        self.file = str(file)
        self.field = short(field, MAX_FIELD, raw=True)
        self.message = short(" ".join(str(message).split()), MAX_MESSAGE, raw=True)
        self.problems: tuple[SpecError, ...] = tuple(problems) if problems else (self,)
        super().__init__("\n".join(p.line for p in self.problems))

    @property
    def line(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"

    @classmethod
    def collect(cls, problems: list[SpecError]) -> SpecError:
        """One error carrying ``problems`` (at most :data:`MAX_PROBLEMS`, then a count)."""
        unique = list({p.line: p for p in problems}.values())
        if len(unique) > MAX_PROBLEMS:
            rest = len(unique) - MAX_PROBLEMS + 1
            unique = [*unique[:MAX_PROBLEMS - 1],
                      SpecError(unique[0].file, "(more)", f"{rest} more problem(s) not shown")]
        first = unique[0]
        collected = cls(first.file, "", "", unique)
        collected.field, collected.message = first.field, first.message
        return collected


class Problems:
    """The problems found in one file so far."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.items: list[SpecError] = []
        self.seen: set[tuple[str, ...]] = set()

    def first_time(self, *key: str) -> bool:
        """True the first time ``key`` is seen: a problem inherited by a control or a profile
        from the base experiment is reported once, where it comes from."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def add(self, field: str, message: str) -> None:
        self.items.append(SpecError(self.path, field, message))

    def extend(self, exc: SpecError) -> None:
        self.items.extend(exc.problems)

    def pydantic(self, exc: ValidationError, prefix: str = "") -> None:
        """Every error of a pydantic validation, its fields under ``prefix``."""
        for field, msg in _errors(exc):
            self.add(f"{prefix}.{field}" if prefix and field != "(top level)" else
                     prefix or field, msg)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError.collect(self.items)


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
    seeds: int = Field(ge=1, le=MAX_SEEDS, strict=True,
                       description="how many seeds, from seed_offset on")
    seed_offset: int = Field(0, ge=0, lt=2**31, strict=True,
                             description="first seed of the published block (see "
                                         "theorybench.status for the seed blocks)")
    divergence_tolerance: float = Field(
        0.0, ge=0.0, le=1.0, description="fraction of an arm's seeds allowed non-finite values "
        "before the arm's verdict is `error` (diverged)")
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
    seeds: int | None = Field(None, ge=1, le=MAX_SEEDS, strict=True)
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
    breaks: str | None = Field(None, description="id of the rule the control is meant to break; "
                               "its decision must equal `verdict` (optional with one rule)")


class Reference(_Strict):
    label: str
    value: float | str
    metric: str | None = None
    at: dict[str, ParamValue] = Field(default_factory=dict)
    note: str = ""


class Published(_Strict):
    verdict: Verdict
    record: str = Field(min_length=1, description="run id of the record that measured it")


class TaskSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+/[a-z0-9_.-]+$", description="'<family>/<claim>'")
    version: int = Field(ge=1, le=1_000_000, strict=True)
    title: str
    claim: str
    source: Source
    regime: str = Field("", description="the regime or scale the claim is tested in")
    paper_regime: str = Field("", description="the regime of the paper's claim")
    out_of_regime: str | None = Field(
        None, description="why our set-up departs from the paper's regime in a way the claim "
                          "depends on; null when it does not")
    experiment: Experiment
    expect: list[dict[str, Any]] = Field(min_length=1)
    controls: list[Control] = Field(min_length=1)
    profiles: dict[Profile, ProfileSpec] = Field(default_factory=dict)
    expected_verdict: dict[Profile, Published] = Field(
        default_factory=dict, description="per profile, the published verdict and the run id "
                                          "of the record that measured it; absent: unmeasured"
    )
    reference: list[Reference] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    notes: str = ""

    @field_validator("expected_verdict", mode="before")
    @classmethod
    def _with_record(cls, value: Any) -> Any:
        for profile, entry in (value or {}).items() if isinstance(value, dict) else ():
            if not isinstance(entry, dict):
                raise ValueError(f"profile {profile!r}: expected {{verdict: <verdict>, record: "
                                 f"<run id>}} naming the record that measured it, got {entry!r}")
        return value

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]


class SuiteSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    title: str = ""
    profile: Profile
    tasks: list[str] = Field(min_length=1, description="task ids or glob patterns over ids")
    exclude: list[str] = Field(default_factory=list, description="task ids or glob patterns "
                               "left out of what `tasks` names (e.g. a task whose profile does "
                               "not fit the suite's time budget)")
    include: list[str] = Field(default_factory=list, description="plug-in folders the suite's "
                               "tasks need, relative to the suite file (as `--include`)")


def suite_includes(suite: SuiteSpec, path: Path | str) -> list[Path]:
    """The plug-in folders a suite names, resolved against the suite file's folder."""
    return [(Path(path).parent / folder).resolve() for folder in suite.include]


@dataclass(frozen=True)
class LoadedTask:
    """A validated task spec with the file it came from and its hash
    (:func:`theorybench.status.spec_hash`)."""

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
    breaks: str | None = None
    breaks_at: int | None = None

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
        part = part if isinstance(part, int) else short(part, 60, raw=True)
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of a pydantic validation as (field, message), values cut short."""
    out = []
    for err in exc.errors():
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err:
            msg = f"{short(msg, 160, raw=True)} (got {short(err['input'])})"
        out.append((_field_of(tuple(err["loc"])), msg))
    return out


def _read(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    """The file's top-level mapping (from its bytes ``raw`` when read already); SpecError for
    anything else."""
    try:
        data = parse(decode(read_bytes(path) if raw is None else raw))
    except YAMLInputError as exc:
        raise SpecError(path, exc.where, exc.message) from None
    if not isinstance(data, dict):
        raise SpecError(path, "(top level)", f"expected a mapping, got {type(data).__name__}")
    return data


def _check_params(problems: Problems, field: str, kind: str,
                  params: dict[str, Any]) -> BaseModel | None:
    """The validated parameters, or None after adding their problems."""
    model = get_experiment(kind).params
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        for sub, msg in _errors(exc):
            if msg == "unknown field":
                name = sub.rsplit(".", 1)[-1]
                close = difflib.get_close_matches(name, list(model.model_fields), n=1)
                msg = (f"unknown parameter of experiment kind {kind!r}; " +
                       (f"did you mean {close[0]!r}?" if close else
                        f"expected one of {', '.join(sorted(model.model_fields))}"))
            if problems.first_time("params", sub, msg):
                problems.add(f"{field}.{sub}", msg)
        return None
    for sub, msg in checks.nonfinite_params(validated):
        if problems.first_time("params", sub, msg):
            problems.add(f"{field}.{sub}", msg)
    return validated


def _parse_rules(problems: Problems, field: str, raws: Any) -> tuple[RuleSpec, ...]:
    """The rules that parse; the others add their problems."""
    if not isinstance(raws, list):
        return ()
    parsed = []
    for i, raw in enumerate(raws):
        where = f"{field}[{i}]"
        if not isinstance(raw, dict):
            if problems.first_time("rule", where):
                problems.add(where, "expected a mapping with a 'rule' field")
            continue
        try:
            rule = parse_rule(raw)
        except KeyError as exc:
            problems.add(f"{where}.rule", str(exc.args[0]))
            continue
        except ValidationError as exc:
            problems.pydantic(exc, where)
            continue
        for sub, msg in checks.nonfinite(rule.model_dump(), where):
            problems.add(sub, msg)
        parsed.append(rule)
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


def _validate_grid(problems: Problems, field: str, kind: str, params: dict, sweep: dict,
                   params_field: str | None = None) -> bool:
    """Each swept value must be valid on its own: check the first grid point fully, and each
    sweep value substituted into it. ``field`` names the origin (``experiment``,
    ``profiles.smoke``, ``controls[0]``) in error messages. False when a problem was added."""
    before = len(problems.items)
    if any(len(values) > MAX_SWEEP_VALUES for values in sweep.values()):
        return False  # reported by checks.sweeps; too many values to check one by one
    base = copy.deepcopy(params)
    for name, values in sweep.items():
        try:
            _set_path(base, name, values[0])
        except KeyError:
            problems.add(f"{field}.sweep.{name}", "path crosses a non-mapping")
            return False
    if _check_params(problems, params_field or f"{field}.params", kind, base) is None:
        return False
    model = get_experiment(kind).params
    for name, values in sweep.items():
        for j, value in enumerate(values):
            point = copy.deepcopy(base)
            _set_path(point, name, value)
            try:
                found = list(checks.nonfinite_params(model.model_validate(point)))
            except ValidationError as exc:
                found = _errors(exc)
            for sub, msg in found:
                if sub == name or sub.startswith((f"{name}.", f"{name}[")):
                    if problems.first_time("sweep", name, str(j), sub, msg):
                        problems.add(f"{field}.sweep.{name}[{j}]", f"{sub}: {msg}")
                elif problems.first_time("params", sub, msg):
                    problems.add(f"{params_field or field + '.params'}.{sub}", msg)
    return len(problems.items) == before


def _raw_rule_lists(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """The rule lists of a spec that failed its schema, to check them anyway."""
    found = [("expect", data.get("expect"))]
    controls = data.get("controls")
    if isinstance(controls, list):
        found += [(f"controls[{i}].expect", c.get("expect")) for i, c in enumerate(controls)
                  if isinstance(c, dict)]
    return found


def _check_grids(problems: Problems, spec: TaskSpec, kind: str, path: Path) -> None:
    """Every parameter set the task can run: the experiment, each control, each profile and
    each control under each profile. A problem inherited from the base is reported once."""
    exp = spec.experiment
    _validate_grid(problems, "experiment", kind, exp.params, exp.sweep)
    broken: set[int] = set()
    for i, control in enumerate(spec.controls):
        try:
            c_params, c_sweep = _apply(exp.params, exp.sweep, control.override, control.sweep,
                                       path, f"controls[{i}].override", f"controls[{i}].sweep")
        except SpecError as exc:
            problems.extend(exc)
            broken.add(i)
            continue
        if not _validate_grid(problems, f"controls[{i}]", kind, c_params, c_sweep,
                              f"controls[{i}].override"):
            broken.add(i)
    for name, prof in spec.profiles.items():
        try:
            params, sweep = _apply(exp.params, exp.sweep, prof.params, prof.sweep, path,
                                   f"profiles.{name}.params", f"profiles.{name}.sweep")
        except SpecError as exc:
            problems.extend(exc)
            continue
        _validate_grid(problems, f"profiles.{name}", kind, params, sweep)
        for i, control in enumerate(spec.controls):
            if i in broken:
                continue
            try:
                c_params, c_sweep = _apply(params, sweep, control.override, control.sweep, path,
                                           f"controls[{i}].override", f"controls[{i}].sweep")
            except SpecError as exc:
                problems.extend(exc)
                continue
            _validate_grid(problems, f"controls[{i}] (under profile {name})", kind,
                           c_params, c_sweep, f"controls[{i}].override (under profile {name})")


_LOADED: dict[tuple[str, bytes, bool, tuple[str, ...]], LoadedTask] = {}
"""Tasks loaded in this process, by path, file content, ``allow_expensive`` and included
plug-in folders: a suite run and the site built after it validate each spec once."""


def load_task(path: Path | str, *, allow_expensive: bool = False) -> LoadedTask:
    """Read and validate one task file. Raises SpecError carrying every problem found, each
    naming the file and the field. A spec whose estimated cost exceeds a profile's budget
    (:mod:`theorybench.cost`) is a problem unless ``allow_expensive``. A file read before with
    the same content is not validated again (:data:`_LOADED`)."""
    path = Path(path)
    try:
        raw = read_bytes(path)
    except YAMLInputError as exc:
        raise SpecError(path, exc.where, exc.message) from None
    key = (str(path), raw, allow_expensive, registry.included())
    if key not in _LOADED:
        _LOADED[key] = _load_task(path, raw, allow_expensive)
    return _LOADED[key]


def _load_task(path: Path, raw: bytes, allow_expensive: bool) -> LoadedTask:
    data = _read(path, raw)
    problems = Problems(path)
    for field, msg in checks.texts(data, ""):
        problems.add(field, msg)
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as exc:
        problems.pydantic(exc)
        problems.seen.update(("rule", p.field) for p in problems.items)
        for field, raws in _raw_rule_lists(data):
            _parse_rules(problems, field, raws)
        raise SpecError.collect(problems.items) from None
    expected_id = f"{path.parent.name}/{path.stem}"
    if path.parent.parent.name == "tasks" and spec.id != expected_id:
        problems.add("id", f"expected {short(expected_id)} (the file's folder and name)")
    checks.task_id(spec.id, problems)
    checks.control_names([c.name for c in spec.controls], problems)
    sweeps = [("experiment.sweep", spec.experiment.sweep)]
    sweeps += [(f"controls[{i}].sweep", c.sweep) for i, c in enumerate(spec.controls)]
    sweeps += [(f"profiles.{n}.sweep", p.sweep) for n, p in spec.profiles.items()]
    checks.sweeps(sweeps, problems)
    for field, msg in checks.nonfinite([r.model_dump() for r in spec.reference], "reference"):
        problems.add(field, msg)
    rules = _parse_rules(problems, "expect", spec.expect)
    control_rules = tuple(
        _parse_rules(problems, f"controls[{i}].expect", c.expect) if c.expect is not None
        else rules for i, c in enumerate(spec.controls)
    )
    try:
        kind = get_experiment(spec.experiment.kind)
    except KeyError as exc:
        problems.add("experiment.kind", str(exc.args[0]))
        raise SpecError.collect(problems.items) from None
    columns = checks.available_columns(kind.columns, [s for _, s in sweeps])
    checks.rule_columns(rules, "expect", columns, problems)
    for i, control in enumerate(spec.controls):
        if control.expect is not None:
            checks.rule_columns(control_rules[i], f"controls[{i}].expect", columns, problems)
    _check_grids(problems, spec, kind.name, path)
    for field, message in control_problems(spec):
        problems.add(field, message)
    problems.raise_if_any()
    task = LoadedTask(spec, path, spec_hash(spec), rules, control_rules)
    if not allow_expensive:
        for profile in PROFILES:
            for field, message in cost.over_budget(resolve(task, profile), profile):
                problems.add(field, message)
    problems.raise_if_any()
    return task


def resolve(task: LoadedTask, profile: str, seeds: int | None = None,
            seed_offset: int | None = None) -> list[ResolvedArm]:
    """The claim's arm and one arm per control, with ``profile`` applied (a profile the spec
    does not define runs the base experiment), ``seeds`` overriding the seed count and
    ``seed_offset`` the first seed (default: the published block, ``experiment.seed_offset``)."""
    spec, exp = task.spec, task.spec.experiment
    prof = spec.profiles.get(profile, ProfileSpec())  # type: ignore[call-overload]
    params, sweep = _apply(exp.params, exp.sweep, prof.params, prof.sweep, task.path,
                           f"profiles.{profile}.params", f"profiles.{profile}.sweep")
    n = seeds or prof.seeds or exp.seeds
    offset = exp.seed_offset if seed_offset is None else seed_offset
    seed_list = tuple(range(offset, offset + n))
    arms = [ResolvedArm("claim", exp.kind, params, sweep, seed_list, task.rules, None)]
    for control, rules in zip(spec.controls, task.control_rules, strict=True):
        c_params, c_sweep = _apply(params, sweep, control.override, control.sweep, task.path,
                                   f"controls.{control.name}.override",
                                   f"controls.{control.name}.sweep")
        ids = rule_ids(control.expect if control.expect is not None else spec.expect)
        arms.append(ResolvedArm(control.name, exp.kind, c_params, c_sweep, seed_list, rules,
                                control.verdict, control.breaks,
                                ids.index(control.breaks) if control.breaks else None))
    return arms


def task_paths(root: Path | None = None) -> list[Path]:
    root = root or tasks_dir()
    return sorted(p for p in root.rglob("*.yaml") if p.is_file())


def load_tasks(root: Path | None = None, *, allow_expensive: bool = False
               ) -> dict[str, LoadedTask]:
    """Every task under ``tasks/``, by id; SpecError with the problems of every malformed file."""
    tasks: dict[str, LoadedTask] = {}
    found: list[SpecError] = []
    for path in task_paths(root):
        try:
            task = load_task(path, allow_expensive=allow_expensive)
        except SpecError as exc:
            found.extend(exc.problems)
            continue
        if task.spec.id in tasks:
            found.append(SpecError(path, "id", f"duplicate id {task.spec.id!r} (also in "
                                               f"{tasks[task.spec.id].path})"))
            continue
        tasks[task.spec.id] = task
    if found:
        raise SpecError.collect(found)
    return tasks


def load_suite(path: Path | str) -> SuiteSpec:
    """Read and validate one suite file; SpecError carries every problem."""
    path = Path(path)
    data = _read(path)
    try:
        return SuiteSpec.model_validate(data)
    except ValidationError as exc:
        problems = Problems(path)
        problems.pydantic(exc)
        raise SpecError.collect(problems.items) from None


def find_suite(name: str) -> Path | None:
    path = suites_dir() / f"{name}.yaml"
    return path if path.is_file() else None


def task_id_of(path: Path, root: Path | None = None) -> str:
    return path.relative_to(root or tasks_dir()).with_suffix("").as_posix()


def suite_tasks(suite: SuiteSpec, path: Path | str, root: Path | None = None) -> list[Path]:
    """Task files a suite names (ids or glob patterns over ids), in its order, without those
    its ``exclude`` patterns name; a pattern that matches no file is a SpecError."""
    root = root or tasks_dir()
    by_id = {task_id_of(p, root): p for p in task_paths(root)}
    chosen: list[Path] = []
    problems = Problems(path)
    for i, pattern in enumerate(suite.tasks):
        matches = sorted(t for t in by_id if fnmatch.fnmatchcase(t, pattern))
        if not matches:
            problems.add(f"tasks[{i}]", f"no task id matches {short(pattern)}")
        chosen.extend(by_id[m] for m in matches if by_id[m] not in chosen)
    left_out: set[Path] = set()
    for i, pattern in enumerate(suite.exclude):
        matches = [t for t in by_id if fnmatch.fnmatchcase(t, pattern)]
        if not matches:
            problems.add(f"exclude[{i}]", f"no task id matches {short(pattern)}")
        left_out.update(by_id[m] for m in matches)
    problems.raise_if_any()
    return [p for p in chosen if p not in left_out]
