"""Build the static leaderboard site from run records (and task specs, when present).

The site is a pure function of ``results/runs/``: the records give every number (verdicts,
effects, intervals, measurement tables, timings, provenance) and each rule's fields and
description; the spec store (``results/runs/specs/``, :mod:`theorybench.specstore`) gives the
words of the spec each record ran (claim text, source, controls' descriptions, the paper's
reference values) and the adoption log which record is published. When ``tasks/`` holds a spec
that loads, its words and its ``expected_verdict`` are used instead (they are the current ones).
No rule is known here by name: each rule's registry entry describes it and draws its figure.
Nothing is measured here.

Pages (all static, relative links, no file fetched from the network):

* ``index.html``: one row per (task, profile) from its latest record: family, title, verdict
  (and *unvalidated* when a control missed its required verdict), effect with interval, control
  status, wall time, a strip of past verdicts; sortable and filterable (``static/site.js``).
* ``claims/<family>/<claim>.<profile>.html``: the claim and its source, the rules in words, a
  figure per rule (drawn by the rule, ``figures.py``) with the tables it adds, controls, the
  paper's reference values, verdict and wall-time history, per-cell timings, provenance, and
  downloads: the record (JSON) and its measurement table (CSV) under ``data/``.
* ``history.html``: every run with verdict changes highlighted, and wall time per task across
  commits and machines.

Jinja2 autoescaping is on for every template, so text from specs and records renders as text.
A record that does not load is skipped with a note. A record's task id names a spec only when it
is a well-formed id whose file lies under the tasks folder.

The site is written to a staging folder ``.<site>.build-*`` next to it; ``<site>`` itself is a
symbolic link to the current build, replaced in one atomic ``os.replace`` of a new link, so a
reader sees the old site or the new one, never none, and an interrupted build leaves the
previous site as it was. Staging folders of interrupted builds are removed by the next build.
An existing folder is replaced only when it holds a theorybench site.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pandas as pd

from theorybench.leaderboard import figures
from theorybench.leaderboard.history import (
    by_series,
    cell_history,
    cell_timings,
    controls_ok,
    latest_records,
    runs_frame,
    wall_time_by_commit,
)
from theorybench.leaderboard.summaries import Summaries
from theorybench.numbers import as_number, fmt
from theorybench.paths import runs_dir, site_dir, tasks_dir
from theorybench.registry import rules
from theorybench.results import TASK_ID_PATTERN, load_records, load_table
from theorybench.spec import LoadedTask, SpecError, load_task, task_paths
from theorybench.specstore import adoptions, describe, load_snapshot, rule_entry, snapshot
from theorybench.status import (
    control_ok,
    headline,
    profile_summary,
    record_purpose,
    replication_of,
    statuses,
)
from theorybench.threads import available_cores

MARKER = ".theorybench-site"
MEASURED = "_measured"  # what a claim page noted of its record's table, in the record's summary
HERE = Path(__file__).resolve().parent
STRIP_LENGTH = 12
DEFAULT_PROFILE = "smoke"
CALIBRATION_TABLE = HERE.parent / "verdict" / "calibration_table.json"
CALIBRATION_COLUMNS = ("rule", "seeds", "levels", "noise", "threshold", "rate_holds", "mc_se",
                       "nominal", "power", "power_effect")


@lru_cache(maxsize=1)
def figure_code() -> str:
    """sha256 of the code that draws figures: ``figures.py`` and every rule's figure module (a
    cached figure is redrawn when either changes)."""
    digest = hashlib.sha256((HERE / "figures.py").read_bytes())
    for name, entry in sorted(rules().items()):
        source = inspect.getsourcefile(entry.figure)
        digest.update(name.encode() + (Path(source).read_bytes() if source else b""))
    return digest.hexdigest()


class SiteError(RuntimeError):
    """The site cannot be written where it was asked to go."""


@dataclass
class Site:
    """What :func:`build_site` wrote."""

    path: Path
    n_records: int
    pages: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.path / "index.html"


class FigureCache:
    """Reuses a figure of the previous build when its inputs are unchanged, and draws the
    others side by side.

    A figure's key is the hash of the figure code and of the figure's inputs (what was measured
    (:func:`measured_content`), rule fields, references), so an unchanged key means an unchanged
    figure. Keys are kept in the site's ``figures.json``. What a page's rules drew (figures,
    notes, captions, ranking tables) is kept in ``blocks.json`` under the hash of everything it
    was drawn from, so an unchanged page reuses it without reading its measurement table
    (:meth:`saved_blocks`). With ``jobs > 1`` a figure to draw is
    only noted while the pages render (taken to succeed); :meth:`flush` then draws them all in
    ``jobs`` processes and says whether one came out as a note instead (the pages are then
    rendered again, with every figure's outcome known).
    """

    def __init__(self, previous: Path, staging: Path, jobs: int = 1) -> None:
        self.previous, self.staging, self.jobs = previous, staging, jobs
        try:
            self.old = json.loads((previous / "figures.json").read_text())
        except (OSError, ValueError):
            self.old = {}
        try:
            self.old_blocks = orjson.loads((previous / "blocks.json").read_bytes())
        except (OSError, ValueError):
            self.old_blocks = {}
        self.new: dict[str, str] = {}
        self.new_blocks: dict[str, Any] = {}
        self.pending: dict[str, Callable[[Path], str | None]] = {}
        self.drawn: dict[str, str | None] = {}  # rel -> note, of figures drawn by flush

    def draw(self, rel: str, inputs: Any, draw: Callable[[Path], str | None]) -> str | None:
        """Copy ``rel`` from the previous site when its key matches, else ``draw(path)`` (now,
        or at :meth:`flush`); returns the drawing's note (``None`` when there is a figure)."""
        payload = json.dumps(inputs, sort_keys=True, default=str)
        key = hashlib.sha256(f"{figure_code()}\n{payload}".encode()).hexdigest()
        target, old = self.staging / rel, self.previous / rel
        if self.old.get(rel) == key and old.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            _reuse(old, target)
            note = None
        elif rel in self.drawn:
            note = self.drawn[rel]
        elif self.jobs > 1:
            self.pending[rel] = draw
            note = None
        else:
            note = draw(target)
        if note is None:
            self.new[rel] = key
        return note

    def flush(self) -> bool:
        """Draw the noted figures in ``jobs`` forked processes; True when one of them gave a
        note instead of a figure."""
        global _DRAWINGS
        if not self.pending:
            return False
        _DRAWINGS = [(draw, self.staging / rel) for rel, draw in self.pending.items()]
        try:
            with multiprocessing.get_context("fork").Pool(self.jobs) as pool:
                notes = pool.map(_draw_noted, range(len(_DRAWINGS)), chunksize=1)
        finally:
            _DRAWINGS = []
        self.drawn.update(zip(self.pending, notes, strict=True))
        self.pending = {}
        for rel, note in self.drawn.items():
            if note is not None:
                self.new.pop(rel, None)
        return any(note is not None for note in notes)

    def saved_blocks(self, page: str, inputs: Any) -> list[dict[str, Any]] | None:
        """What the previous build's ``page`` rules drew from the same ``inputs``, with their
        figures put in place; None when the inputs changed or a figure is missing."""
        key = hashlib.sha256(orjson.dumps([figure_code(), inputs], option=orjson.OPT_SORT_KEYS
                                          | orjson.OPT_SERIALIZE_NUMPY, default=str)).hexdigest()
        saved = self.old_blocks.get(page)
        self.new_blocks[page] = {"key": key}
        if not isinstance(saved, dict) or saved.get("key") != key:
            return None
        files = saved.get("files") or []
        if not all(rel in self.old and (self.previous / rel).is_file() for rel in files):
            return None
        for rel in files:
            (self.staging / rel).parent.mkdir(parents=True, exist_ok=True)
            _reuse(self.previous / rel, self.staging / rel)
            self.new[rel] = self.old[rel]
        self.new_blocks[page] = saved
        return list(saved["blocks"])

    def keep_blocks(self, page: str, blocks: list[dict[str, Any]], files: list[str]) -> None:
        """Keep what ``page``'s rules drew (after :meth:`saved_blocks` found nothing)."""
        self.new_blocks[page] |= {"blocks": blocks, "files": files}

    def save(self) -> None:
        (self.staging / "figures.json").write_text(json.dumps(self.new, indent=0, sort_keys=True))
        (self.staging / "blocks.json").write_bytes(orjson.dumps(
            {page: entry for page, entry in self.new_blocks.items() if "blocks" in entry},
            option=orjson.OPT_SERIALIZE_NUMPY, default=str))


def _reuse(old: Path, target: Path) -> None:
    """Put the previous build's file ``old`` at ``target``: a hard link (the previous build is
    removed after the swap, so nothing is copied), or a copy where links cannot be made. A file
    already at ``target`` (a page rendered again) is replaced, never written through."""
    target.unlink(missing_ok=True)
    try:
        os.link(old, target)
    except OSError:
        shutil.copyfile(old, target)


_DRAWINGS: list[tuple[Callable[[Path], str | None], Path]] = []
"""The figures :meth:`FigureCache.flush` hands to its forked processes (by index)."""


def _draw_noted(i: int) -> str | None:
    """Draw figure ``i`` of :data:`_DRAWINGS` in a pool process; a failure becomes the page's
    note, as it does when the figure is drawn in place."""
    draw, path = _DRAWINGS[i]
    try:
        return draw(path)
    except Exception as exc:  # noqa: BLE001  (an odd table gets a note, never a crashed site)
        return figures.failure_note(exc)


# -- page contexts -------------------------------------------------------------------------------

@dataclass
class ArmRule:
    arm: str
    decision: str
    effect: str
    interval: str
    summary: str


@dataclass
class RuleBlock:
    index: int
    kind: str
    label: str
    words: str
    results: list[ArmRule]
    figure: str | None
    note: str | None
    rankings: list[figures.Ranking] = field(default_factory=list)
    same_as: int | None = None
    caption: str = ""


@dataclass
class ControlRow:
    name: str
    description: str
    override: str
    required: str
    verdict: str
    ok: bool
    summaries: list[str]
    error: str | None


@dataclass
class IndexRow:
    task_id: str
    profile: str
    family: str
    title: str
    tags: list[str]
    verdict: str
    validated: bool
    expected: str | None
    effect: float
    effect_text: str
    interval_text: str
    rule_text: str
    controls_ok: int
    controls_n: int
    wall_s: float
    started: str
    href: str
    strip: list[dict[str, Any]]
    statuses: list[str] = field(default_factory=list)
    out_of_regime: str | None = None
    decisions: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "_"


def page_path(task_id: str, profile: str) -> str:
    """Where a (task, profile)'s claim page goes, relative to the site root."""
    family, _, name = task_id.partition("/")
    return f"claims/{_slug(family)}/{_slug(name or family)}.{_slug(profile)}.html"


def _load_spec(tasks_root: Path, task_id: str,
               cache: dict[str, tuple[LoadedTask | None, str | None]]) -> tuple[LoadedTask | None,
                                                                                 str | None]:
    if task_id not in cache:
        path = tasks_root / f"{task_id}.yaml"
        inside = (re.fullmatch(TASK_ID_PATTERN, task_id) is not None
                  and path.resolve().is_relative_to(tasks_root.resolve()))
        if not inside:
            cache[task_id] = (None, "not a task id: no spec is read for it")
        elif not path.is_file():
            cache[task_id] = (None, f"no spec file {task_id}.yaml under {tasks_root}")
        else:
            try:
                cache[task_id] = (load_task(path), None)
            except SpecError as exc:
                cache[task_id] = (None, f"the spec does not load: {exc}")
    return cache[task_id]


@dataclass
class SpecView:
    """The words of the spec a record ran: the current spec's snapshot when ``tasks/`` holds
    it (``task``), else the stored snapshot of the record's spec hash; ``fields`` is ``None``
    when neither is there."""

    fields: dict[str, Any] | None
    task: LoadedTask | None = None
    note: str | None = None
    stored: bool = False


def _view(tasks_root: Path, records_dir: Path, record: dict[str, Any],
          specs: dict[str, tuple[LoadedTask | None, str | None]],
          snapshots: dict[str, dict[str, Any]]) -> SpecView:
    task_id = str(record["task_id"])
    task, note = _load_spec(tasks_root, task_id, specs) if tasks_root.is_dir() else (None, None)
    if task is not None:
        key = f"task:{task.sha256}"
        if key not in snapshots:
            snapshots[key] = snapshot(task)
        return SpecView(snapshots[key], task)
    sha = str(record.get("spec_sha256"))
    if sha not in snapshots:
        snapshots[sha] = load_snapshot(records_dir, sha) or {}
    if snapshots[sha]:
        return SpecView(snapshots[sha], None, None, stored=True)
    return SpecView(None, None, note or "no spec file and no stored snapshot of the record's "
                                        "spec: the words below come from the record alone")


def _without_words(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k != "description"}


def _rule_fields(view: SpecView, record: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                   list[str], str | None]:
    """The claim's rule fields and descriptions: each recorded rule's own ``spec`` and
    ``description``; for records without them the spec's rules when they match the record's
    (same kinds and metrics, in order), else the record's rule results (without ``where``)."""
    recorded = record["claim"].get("rules") or []
    specs = [r for r in (view.fields or {}).get("rules") or [] if isinstance(r, dict)]
    if recorded and all(isinstance(r.get("spec"), dict) for r in recorded):
        fields = [dict(r["spec"]) for r in recorded]
        words = [str(r.get("description") or describe(f)) for r, f in zip(recorded, fields,
                                                                            strict=True)]
        return fields, words, None
    same = len(specs) == len(recorded) and all(
        s.get("rule") == r.get("rule") and s.get("metric") == r.get("metric")
        for s, r in zip(specs, recorded, strict=True))
    if specs and (same or not recorded):
        return ([_without_words(s) for s in specs],
                [str(s.get("description") or describe(_without_words(s))) for s in specs], None)
    fields = [{"rule": r.get("rule"), "metric": r.get("metric"), **(r.get("detail") or {}),
               "where": {}} for r in recorded]
    return fields, [describe(f) for f in fields], (
        "the rules below are read from the record's results (the record carries no rule "
        "fields and the spec's rules differ or are missing); figures do not apply the rules' "
        "row filters")


def _control_where(view: SpecView, fields: dict[str, Any],
                   index: int) -> dict[str, dict[str, Any]]:
    """Row filters of controls whose own rule matching the claim's rule ``index`` (the same
    position, else the first of the same kind, metric and ``along``/``by``) filters differently
    from the claim's."""
    where = fields.get("where") or {}
    key = (fields.get("rule"), fields.get("metric"), fields.get("along"), fields.get("by"))
    found = {}
    for control in (view.fields or {}).get("controls") or []:
        dumped = [_without_words(r) for r in control.get("rules") or []]
        same = [r for r in dumped
                if (r.get("rule"), r.get("metric"), r.get("along"), r.get("by")) == key]
        at = dumped[index] if index < len(dumped) and dumped[index] in same else None
        match = at or (same[0] if same else None)
        if match is not None and (match.get("where") or {}) != where:
            found[str(control.get("name"))] = dict(match.get("where") or {})
    return found


def _arm_rule(arm: dict[str, Any], kind: str, metric: str, index: int) -> dict[str, Any] | None:
    """The arm's result for the claim's rule ``index``: the same position when it is the same
    kind of rule on the same metric (the claim, and controls that reuse the claim's rules), else
    the arm's first rule of that kind on that metric."""
    rules = arm.get("rules") or []
    if index < len(rules) and (arm.get("name") == "claim" or (
            rules[index].get("rule") == kind and rules[index].get("metric") == metric)):
        return rules[index]
    return next((r for r in rules if r.get("rule") == kind and r.get("metric") == metric), None)


def _arm_rule_row(arm_name: str, result: dict[str, Any]) -> ArmRule:
    return ArmRule(arm_name, str(result.get("decision")), fmt(result.get("effect")),
                   f"[{fmt(result.get('ci_low'))}, {fmt(result.get('ci_high'))}]",
                   str(result.get("summary", "")))


def _references(view: SpecView) -> list[figures.Reference]:
    return [figures.Reference(str(r.get("label")), r.get("value"), r.get("metric"),
                              dict(r.get("at") or {}))
            for r in (view.fields or {}).get("reference") or [] if isinstance(r, dict)]


def _table(record: dict[str, Any]) -> tuple[pd.DataFrame, str | None]:
    try:
        return load_table(record), None
    except (KeyError, TypeError, ValueError) as exc:
        return pd.DataFrame(), f"the record's measurement table cannot be read ({exc})"


def _code_hash(figure: Any) -> str:
    """The hash of the source file of a rule's figure function (part of a figure's cache key)."""
    try:
        return hashlib.sha256(Path(inspect.getsourcefile(figure) or "").read_bytes()).hexdigest()
    except (OSError, TypeError):
        return ""


def measured_content(record: dict[str, Any]) -> str:
    """sha256 of what a record's rule figures are drawn from: its measurement table and its
    arms' rule results. Two runs that measured the same numbers (a published block run again)
    share their figures, whatever their run ids."""
    content = [record.get("table"), record.get("claim"), record.get("controls")]
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS,
                                       default=str)).hexdigest()


