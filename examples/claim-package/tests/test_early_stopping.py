"""The experiment kind and the regression-path methods against closed forms."""

from __future__ import annotations

import pytest
import torch
from theorybench_example.paths import RegressionPath

from theorybench.registry import get_experiment, get_method, methods, protocol_mismatch


def problem(seed: int = 0, s: int = 2, n: int = 8, d: int = 12):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(s, n, d, generator=g, dtype=torch.float64)
    return x, torch.randn(s, n, generator=g, dtype=torch.float64)


def test_methods_are_registered_and_satisfy_the_protocol():
    found = methods("regression-path")
    assert {"gd", "gradient-flow"} <= set(found)
    for obj in found.values():
        assert protocol_mismatch(obj, RegressionPath) is None


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_gd_and_flow_reach_the_ridge_solution(ridge):
    x, y = problem()
    n, d = x.shape[-2:]
    gram = x.transpose(-1, -2) @ x / n
    xty = (x.transpose(-1, -2) @ y.unsqueeze(-1)).squeeze(-1) / n
    if ridge > 0:
        target = torch.linalg.solve(gram + ridge * torch.eye(d, dtype=x.dtype), xty)
    else:  # from zero, the flow and GD stay in the row space: the minimum-norm solution
        target = (torch.linalg.pinv(x) @ y.unsqueeze(-1)).squeeze(-1)
    for name in ("gd", "gradient-flow"):
        beta = get_method("regression-path", name)(x, y, ridge, 0.05, [0.0, 2000.0])
        assert torch.allclose(beta[:, 0], torch.zeros_like(target))
        assert torch.allclose(beta[:, 1], target, atol=1e-6), name


def test_gd_with_a_small_step_follows_the_flow():
    x, y = problem(1)
    times = [0.0, 0.5, 2.0, 8.0]
    gd = get_method("regression-path", "gd")(x, y, 0.3, 0.001, times)
    flow = get_method("regression-path", "gradient-flow")(x, y, 0.3, 0.001, times)
    assert torch.allclose(gd, flow, atol=2e-3)


def test_kind_rows_and_null_predictor_risk():
    kind = get_experiment("early_stopping_regression")
    table = kind({"n": 10, "d": 15, "steps": [0, 1, 10], "signal": 2.0}, (0, 1),
                 torch.device("cpu"))
    assert len(table) == 6 and set(table.seed) == {0, 1}
    start = table[table.step == 0]
    assert start.risk.tolist() == pytest.approx([4.0, 4.0])  # ‖β*‖² at β = 0
    assert (start.norm == 0).all()
    assert table.time.max() == pytest.approx(2.0)


def test_unknown_method_is_a_spec_error():
    kind = get_experiment("early_stopping_regression")
    with pytest.raises(ValueError, match="unknown regression-path method"):
        kind.params.model_validate({"method": "adam"})
