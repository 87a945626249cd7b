"""Min-max family: games (Jacobians, critical points, local stability, weak-MVI constants), the
methods' interface and one-step closed forms, the attractor detector on known limits, and the
experiment kind's table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from theorybench.experiments.minmax import (
    MinMaxParams,
    Oracle,
    Schedule,
    classify_tails,
    minmax_dynamics,
    simulate,
    tail_indices,
    tail_start,
)
from theorybench.registry import get_method, methods

GAME_CASES = [
    ("bilinear", {}),
    ("almost-bilinear", {"eps": 0.1, "player": "max"}),
    ("almost-bilinear", {"eps": 0.1, "player": "min"}),
    ("forsaken", {"offset": 0.5}),
    ("forsaken", {"offset": 0.45}),
    ("global-forsaken", {}),
    ("polar", {"a": 1.0}),
]
THRESHOLDS = {"converge_dist": 1e-2, "trap_dist": 0.1, "trap_grad": 0.05,
              "escape_radius": 1e3, "period_tol": 0.1, "min_turns": 2.0, "drift_tol": 0.05}


def game(name: str, **params):
    return get_method("game", name)(**params)


def flow_eigenvalues(g, point: torch.Tensor) -> np.ndarray:
    """Eigenvalues of the Jacobian of the flow ż = −V(z) at ``point``."""
    return np.linalg.eigvals(-g.jacobian(point.reshape(1, -1))[0].numpy())


# ----------------------------------------------------------------------------------- games


@pytest.mark.parametrize(("name", "params"), GAME_CASES)
def test_jacobian_matches_autograd(name, params):
    g = game(name, **params)
    z = 2 * torch.rand(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) - 1
    auto = torch.stack([torch.autograd.functional.jacobian(
        lambda u: g.operator(u.unsqueeze(0))[0], point) for point in z])
    torch.testing.assert_close(g.jacobian(z), auto)


@pytest.mark.parametrize(("name", "params"), GAME_CASES)
def test_critical_points_are_zeros_of_v(name, params):
    g = game(name, **params)
    crit = g.critical_points
    assert crit.shape == (1, 2), "each of these games has one critical point in its domain"
    assert float(g.operator(crit).norm()) < 1e-10
    base = next(c for c in type(g).__mro__ if c.__name__ == "Game")
    searched = base.critical_points.func(g)  # Newton from a grid, also for closed-form games
    torch.testing.assert_close(searched, crit, atol=1e-9, rtol=0)


def test_forsaken_critical_points_match_the_papers():
    torch.testing.assert_close(game("forsaken", offset=0.45).critical_points[0],
                               torch.tensor([0.0780267, 0.411934], dtype=torch.float64),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(game("forsaken", offset=0.5).critical_points[0],
                               torch.tensor([0.046019, 0.477185], dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_almost_bilinear_stability_depends_on_which_player_is_perturbed():
    eps = 0.1
    expected = eps / 2 + 1j * math.sqrt(1 - eps**2 / 4)
    on_max = flow_eigenvalues(game("almost-bilinear", eps=eps, player="max"), torch.zeros(2))
    on_min = flow_eigenvalues(game("almost-bilinear", eps=eps, player="min"), torch.zeros(2))
    np.testing.assert_allclose(sorted(on_max, key=np.imag), [expected.conjugate(), expected])
    np.testing.assert_allclose(on_min.real, [-eps / 2, -eps / 2])


@pytest.mark.parametrize(("offset", "repels"), [(0.5, True), (0.45, False)])
def test_forsaken_solution_repels_for_hsieh_and_attracts_for_pethick(offset, repels):
    g = game("forsaken", offset=offset)
    real = flow_eigenvalues(g, g.critical_points[0]).real
    assert (real > 0).all() if repels else (real < 0).all()


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("bilinear", {}, [0j + 1j, -1j]),
    ("global-forsaken", {}, [-2 / 3 + 1j, -2 / 3 - 1j]),
    ("polar", {"a": 1.0}, [-0.25 + 1j, -0.25 - 1j]),
])
def test_closed_form_flow_eigenvalues_at_the_solution(name, params, expected):
    eig = flow_eigenvalues(game(name, **params), torch.zeros(2))
    np.testing.assert_allclose(sorted(eig, key=np.imag), sorted(expected, key=np.imag), atol=1e-12)


def test_almost_bilinear_cycle_radius_matches_averaging():
    """Averaging d(r²/2)/dt = εy²(1 − y²) over a circle gives the cycle r = 2/√3 (ε → 0). The
    explicit (GDA) and implicit (PPM) Euler steps bias the radius in opposite directions by
    O(γ/ε): GDA lands outside, PPM inside, their mean on the cycle; inner and outer starts meet."""
    g = game("almost-bilinear", eps=0.1, player="max")
    oracle = Oracle(g, 0.0, torch.Generator())
    z0 = torch.tensor([[0.3, 0.0], [2.0, 0.0]], dtype=torch.float64)
    radius = {name: simulate(get_method("minmax-algorithm", name)(), oracle, z0,
                             Schedule(step=0.01), 8000, 7000, 64).norm(dim=2).mean(1)
              for name in ("gda", "ppm")}
    target = 2 / math.sqrt(3)
    assert (radius["gda"] > target).all() and (radius["ppm"] < target).all()
    mean = (radius["gda"] + radius["ppm"]) / 2
    np.testing.assert_allclose(mean.numpy(), target, atol=0.02)
    assert abs(float(mean[0] - mean[1])) < 0.02


@pytest.mark.parametrize(("a", "cegplus", "egplus"), [
    (1 / 3, True, True), (1.0, True, False), (3.0, False, False)])
def test_polar_weak_mvi_conditions(a, cegplus, egplus):
    g = game("polar", a=a)
    lip, rho = g.lipschitz(), g.weak_mvi_rho()
    assert rho < 0
    assert (rho > -1 / (2 * lip)) == cegplus
    assert (rho > -1 / (8 * lip)) == egplus


def test_lipschitz_of_bilinear_is_one():
    assert game("bilinear").lipschitz() == pytest.approx(1.0)


def test_polar_initial_points_lie_in_the_annulus():
    z = game("polar", a=1.0).sample_init(500, torch.Generator().manual_seed(0))
    r = z.norm(dim=1)
    assert r.min() >= 0.55 - 1e-12 and r.max() <= 1.0 + 1e-12


def test_unknown_player_is_an_error():
    with pytest.raises(ValueError, match="player"):
        game("almost-bilinear", player="both")


# --------------------------------------------------------------------------------- methods


@pytest.mark.parametrize("name", sorted(methods("minmax-algorithm")))
def test_every_method_obeys_the_interface(name):
    g = game("almost-bilinear")
    z0 = g.sample_init(8, torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        oracle = Oracle(g, 0.1, torch.Generator().manual_seed(3))
        m = get_method("minmax-algorithm", name)()
        z, state = z0, m.init(oracle, z0)
        for k in range(5):
            z = m.step(oracle, z, state, 0.05, k)
        runs.append(z)
    assert runs[0].shape == z0.shape and torch.isfinite(runs[0]).all()
    torch.testing.assert_close(runs[0], runs[1])


@pytest.mark.parametrize(("name", "factor"), [
    ("gda", lambda g: math.sqrt(1 + g**2)),
    ("eg", lambda g: math.sqrt(1 - g**2 + g**4)),
    ("ppm", lambda g: 1 / math.sqrt(1 + g**2)),
    ("eg+", lambda g: math.sqrt((1 - g**2 / 2) ** 2 + (g / 2) ** 2)),
])
def test_one_step_on_the_bilinear_game_matches_the_closed_form(name, factor):
    """V(z) = Az with A a rotation by −90°, A² = −I: each update is a polynomial in A, so it
    scales every ‖z‖ by the same factor (GDA expands, EG and PPM contract)."""
    gamma = 0.3
    oracle = Oracle(game("bilinear"), 0.0, torch.Generator())
    z = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    m = get_method("minmax-algorithm", name)()
    out = m.step(oracle, z, m.init(oracle, z), gamma, 0)
    torch.testing.assert_close(out.norm(dim=1), factor(gamma) * z.norm(dim=1))


def test_ppm_solves_the_implicit_step():
    g = game("forsaken", offset=0.45)
    oracle = Oracle(g, 0.0, torch.Generator())
    z = g.sample_init(64, torch.Generator().manual_seed(0))
    out = get_method("minmax-algorithm", "ppm")().step(oracle, z, {}, 0.02, 0)
    assert float((out - z + 0.02 * g.operator(out)).abs().max()) <= 1e-8


def test_ogda_and_rfbs_remember_the_previous_iterate():
    oracle = Oracle(game("bilinear"), 0.0, torch.Generator())
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    for name in ("ogda", "rfbs"):
        m = get_method("minmax-algorithm", name)()
        state = m.init(oracle, z0)
        z1 = m.step(oracle, z0, state, 0.1, 0)
        torch.testing.assert_close(z1, z0 - 0.1 * oracle(z0))  # first step is a GDA step
        z2 = m.step(oracle, z1, state, 0.1, 1)
        if name == "ogda":
            expected = z1 - 0.1 * (2 * oracle(z1) - oracle(z0))
        else:
            expected = z1 - 0.1 * oracle(2 * z1 - z0)
        torch.testing.assert_close(z2, expected)


def test_alternating_gda_uses_the_fresh_x():
    oracle = Oracle(game("bilinear"), 0.0, torch.Generator())
    z = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    out = get_method("minmax-algorithm", "alt-gda")().step(oracle, z, {}, 0.5, 0)
    # x⁺ = x − γy = 0.5, then y⁺ = y + γx⁺ = 1.25
    torch.testing.assert_close(out, torch.tensor([[0.5, 1.25]], dtype=torch.float64))


def test_cegplus_update_matches_the_closed_form_on_a_scaled_identity():
    """V(z) = cz: z̄ = (1 − γc)z, Hz̄ − Hz = −γV(z̄) and α = σ/γ + ⟨V(z), V(z̄)⟩/‖V(z̄)‖²
    = −0.499 + 1/(1 − γc); the update is z − αγV(z̄)."""
    class Scaled:
        n_x = 1

        def __call__(self, z, xi=None):
            return 2.0 * z

        def draw(self, like):
            return None

    z = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    gamma = 0.1
    out = get_method("minmax-algorithm", "ceg+")().step(Scaled(), z, {}, gamma, 0)
    zbar = (1 - 2 * gamma) * z
    alpha = -0.499 + 1 / (1 - 2 * gamma)
    torch.testing.assert_close(out, z - alpha * gamma * 2.0 * zbar)


def test_adaptive_cegplus_step_satisfies_the_backtracking_condition():
    g = game("forsaken", offset=0.45)
    oracle = Oracle(g, 0.0, torch.Generator())
    z = g.sample_init(256, torch.Generator().manual_seed(0))
    v = oracle(z)
    method = get_method("minmax-algorithm", "ceg+adaptive")()
    gamma, zbar, vbar = method.extrapolate(oracle, z, v, None)
    gamma = gamma.squeeze(1)
    torch.testing.assert_close(zbar, z - gamma.unsqueeze(1) * v)
    assert (gamma * (vbar - v).norm(dim=1) <= 0.99 * (zbar - z).norm(dim=1)).all()
    from_curvature = 0.99 / torch.linalg.matrix_norm(g.jacobian(z), ord=2)
    assert (gamma <= from_curvature * (1 + 1e-12)).all()
    assert (gamma < from_curvature).any(), "some starts need backtracking on Forsaken"


# -------------------------------------------------------------------------------- detector


def circle(n: int, m: int, radius: float = 1.0, turns: float = 3.0) -> torch.Tensor:
    t = torch.linspace(0, 2 * math.pi * turns, m, dtype=torch.float64)
    ring = radius * torch.stack((torch.cos(t), torch.sin(t)), 1)
    return ring.expand(n, m, 2).clone()


def classify(tail: torch.Tensor, g=None) -> dict[str, torch.Tensor]:
    g = g or game("bilinear")
    n, m, d = tail.shape
    grad = g.operator(tail.reshape(n * m, d)).norm(dim=1).reshape(n, m)
    return classify_tails(tail, grad, g.critical_points, **THRESHOLDS)


def test_detector_fixed_point_is_converged_not_trapped():
    out = classify(torch.full((3, 50, 2), 1e-4, dtype=torch.float64))
    assert out["converged"].all() and not out["trapped"].any() and not out["periodic"].any()
    assert not out["diverged"].any()


def test_detector_circle_is_trapped_and_periodic():
    out = classify(circle(2, 200))
    assert out["trapped"].all() and out["periodic"].all()
    assert not out["converged"].any() and not out["diverged"].any()
    np.testing.assert_allclose(out["revolutions"].numpy(), 3.0, atol=1e-6)
    np.testing.assert_allclose(out["tail_dist"].numpy(), 1.0)


def test_detector_needs_full_turns_to_call_a_tail_trapped_or_periodic():
    out = classify(circle(1, 100, turns=0.8))
    assert not out["trapped"].any() and not out["periodic"].any()


def spiral(r_start: float, r_end: float, turns: float = 4.0, m: int = 256) -> torch.Tensor:
    """A tail winding ``turns`` times while its radius moves geometrically from r_start to r_end."""
    t = torch.linspace(0, 1, m, dtype=torch.float64)
    r = r_start * (r_end / r_start) ** t
    angle = 2 * math.pi * turns * t
    return (r.unsqueeze(1) * torch.stack((torch.cos(angle), torch.sin(angle)), 1)).unsqueeze(0)


def test_classifier_expanding_spiral_is_not_trapped():
    """The records' EG/OGDA/PPM tails (median distance 0.6, final 0.8, still spiralling out) were
    called trapped by the old distance-and-gradient test; they are not on their limit set."""
    out = classify(spiral(0.55, 0.8))
    assert float(out["tail_dist"]) >= 0.1 and float(out["tail_grad_norm"]) >= 0.05
    assert not out["trapped"].any() and not out["converged"].any()
    assert float(out["radial_drift"]) > 0.2


def test_classifier_contracting_spiral_is_not_trapped():
    out = classify(spiral(1.0, 0.6))
    assert not out["trapped"].any() and not out["converged"].any()
    assert float(out["radial_drift"]) < -0.2


def test_classifier_limit_cycle_is_trapped_with_its_radius():
    out = classify(spiral(1.15, 1.15))
    assert out["trapped"].all() and out["periodic"].all()
    np.testing.assert_allclose(out["radius"].numpy(), 1.15, rtol=1e-3)
    assert abs(float(out["radial_drift"])) < 1e-3


def test_classifier_simulated_almost_bilinear_cycle():
    """GDA with a small step on xy + εφ(y): a start inside and one outside the cycle both end
    trapped on it, radius ≈ 2/√3 ≈ 1.15 (up to the explicit step's O(γ/ε) outward bias)."""
    g = game("almost-bilinear", eps=0.1, player="max")
    z0 = torch.tensor([[0.3, 0.0], [2.0, 0.0]], dtype=torch.float64)
    tail = simulate(get_method("minmax-algorithm", "gda")(), Oracle(g, 0.0, torch.Generator()), z0,
                    Schedule(step=0.005), 40000, 36000, 256)
    out = classify(tail, g)
    assert out["trapped"].all()
    np.testing.assert_allclose(out["radius"].numpy(), 2 / math.sqrt(3), atol=0.05)
    early = simulate(get_method("minmax-algorithm", "gda")(), Oracle(g, 0.0, torch.Generator()), z0,
                     Schedule(step=0.005), 4000, 2000, 256)
    assert not classify(early, g)["trapped"].any(), "half-way there, still drifting"


def test_detector_divergence():
    t = torch.linspace(0, 12 * math.pi, 300, dtype=torch.float64)
    spiral = torch.exp(t / 4).unsqueeze(1) * torch.stack((torch.cos(t), torch.sin(t)), 1)
    tail = torch.stack((spiral, torch.full_like(spiral, float("nan"))))
    out = classify(tail)
    assert out["diverged"].all()
    assert not (out["trapped"] | out["converged"] | out["periodic"]).any()


def test_detector_converging_spiral_is_not_a_cycle():
    t = torch.linspace(0, 6 * math.pi, 300, dtype=torch.float64)
    spiral = (torch.exp(-t / 8).unsqueeze(1) * torch.stack((torch.cos(t), torch.sin(t)), 1))
    out = classify(spiral.unsqueeze(0))
    assert not out["periodic"].any() and not out["converged"].any()


def test_detector_noise_around_a_point_is_not_periodic():
    gen = torch.Generator().manual_seed(0)
    jitter = 0.5 + 0.05 * torch.randn(4, 400, 2, generator=gen, dtype=torch.float64)
    assert not classify(jitter)["periodic"].any()


# ------------------------------------------------------------------------------ experiment


def test_tail_start_is_a_fraction_of_ode_time():
    assert tail_start(Schedule(step=0.1), 1000, 0.2) == 800
    vanishing = Schedule(step=0.2, decay=0.6, offset=100)
    start = tail_start(vanishing, 2000, 0.2)
    times = np.cumsum([vanishing(k) for k in range(2000)])
    assert start < 1600  # later steps are shorter, so the time tail holds more iterates
    assert times[start - 1] >= 0.8 * times[-1] - vanishing(start)


def test_schedule_labels():
    assert Schedule(step=0.01).label() == "0.01"
    assert Schedule(step=0.2, decay=0.6, offset=100).label() == "0.2(1+k/100)^-0.6"


def test_experiment_rows_one_per_trajectory_and_deterministic():
    params = MinMaxParams(game="bilinear", algorithm="eg", schedule=Schedule(step=0.1),
                          trajectories=16, steps=1500, tail_samples=32)
    table = minmax_dynamics(params, (0, 1), torch.device("cpu"))
    assert len(table) == 32 and list(table.seed.unique()) == [0, 1]
    assert set(table.traj) == set(range(16))
    for col in ("converged", "trapped", "diverged", "periodic"):
        assert set(table[col].unique()) <= {0, 1}
    assert table.converged.all() and not table.trapped.any()
    again = minmax_dynamics(params, (0, 1), torch.device("cpu"))
    assert table.equals(again)


def test_batched_run_equals_per_trajectory_loop():
    g = game("forsaken", offset=0.5)
    z0 = g.sample_init(6, torch.Generator().manual_seed(0))
    sched = Schedule(step=0.01)
    method = get_method("minmax-algorithm", "ogda")()
    oracle = Oracle(g, 0.0, torch.Generator())
    batched = simulate(method, oracle, z0, sched, 200, 150, 10)
    single = torch.cat([simulate(method, oracle, z0[i:i + 1], sched, 200, 150, 10)
                        for i in range(6)])
    torch.testing.assert_close(batched, single)


def test_unknown_names_are_spec_errors():
    with pytest.raises(ValueError, match="unknown game"):
        MinMaxParams(game="chess")
    with pytest.raises(ValueError, match="unknown algorithm"):
        MinMaxParams(algorithm="adam")
    with pytest.raises(ValueError, match="game 'polar'"):
        MinMaxParams(game="polar", game_params={"eps": 0.1})


def test_adaptive_methods_report_their_step_rule():
    params = MinMaxParams(game="polar", algorithm="ceg+adaptive", trajectories=4, steps=20,
                          tail_samples=8)
    assert set(minmax_dynamics(params, (0,), torch.device("cpu")).step_rule) == {"adaptive"}


def test_each_seed_has_its_own_noise_stream():
    """A seed's rows (with a noisy oracle) do not depend on which other seeds share its cell."""
    params = MinMaxParams(game="almost-bilinear", algorithm="eg", noise=0.1, trajectories=8,
                          steps=300, tail_samples=32, schedule=Schedule(step=0.05))
    alone = minmax_dynamics(params, (7,), torch.device("cpu"))
    for others in ((3, 7), (7, 11, 5)):
        cell = minmax_dynamics(params, others, torch.device("cpu"))
        mine = cell[cell.seed == 7].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)
    noiseless = minmax_dynamics(params.model_copy(update={"noise": 0.0}), (7,), torch.device("cpu"))
    assert not np.allclose(noiseless.final_dist, alone.final_dist), "the example must be noisy"


