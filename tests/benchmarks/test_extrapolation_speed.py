"""One smoke cell of ``extrapolation/pn-degree-cubic`` (a degree-3 CCP net and a two-layer ReLU
MLP trained on the same data, then read beyond the training range), with the 8 seeds batched
against a Python loop over single seeds (``pytest --benchmark-enable
tests/benchmarks/test_extrapolation_speed.py``). ``extra_info["seed_steps_per_s"]`` holds the
rate: seeds × Adam steps × 2 models per second."""

from __future__ import annotations

import pytest
import torch

from theorybench.experiments.extrapolation import ExtrapolationParams, extrapolation_fit

SEEDS = tuple(range(8))
PARAMS = ExtrapolationParams(target="cubic", model="pn", degree=3, width=32, reference_mlp=True,
                             mlp_width=64, n_train=128, steps=200, fit_points=16,
                             curve_points=25)
CPU = torch.device("cpu")


@pytest.mark.parametrize("kind", ["batched", "loop"])
def test_pn_and_mlp_cell(benchmark, kind: str) -> None:
    if kind == "batched":
        def run() -> None:
            extrapolation_fit(PARAMS, SEEDS, CPU)
    else:
        def run() -> None:
            for seed in SEEDS:
                extrapolation_fit(PARAMS, (seed,), CPU)
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["seeds"] = len(SEEDS)
    benchmark.extra_info["steps"] = PARAMS.steps
    if benchmark.stats is not None:
        benchmark.extra_info["seed_steps_per_s"] = (
            2 * len(SEEDS) * PARAMS.steps / benchmark.stats.stats.mean
        )
