"""Perturbation stability: the Monte-Carlo estimate against its closed form, the networks'
initialization scales, and lazy training."""

from __future__ import annotations

import math

import pytest
import torch

from theorybench.experiments.stability import (
    StabilityParams,
    _model,
    autograd_loss_and_grads,
    ball_projection_mean,
    mlp_loss_and_grads,
    perturbation_stability,
    top_hessian_eigenvalue,
    uniform_ball,
)
from theorybench.models.cnn import cnn_forward, init_cnn
from theorybench.models.mlp import SeedMLP
from theorybench.streams import streams

CPU = torch.device("cpu")


@pytest.mark.parametrize("d", [1, 2, 3, 10, 64])
def test_ball_projection_mean_matches_simulation(d: int) -> None:
    u = uniform_ball(1, 200_000, d, torch.Generator().manual_seed(d))[0]
    assert (u.norm(dim=1) <= 1 + 1e-6).all()
    assert u[:, 0].abs().mean().item() == pytest.approx(ball_projection_mean(d), rel=0.01)


def test_ball_projection_mean_known_values() -> None:
    assert ball_projection_mean(1) == pytest.approx(0.5)  # |U(-1, 1)| has mean 1/2
    assert ball_projection_mean(2) == pytest.approx(4 / (3 * math.pi))  # unit disc


def test_monte_carlo_estimate_matches_closed_form() -> None:
    p = StabilityParams(width=32, depth=3, n_eval=64, n_perturb=2000, train_steps=0)
    rows = perturbation_stability(p, (0, 1, 2), CPU)
    ratio = rows.stability_per_eps / rows.stability_closed_form
    assert ratio.between(0.97, 1.03).all(), ratio.tolist()


def test_linear_model_has_known_stability() -> None:
    """For h(a) = wᵀa the gradient is w everywhere: P/ε = c_d ‖w‖ exactly."""
    w = torch.tensor([[3.0, 4.0]])
    grad_norm = w.norm().item()
    u = uniform_ball(1, 400_000, 2, torch.Generator().manual_seed(0))[0]
    assert (u @ w.T).abs().mean().item() == pytest.approx(ball_projection_mean(2) * grad_norm,
                                                          rel=0.01)


def test_init_scales() -> None:
    """He keeps E‖∇ₐh‖² flat in depth; LeCun halves it per hidden layer."""
    a = torch.nn.functional.normalize(torch.randn(256, 16, generator=torch.Generator()
                                                  .manual_seed(0)), dim=1)
    seeds = tuple(range(64))

    def mean_sq_grad(scheme: str, depth: int) -> float:
        net = SeedMLP(streams(seeds, "test"), [16] + [256] * (depth - 1) + [1], init=scheme,
                      bias=False)
        x = a.expand(len(seeds), *a.shape).clone().requires_grad_()
        (g,) = torch.autograd.grad(net(x).sum(), x)
        return g.pow(2).sum(-1).mean().item()

    he2, he6 = mean_sq_grad("he", 2), mean_sq_grad("he", 6)
    assert he6 / he2 == pytest.approx(1.0, rel=0.15)
    lecun2, lecun6 = mean_sq_grad("lecun", 2), mean_sq_grad("lecun", 6)
    assert lecun6 / lecun2 == pytest.approx(0.5**4, rel=0.2)


def test_cnn_batches_seeds_independently() -> None:
    images = torch.rand(5, 8, 8, generator=torch.Generator().manual_seed(0))
    both = cnn_forward(init_cnn(streams((0, 1), "test"), 4, 3, "he"), images)
    alone = cnn_forward(init_cnn(streams((1,), "test"), 4, 3, "he"), images)
    torch.testing.assert_close(both[1:], alone)


def test_power_iteration_finds_top_eigenvalue_per_seed() -> None:
    """Quadratic losses ½ xᵀ diag(d_s) x: the top eigenvalue of seed s is max(d_s)."""
    diag = torch.tensor([[1.0, 5.0, 2.0], [0.5, 0.1, 3.0]])
    x0 = [torch.ones(2, 3)]
    lam = top_hessian_eigenvalue(lambda w: 0.5 * (diag * w[0] ** 2).sum(), x0, 50,
                                 [torch.Generator().manual_seed(s) for s in (0, 1)])
    torch.testing.assert_close(lam, torch.tensor([5.0, 3.0]), rtol=1e-3, atol=1e-3)


def test_lazy_training_fits_and_moves_little() -> None:
    p = StabilityParams(width=256, depth=3, n_train=32, n_eval=16, n_perturb=4,
                        train_steps=300)
    rows = perturbation_stability(p, (0, 1), CPU).set_index(["phase", "seed"])
    trained = rows.loc["trained"]
    assert (trained.loss_ratio <= 0.1 + 1e-6).all()
    assert (trained.rel_weight_change < 0.3).all()
    assert (rows.loc["init"].rel_weight_change == 0).all()


