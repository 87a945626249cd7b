"""Figures of the leaderboard, drawn from a record's measurement table and rule results.

Each decision rule draws its own figure: its registry entry's ``figure(request)`` receives a
:class:`FigureRequest` (the table, the rule, the arms, the paper's reference values, where to
write) and returns ``None`` when it drew, or a note saying why not. It may set the request's
``caption`` and ``rankings`` (tables shown under the figure), and draws through
:meth:`FigureRequest.draw` with a key naming what the figure shows: rules of one page whose
figures have the same key share one figure. The helpers here know no rule by name:

* :func:`curve_figure`: the metric (rows filtered by the rule's ``where``) along a column, one
  line per arm (the claim and each control): the mean over seeds of each seed's mean at a level,
  with a band of ± one standard deviation over seeds; the rule's prediction and the paper's
  reference values on top;
* :func:`ranking_figure` and :func:`ranking_tables`: the metric's mean per value of a column,
  per arm, sorted, with ± one standard deviation over seeds of the per-seed means;
* :func:`values_figure`: each arm's per-seed values, and the rule's estimate with its interval
  when the rule says it is in the metric's units, against the claimed value;
* :func:`history_figure`: the effect with its interval, coloured by verdict, and the wall time
  of each run.

Figures are ``matplotlib.figure.Figure`` objects written as SVG (no pyplot, no global backend):
a strange table never stops the site, it gets a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from theorybench.numbers import fmt

VERDICT_COLOR = {
    "holds": "#2e7d32", "refuted": "#c62828", "inconclusive": "#f9a825", "error": "#6a1b9a",
}
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD")  # seaborn's "deep"
RC = {
    "text.parse_math": False,  # spec strings are text, never mathtext
    "svg.hashsalt": "theorybench",
    "svg.fonttype": "none",  # text stays text: smaller files, faster to write
    "font.size": 9,
}
CURVE_CAPTION = ("Lines: mean over seeds; bands: ± one standard deviation over seeds; one line "
                 "per arm (the claim and its controls); grey: the prediction.")
RANKING_CAPTION = ("Mean of each seed's mean per value, ± one standard deviation over seeds; "
                   "blue: the values the rule compares.")
VALUES_CAPTION = ("Dots: per-seed values; diamond: the rule's estimate with its interval, drawn "
                  "only when it is in the metric's units; otherwise the estimate is given beside "
                  "the arm; dashed: the claimed value.")

@dataclass
class PlotRule:
    """What a figure needs to know about one rule: its kind, metric, row filter, its other
    fields (``along``, ``by``, ``window``, ``value``...), each arm's result dict, and the row
    filter of arms whose own rule filters differently (a control measured at initialization)."""

    kind: str
    metric: str
    where: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    arm_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    label: str = ""
    arm_where: dict[str, dict[str, Any]] = field(default_factory=dict)

    def where_of(self, arm: str) -> dict[str, Any]:
        return self.arm_where.get(arm, self.where)


def _where_text(where: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items())


@dataclass
class Reference:
    label: str
    value: Any
    metric: str | None
    at: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ranking:
    """A table of one arm's mean metric per value of a column, best (lowest) first."""

    arm: str
    by: str
    metric: str
    rows: list[dict[str, Any]]


Drawing = Callable[[Path], "str | None"]


@dataclass
class FigureRequest:
    """What a rule's ``figure`` function gets: the record's measurement ``table``, the ``rule``
    (fields, each arm's result, row filters), the ``arms`` present in the table, the paper's
    ``references``, the ``path`` of the SVG to write and the rule's ``index`` on the page. The
    function may set ``caption`` and ``rankings``."""

    table: pd.DataFrame
    rule: PlotRule
    arms: list[str]
    references: list[Reference]
    path: Path
    index: int = 0
    caption: str = ""
    rankings: list[Ranking] = field(default_factory=list)
    draw_once: Callable[[Any, Drawing], str | None] | None = None

    def rows_key(self, *names: str) -> list[Any]:
        """A figure key of the rows a figure reads: the metric, the row filters and the rule's
        fields ``names`` (a figure drawn from these alone may be shared)."""
        rule = self.rule
        return [rule.metric, rule.where, rule.arm_where, *(rule.fields.get(n) for n in names)]

    def draw(self, key: Any, drawing: Drawing) -> str | None:
        """``drawing(path)``, or the figure an earlier rule of the page drew under the same
        ``key`` (the build supplies ``draw_once``); the note, ``None`` when there is a figure."""
        if self.draw_once is None:
            return drawing(self.path)
        return self.draw_once(key, drawing)


