"""Calibration of every decision rule at its own decision boundary, and its power.

For each registered rule, synthetic measurement tables are drawn whose true effect sits exactly
at the rule's threshold (the least favourable null: any true effect on the "does not hold" side
makes ``holds`` rarer). The measured one-sided rate of ``holds`` over ``n_draws`` such tables
must not exceed the nominal ``(1 − confidence) / 2`` beyond Monte-Carlo error (standard error
``√(r (1 − r) / n_draws)``). Beside it, the power: the rate of ``holds`` at a documented effect
on the claimed side.

Grid: 3, 4, 6, 8 and 16 seeds; 3, 5 and 10 levels where a rule sweeps (5, 7 and 10 for
``peak``, which needs interior levels; steps in the fit window for ``rate``); noise ``normal``
(N(0, 1)), ``t3`` (Student t₃ scaled to unit variance: heavy tails) and ``discrete`` (the metric
rounded to integers: many ties, all seeds often equal). ``probability`` draws 0/1 outcomes, 8
trajectories per seed.

Boundaries (the "threshold" column) and power effects:

* ``trend`` (``min_effect`` 0.3, 0.5): ``y_s(j) = β j + noise`` with β solved (common random
  numbers, bisection over 40 000 curves) so that ``P(τ_s > min_effect) = ½``, i.e. the median
  per-seed τ equals ``min_effect``. Power: β = 1 noise SD per level.
  ``monotone``: steps of 3 noise SDs except one flat step (``min_effect`` 0.5). Power: every
  step 3 noise SDs.
* ``threshold`` mean form (``value`` 0): ``y_s = noise`` (mean exactly 0). Power: mean 1 SD
  above. Seeds form (``violation_tolerance`` 0.25, 0.4, 0.5; ``op >``, ``value`` 0): each seed
  violates (``y_s ≤ 0``) with probability exactly the tolerance. Power: no seed violates.
* ``compare`` (``a_greater``, ``margin`` 0): arms ``μ_s + noise`` with a shared seed effect
  ``μ_s ~ N(0, 9)``, equal means. Power: ``a`` above ``b`` by √2 (one SD of the paired
  difference).
* ``rate`` (``op <``, ``value`` 0): ``ln y_s(k) = noise`` over ``k = 0..K−1``. Power: log-rate
  one SD of the per-seed slope below 0.
* ``probability`` (``value`` 0.5, 0.9, 0.95; both ``op``): outcomes Bernoulli(``value``).
  Power: ``p = value + ¾ (1 − value)`` for ``>``, ``p = value / 4`` for ``<``.
* ``degree`` (``max_degree`` 3, fit tolerance 0.01, ``violation_tolerance`` 0.25, 0.4, 0.5): each
  seed's curve on 9 points is a random cubic, plus a degree-4 term with probability exactly the
  tolerance; noise 10⁻⁴ of the curve's scale. Power: no seed above degree 3.
* ``peak`` (uniform grid, window = the middle level's cell): ``excess`` boundary: the peak
  exceeds the right end by exactly ``min_excess`` = 5 noise SDs, every other level 10 below;
  ``location`` boundary: the level right of the window ties with the peak (``min_excess`` 1).
  Power: the peak 13 noise SDs above every other level.

The rates are computed in bulk with the rules' own vectorised statistics (``trend_test``,
``side_test``, ``bound_test``, ``proportion_test``, ``bound_violations``, ``peak_test``); the
first ``rule_checks`` null draws of every row are also built as tables and passed through the
registered rule, and ``mismatches`` counts disagreements (there are none).

``python -m theorybench.verdict.calibration --write`` regenerates ``docs/calibration.md`` and
``calibration_table.json`` (next to this module) in a few minutes on one core.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from theorybench.verdict import evaluate, parse_rule
from theorybench.verdict.rules.degree import bound_violations, fitted_degrees
from theorybench.verdict.rules.peak import peak_test
from theorybench.verdict.rules.rate import log_slopes
from theorybench.verdict.rules.threshold import bound_test
from theorybench.verdict.rules.trend import trend_test
from theorybench.verdict.stats import kendall_tau, one_sided_level, proportion_test, side_test

CONFIDENCE = 0.95
SEEDS = (3, 4, 6, 8, 16)
LEVELS = (3, 5, 10)
PEAK_LEVELS = (5, 7, 10)
NOISES = ("normal", "t3", "discrete")
TRAJECTORIES = 8
TABLE_JSON = Path(__file__).with_name("calibration_table.json")
KEYS = (
    "rule", "variant", "seeds", "levels", "noise", "threshold", "rate_holds", "mc_se",
    "nominal", "power", "power_effect", "mismatches",
)


def noise(rng: np.random.Generator, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-variance noise; ``discrete`` is N(0, 1) to be rounded by :func:`observe`."""
    if kind == "t3":
        return rng.standard_t(3, size=shape) / np.sqrt(3.0)
    return rng.normal(size=shape)