def test_seed_ntk_matches_per_seed_jacobian() -> None:
    """The per-seed kernel equals J Jᵀ from theorybench.ntk on each seed alone."""
    from theorybench.experiments.stability import seed_ntk
    from theorybench.ntk import empirical_ntk

    p = StabilityParams(width=6, depth=3)
    weights, forward, _ = _model(p, (0, 1), 5, CPU)
    x = torch.nn.functional.normalize(torch.randn(4, 5, generator=torch.Generator()
                                                  .manual_seed(1)), dim=1)
    both = seed_ntk(forward, weights, x)
    for s in range(2):
        params = {str(k): w[s] for k, w in enumerate(weights)}

        def fn(q: dict[str, torch.Tensor], a: torch.Tensor) -> torch.Tensor:
            return forward([w.unsqueeze(0) for w in q.values()], a.view(1, 1, -1)).reshape(())
        torch.testing.assert_close(both[s], empirical_ntk(fn, params, x))


def test_residual_fit_is_lazy_for_the_input_gradient() -> None:
    """Fitting h_0 + s·y with s small moves ∇ₐh and the NTK by little; fitting ±1 labels does
    not (the reason version 2 of the lazy tasks certifies laziness on ∇ₐh, not on κ)."""
    base = dict(width=128, depth=3, n_train=16, n_eval=16, n_perturb=2, n_ntk=4,
                train_steps=300)
    lazy = perturbation_stability(StabilityParams(**base, targets="residual", label_scale=5e-4),
                                  (0, 1), CPU).set_index("phase").loc["trained"]
    fit = perturbation_stability(StabilityParams(**base), (0, 1), CPU).set_index(
        "phase").loc["trained"]
    assert (lazy.loss_ratio <= 0.1 + 1e-6).all() and (fit.loss_ratio <= 0.1 + 1e-6).all()
    assert (lazy.grad_change < 0.05).all() and (lazy.ntk_change < 0.05).all()
    assert (fit.grad_change > 0.3).all()


def test_scale_free_measure_ignores_the_readout_scale() -> None:
    """P/(ε·E|h|) does not depend on a multiplier of the output; the raw P/ε scales with it."""
    p = StabilityParams(width=16, depth=3, n_eval=8, n_perturb=2, train_steps=0)
    one = perturbation_stability(p, (0,), CPU)
    tenth = perturbation_stability(p.model_copy(update={"readout_scale": 0.1}), (0,), CPU)
    assert tenth.stability_rel.item() == pytest.approx(one.stability_rel.item(), rel=1e-5)
    assert tenth.stability_closed_form.item() == pytest.approx(
        0.1 * one.stability_closed_form.item(), rel=1e-5)


@pytest.mark.parametrize(("init", "depth", "output_relu", "readout_scale"),
                         [("he", 2, False, 1.0), ("he", 5, False, 0.0884),
                          ("mean_field", 2, False, 1.0), ("ntk", 3, True, 0.5)])
def test_hand_written_gradients_are_bitwise_autograd(init: str, depth: int, output_relu: bool,
                                                     readout_scale: float) -> None:
    """The training loop's hand-written back-propagation gives autograd's loss and gradients
    bit for bit (so the lazy-training tables do not depend on which one runs)."""
    p = StabilityParams(width=24, depth=depth, init=init, output_relu=output_relu,
                        readout_scale=readout_scale)
    weights, forward, alpha = _model(p, (0, 1, 2), 10, CPU)
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.normalize(torch.randn(12, 10, generator=g), dim=1)
    target = torch.randn(3, 12, generator=g)
    loss, grads = mlp_loss_and_grads(weights, x, target, readout_scale, alpha, output_relu)
    ref_loss, ref_grads = autograd_loss_and_grads(forward, weights, x, target)
    assert torch.equal(loss, ref_loss)
    for mine, ref in zip(grads, ref_grads, strict=True):
        assert torch.equal(mine, ref)


def test_seed_chunks_give_the_whole_batch_rows(monkeypatch) -> None:
    import pandas as pd

    import theorybench.experiments.stability as stability

    p = StabilityParams(width=16, depth=3, n_train=16, n_eval=8, n_perturb=2, n_ntk=4,
                        train_steps=20, targets="residual", label_scale=5e-4)
    seeds = tuple(range(6))
    chunked = perturbation_stability(p, seeds, CPU)
    monkeypatch.setattr(stability, "SEED_CHUNK", len(seeds))
    pd.testing.assert_frame_equal(chunked, perturbation_stability(p, seeds, CPU))