def _filtered(table: pd.DataFrame, arm: str, where: dict[str, Any], *needed: str) -> pd.DataFrame:
    missing = [c for c in ("arm", "seed", *needed) if c not in table.columns]
    if missing:
        raise LookupError(f"the table has no column {missing}")
    rows = table[table["arm"] == arm]
    for col, value in where.items():
        if col not in rows.columns:
            raise LookupError(f"the table has no column {col!r} (the rule's where)")
        rows = rows[rows[col].isin(value if isinstance(value, list) else [value])]
    return rows


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").replace([np.inf, -np.inf], np.nan)


def level_curve(table: pd.DataFrame, arm: str, metric: str, along: str,
                where: dict[str, Any]) -> pd.DataFrame:
    """Per level of ``along``: mean over seeds of each seed's mean ``metric``, the standard
    deviation over seeds and the number of seeds (columns ``level, mean, sd, n``)."""
    rows = _filtered(table, arm, where, metric, along)
    frame = pd.DataFrame({"seed": rows["seed"], "level": _numeric(rows[along]),
                          "y": _numeric(rows[metric])}).dropna()
    per_seed = frame.groupby(["level", "seed"])["y"].mean()
    grouped = per_seed.groupby(level="level")
    curve = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1),
                          "n": grouped.count()}).reset_index()
    return curve.fillna({"sd": 0.0})


def group_means(table: pd.DataFrame, arm: str, metric: str, by: str,
                where: dict[str, Any]) -> pd.DataFrame:
    """Per value of ``by``: mean over seeds of each seed's mean ``metric``, the standard
    deviation over seeds and the number of seeds, best (lowest) first."""
    rows = _filtered(table, arm, where, metric, by)
    frame = pd.DataFrame({"seed": rows["seed"], "by": rows[by].astype(str),
                          "y": _numeric(rows[metric])}).dropna()
    per_seed = frame.groupby(["by", "seed"])["y"].mean()
    grouped = per_seed.groupby(level="by")
    means = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1),
                          "n": grouped.count()}).reset_index()
    return means.fillna({"sd": 0.0}).sort_values("mean", kind="stable").reset_index(drop=True)


def _palette(arms: list[str]) -> dict[str, Any]:
    return {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")


def _new_axes(width: float = 6.0, height: float = 3.6) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _level_ticks(ax: Any, levels: np.ndarray) -> None:
    """Ticks at the swept levels, labelled as plain numbers (never mathtext)."""
    ticks = np.unique(levels)
    if len(ticks) > 12:
        ticks = ticks[np.linspace(0, len(ticks) - 1, 12).round().astype(int)]
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])


def _draw_references(ax: Any, references: list[Reference], metric: str, along: str) -> None:
    for ref in references:
        try:
            value = float(ref.value)
        except (TypeError, ValueError):
            continue
        if ref.metric == along:
            ax.axvline(value, color="black", ls=":", lw=1.2, label=f"paper: {ref.label}")
        elif ref.metric == metric and along in ref.at:
            ax.plot([float(ref.at[along])], [value], marker="*", ms=12, color="black", ls="",
                    label=f"paper: {ref.label}")
        elif ref.metric == metric:
            ax.axhline(value, color="black", ls=":", lw=1.2, label=f"paper: {ref.label}")


def along_figure(request: FigureRequest, key: list[Any],
                 prediction: Callable[[Any], None] | None = None, **options: bool) -> str | None:
    """The figure of a rule that reads its metric along the spec's ``along`` column: the curve of
    each arm (:func:`curve_figure` with ``options``), shared by the page's rules with the same
    ``key`` and rows; a note when the rule names no ``along``."""
    along = request.rule.fields.get("along")
    if not along:
        return "no figure: the rule names no `along` column"
    request.caption = CURVE_CAPTION
    return request.draw([*key, *request.rows_key("along")],
                        lambda _path: curve_figure(request, str(along), prediction=prediction,
                                                   **options))


