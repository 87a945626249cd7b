"""Figures of the leaderboard, drawn from a record's measurement table and rule results.

* ``trend``, ``peak``, ``rate``, ``degree`` rules: the rule's metric (rows filtered by the rule's
  ``where``) against its ``along`` column, one line per arm (the claim and each control): the
  mean over seeds of each seed's mean at a level, with a band of ± one standard deviation over
  seeds. The prediction is drawn on top: an arrow for a trend's direction, the claimed window
  for a peak, and the paper's reference values when the spec has them.
* ``compare`` rules (the methods ranking): the metric's mean per value of the rule's ``by``
  column, per arm, sorted, with ± one standard deviation over seeds of the per-seed means.
* ``threshold`` and ``probability`` rules: each arm's per-seed values (or the fraction with its
  interval) against the claimed value; the rule's estimate is drawn on the metric's axis only
  when it is in the metric's units (mean form without the sign-test fallback, or probability).
* History: the effect with its interval, coloured by verdict, and the wall time of each run.

Each ``*_figure`` function writes one SVG and returns ``None``, or returns a note saying why it
drew nothing (a missing column, a non-numeric sweep): a strange table never stops the site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402

VERDICT_COLOR = {
    "holds": "#2e7d32", "refuted": "#c62828", "inconclusive": "#f9a825", "error": "#6a1b9a",
}
CURVE_RULES = ("trend", "peak", "rate", "degree")
RC = {
    "text.parse_math": False,  # spec strings are text, never mathtext
    "svg.hashsalt": "theorybench",
    "svg.fonttype": "none",  # text stays text: smaller files, faster to write
    "font.size": 9,
}


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
    colors = sns.color_palette("deep", max(len(arms), 1))
    return dict(zip(arms, colors, strict=False))


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)


def _new_axes(width: float = 6.0, height: float = 3.6) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.grid(True, alpha=0.3)
    return fig, ax


def _draw_prediction(ax: Any, rule: PlotRule) -> None:
    if rule.kind == "trend":
        up = rule.fields.get("direction") == "increasing"
        ax.annotate("", xy=(0.98, 0.96 if up else 0.78), xytext=(0.84, 0.78 if up else 0.96),
                    xycoords="axes fraction",
                    arrowprops={"arrowstyle": "-|>", "color": "0.45", "lw": 1.5})
        ax.plot([], [], color="0.45", lw=1.5,
                label=f"predicted: {rule.fields.get('direction')} in {rule.fields.get('along')} "
                      f"({'↗' if up else '↘'}, top right)")
    elif rule.kind == "peak" and rule.fields.get("window"):
        lo, hi = (float(v) for v in rule.fields["window"])
        ax.axvspan(lo, hi, color="0.6", alpha=0.18, label="predicted peak window")
    elif rule.kind == "rate":
        ax.plot([], [], ls="", label="predicted: geometric decay (straight on a log axis)")
    elif rule.kind == "degree":
        ax.plot([], [], ls="", label=f"claimed: degree ≤ {rule.fields.get('max_degree')}")


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


def curve_figure(table: pd.DataFrame, rule: PlotRule, arms: list[str],
                 references: list[Reference], path: Path) -> str | None:
    """The measured curve of each arm along the rule's ``along`` column, with seed bands."""
    along = rule.fields.get("along")
    if not along:
        return "no figure: the rule names no `along` column"
    curves = {}
    for arm in arms:
        curve = level_curve(table, arm, rule.metric, str(along), rule.where_of(arm))
        if not curve.empty:
            curves[arm] = curve
    if not curves:
        return f"no figure: no finite numeric values of {rule.metric!r} along {along!r}"
    levels = np.concatenate([c["level"].to_numpy() for c in curves.values()])
    colors = _palette(arms)
    with plt.rc_context(RC):
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
        if positive and (rule.fields.get("log_along") or levels.max() / levels.min() >= 20):
            ax.set_xscale("log")
        means = np.concatenate([c["mean"].to_numpy() for c in curves.values()])
        if rule.kind == "rate" and (means > 0).all():
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        _level_ticks(ax, levels)
        _draw_prediction(ax, rule)
        _draw_references(ax, references, rule.metric, str(along))
        where = _where_text(rule.where)
        ax.set_xlabel(str(along))
        ax.set_ylabel(rule.metric + (f"  ({where})" if where else ""))
        ax.set_title(rule.label or f"{rule.kind}: {rule.metric} along {along}", loc="left")
        labels = ax.get_legend_handles_labels()[1]
        wide = max(map(len, labels), default=0) > 45
        fig.legend(fontsize=7, loc="outside lower center", ncols=1 if wide else 2, frameon=False)
        _save(fig, path)
    return None