FUSED_CASES = ([(name, params, alg) for name, params in GAME_CASES for alg in ("gda", "ppm")]
               + [("almost-bilinear", {"eps": 0.1}, alg) for alg in ("eg", "eg+", "ogda")])


@pytest.mark.parametrize(("name", "params", "algorithm"), FUSED_CASES)
def test_fused_kernel_numba_and_numpy_paths_are_identical(name, params, algorithm):
    """Every game's operator and Jacobian (GDA, PPM) and every method on one game: the numba
    kernel and the numpy fallback agree bit for bit, and both follow the torch loop."""
    g = game(name, **params)
    method = get_method("minmax-algorithm", algorithm)()
    z0 = g.sample_init(16, torch.Generator().manual_seed(0))
    sched = Schedule(step=0.02, decay=0.6, offset=50)
    lrs = np.array([sched(k) for k in range(300)])
    keep = tail_indices(0, 300, 40)
    compiled = g.simulate_fused(method, z0.numpy(), lrs, keep)
    fallback = g.simulate_fused(method, z0.numpy(), lrs, keep, compiled=False)
    np.testing.assert_array_equal(compiled, fallback)
    torch_path = simulate(method, Oracle(g, 0.0, torch.Generator()), z0, sched, 300, 0, 40)
    # PPM stops Newton per trajectory here, batch-wide in torch: both within 1e-8 per step
    tol = {"rtol": 0, "atol": 1e-5} if algorithm == "ppm" else {"rtol": 1e-9, "atol": 1e-12}
    np.testing.assert_allclose(compiled, torch_path.numpy(), **tol)