def observe(values: np.ndarray, kind: str) -> np.ndarray:
    """The metric as measured: rounded to integers for ``discrete`` noise."""
    return np.round(values) if kind == "discrete" else values


def noise_quantile(kind: str, q: float) -> float:
    """``c`` with ``P(observe(c + noise) ≤ 0) = q``."""
    if kind == "t3":
        return -float(sps.t.ppf(q, 3)) / np.sqrt(3.0)
    if kind == "discrete":
        return 0.5 - float(sps.norm.ppf(q))
    return -float(sps.norm.ppf(q))


@dataclass(frozen=True)
class Case:
    """One row of the table: how to draw ``n`` replicates (null or effect), decide them in bulk,
    and turn one replicate into a table with the rule spec that judges it."""

    rule: str
    variant: str
    seeds: int
    levels: int | None
    noise: str
    threshold: float
    power_effect: str
    draw: Callable[[np.random.Generator, int, bool], np.ndarray]
    holds: Callable[[np.ndarray], np.ndarray]
    table: Callable[[np.ndarray], pd.DataFrame]
    spec: dict[str, Any]


def _grid_table(curves: np.ndarray, levels: np.ndarray) -> pd.DataFrame:
    n_seeds, n_levels = curves.shape
    return pd.DataFrame(
        {
            "seed": np.repeat(np.arange(n_seeds), n_levels),
            "x": np.tile(levels, n_seeds),
            "y": curves.ravel(),
        }
    )


def _seed_table(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"seed": np.arange(len(values)), "y": values})


@functools.cache
def _trend_slope(n_levels: int, kind: str, min_effect: float) -> float:
    """β with ``P(τ_s > min_effect) = ½`` for ``y(j) = observe(β j + noise)`` (bisection with
    common random numbers)."""
    rng = np.random.default_rng([n_levels, NOISES.index(kind), int(min_effect * 100)])
    z = noise(rng, kind, (40_000, n_levels))
    j = np.arange(n_levels, dtype=float)

    def above(beta: float) -> float:
        return float((kendall_tau(j, observe(beta * j + z, kind)) > min_effect).mean())

    low, high = 0.0, 5.0
    if above(low) >= 0.5:
        return low
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if above(mid) < 0.5 else (low, mid)
    return high


