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
  of each run, written as SVG text (it changes with every run, so it is drawn on every build).

The other figures are ``matplotlib.figure.Figure`` objects written as SVG (no pyplot, no global
backend): a strange table never stops the site, it gets a note.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np
import orjson
import pandas as pd

from theorybench.numbers import fmt

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: a rebuild that draws
    from matplotlib.figure import Figure  # none (most of them) saves its half second

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
    """What a rule's ``figure`` function gets: the record's measurement ``table`` (read by
    ``load`` on first use: a figure taken from the previous build needs no table), the ``rule``
    (fields, each arm's result, row filters), the ``arms`` present in the table, the paper's
    ``references``, the ``path`` of the SVG to write and the rule's ``index`` on the page. The
    function may set ``caption`` and ``rankings``. The requests of one page share ``means``
    (:meth:`group_means` by arm, column and row filter)."""

    load: Callable[[], pd.DataFrame]
    rule: PlotRule
    arms: list[str]
    references: list[Reference]
    path: Path
    index: int = 0
    caption: str = ""
    rankings: list[Ranking] = field(default_factory=list)
    draw_once: Callable[[Any, Drawing], str | None] | None = None
    means: dict[str, pd.DataFrame] = field(default_factory=dict)

    @cached_property
    def table(self) -> pd.DataFrame:
        """The record's measurement table, read on first use."""
        return self.load()

    def group_means(self, arm: str, by: str) -> pd.DataFrame:
        """:func:`group_means` of the rule's metric per ``by`` in ``arm``'s rows, computed once
        per page."""
        where = self.rule.where_of(arm)
        key = orjson.dumps([arm, self.rule.metric, by, where], option=orjson.OPT_SORT_KEYS,
                           default=str).decode()
        if key not in self.means:
            self.means[key] = group_means(self.table, arm, self.rule.metric, by, where)
        return self.means[key]

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
    deviation over seeds and the number of seeds, best (lowest) first. Summed in plain Python
    (``math.fsum``, exact): the tables are small and every build ranks them again."""
    rows = _filtered(table, arm, where, metric, by)
    y = _numeric(rows[metric])
    kept = (y.notna() & rows["seed"].notna()).to_numpy()
    per_seed: dict[str, dict[Any, list[float]]] = {}
    for value, seed, v, keep in zip(rows[by].astype(str).tolist(), rows["seed"].tolist(),
                                    y.tolist(), kept, strict=True):
        if keep:
            per_seed.setdefault(value, {}).setdefault(seed, []).append(float(v))
    stats = []
    for value in sorted(per_seed):
        means = [math.fsum(ys) / len(ys) for ys in per_seed[value].values()]
        mean = math.fsum(means) / len(means)
        spread = math.fsum((m - mean) ** 2 for m in means) / max(len(means) - 1, 1)
        stats.append((value, mean, math.sqrt(spread), len(means)))
    stats.sort(key=lambda s: s[1])  # stable: equal means keep the order of their values
    return pd.DataFrame(stats, columns=["by", "mean", "sd", "n"])


def _palette(arms: list[str]) -> dict[str, Any]:
    return {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")


def _style() -> Any:
    """The site's figure settings (:data:`RC`); matplotlib is imported here, on the first
    figure a build draws."""
    import matplotlib

    return matplotlib.rc_context(RC)


def _new_axes(width: float = 6.0, height: float = 3.6) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _level_ticks(ax: Any, levels: np.ndarray) -> None:
    """Ticks at the swept levels, labelled as plain numbers (never mathtext)."""
    ticks = np.unique(levels)
    if len(ticks) > 12:
        ticks = ticks[np.linspace(0, len(ticks) - 1, 12).round().astype(int)]
    from matplotlib.ticker import NullLocator

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
    with _style():
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
            from matplotlib.ticker import FuncFormatter

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
            means = request.group_means(arm, by)
        except LookupError:
            continue
        rows = [{"rank": j + 1, "value": by_value, "mean": fmt(mean), "sd": fmt(sd), "n": int(n)}
                for j, (by_value, mean, sd, n) in enumerate(zip(
                    *(means[c] for c in ("by", "mean", "sd", "n")), strict=True))]
        rankings.append(Ranking(arm, by, rule.metric, rows))
    return rankings


def ranking_figure(request: FigureRequest, by: str, highlight: set[str]) -> str | None:
    """Mean metric per value of ``by``, one panel per arm; the values in ``highlight`` blue."""
    rule, panels = request.rule, {}
    for arm in request.arms:
        means = request.group_means(arm, by)
        if not means.empty:
            panels[arm] = means
    if not panels:
        return f"no figure: no finite values of {rule.metric!r} per {by!r}"
    with _style():
        from matplotlib.figure import Figure

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
    with _style():
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
    dotted lines mark verdict changes. Written as SVG text, without matplotlib: a page's history
    changes with every run, so this figure is drawn on every build and must be cheap."""
    if runs.empty:
        return "no runs"
    try:
        svg = _history_svg(runs)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
    except Exception as exc:  # noqa: BLE001  (history is informative; never fail the site)
        return failure_note(exc)
    return None