def test_segplus_takes_the_decaying_alpha_step_without_correction():
    """SEG+: z⁺ = z − α_kγV(z − γV(z)), α_k = 0.5/(1 + k/100) (α_100 = 0.25), no memory."""
    g = game("polar", a=1.0)
    oracle = Oracle(g, 0.0, torch.Generator())
    z = g.sample_init(8, torch.Generator().manual_seed(0))
    seg = get_method("minmax-algorithm", "seg+")()
    out = seg.step(oracle, z, seg.init(oracle, z), 0.1, 100)
    torch.testing.assert_close(out, z - 0.25 * 0.1 * g.operator(z - 0.1 * g.operator(z)))


@pytest.mark.parametrize("algorithm", ["gda", "eg", "ogda", "ppm"])
def test_noisy_fused_kernel_numba_and_numpy_paths_are_identical(algorithm):
    g = game("almost-bilinear", eps=0.1, player="max")
    method = get_method("minmax-algorithm", algorithm)()
    z0 = g.sample_init(12, torch.Generator().manual_seed(0))
    lrs = np.full(1500, 0.02)  # more than one chunk of steps
    keep = tail_indices(1000, 1500, 20)
    runs = [g.simulate_fused(method, z0.numpy(), lrs, keep, sigma=0.1, compiled=compiled,
                             generators=[torch.Generator().manual_seed(s) for s in (1, 2, 3)])
            for compiled in (True, False)]
    np.testing.assert_array_equal(*runs)
    exact = g.simulate_fused(method, z0.numpy(), lrs, keep)
    assert not np.allclose(runs[0], exact)