def _cases() -> Iterator[Case]:  # noqa: C901  (one block per rule, read top to bottom)
    level = one_sided_level(CONFIDENCE)

    # trend: sign test on per-seed tau, and the monotone option
    for n_levels in LEVELS:
        x = np.arange(n_levels, dtype=float)
        for kind in NOISES:
            for min_effect in (0.3, 0.5):
                for n in SEEDS:
                    def draw(rng, r, effect, n=n, kind=kind, x=x, min_effect=min_effect):
                        slope = 1.0 if effect else _trend_slope(len(x), kind, min_effect)
                        return observe(slope * x + noise(rng, kind, (r, n, len(x))), kind)

                    def holds(y, x=x, min_effect=min_effect):
                        test = trend_test(x, y, 1.0, min_effect, False, CONFIDENCE)
                        return test["p_holds"] <= level

                    yield Case(
                        "trend", "tau", n, n_levels, kind, min_effect,
                        "rise of 1 noise SD per level", draw, holds,
                        lambda y, x=x: _grid_table(y, x),
                        {"rule": "trend", "metric": "y", "along": "x",
                         "direction": "increasing", "min_effect": min_effect},
                    )
            for n in SEEDS:
                flat = n_levels // 2 - 1 if n_levels > 3 else 0

                def draw_m(rng, r, effect, n=n, kind=kind, x=x, flat=flat):
                    steps = np.full(len(x) - 1, 3.0)
                    if not effect:
                        steps[flat] = 0.0
                    mean = np.concatenate([[0.0], np.cumsum(steps)])
                    return observe(mean + noise(rng, kind, (r, n, len(x))), kind)

                def holds_m(y, x=x):
                    return trend_test(x, y, 1.0, 0.5, True, CONFIDENCE)["p_holds"] <= level

                yield Case(
                    "trend", "monotone", n, n_levels, kind, 0.5,
                    "every step 3 noise SDs", draw_m, holds_m,
                    lambda y, x=x: _grid_table(y, x),
                    {"rule": "trend", "metric": "y", "along": "x", "direction": "increasing",
                     "min_effect": 0.5, "monotone": True},
                )

    # threshold: mean form and seeds form
    for kind in NOISES:
        for n in SEEDS:
            def draw_t(rng, r, effect, n=n, kind=kind):
                return observe((1.0 if effect else 0.0) + noise(rng, kind, (r, n)), kind)

            yield Case(
                "threshold", "mean", n, None, kind, 0.0, "mean 1 noise SD above the value",
                draw_t,
                lambda y: side_test(y, 0.0, True, CONFIDENCE)["p_holds"] <= level,
                _seed_table,
                {"rule": "threshold", "metric": "y", "op": ">", "value": 0.0},
            )
            for tol in (0.25, 0.4, 0.5):
                centre = noise_quantile(kind, tol)

                def draw_s(rng, r, effect, n=n, kind=kind, centre=centre):
                    shift = 10.0 if effect else centre
                    return observe(shift + noise(rng, kind, (r, n)), kind)

                yield Case(
                    "threshold", "seeds", n, None, kind, tol, "no seed violates the bound",
                    draw_s,
                    lambda y, tol=tol: bound_test(y, 0.0, ">", tol, CONFIDENCE)["p_holds"]
                    <= level,
                    _seed_table,
                    {"rule": "threshold", "metric": "y", "op": ">", "value": 0.0,
                     "form": "seeds", "violation_tolerance": tol},
                )

    # compare: paired arms with a shared seed effect
    for kind in NOISES:
        for n in SEEDS:
            def draw_c(rng, r, effect, n=n, kind=kind):
                mu = 3.0 * rng.normal(size=(r, n, 1))
                arms = mu + noise(rng, kind, (r, n, 2))
                if effect:
                    arms[..., 0] += np.sqrt(2.0)
                return observe(arms, kind)

            def table_c(arms, n=n):
                return pd.DataFrame(
                    {"seed": np.repeat(np.arange(n), 2), "arm": np.tile(["a", "b"], n),
                     "y": arms.ravel()}
                )

            yield Case(
                "compare", "paired", n, None, kind, 0.0,
                "a - b = 1 SD of the paired difference", draw_c,
                lambda a: side_test(a[..., 0] - a[..., 1], 0.0, True, CONFIDENCE)["p_holds"]
                <= level,
                table_c,
                {"rule": "compare", "metric": "y", "by": "arm", "a": "a", "b": "b",
                 "direction": "a_greater"},
            )

    # rate: per-seed log-slope over K steps
    for n_steps in LEVELS:
        k = np.arange(n_steps, dtype=float)
        slope_sd = 1.0 / np.sqrt(((k - k.mean()) ** 2).sum())
        for kind in NOISES:
            for n in SEEDS:
                def draw_r(rng, r, effect, n=n, kind=kind, k=k, sd=slope_sd):
                    beta = -sd if effect else 0.0
                    return observe(beta * k + noise(rng, kind, (r, n, len(k))), kind)

                def holds_r(logs, k=k):
                    test = side_test(log_slopes(k, logs), 0.0, False, CONFIDENCE)
                    return test["p_holds"] <= level

                def table_r(logs, k=k):
                    n_seeds = logs.shape[0]
                    return pd.DataFrame(
                        {"seed": np.repeat(np.arange(n_seeds), len(k)),
                         "step": np.tile(k, n_seeds), "y": np.exp(logs).ravel()}
                    )

                yield Case(
                    "rate", "log-slope", n, n_steps, kind, 0.0,
                    "log-rate 1 SD of the per-seed slope below the value", draw_r, holds_r,
                    table_r, {"rule": "rate", "metric": "y", "op": "<", "value": 0.0},
                )

    # probability: pooled 0/1 outcomes
    for value in (0.5, 0.9, 0.95):
        for op in (">", "<"):
            for n in SEEDS:
                trials = n * TRAJECTORIES
                alt = value + 0.75 * (1 - value) if op == ">" else value / 4

                def draw_p(rng, r, effect, trials=trials, value=value, alt=alt):
                    return (rng.random((r, trials)) < (alt if effect else value)).astype(float)

                def holds_p(y, value=value, op=op):
                    k = y.sum(axis=-1)
                    test = proportion_test(k, k, y.shape[-1], value, CONFIDENCE)
                    return test["p_above" if op == ">" else "p_below"] <= level

                def table_p(y):
                    return pd.DataFrame(
                        {"seed": np.repeat(np.arange(len(y) // TRAJECTORIES), TRAJECTORIES),
                         "y": y}
                    )

                yield Case(
                    "probability", f"op {op}", n, None, "bernoulli", value,
                    f"p = {alt:g}", draw_p, holds_p, table_p,
                    {"rule": "probability", "metric": "y", "op": op, "value": value},
                )

    # degree: bound on the fraction of seeds above degree 3
    h = np.linspace(-1.0, 1.0, 9)
    powers = h[None, :] ** np.arange(5)[:, None]
    for kind in NOISES:
        for tol in (0.25, 0.4, 0.5):
            for n in SEEDS:
                def draw_d(rng, r, effect, n=n, kind=kind, tol=tol):
                    coef = rng.normal(size=(r, n, 5))
                    coef[..., 3] = rng.choice([-1.0, 1.0], size=(r, n)) * (1 + rng.random((r, n)))
                    coef[..., 4] = 0.0 if effect else 3.0 * (rng.random((r, n)) < tol)
                    curves = coef @ powers
                    jitter = noise(rng, kind, curves.shape) * 1e-4
                    if kind == "discrete":
                        return np.round((curves + jitter) * 1e3) / 1e3
                    return curves + jitter

                def holds_d(y, tol=tol):
                    gamma, _ = fitted_degrees(h, y, 0.01, 7)
                    return bound_violations(gamma, 3, tol, CONFIDENCE)["p_holds"] <= level

                def table_d(y):
                    return pd.DataFrame(
                        {"seed": np.repeat(np.arange(y.shape[0]), len(h)),
                         "h": np.tile(h, y.shape[0]), "y": y.ravel()}
                    )

                yield Case(
                    "degree", "bound", n, None, kind, tol, "no seed above degree 3",
                    draw_d, holds_d, table_d,
                    {"rule": "degree", "metric": "y", "along": "h", "max_degree": 3,
                     "max_fit_degree": 8, "violation_tolerance": tol},
                )

    # peak: excess boundary and location boundary on a uniform grid
    for n_levels in PEAK_LEVELS:
        u = np.arange(n_levels, dtype=float)
        centre = n_levels // 2
        window = (centre - 0.5, centre + 0.5)
        for kind in NOISES:
            for variant, min_excess in (("excess", 5.0), ("location", 1.0)):
                for n in SEEDS:
                    def draw_k(rng, r, effect, n=n, kind=kind, variant=variant, c=centre, u=u):
                        mean = np.full(len(u), -10.0)
                        mean[c] = 0.0
                        if effect:
                            mean[np.arange(len(u)) != c] = -13.0
                        elif variant == "excess":
                            mean[-1] = -5.0
                        else:
                            mean[c + 1] = 0.0
                        return observe(mean + noise(rng, kind, (r, n, len(u))), kind)

                    def holds_k(y, u=u, window=window, min_excess=min_excess):
                        return peak_test(u, y, window, min_excess, CONFIDENCE)["p_holds"] <= level

                    yield Case(
                        "peak", variant, n, n_levels, kind, min_excess,
                        "peak 13 noise SDs above every other level (excess 8 beyond 5)",
                        draw_k, holds_k, lambda y, u=u: _grid_table(y, u),
                        {"rule": "peak", "metric": "y", "along": "x", "window": list(window),
                         "min_excess": min_excess},
                    )


def _rate(holds: np.ndarray) -> tuple[float, float]:
    r = float(np.mean(holds))
    return r, float(np.sqrt(r * (1 - r) / len(holds)))


def measure(
    case: Case, rng: np.random.Generator, n_draws: int, n_power: int, rule_checks: int
) -> dict[str, Any]:
    """One calibration row: the rate of ``holds`` at the boundary, its MC s.e., and power."""
    null = case.draw(rng, n_draws, False)
    holds = np.asarray(case.holds(null), dtype=bool)
    rate, se = _rate(holds)
    power, _ = _rate(np.asarray(case.holds(case.draw(rng, n_power, True)), dtype=bool))
    spec = parse_rule(case.spec)
    mismatches = 0
    for i in range(min(rule_checks, n_draws)):
        (result,) = evaluate([spec], case.table(null[i]))
        mismatches += int((result.decision == "holds") != bool(holds[i]))
    return {
        "rule": case.rule,
        "variant": case.variant,
        "seeds": case.seeds,
        "levels": case.levels,
        "noise": case.noise,
        "threshold": case.threshold,
        "rate_holds": rate,
        "mc_se": se,
        "nominal": one_sided_level(CONFIDENCE),
        "power": power,
        "power_effect": case.power_effect,
        "mismatches": mismatches,
    }


def cases(
    rules: set[str] | None = None,
    seeds: set[int] | None = None,
    noises: set[str] | None = None,
) -> list[Case]:
    """The calibration grid, optionally restricted to some rules, seed counts or noises."""
    return [
        c
        for c in _cases()
        if (rules is None or c.rule in rules)
        and (seeds is None or c.seeds in seeds)
        and (noises is None or c.noise in noises)
    ]


N_DRAWS = 4000
N_POWER = 1000


def calibration_table(
    n_draws: int = N_DRAWS,
    n_power: int = N_POWER,
    seed: int = 0,
    rule_checks: int = 5,
    selected: list[Case] | None = None,
) -> list[dict[str, Any]]:
    """Measure every case (or ``selected``); rows as plain Python values."""
    rows = []
    for i, case in enumerate(selected if selected is not None else cases()):
        rng = np.random.default_rng([seed, i])
        rows.append(measure(case, rng, n_draws, n_power, rule_checks))
    return rows


def _markdown(rows: list[dict[str, Any]], n_draws: int, n_power: int) -> str:
    nominal = one_sided_level(CONFIDENCE)
    lines = [
        "# Calibration of the decision rules",
        "",
        "Generated by `python -m theorybench.verdict.calibration --write`; do not edit by hand.",
        "",
        f"Each row: {n_draws} synthetic tables whose true effect sits exactly at the rule's "
        f"decision boundary (the least favourable null), confidence {CONFIDENCE}. "
        f"`rate` is the measured one-sided rate of `holds` ± its Monte-Carlo standard error; it "
        f"must not exceed the nominal {nominal:g} beyond Monte-Carlo error. `power` is the rate "
        f"of `holds` over {n_power} tables at the effect named under each table. Noise: "
        "`normal` N(0, 1), `t3` Student t₃ at unit variance, `discrete` rounded to integers "
        "(many ties), `bernoulli` 0/1 outcomes (8 per seed). The set-ups are described in "
        "`src/theorybench/verdict/calibration.py`; the rules' docstrings state their tests.",
        "",
        "## Summary",
        "",
        "| rule | variant | rows | worst rate ± s.e. | nominal | power (min–max) | power at |",
        "|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["rule"], row["variant"]), []).append(row)
    for (rule_name, variant), group in groups.items():
        worst = max(group, key=lambda r: r["rate_holds"])
        powers = [r["power"] for r in group]
        lines.append(
            f"| {rule_name} | {variant} | {len(group)} | {worst['rate_holds']:.4f} ± "
            f"{worst['mc_se']:.4f} | {nominal:g} | {min(powers):.2f}–{max(powers):.2f} | "
            f"{group[0]['power_effect']} |"
        )
    for (rule_name, variant), group in groups.items():
        lines += [
            "",
            f"## {rule_name} ({variant})",
            "",
            f"Power at: {group[0]['power_effect']}.",
            "",
            "| seeds | levels | noise | threshold | rate ± s.e. | nominal | power |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in group:
            levels = "–" if r["levels"] is None else str(r["levels"])
            lines.append(
                f"| {r['seeds']} | {levels} | {r['noise']} | {r['threshold']:g} | "
                f"{r['rate_holds']:.4f} ± {r['mc_se']:.4f} | {r['nominal']:g} | "
                f"{r['power']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the docs page and JSON")
    parser.add_argument("--draws", type=int, default=N_DRAWS)
    parser.add_argument("--power-draws", type=int, default=N_POWER)
    parser.add_argument("--rule", action="append", help="only these rules")
    args = parser.parse_args(argv)
    selected = cases(set(args.rule)) if args.rule else None
    rows = calibration_table(args.draws, args.power_draws, selected=selected)
    page = _markdown(rows, args.draws, args.power_draws)
    if args.write:
        root = Path(__file__).resolve().parents[3]
        (root / "docs" / "calibration.md").write_text(page)
        TABLE_JSON.write_text(json.dumps(rows, indent=1) + "\n")
    else:
        print(page)


if __name__ == "__main__":
    main()