def curve_figure(request: FigureRequest, along: str, *,
                 prediction: Callable[[Any], None] | None = None, log_x: bool = False,
                 log_y: bool = False) -> str | None:
    """The measured curve of each arm along ``along``, with seed bands; ``prediction(ax)``
    draws the rule's prediction; the x axis is logarithmic when ``log_x`` or the levels span
    a factor of 20 or more, the y axis when ``log_y`` and every mean is positive."""
    rule, arms = request.rule, request.arms
    curves = {}
    for arm in arms:
        curve = level_curve(request.table, arm, rule.metric, along, rule.where_of(arm))
        if not curve.empty:
            curves[arm] = curve
    if not curves:
        return f"no figure: no finite numeric values of {rule.metric!r} along {along!r}"
    levels = np.concatenate([c["level"].to_numpy() for c in curves.values()])
    colors = _palette(arms)
    with matplotlib.rc_context(RC):
        fig, ax = _new_axes()
        for arm, curve in curves.items():
            x, y, sd = curve["level"], curve["mean"], curve["sd"]
            name = "claim" if arm == "claim" else f"control: {arm}"
            if rule.where_of(arm) != rule.where:
                name += f" [{_where_text(rule.where_of(arm))}]"
            ax.plot(x, y, marker="o", ms=4, color=colors[arm], label=f"{name} (mean of seeds)",
                    lw=2 if arm == "claim" else 1.4)
            ax.fill_between(x, y - sd, y + sd, color=colors[arm], alpha=0.18, lw=0)
        positive = bool((levels > 0).all())
        if positive and (log_x or levels.max() / levels.min() >= 20):
            ax.set_xscale("log")
        means = np.concatenate([c["mean"].to_numpy() for c in curves.values()])
        if log_y and (means > 0).all():
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        _level_ticks(ax, levels)
        if prediction is not None:
            prediction(ax)
        _draw_references(ax, request.references, rule.metric, along)
        where = _where_text(rule.where)
        ax.set_xlabel(along)
        ax.set_ylabel(rule.metric + (f"  ({where})" if where else ""))
        ax.set_title(rule.label or f"{rule.kind}: {rule.metric} along {along}", loc="left")
        labels = ax.get_legend_handles_labels()[1]
        wide = max(map(len, labels), default=0) > 45
        fig.legend(fontsize=7, loc="outside lower center", ncols=1 if wide else 2, frameon=False)
        _save(fig, request.path)
    return None


def ranking_tables(request: FigureRequest, by: str) -> list[Ranking]:
    """Per arm: every value of ``by`` with its mean metric, best (lowest) first."""
    rule, rankings = request.rule, []
    for arm in request.arms:
        try:
            means = group_means(request.table, arm, rule.metric, by, rule.where_of(arm))
        except LookupError:
            continue
        rows = [{"rank": j + 1, "value": r.by, "mean": fmt(r.mean), "sd": fmt(r.sd),
                 "n": int(r.n)} for j, r in enumerate(means.itertuples())]
        rankings.append(Ranking(arm, by, rule.metric, rows))
    return rankings