class PageTable:
    """A claim page's measurement table. What the page shows of it (row count, arms, the hash
    of :func:`measured_content`, the note when it cannot be read) is noted in the record's
    summary once; the table itself, and the whole record with it, is read on first use (to draw
    a figure, rank values or write the CSV)."""

    def __init__(self, record: dict[str, Any], summaries: Summaries) -> None:
        self.record, self.summaries = record, summaries

    @cached_property
    def loaded(self) -> tuple[dict[str, Any], pd.DataFrame, str | None]:
        """The whole record, its table and the note when the table cannot be read."""
        whole = self.summaries.full(self.record)
        return (whole, *_table(whole))

    def table(self) -> pd.DataFrame:
        """The measurement table (read now when it was not yet)."""
        return self.loaded[1]

    @cached_property
    def facts(self) -> dict[str, Any]:
        """``rows``, ``empty``, ``arms``, ``content`` and ``note`` of the table: from the
        summary when a page noted them before, else from the table (and then noted)."""
        known = self.record.get(MEASURED)
        if isinstance(known, dict):
            return known
        whole, table, note = self.loaded
        facts = {"rows": len(table), "empty": table.empty, "note": note,
                 "arms": sorted(set(table["arm"].astype(str))) if "arm" in table.columns else [],
                 "content": measured_content(whole)}
        if whole is not self.record:  # the whole record was read
            self.summaries.note(self.record, MEASURED, facts)
        return facts


