"""Non-lazy two-layer stability: the analytic input gradient, loss gradients and NTK against
autograd, the ball closed form against Monte Carlo, the exponent fit on exact power laws, the
initial scaling 0.5 − 2c, and seed independence of the kind."""

from __future__ import annotations

import math

import torch

from theorybench.experiments.stability_nonlazy import (
    DTYPE,
    NonLazyParams,
    ball_mean,
    forward,
    input_gradient,
    loss_gradients,
    ntk,
    power_law_exponent,
    sphere,
    stability_nonlazy,
)

CPU = torch.device("cpu")


def _net(s: int = 2, m: int = 7, d: int = 5, n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(s, m, d, generator=g, dtype=DTYPE)
    v = torch.randn(s, m, generator=g, dtype=DTYPE)
    a = torch.stack([sphere(n, d, g) for _ in range(s)])
    return x, v, a


def test_input_gradient_matches_autograd():
    x, v, a = _net()
    a = a.clone().requires_grad_()
    (auto,) = torch.autograd.grad(forward(x, v, a, 1.5).sum(), a)
    torch.testing.assert_close(input_gradient(x, v, a.detach(), 1.5), auto)


def test_homogeneity_h_equals_gradient_dot_input():
    """Bias-free ReLU nets are 1-homogeneous: h(a) = ∇ₐh(a)ᵀa, so |h| ≤ ‖∇ₐh‖ on the sphere."""
    x, v, a = _net()
    h = forward(x, v, a, 1.0)
    grad = input_gradient(x, v, a, 1.0)
    torch.testing.assert_close(h, (grad * a).sum(-1))
    assert bool((h.abs() <= grad.norm(dim=-1) + 1e-12).all())


def test_loss_gradients_match_autograd():
    x, v, a = _net()
    y = torch.sign(a[..., 0])
    xr, vr = x.clone().requires_grad_(), v.clone().requires_grad_()
    loss = 0.5 * ((forward(xr, vr, a, 0.7) - y) ** 2).mean(dim=1)
    gx, gv = torch.autograd.grad(loss.sum(), (xr, vr))
    mine, grad_x, grad_v = loss_gradients(x, v, a, y, 0.7)
    torch.testing.assert_close(mine, loss.detach())
    torch.testing.assert_close(grad_x, gx)
    torch.testing.assert_close(grad_v, gv)


def test_ntk_matches_jacobian_product():
    x, v, a = _net(s=1)
    params = (x[0].clone().requires_grad_(), v[0].clone().requires_grad_())
    rows = []
    for i in range(a.shape[1]):
        out = forward(params[0][None], params[1][None], a[:, i:i + 1], 1.3).sum()
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(out, params)]))
    jac = torch.stack(rows)
    torch.testing.assert_close(ntk(x, v, a, 1.3)[0], jac @ jac.T)


def test_ball_closed_form_matches_monte_carlo_and_known_values():
    # d = 1: E|u| = 1/2 for u uniform on [−1, 1]; d = 3: E|u₁| = 3/8 in the unit ball.
    assert math.isclose(ball_mean(1), 0.5) and math.isclose(ball_mean(3), 3 / 8)
    g = torch.Generator().manual_seed(1)
    d = 16
    k = 50_000
    u = torch.randn(k, d, generator=g, dtype=DTYPE)
    u = u / u.norm(dim=1, keepdim=True) * torch.rand(k, 1, generator=g, dtype=DTYPE) ** (1 / d)
    assert abs(float(u[:, 0].abs().mean()) - ball_mean(d)) < 5e-3


def test_exponent_fit_recovers_exact_power_laws():
    widths = [16, 64, 256, 1024]
    m = torch.tensor(widths, dtype=DTYPE)
    values = torch.stack([3.0 * m ** -3.5, 0.2 * m ** 0.0, m ** 1.25])
    torch.testing.assert_close(power_law_exponent(widths, values),
                               torch.tensor([-3.5, 0.0, 1.25], dtype=DTYPE))


def test_initial_exponent_is_half_minus_two_c():
    """At init P ∝ α √m β² (a sum of m independent terms of size β²), exponent 0.5 − 2c."""
    p = NonLazyParams(c=2.0, widths=[64, 256, 1024], dim=8, n_train=4, n_eval=64,
                      train_steps=0)
    rows = stability_nonlazy(p, range(8), CPU)
    mean = rows.groupby("seed")["exponent_init"].first().mean()
    assert abs(mean - (0.5 - 2 * 2.0)) < 0.15


def test_training_reaches_the_target_and_is_non_lazy():
    p = NonLazyParams(c=2.0, widths=[32, 64], dim=8, n_train=4, n_eval=16, train_steps=400)
    rows = stability_nonlazy(p, (0, 1), CPU)
    assert (rows["loss_ratio"] <= 0.1).all()
    assert (rows["rel_weight_change"] > 1).all()
    assert ((rows["exponent_gap"] - (rows["exponent"] + 3.5)).abs() < 1e-12).all()


def test_seed_rows_do_not_depend_on_the_other_seeds():
    p = NonLazyParams(widths=[8, 16], dim=4, n_train=4, n_eval=8, train_steps=20)
    both = stability_nonlazy(p, (3, 4), CPU)
    alone = stability_nonlazy(p, (4,), CPU)
    cols = ["stability_per_eps", "stability_init", "exponent", "loss_ratio", "steps"]
    torch.testing.assert_close(
        torch.tensor(both[both.seed == 4][cols].to_numpy()),
        torch.tensor(alone[cols].to_numpy()))