def ranking_figure(request: FigureRequest, by: str, highlight: set[str]) -> str | None:
    """Mean metric per value of ``by``, one panel per arm; the values in ``highlight`` blue."""
    rule, panels = request.rule, {}
    for arm in request.arms:
        means = group_means(request.table, arm, rule.metric, by, rule.where_of(arm))
        if not means.empty:
            panels[arm] = means
    if not panels:
        return f"no figure: no finite values of {rule.metric!r} per {by!r}"
    with matplotlib.rc_context(RC):
        height = 0.5 + 0.32 * max(len(m) for m in panels.values())
        fig = Figure(figsize=(3.2 * len(panels) + 1.5, height + 1.0), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, (arm, means) in zip(axes[0], panels.items(), strict=True):
            colors = ["#1565c0" if v in highlight else "0.65" for v in means["by"]]
            ax.barh(means["by"], means["mean"], xerr=means["sd"], color=colors, alpha=0.85,
                    error_kw={"lw": 1, "capsize": 2})
            ax.invert_yaxis()
            ax.grid(True, axis="x", alpha=0.3)
            ax.set_title("claim" if arm == "claim" else f"control: {arm}", loc="left")
            ax.set_xlabel(rule.metric)
        axes[0][0].set_ylabel(by)
        fig.suptitle(rule.label or f"{rule.metric} per {by}", x=0.01, ha="left", fontsize=9)
        _save(fig, request.path)
    return None


def values_figure(request: FigureRequest, *, on_axis: Callable[[dict[str, Any]], bool],
                  off_axis_label: Callable[[dict[str, Any]], str], axis_note: str,
                  claimed: str = "") -> str | None:
    """Per arm: the rule's per-seed values (``detail.seed_value``) and, when ``on_axis(result)``,
    its estimate with its interval, against the claimed ``value`` field; otherwise
    ``off_axis_label(result)`` names the estimate beside the arm. ``axis_note`` follows the
    metric's name on the x axis."""
    rule = request.rule
    value = rule.fields.get("value")
    arms = [a for a in request.arms if rule.arm_results.get(a)]
    colors = _palette(arms)
    drawn = False
    labels: list[str] = []
    with matplotlib.rc_context(RC):
        fig, ax = _new_axes(5.0, 0.9 + 0.45 * len(arms))
        for i, arm in enumerate(arms):
            result = rule.arm_results[arm]
            label = "claim" if arm == "claim" else arm
            seed_values = (result.get("detail") or {}).get("seed_value")
            if seed_values:
                ys = np.array([float("nan") if v is None else float(v) for v in seed_values])
                ax.plot(ys, np.full(len(ys), i), "o", color=colors[arm], alpha=0.55, ms=4)
                drawn = True
            effect = result.get("effect")
            low, high = result.get("ci_low"), result.get("ci_high")
            if effect is not None and low is not None and high is not None:
                effect, low, high = float(effect), float(low), float(high)
                if on_axis(result):
                    ax.errorbar([effect], [i], xerr=[[effect - low], [high - effect]], fmt="D",
                                color="black", ms=5, capsize=3)
                    drawn = True
                else:
                    label += f"\n{off_axis_label(result)} {effect:.2g} [{low:.2g}, {high:.2g}]"
            labels.append(label)
        if not drawn:
            return "no figure: no arm has a result for this rule"
        if value is not None:
            ax.axvline(float(value), color="#c62828", ls="--", lw=1.2,
                       label=claimed or f"claimed {value}")
            ax.legend(fontsize=7, frameon=False, loc="best")
        ax.set_yticks(range(len(arms)), labels)
        ax.set_ylim(len(arms) - 0.5, -0.5)
        ax.set_xlabel(f"{rule.metric} {axis_note}".strip())
        ax.set_title(rule.label or f"{rule.kind}: {rule.metric}", loc="left")
        _save(fig, request.path)
    return None


def failure_note(exc: Exception) -> str:
    """The note a page shows where drawing a figure failed."""
    return f"no figure: {type(exc).__name__}: {exc}"


def rule_figure(request: FigureRequest, figure: Callable[[FigureRequest], str | None] | None
                ) -> str | None:
    """The rule's ``figure(request)``; a note instead of a figure when the rule draws none or
    the table cannot give one."""
    if figure is None:
        return f"no figure for a {request.rule.kind!r} rule"
    try:
        return figure(request)
    except Exception as exc:  # noqa: BLE001  (an odd table gets a note, never a crashed site)
        return failure_note(exc)


def history_figure(runs: pd.DataFrame, path: Path) -> str | None:
    """Effect (with interval, coloured by verdict) and wall time of each run, oldest first;
    dotted lines mark verdict changes."""
    if runs.empty:
        return "no runs"
    try:
        with matplotlib.rc_context(RC):
            fig = Figure(figsize=(6.0, 3.8))  # fixed margins: cheaper than a layout engine,
            fig.subplots_adjust(left=0.11, right=0.98, top=0.92, bottom=0.16, hspace=0.08)
            top, bottom = fig.subplots(2, 1, sharex=True)  # and the tight box keeps labels in
            x = np.arange(len(runs))
            effect = runs["effect"].to_numpy(dtype=float)
            low = runs["ci_low"].to_numpy(dtype=float)
            high = runs["ci_high"].to_numpy(dtype=float)
            top.vlines(x, low, high, color="0.6", lw=1.5)
            for verdict, color in VERDICT_COLOR.items():
                chosen = (runs["verdict"] == verdict).to_numpy()
                if chosen.any():
                    top.plot(x[chosen], effect[chosen], "o", color=color, label=verdict, ms=6)
            top.set_ylabel("effect (first rule)")
            top.legend(fontsize=7, frameon=False, ncols=4, loc="best")
            bottom.plot(x, runs["wall_s"].to_numpy(dtype=float), "s-", color="0.3", ms=4)
            bottom.set_ylabel("wall time (s)")
            bottom.set_ylim(bottom=0)
            for ax in (top, bottom):
                ax.grid(True, alpha=0.3)
                for i in x[runs["changed"].to_numpy(dtype=bool)]:
                    ax.axvline(i - 0.5, color="#c62828", ls=":", lw=1)
            labels = [f"{str(s)[:16]}\n{c}" for s, c in zip(runs["started"], runs["commit"],
                                                             strict=True)]
            step = max(1, len(x) // 6)
            bottom.set_xticks(x[::step], labels[::step], fontsize=7)
            top.set_title("verdict, effect and wall time per run (dotted: verdict changed)",
                          loc="left")
            _save(fig, path)
    except Exception as exc:  # noqa: BLE001  (history is informative; never fail the site)
        return failure_note(exc)
    return None