DRAWN = ("figure", "note", "same_as", "caption")
"""The fields of a rule block that come from drawing its figure (the rest come from the
record)."""


def _rule_blocks(record: dict[str, Any], view: SpecView, page: PageTable,
                 cache: FigureCache, folder: str, stem: str) -> tuple[list[RuleBlock],
                                                                   str | None]:
    """One block per claim rule: the rule in words, each arm's result, the figure the rule
    draws (shared by rules whose figures have the same key) and the tables it adds; taken from
    the previous build when what the page draws from is unchanged."""
    arms = [record["claim"], *(record.get("controls") or [])]
    content = page.facts["content"]
    arm_names = [str(a.get("name")) for a in arms]
    present = set(page.facts["arms"])
    plotted = [a for a in arm_names if a in present]
    fields_list, words, note = _rule_fields(view, record)
    references = _references(view)
    plots: list[tuple[figures.PlotRule, RuleBlock]] = []
    for i, (fields, text) in enumerate(zip(fields_list, words, strict=True)):
        kind, metric = str(fields.get("rule")), str(fields.get("metric"))
        results = {str(a.get("name")): r for a in arms
                   if (r := _arm_rule(a, kind, metric, i)) is not None}
        rule = figures.PlotRule(kind, metric, dict(fields.get("where") or {}), fields, results,
                                str(fields.get("label") or ""),
                                _control_where(view, fields, i) if note is None else {})
        plots.append((rule, RuleBlock(
            index=i, kind=kind, label=rule.label or f"{kind} on {metric}", words=text,
            results=[_arm_rule_row(a, results[a]) for a in arm_names if a in results],
            figure=None, note=None)))
    page_name = f"{folder}/{stem}"
    inputs = [content, plotted, [vars(r) for r in references],
              [[rule.fields, rule.arm_where, rule.label] for rule, _ in plots]]
    saved = cache.saved_blocks(page_name, inputs)
    if saved is not None:
        for (_, block), drawn_fields in zip(plots, saved, strict=True):
            for name in DRAWN:
                setattr(block, name, drawn_fields[name])
            block.rankings = [figures.Ranking(**r) for r in drawn_fields["rankings"]]
        return [block for _, block in plots], note
    drawn: dict[str, RuleBlock] = {}
    means: dict[str, pd.DataFrame] = {}  # shared by the page's rules
    for rule, block in plots:
        i = block.index
        figure = getattr(rule_entry(rule.kind), "figure", None)
        name = f"{stem}.rule{i}.svg"
        request = figures.FigureRequest(page.table, rule, plotted, references,
                                         cache.staging / folder / name, index=i, means=means)
        shared: list[RuleBlock] = []

        def once(key: Any, drawing: figures.Drawing, block: RuleBlock = block, name: str = name,
                 rule: figures.PlotRule = rule, shared: list[RuleBlock] = shared,
                 figure: Any = figure) -> str | None:
            text_key = json.dumps(key, sort_keys=True, default=str)
            if text_key in drawn:
                shared.append(drawn[text_key])
                return drawn[text_key].note
            drawn[text_key] = block
            inputs = [content, key, rule.fields, rule.arm_where, plotted,
                      [vars(r) for r in references], _code_hash(figure)]
            return cache.draw(f"{folder}/{name}", inputs, drawing)

        request.draw_once = once
        block.note = (figures.rule_figure(request, figure) if plotted
                      else "no figure: the record has no measurement table")
        block.caption = request.caption
        if shared:
            first = shared[0]
            block.figure, block.note, block.same_as = first.figure, first.note, first.index + 1
        else:
            block.figure = None if block.note else name
            block.rankings = request.rankings
    blocks = [block for _, block in plots]
    cache.keep_blocks(page_name,
                      [{**{name: getattr(b, name) for name in DRAWN},
                        "rankings": [vars(r) for r in b.rankings]} for b in blocks],
                      [f"{folder}/{b.figure}" for b in blocks if b.figure and b.same_as is None])
    return blocks, note


