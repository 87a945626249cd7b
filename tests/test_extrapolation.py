"""The extrapolation family: its fit statistics on known curves and the experiment's contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from theorybench.experiments.extrapolation import (
    ExtrapolationParams,
    _build,
    _data,
    _train,
    extrapolation_fit,
    polyfit_ss,
    r_squared,
)

CPU = torch.device("cpu")
TINY = {"steps": 30, "width": 8, "n_train": 16, "fit_points": 6, "error_points": 5,
        "curve_points": 5}


def _run(seeds: tuple[int, ...], **params) -> pd.DataFrame:
    return extrapolation_fit(ExtrapolationParams(**(TINY | params)), seeds, CPU)


def test_r_squared_of_a_line_is_one_and_a_parabola_gains_everything() -> None:
    h = np.linspace(-1.0, 1.0, 21)
    line = 3.0 * h - 2.0
    parabola = h**2  # symmetric grid: the best line is flat, R² = 0
    res1, tot = polyfit_ss(h, np.stack([line, parabola]), 1)
    res2, _ = polyfit_ss(h, np.stack([line, parabola]), 2)
    r2_1, r2_2 = r_squared(res1, tot), r_squared(res2, tot)
    np.testing.assert_allclose(r2_1, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r2_2 - r2_1, [0.0, 1.0], atol=1e-12)


def test_r_squared_matches_numpy_polyfit_on_a_cubic() -> None:
    h = np.linspace(0.1, 10.0, 24)
    y = h**3 - 4 * h**2 + h
    res, tot = polyfit_ss(h, y, 1)
    fit = np.polyval(np.polyfit(h, y, 1), h)
    expected = 1 - np.sum((y - fit) ** 2) / np.sum((y - y.mean()) ** 2)
    assert float(r_squared(res, tot)) == pytest.approx(expected, rel=1e-10)


def test_a_constant_curve_is_a_line() -> None:
    h = np.linspace(0.0, 1.0, 5)
    res, tot = polyfit_ss(h, np.full(5, 2.0), 1)
    assert float(r_squared(res, tot)) == 1.0


def test_rows_per_phase_and_columns() -> None:
    table = _run((0, 1, 2), model="pn", reference_mlp=True)
    counts = table.groupby(["phase", "model"]).size().to_dict()
    assert counts[("summary", "pn")] == counts[("summary", "mlp")] == 3
    assert counts[("extrapolation", "pn")] == 3 * 2 * 6  # seeds × (±1) × fit points
    assert counts[("curve", "mlp")] == 3 * 5
    curve = table[table.phase == "curve"]
    assert set(curve.region) == {"train", "extrapolation"}
    assert np.all(curve.loc[curve.region == "train", "x"].abs() <= 2.5 + 1e-9)


def test_curve_truth_is_the_target() -> None:
    table = _run((0,), target="cubic_code")
    curve = table[table.phase == "curve"]
    x = curve.x.to_numpy()
    np.testing.assert_allclose(curve.truth, x**3 + x**2 - 5 * x + 5, rtol=1e-5, atol=1e-4)


def test_quadratic_target_uses_random_directions_in_8d() -> None:
    table = _run((0, 1), target="quadratic", n_directions=3)
    assert table[table.phase == "extrapolation"].direction.nunique() == 3


def test_seeds_do_not_depend_on_the_batch() -> None:
    pair, alone = _run((4, 5), model="pn"), _run((5,), model="pn")
    cols = ["train_rel_err", "extrap_rel_err", "r2_linear", "quad_gain"]
    a = pair[(pair.phase == "summary") & (pair.seed == 5)][cols].to_numpy()
    b = alone[alone.phase == "summary"][cols].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_identity_pn_learns_the_cubic_and_extrapolates_it() -> None:
    table = _run((0, 1), target="cubic", model="pn", degree=3, activation="identity",
                 width=16, n_train=64, steps=400, reference_mlp=True, mlp_width=32)
    summary = table[table.phase == "summary"].set_index(["model", "seed"])
    assert (summary.loc["pn", "extrap_rel_err"] < 0.05).all()
    assert (summary.loc["pn", "extrap_rel_err"] < summary.loc["mlp", "extrap_rel_err"]).all()


@pytest.mark.parametrize("bad", [
    {"target": "cubic", "dim": 3},
    {"model": "mlp", "reference_mlp": True},
    {"fit_range": (2.0, 1.0)},
    {"error_range": (-0.5, 1.0)},
    {"activation": "gelu"},
])
def test_invalid_parameters_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ExtrapolationParams(**bad)


def test_untrained_reference_is_the_network_before_training() -> None:
    short = _run((0, 1), untrained_reference=True, steps=5)
    long = _run((0, 1), untrained_reference=True, steps=40)
    cols = ["train_rel_err", "extrap_rel_err", "r2_linear", "log_nonlin"]

    def init(t: pd.DataFrame) -> np.ndarray:
        return t[(t.phase == "summary") & (t.model == "mlp_init")][cols].to_numpy()

    np.testing.assert_allclose(init(short), init(long), rtol=1e-6)
    trained = long[(long.phase == "summary") & (long.model == "mlp")]
    assert (trained.train_rel_err.to_numpy() < init(long)[:, 0]).all()


def test_log_nonlin_is_the_worst_direction() -> None:
    table = _run((0,), target="quadratic_psd", n_directions=3)
    summary = table[table.phase == "summary"].iloc[0]
    expected = np.log10(max(1 - summary.r2_linear_min, 1e-12))
    assert summary.log_nonlin == pytest.approx(expected)


def test_train_takes_torch_adams_steps_with_the_cosine_schedule() -> None:
    """The written-out update is ``torch.optim.Adam`` (defaults) under a cosine ``LambdaLR``,
    to the last bit on the CPU."""
    import copy
    import math

    p = ExtrapolationParams(**(TINY | {"model": "pn", "activation": "relu"}))
    x, _, target = _data(p, (0, 1), 2.5, 1)
    y = target(x)
    ours = _build("pn", p, (0, 1), 1)
    theirs = copy.deepcopy(ours)
    steps = 25
    _train(ours, x, y, steps, 1e-2)
    opt = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    for _ in range(steps):
        opt.zero_grad()
        ((theirs(x) - y) ** 2).mean(dim=1).sum().backward()
        opt.step()
        sched.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