HISTORY_WIDTH, HISTORY_HEIGHT, HISTORY_LEFT, HISTORY_RIGHT = 600, 380, 66, 590
CHANGE_LINE = 'stroke="#c62828" stroke-width="1" stroke-dasharray="2,2"'
OTHER_VERDICT = "#757575"


def _history_svg(runs: pd.DataFrame) -> str:
    """The history figure's SVG: effects with intervals above, wall times below, both against
    the run's position; a few runs labelled by start time and commit."""
    n = len(runs)
    step = (HISTORY_RIGHT - HISTORY_LEFT) / n
    xs = [HISTORY_LEFT + (i + 0.5) * step for i in range(n)]
    effect, low, high, wall = (runs[c].to_numpy(dtype=float)
                               for c in ("effect", "ci_low", "ci_high", "wall_s"))
    verdicts = [str(v) for v in runs["verdict"]]
    changes = [HISTORY_LEFT + i * step for i in np.flatnonzero(runs["changed"].to_numpy(bool))]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{HISTORY_WIDTH}" '
           f'height="{HISTORY_HEIGHT}" viewBox="0 0 {HISTORY_WIDTH} {HISTORY_HEIGHT}" '
           'font-family="DejaVu Sans, sans-serif" font-size="9">',
           f'<rect width="{HISTORY_WIDTH}" height="{HISTORY_HEIGHT}" fill="white"/>',
           f'<text x="{HISTORY_LEFT}" y="14">verdict, effect and wall time per run '
           "(dotted: verdict changed)</text>"]
    shown = [v for v in VERDICT_COLOR if v in verdicts]
    shown += sorted({v for v in verdicts if v not in VERDICT_COLOR})
    x = HISTORY_LEFT
    for verdict in shown:
        out.append(f'<circle cx="{x + 4}" cy="27" r="3.5" fill="{_verdict_color(verdict)}"/>'
                   f'<text x="{x + 11}" y="30" font-size="8">{escape(verdict)}</text>')
        x += 20 + 5.5 * len(verdict)
    y = _panel(out, 40, 170, np.concatenate([effect, low, high]), "effect (first rule)",
               changes)
    for xi, e, lo, hi, verdict in zip(xs, effect, low, high, verdicts, strict=True):
        if not (np.isnan(lo) or np.isnan(hi)):
            out.append(f'<line x1="{xi:.1f}" x2="{xi:.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" '
                       'stroke="#999999" stroke-width="1.5"/>')
        if np.isfinite(e):
            out.append(f'<circle class="run" cx="{xi:.1f}" cy="{y(e):.1f}" r="3.5" '
                       f'fill="{_verdict_color(verdict)}"/>')
    y = _panel(out, 222, 110, np.append(wall, 0.0), "wall time (s)", changes)
    points = [(xi, y(w)) for xi, w in zip(xs, wall, strict=True) if np.isfinite(w)]
    out.append('<polyline fill="none" stroke="#4d4d4d" stroke-width="1.2" points="'
               + " ".join(f"{px:.1f},{py:.1f}" for px, py in points) + '"/>')
    out += [f'<rect x="{px - 2.5:.1f}" y="{py - 2.5:.1f}" width="5" height="5" fill="#4d4d4d"/>'
            for px, py in points]
    every = max(1, n // 6)
    for i in range(0, n, every):
        out.append(f'<text x="{xs[i]:.1f}" y="346" font-size="7" text-anchor="middle">'
                   f"{escape(str(runs['started'].iat[i])[:16])}"
                   f'<tspan x="{xs[i]:.1f}" dy="9">{escape(str(runs["commit"].iat[i]))}</tspan>'
                   "</text>")
    out.append("</svg>\n")
    return "\n".join(out)


def _verdict_color(verdict: str) -> str:
    return VERDICT_COLOR.get(verdict, OTHER_VERDICT)


def _panel(out: list[str], top: float, height: float, values: np.ndarray, label: str,
           changes: list[float]) -> Callable[[float], float]:
    """Append a panel's frame, grid, y ticks, label and change lines to ``out``; returns the
    map from a value to its y coordinate (clipped to the panel)."""
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    bottom = top + height

    def y(value: float) -> float:
        return bottom - (min(max(value, lo), hi) - lo) / (hi - lo) * height

    width = HISTORY_RIGHT - HISTORY_LEFT
    for tick in _ticks(lo, hi):
        out.append(f'<line x1="{HISTORY_LEFT}" x2="{HISTORY_RIGHT}" y1="{y(tick):.1f}" '
                   f'y2="{y(tick):.1f}" stroke="#e0e0e0"/><text x="{HISTORY_LEFT - 4}" '
                   f'y="{y(tick) + 3:.1f}" text-anchor="end">{tick:g}</text>')
    out.append(f'<rect x="{HISTORY_LEFT}" y="{top}" width="{width}" height="{height}" '
               'fill="none" stroke="#333333"/>')
    middle = top + height / 2
    out.append(f'<text x="14" y="{middle}" text-anchor="middle" '
               f'transform="rotate(-90 14 {middle})">{escape(label)}</text>')
    out += [f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" {CHANGE_LINE}/>'
            for x in changes]
    return y


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values between ``lo`` and ``hi``, about ``count`` of them."""
    raw = (hi - lo) / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step) + 1)]