def _controls(record: dict[str, Any], view: SpecView) -> list[ControlRow]:
    specs = {str(c.get("name")): c for c in (view.fields or {}).get("controls") or []}
    rows = []
    for c in record.get("controls") or []:
        spec = specs.get(str(c.get("name")))
        required = c.get("required_verdict")
        rows.append(ControlRow(
            name=str(c.get("name")),
            description=str(spec.get("description") or "").strip() if spec else "",
            override=json.dumps(spec.get("override"), ensure_ascii=False) if spec else "",
            required=str(required) + (f" on rule {c['breaks']}" if c.get("breaks") else ""),
            verdict=str(c.get("verdict")) + (f" (rule {c['breaks']}: {c.get('breaks_decision')})"
                                             if c.get("breaks") else ""),
            ok=control_ok(c),
            summaries=[str(r.get("summary", "")) for r in c.get("rules") or []],
            error=c.get("error")))
    return rows


def _strip(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"verdict": r["verdict"], "changed": bool(r["changed"]),
             "title": f"{r['started']} · {r['commit']} · {r['status']}"
                      + (f" (was {r['previous_status']})" if r["changed"] else "")}
            for r in runs[-STRIP_LENGTH:]]


def _provenance(record: dict[str, Any], view: SpecView) -> list[tuple[str, str]]:
    env = record.get("environment") or {}
    spec_note = ""
    if view.task is not None:
        spec_note = (" (the current spec file is identical)" if view.task.sha256 ==
                     record.get("spec_sha256") else " (the spec file has changed since this run)")
    elif view.stored:
        spec_note = " (its words are read from the spec store beside the records)"
    items = [
        ("run id", str(record.get("run_id"))),
        ("suite", str(record.get("suite") or "-")),
        ("started", str(record.get("started"))),
        ("finished", str(record.get("finished"))),
        ("wall time", f"{fmt(record.get('wall_s'))} s"),
        ("seeds", ", ".join(map(str, record.get("seeds") or []))),
        ("device", str(record.get("device"))),
        ("spec", f"{_relative_spec(record.get('spec_path'))} v{record.get('task_version')}"),
        ("spec sha256", str(record.get("spec_sha256")) + spec_note),
        ("git commit", f"{env.get('git_commit') or 'none'}"
                       + (" (with uncommitted changes)" if env.get("git_dirty") else "")),
        ("record file", Path(str(record.get("_path", "-"))).name),
    ]
    items += [(k, str(v)) for k, v in env.items() if k not in ("git_commit", "git_dirty")]
    return items


