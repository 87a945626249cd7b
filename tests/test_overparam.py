"""Over-parameterized optimization kinds: the Gram matrix against its explicit formula, GD's
linearized rate at large width, random-label fitting, and SGD's noise ball under a constant step."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from theorybench.experiments.overparam import (
    GDConvergenceParams,
    RandomLabelsParams,
    SGDStepParams,
    _gd_init,
    corrupt_labels,
    gd_loss_and_grads,
    ntk_gram,
    random_label_fit,
    sgd_step_schedule,
    two_layer_gd_convergence,
)
from theorybench.ntk import empirical_ntk, two_layer_relu, two_layer_relu_ntk

CPU = torch.device("cpu")


def _slope(group: pd.DataFrame, x: str, y: str) -> float:
    return float(np.polyfit(group[x], np.log(group[y]), 1)[0])


def test_first_layer_gram_equals_the_activation_pattern_formula() -> None:
    """Du et al.: H_ij = (1/m) Σ_r a_iᵀa_j 1{w_rᵀa_i ≥ 0} 1{w_rᵀa_j ≥ 0} (v_r² = 1)."""
    p = GDConvergenceParams(width=40, n=6, dim=3)
    x, _, params = _gd_init(p, (0, 1))
    gram = ntk_gram(params, x, "first")
    active = (torch.einsum("snd,smd->snm", x, params["w"]) > 0).double()
    expected = torch.einsum("sim,sjm->sij", active, active) * (x @ x.mT) / p.width
    torch.testing.assert_close(gram, expected)


@pytest.mark.parametrize("train", ["first", "both"])
def test_closed_form_gram_is_the_jacobian_product(train: str) -> None:
    """The closed-form Gram equals J Jᵀ from per-example Jacobians (theorybench.ntk) per seed."""
    p = GDConvergenceParams(width=30, n=5, dim=3, train=train)
    x, _, params = _gd_init(p, (0, 1, 2))
    gram = ntk_gram(params, x, train)
    for s in range(3):
        v = params["v"][s]
        if train == "first":
            kernel = empirical_ntk(
                lambda q, a, v=v: two_layer_relu({"w": q["w"], "v": v}, a[None])[0],
                {"w": params["w"][s]}, x[s])
        else:
            kernel = empirical_ntk(lambda q, a: two_layer_relu(q, a[None])[0],
                                   {"w": params["w"][s], "v": v}, x[s])
        torch.testing.assert_close(gram[s], kernel)


@pytest.mark.parametrize("train", ["first", "both"])
def test_hand_written_gradients_match_autograd(train: str) -> None:
    p = GDConvergenceParams(width=50, n=7, dim=4, train=train)
    x, b, params = _gd_init(p, (0, 1))
    trained = ["w"] if train == "first" else ["w", "v"]
    loss, grads = gd_loss_and_grads(params, x, b, trained)
    leaves = {k: t.clone().requires_grad_(k in trained) for k, t in params.items()}
    ref = 0.5 * ((two_layer_relu(leaves, x) - b) ** 2).sum(dim=-1)
    ref_grads = torch.autograd.grad(ref.sum(), [leaves[k] for k in trained])
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-13, atol=0)
    for mine, expected in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(mine, expected, rtol=1e-12, atol=1e-15)


def test_wide_net_follows_the_kernel_rate() -> None:
    """At large width the late log-loss slope approaches 2 ln(1 − ηλ_min(H(0))) and the Gram
    matrix barely moves; the predicted log-rates come from the closed-form kernel."""
    p = GDConvergenceParams(width=8192, n=8, dim=4, steps=200, record_every=10, train="both")
    rows = two_layer_gd_convergence(p, (0, 1), CPU)
    x, _, _ = _gd_init(p, (0, 1))
    eig = torch.linalg.eigvalsh(two_layer_relu_ntk(x, train="both"))
    first = rows.groupby("seed").first()
    np.testing.assert_allclose(first["lambda0"], eig[:, 0].numpy())
    np.testing.assert_allclose(first["eta"], (1 / eig[:, -1]).numpy())
    ntk_rate = 2 * np.log1p(-(eig[:, 0] / eig[:, -1]).numpy())
    np.testing.assert_allclose(first["log_rate_ntk"], ntk_rate)
    assert (first["gram_change"] < 0.05).all()
    late = rows[rows.step >= 100]
    for seed, group in late.groupby("seed"):
        assert abs(_slope(group, "step", "loss") / first.loc[seed, "log_rate_emp"] - 1) < 0.25
    assert (rows.groupby("seed")["loss_ratio"].last() < 1e-3).all()


def test_gd_rows_are_per_seed_and_deterministic() -> None:
    p = GDConvergenceParams(width=16, n=6, dim=3, steps=4, record_every=2)
    a, b = two_layer_gd_convergence(p, (0, 5), CPU), two_layer_gd_convergence(p, (5,), CPU)
    pd.testing.assert_frame_equal(a[a.seed == 5].reset_index(drop=True), b)
    assert sorted(a.step.unique()) == [0, 2, 4]


def test_measured_rate_is_the_log_loss_slope_and_its_ratios() -> None:
    """log_rate_measured is the least-squares slope of ln L over the recorded steps (what the
    rate rule fits); rate_to_kernel and rate_to_bound divide it by the predicted log-rates."""
    p = GDConvergenceParams(width=64, n=8, dim=4, steps=60, record_every=10)
    rows = two_layer_gd_convergence(p, (0, 1), CPU)
    for _, group in rows.groupby("seed"):
        first = group.iloc[0]
        slope = _slope(group, "step", "loss")
        assert first["log_rate_measured"] == pytest.approx(slope, rel=1e-9)
        assert first["rate_to_kernel"] == pytest.approx(slope / first["log_rate_emp"])
        assert first["rate_to_bound"] == pytest.approx(slope / first["log_rate_bound"])


def test_random_labels_rows_count_parameters_and_time_to_fit() -> None:
    p = RandomLabelsParams(width=8, n_train=40, n_test=400, epochs=1, batch_size=20,
                           check_every=1)
    rows = random_label_fit(p, (0, 1), CPU)
    assert (rows["n_params"] == 64 * 8 + 8 + 8 * 10 + 10).all()
    assert rows["test_acc"].between(0.0, 0.3).all()
    unfitted = rows[rows.fitted == 0]
    assert (unfitted["epochs_to_fit"] == 1.0).all()  # censored at the budget


def test_corruption_is_nested_across_levels_and_classwise_keeps_a_function_of_the_class() -> None:
    y = torch.arange(200) % 10
    draws = {q: corrupt_labels(y, q, "example", torch.Generator().manual_seed(3))
             for q in (0.0, 0.3, 0.6, 1.0)}
    changed = {q: draws[q] != y for q in draws}
    assert not changed[0.0].any()
    assert (changed[0.3] <= changed[0.6]).all()  # the corrupted set grows with p
    assert (draws[0.6][changed[0.3]] == draws[0.3][changed[0.3]]).all()
    assert 0.75 < changed[1.0].double().mean() < 0.98  # 9/10 of the labels change at p = 1
    by_class = corrupt_labels(y, 0.5, "class", torch.Generator().manual_seed(3))
    for c in range(10):
        assert len(set(by_class[y == c].tolist())) == 1


def test_wide_net_fits_true_labels_before_random_ones() -> None:
    base = {"n_train": 60, "n_test": 100, "epochs": 60, "batch_size": 20, "check_every": 1}
    seeds = (0, 1)
    true = random_label_fit(RandomLabelsParams(corruption=0.0, **base), seeds, CPU)
    rand = random_label_fit(RandomLabelsParams(corruption=1.0, **base), seeds, CPU)
    assert (true.fitted == 1).all() and (rand.fitted == 1).all()
    assert (rand.train_error == 0).all()
    assert (rand.epochs_to_fit.to_numpy() > true.epochs_to_fit.to_numpy()).all()
    assert (true.test_acc > 0.6).all()


def test_constant_step_noise_ball_scales_like_sqrt_step() -> None:
    """Constant-step SGD on least squares: the stationary spread of the iterates is ∝ √α."""
    base = {"schedule": "constant", "horizons": [4000, 8000], "dim": 5, "n": 100}
    seeds = tuple(range(8))
    big = sgd_step_schedule(SGDStepParams(step=0.08, **base), seeds, CPU)["late_move"].mean()
    small = sgd_step_schedule(SGDStepParams(step=0.02, **base), seeds, CPU)["late_move"].mean()
    ratio = big / small
    assert ratio == pytest.approx(2.0, abs=0.7)  # √(0.08 / 0.02) = 2


def test_inverse_step_iterates_approach_the_minimizer() -> None:
    rows = sgd_step_schedule(SGDStepParams(horizons=[500, 4000]), (0, 1, 2, 3), CPU)
    means = rows.groupby("steps")[["dist_opt", "late_move"]].mean()
    assert means.loc[4000, "dist_opt"] < means.loc[500, "dist_opt"] / 2
    assert rows["log_steps"].tolist()[:1] == [math.log(500)]


@pytest.mark.parametrize(("chunk", "run", "params", "n_seeds"), [
    ("SEED_CHUNK", two_layer_gd_convergence,
     GDConvergenceParams(width=64, n=8, dim=4, steps=40, record_every=10), 7),
    ("PREDICT_CHUNK", random_label_fit,
     RandomLabelsParams(width=32, n_train=40, n_test=50, epochs=3, batch_size=10), 5),
])
def test_seed_chunks_equal_the_whole_batch(monkeypatch, chunk, run, params, n_seeds) -> None:
    """GD convergence (seeds descend in chunks) and random labels (predictions in chunks)."""
    import theorybench.experiments.overparam as overparam

    seeds = tuple(range(n_seeds))
    chunked = run(params, seeds, CPU)
    monkeypatch.setattr(overparam, chunk, len(seeds))
    pd.testing.assert_frame_equal(chunked, run(params, seeds, CPU))
