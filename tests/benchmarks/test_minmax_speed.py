"""Trajectory-steps per second of the min-max runner, measured in one run (``pytest
--benchmark-enable tests/benchmarks/test_minmax_speed.py``): the fused kernel of
``baselines/minmax.py`` (numba; and its pure-numpy fallback) against the batched torch loop
(``simulate``: one tensor of trajectories, one Python step per iteration) and a Python loop over
single trajectories. ``extra_info["trajectory_steps_per_s"]`` holds the rate and, for every
runner after ``batched`` of the same algorithm, ``extra_info["ratio_to_batched"]``. The goal
(issue 13): GDA and EG at ≥ 10⁸ trajectory-steps/s on one core. Not a timed assertion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorybench.experiments.minmax import Oracle, Schedule, simulate, tail_indices
from theorybench.registry import get_method

STEPS = 200
BATCH = 8192
LOOPED = 16
RATES: dict[tuple[str, str], float] = {}


def _runner(kind: str, algorithm: str):
    game = get_method("game", "almost-bilinear")()
    oracle = Oracle(game, 0.0, torch.Generator().manual_seed(0))
    method = get_method("minmax-algorithm", algorithm)()
    schedule = Schedule(step=0.01)
    n = LOOPED if kind == "loop" else BATCH
    z0 = game.sample_init(n, torch.Generator().manual_seed(0))
    if kind == "batched":
        return n, lambda: simulate(method, oracle, z0, schedule, STEPS, STEPS - 8, 8)
    if kind == "loop":
        return n, lambda: [simulate(method, oracle, z0[i:i + 1], schedule, STEPS, STEPS - 8, 8)
                           for i in range(n)]
    lrs = np.array([schedule(k) for k in range(STEPS)])
    keep = tail_indices(STEPS - 8, STEPS, 8)
    compiled = kind == "fused"
    return n, lambda: game.simulate_fused(method, z0.numpy(), lrs, keep, compiled=compiled)


@pytest.mark.parametrize("algorithm", ["gda", "eg", "ppm"])
@pytest.mark.parametrize("kind", ["batched", "fused", "fused-numpy", "loop"])
def test_trajectory_steps_per_second(benchmark, kind, algorithm):
    n, run = _runner(kind, algorithm)
    run()  # compile (numba) outside the timed rounds
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["trajectories"] = n
    benchmark.extra_info["steps"] = STEPS
    if benchmark.stats is not None:
        rate = n * STEPS / benchmark.stats.stats.mean
        RATES[kind, algorithm] = rate
        benchmark.extra_info["trajectory_steps_per_s"] = rate
        if kind != "batched" and ("batched", algorithm) in RATES:
            benchmark.extra_info["ratio_to_batched"] = rate / RATES["batched", algorithm]