def _relative_spec(path: Any) -> str:
    """A record's spec path relative to the task root (older records stored it absolute)."""
    parts = Path(str(path or "-")).parts
    return "/".join(parts[-2:])


def _downloads(record: dict[str, Any], page: PageTable, cache: FigureCache,
               replications: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Copy the record (and its replications' records) into ``data/`` and write its measurement
    table as CSV there (taken from the previous site when it has it: a record never changes);
    the links, relative to the site root."""
    data = cache.staging / "data"
    data.mkdir(exist_ok=True)
    links = []
    for rec, what in [(record, "record")] + [(r, "replication record") for r in replications]:
        source = Path(str(rec.get("_path", "")))
        if not source.is_file():
            continue
        target, previous = data / source.name, cache.previous / "data" / source.name
        if not target.exists() and previous.is_file():
            _reuse(previous, target)
        elif not target.exists():
            shutil.copyfile(source, target)
        links.append({"label": f"{what} {str(rec.get('run_id'))[:12]} (JSON)",
                      "href": f"data/{source.name}"})
        if rec is record and not page.facts["empty"]:
            csv = data / f"{source.stem}.table.csv"
            previous = cache.previous / "data" / csv.name
            if not csv.exists() and previous.is_file():
                _reuse(previous, csv)
            elif not csv.exists():
                page.table().to_csv(csv, index=False)
            links.append({"label": f"measurement table, {page.facts['rows']} rows (CSV)",
                          "href": f"data/{csv.name}"})
    return links


def _cell_rows(cells: pd.DataFrame) -> tuple[list[str], list[dict]]:
    columns, table = cell_history(cells)
    return columns, [{"arm": arm, "cell": cell, "point": point,
                      "values": [fmt(v) for v in values]}
                     for (arm, cell, point), values in table.items()]


# -- rendering -----------------------------------------------------------------------------------

def environment() -> jinja2.Environment:
    """The Jinja2 environment of the site's templates, autoescaping everything."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    env.filters["safe_url"] = lambda url: url if re.match(r"^https?://", str(url or "")) else None
    return env


def _unique(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v})


def _claim_page(env: jinja2.Environment, cache: FigureCache, record: dict[str, Any],
                summaries: Summaries, view: SpecView, history: pd.DataFrame,
                history_rows: list[dict[str, Any]], cells: pd.DataFrame, profiles: list[str],
                common: dict[str, Any], page_statuses: list[str] | None = None,
                replicas: list[dict[str, Any]] | None = None) -> str:
    """Write the claim page of ``record`` (a summary of :meth:`Summaries.read`) with its series'
    ``history`` (runs, also as ``history_rows``) and ``cells`` (cell timings); its path,
    relative to the site root."""
    task_id, profile = str(record["task_id"]), str(record["profile"])
    rel = page_path(task_id, profile)
    target = cache.staging / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    folder, stem = str(Path(rel).parent), Path(rel).name.removesuffix(".html")
    page = PageTable(record, summaries)
    blocks, rules_note = _rule_blocks(record, view, page, cache, folder, stem)
    history_name = f"{stem}.history.svg"
    history_note = figures.history_figure(history, cache.staging / folder / history_name)
    cell_columns, cell_rows = _cell_rows(cells)
    html = env.get_template("claim.html.j2").render(
        **common, root="../../", record=record, spec=view.fields, spec_note=view.note,
        table_note=page.facts["note"], rules_note=rules_note, blocks=blocks,
        controls=_controls(record, view), history=history_rows[::-1],
        history_figure=None if history_note else history_name, history_note=history_note,
        cell_columns=cell_columns, cell_rows=cell_rows, provenance=_provenance(record, view),
        others=[(p, "../../" + page_path(task_id, p)) for p in profiles if p != profile],
        n_rows=page.facts["rows"], statuses=page_statuses or [],
        replications=_replication_rows(record, replicas or []),
        downloads=_downloads(record, page, cache, replicas or []),
        controls_all_ok=controls_ok(record))
    target.write_text(html)
    return rel


def _index_row(record: dict[str, Any], history: list[dict[str, Any]], href: str,
               row_statuses: list[str]) -> IndexRow:
    rules = record["claim"].get("rules") or []
    first = headline(record)
    controls = record.get("controls") or []
    ok = sum(1 for c in controls if control_ok(c))
    effect = first.get("effect")
    rule_text = f"{first.get('rule')} on {first.get('metric')}" if first else ""
    if len(rules) > 1:
        rule_text += f" (+{len(rules) - 1} rule{'s' if len(rules) > 2 else ''})"
    return IndexRow(
        task_id=str(record["task_id"]), profile=str(record["profile"]),
        family=str(record.get("family")), title=str(record.get("title")),
        tags=[str(t) for t in record.get("tags") or []], verdict=str(record.get("verdict")),
        validated=bool(record.get("validated")), expected=record.get("expected_verdict"),
        effect=as_number(effect), effect_text=fmt(effect),
        interval_text=f"[{fmt(first.get('ci_low'))}, {fmt(first.get('ci_high'))}]" if first
        else "", rule_text=rule_text, controls_ok=ok, controls_n=len(controls),
        wall_s=as_number(record.get("wall_s")), started=str(record.get("started")),
        href=href, strip=_strip(history),
        statuses=row_statuses, out_of_regime=record.get("out_of_regime"),
        decisions=sum(len(a.get("rules") or []) for a in [record["claim"], *controls]))


def _unmeasured_row(spec: dict[str, Any], profile: str) -> IndexRow:
    """A (task, profile) of a spec (current or stored) with no record at all."""
    nan = float("nan")
    task_id = str(spec.get("id"))
    return IndexRow(
        task_id=task_id, profile=profile, family=str(spec.get("family") or
                                                       task_id.split("/")[0]),
        title=str(spec.get("title")), tags=[str(t) for t in spec.get("tags") or []],
        verdict="unmeasured", validated=False, expected=None, effect=nan, effect_text="-",
        interval_text="", rule_text="", controls_ok=0,
        controls_n=len(spec.get("controls") or []), wall_s=nan, started="", href="", strip=[],
        statuses=["unmeasured"], out_of_regime=spec.get("out_of_regime"))


def _published(view: SpecView, task_id: str, profile: str, by_id: dict[str, dict[str, Any]],
               adopted: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any] | None:
    """The record published for ``profile``: the one the current spec names when ``tasks/``
    holds it, else the latest adoption in the log; ``None`` when it is missing or measured
    something else."""
    if view.task is not None:
        entry = view.task.spec.expected_verdict.get(profile)  # type: ignore[call-overload]
        run_id = entry.record if entry is not None else None
    else:
        run_id = (adopted.get((task_id, profile)) or {}).get("record")
    rec = by_id.get(str(run_id)) if run_id is not None else None
    if rec is None or rec.get("task_id") != task_id or rec.get("profile") != profile:
        return None
    return rec


def _replicas(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The replication records of each (task, profile), oldest first."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if record_purpose(r) == "replication":
            out.setdefault((str(r.get("task_id")), str(r.get("profile"))), []).append(r)
    return out


def _replication_rows(record: dict[str, Any], reps: list[dict[str, Any]]) -> list[dict]:
    """The replication records ``reps``, newest first, for the claim page."""
    return [{"started": str(r.get("started")), "seed_offset": r.get("seed_offset"),
             "n_seeds": len(r.get("seeds") or []), "verdict": str(r.get("verdict")),
             "controls_ok": controls_ok(r),
             "same_spec": r.get("spec_sha256") == record.get("spec_sha256"),
             "same": (r.get("verdict") == record.get("verdict")
                      and controls_ok(r) == controls_ok(record))}
            for r in reversed(reps)]


def calibration_rows(path: Path | None = None) -> list[dict[str, Any]] | None:
    """The rows of the rules' calibration table (``verdict/calibration_table.json``), each
    with ``over``: the measured rate of ``holds`` exceeds nominal by more than two Monte-Carlo
    standard errors; ``None`` when there is no table."""
    try:
        data = json.loads((path or CALIBRATION_TABLE).read_text())
    except (OSError, ValueError):
        return None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        return None
    out = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        rate, se, nominal = (as_number(row.get(k)) for k in ("rate_holds", "mc_se", "nominal"))
        over = rate > nominal + 2 * (se if se == se else 0.0)
        out.append({"cells": [fmt(row.get(c)) if not isinstance(row.get(c), str)
                              else row.get(c) for c in CALIBRATION_COLUMNS], "over": over})
    return out


def _staging_prefixes(out: Path) -> tuple[str, ...]:
    """Names of the folders a build of ``out`` leaves next to it (``new``/``old``: earlier
    versions of the swap)."""
    return tuple(f".{out.name}.{kind}-" for kind in ("build", "link", "new", "old"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _remove_stale(out: Path, keep: Path | None) -> None:
    """Remove staging folders and links of earlier builds of ``out`` except ``keep`` and those
    of builds still running (their names carry the builder's process id)."""
    for path in out.parent.iterdir():
        if not path.name.startswith(_staging_prefixes(out)) or path == keep:
            continue
        pid = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _current(out: Path) -> Path | None:
    """The build folder ``out`` links to, when it is a link to one."""
    if not out.is_symlink():
        return None
    target = out.parent / os.readlink(out)
    return target if target.name.startswith(f".{out.name}.build-") else None


def _replace(staging: Path, out: Path) -> None:
    """Make ``out`` a link to ``staging`` in one atomic step, then remove the previous build."""
    previous = _current(out)
    link = out.parent / f".{out.name}.link-{os.getpid()}-{staging.name.rsplit('-', 1)[-1]}"
    try:
        os.symlink(staging.name, link, target_is_directory=True)
    except OSError:  # no symbolic links here (some Windows set-ups): two renames
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(trash / out.name)
        staging.rename(out)
        return
    if out.is_dir() and not out.is_symlink():  # a site of the two-rename layout: once
        out.rename(Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent)) / "site")
    os.replace(link, out)
    if previous is not None and previous != staging:
        shutil.rmtree(previous, ignore_errors=True)


def _check_target(out: Path) -> None:
    if out.is_symlink():
        if _current(out) is None:
            raise SiteError(f"{out} is a link to something that is not a theorybench site")
        return
    if out.exists() and (not out.is_dir() or
                         (any(out.iterdir()) and not (out / MARKER).exists())):
        raise SiteError(f"{out} exists and is not a theorybench site (no {MARKER} file); "
                        "choose an empty or new folder")


def _read_records(records_dir: Path, out: Path,
                  skipped: list[str]) -> tuple[Summaries, list[dict[str, Any]]]:
    """The records' summaries (:class:`Summaries` of the site ``out``), read with Python's
    cyclic garbage collector paused and then frozen (:func:`gc.freeze`, until
    :func:`build_site` ends; when the caller had frozen objects itself, as the ``theorybench``
    command does, until the process ends): hundreds of thousands of small objects, all kept,
    in a large heap (in ``theorybench run``, torch and every plug-in), that the collections
    the build triggers would otherwise scan again and again, to free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        summaries = Summaries(out)
        records = load_records(records_dir, skipped, read=summaries.read)
        gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return summaries, records


def build_site(records_dir: Path | None = None, out_dir: Path | None = None,
               tasks_root: Path | None = None) -> Site:
    """Render the site from every record under ``records_dir`` (default ``results/runs``)
    into ``out_dir`` (default ``results/site``), with words from the specs under
    ``tasks_root`` (default ``tasks/``) when there, else from the spec store."""
    skipped: list[str] = []
    records_dir = records_dir or runs_dir()
    given = Path(out_dir or site_dir())
    out = given.parent.resolve() / given.name  # the link itself, not where it points
    tasks_root = tasks_root or tasks_dir()
    _check_target(out)
    frozen_before = gc.get_freeze_count()  # a caller's frozen objects stay frozen
    try:
        summaries, records = _read_records(records_dir, out, skipped)
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out, keep=_current(out))
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-{os.getpid()}-",
                                        dir=out.parent))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the site from a web server's user
        jobs = available_cores() if "fork" in multiprocessing.get_all_start_methods() else 1
        cache = FigureCache(out, staging, jobs)
        try:
            pages, notes = _render(records, summaries, cache, tasks_root, records_dir)
            if cache.flush():  # a figure became a note: the pages that show it say so
                pages, notes = _render(records, summaries, cache, tasks_root, records_dir)
            summaries.save(staging)
            _replace(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        if not frozen_before:
            gc.unfreeze()
    return Site(out, len(records), pages, skipped + notes)


def _render(records: list[dict[str, Any]], summaries: Summaries, cache: FigureCache,
            tasks_root: Path, records_dir: Path) -> tuple[list[str], list[str]]:
    """Write every page from ``records`` (read by ``summaries``); the pages' paths and the notes
    on what could not be shown."""
    env, staging = environment(), cache.staging
    # Rows, pages and history come from runs of the published block; pilots and replications
    # only feed the replication status.
    all_records, records = records, [r for r in records if record_purpose(r) == "published"]
    replicas_of = _replicas(all_records)
    by_id = {str(r.get("run_id")): r for r in records}
    runs, cells = runs_frame(records), cell_timings(records)
    histories, cells_of = by_series(runs), by_series(cells)
    run_rows = runs.to_dict("records")
    rows_of: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in run_rows:
        rows_of.setdefault((row["task_id"], row["profile"]), []).append(row)
    latest = latest_records(records)
    profiles_of: dict[str, list[str]] = {}
    for task_id, profile in latest:
        profiles_of.setdefault(task_id, []).append(profile)
    as_of = max((str(r.get("finished") or r.get("started")) for r in records), default="-")
    calibration = calibration_rows()
    common = {"as_of": as_of, "n_records": len(all_records),
              "has_calibration": calibration is not None}
    specs: dict[str, tuple[LoadedTask | None, str | None]] = {}
    snapshots: dict[str, dict[str, Any]] = {}
    adopted = adoptions(records_dir)
    pages, notes, rows = [], [], []
    shown: dict[str, list[dict[str, Any]]] = {}
    views: dict[str, SpecView] = {}
    for (task_id, profile), latest_record in latest.items():
        view = _view(tasks_root, records_dir, latest_record, specs, snapshots)
        if view.note:
            notes.append(f"{task_id}: {view.note}")
        published = _published(view, task_id, profile, by_id, adopted)
        record = published or latest_record
        if record is not latest_record:
            view = _view(tasks_root, records_dir, record, specs, snapshots)
        views[task_id] = view
        key = (task_id, profile)
        replicas = replicas_of.get(key, [])
        replication = replication_of(record, replicas) if published else None
        row_statuses = statuses(record, published is not None, replication)
        rel = _claim_page(env, cache, record, summaries, view, histories[key], rows_of[key],
                          cells_of.get(key, cells.iloc[:0]), profiles_of[task_id], common,
                          row_statuses, replicas)
        pages.append(rel)
        rows.append(_index_row(record, rows_of[key], rel, row_statuses))
        if published is not None:
            shown.setdefault(profile, []).append(record)
    listed = set(latest)
    for path in task_paths(tasks_root) if tasks_root.is_dir() else []:
        task, _ = _load_spec(tasks_root, path.relative_to(tasks_root).with_suffix("").as_posix(),
                             specs)
        if task is None:
            continue
        for profile in task.spec.profiles:
            if (task.spec.id, profile) not in listed:
                listed.add((task.spec.id, profile))
                rows.append(_unmeasured_row(snapshot(task), profile))
    for task_id, view in views.items():  # no spec file: the profiles of the stored spec
        for profile in (view.fields or {}).get("profiles") or {} if view.stored else ():
            if (task_id, str(profile)) not in listed:
                listed.add((task_id, str(profile)))
                rows.append(_unmeasured_row(view.fields or {}, str(profile)))
    rows.sort(key=lambda r: (r.task_id, r.profile))
    profiles = _unique(r.profile for r in rows)
    summaries = [profile_summary(p, shown.get(p, [])) for p in profiles]
    default_profile = DEFAULT_PROFILE if DEFAULT_PROFILE in profiles else ""
    (staging / "index.html").write_text(env.get_template("index.html.j2").render(
        **common, root="", rows=rows, profiles=profiles, default_profile=default_profile,
        families=_unique(r.family for r in rows), tags=_unique(t for r in rows for t in r.tags),
        verdicts=["holds", "refuted", "inconclusive", "error", "control missed", "unmeasured",
                  "out of regime", "validated", "replicated on a fresh seed block ✓",
                  "replicated on a fresh seed block ✗"],
        summaries=summaries))
    if calibration is not None:
        (staging / "calibration.html").write_text(env.get_template("calibration.html.j2").render(
            **common, root="", columns=CALIBRATION_COLUMNS, rows=calibration))
    by_commit = wall_time_by_commit(runs)
    (staging / "history.html").write_text(env.get_template("history.html.j2").render(
        **common, root="", runs=run_rows[::-1],
        changes=[r for r in reversed(run_rows) if r["changed"]],
        commit_columns=[str(c) for c in by_commit.columns],
        commit_rows=[{"task_id": t, "profile": p, "values": [fmt(v) for v in values]}
                     for (t, p), values in zip(by_commit.index, by_commit.to_numpy(),
                                               strict=True)],
        profiles=_unique(runs["profile"].astype(str)),
        pages={(t, p): page_path(t, p) for t, p in latest}))
    shutil.copytree(HERE / "static", staging / "static", dirs_exist_ok=True)
    cache.save()
    (staging / MARKER).write_text("built by `theorybench publish`; replaced on each build\n")
    return pages, notes