def ranking_figure(table: pd.DataFrame, rule: PlotRule, arms: list[str],
                   path: Path) -> str | None:
    """Mean metric per value of the rule's ``by`` column, one panel per arm."""
    by = rule.fields.get("by")
    if not by:
        return "no figure: the rule names no `by` column"
    panels = {}
    for arm in arms:
        means = group_means(table, arm, rule.metric, str(by), rule.where_of(arm))
        if not means.empty:
            panels[arm] = means
    if not panels:
        return f"no figure: no finite values of {rule.metric!r} per {by!r}"
    highlight = {str(rule.fields.get("a")), str(rule.fields.get("b"))}
    with plt.rc_context(RC):
        height = 0.5 + 0.32 * max(len(m) for m in panels.values())
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.5, height + 1.0),
                                 layout="constrained", squeeze=False)
        for ax, (arm, means) in zip(axes[0], panels.items(), strict=True):
            colors = ["#1565c0" if v in highlight else "0.65" for v in means["by"]]
            ax.barh(means["by"], means["mean"], xerr=means["sd"], color=colors, alpha=0.85,
                    error_kw={"lw": 1, "capsize": 2})
            ax.invert_yaxis()
            ax.grid(True, axis="x", alpha=0.3)
            ax.set_title("claim" if arm == "claim" else f"control: {arm}", loc="left")
            ax.set_xlabel(rule.metric)
        axes[0][0].set_ylabel(str(by))
        fig.suptitle(rule.label or f"{rule.metric} per {by}", x=0.01, ha="left", fontsize=9)
        _save(fig, path)
    return None


def effect_on_metric_axis(rule_kind: str, result: dict) -> bool:
    """Whether a result's effect and interval are in the metric's units: always for
    ``probability`` (a fraction of trials, the axis itself); for ``threshold`` only in the mean
    form when the interval did not fall back to the sign test. A seeds-form threshold reports the
    fraction of violating seeds and a sign-test fallback the fraction of seeds on the claimed
    side, which do not belong on the metric's axis."""
    if rule_kind == "probability":
        return True
    detail = result.get("detail") or {}
    return (detail.get("form", "mean") == "mean"
            and not str(detail.get("interval", "")).startswith("sign test"))


def values_figure(rule: PlotRule, arms: list[str], path: Path) -> str | None:
    """Per arm: the rule's per-seed values (threshold) or the measured fraction with its
    interval (probability), against the claimed value. The effect and its interval are drawn
    on the metric's axis only when they are in its units (see ``effect_on_metric_axis``);
    otherwise the arm's label gives the fraction and its interval."""
    value = rule.fields.get("value")
    arms = [a for a in arms if rule.arm_results.get(a)]
    colors = _palette(arms)
    drawn = False
    labels: list[str] = []
    with plt.rc_context(RC):
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
                if effect_on_metric_axis(rule.kind, result):
                    ax.errorbar([effect], [i], xerr=[[effect - low], [high - effect]], fmt="D",
                                color="black", ms=5, capsize=3)
                    drawn = True
                else:
                    what = ("violating" if (result.get("detail") or {}).get("form") == "seeds"
                            else "agreeing")
                    label += f"\n{what} {effect:.2g} [{low:.2g}, {high:.2g}]"
            labels.append(label)
        if not drawn:
            plt.close(fig)
            return "no figure: no arm has a result for this rule"
        if value is not None:
            ax.axvline(float(value), color="#c62828", ls="--", lw=1.2,
                       label=f"claimed {rule.fields.get('op', '')} {value}")
            ax.legend(fontsize=7, frameon=False, loc="best")
        ax.set_yticks(range(len(arms)), labels)
        ax.set_ylim(len(arms) - 0.5, -0.5)
        on_axis = any(effect_on_metric_axis(rule.kind, rule.arm_results[a]) for a in arms)
        ax.set_xlabel(rule.metric + (" (fraction of trials)" if rule.kind == "probability"
                                     else " (per seed; ◆ mean with interval)" if on_axis
                                     else " (per seed)"))
        ax.set_title(rule.label or f"{rule.kind}: {rule.metric}", loc="left")
        _save(fig, path)
    return None


def rule_figure(table: pd.DataFrame, rule: PlotRule, arms: list[str],
                references: list[Reference], path: Path) -> str | None:
    """The figure for one rule; a note instead of a figure when the table cannot give one."""
    try:
        if rule.kind == "compare":
            return ranking_figure(table, rule, arms, path)
        if rule.kind in ("threshold", "probability"):
            return values_figure(rule, arms, path)
        if rule.fields.get("along"):
            return curve_figure(table, rule, arms, references, path)
        return f"no figure for a {rule.kind!r} rule"
    except Exception as exc:  # noqa: BLE001  (an odd table gets a note, never a crashed site)
        plt.close("all")
        return f"no figure: {type(exc).__name__}: {exc}"


def history_figure(runs: pd.DataFrame, path: Path) -> str | None:
    """Effect (with interval, coloured by verdict) and wall time of each run, oldest first;
    dotted lines mark verdict changes."""
    if runs.empty:
        return "no runs"
    try:
        with plt.rc_context(RC):
            fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 3.8), sharex=True,
                                              layout="constrained")
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
        plt.close("all")
        return f"no figure: {type(exc).__name__}: {exc}"
    return None
