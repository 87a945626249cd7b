"""Trajectory-steps per second of the min-max runner: one batched tensor of trajectories against
a Python loop over single trajectories, in the same run (``pytest --benchmark-enable
tests/benchmarks/test_minmax_speed.py``). ``extra_info["trajectory_steps_per_s"]`` holds the rate;
the goal is 10⁷ trajectory-steps/s for the batched runner on a CPU."""

from __future__ import annotations

import pytest
import torch

from theorybench.experiments.minmax import Oracle, Schedule, simulate
from theorybench.registry import get_method

STEPS = 200
BATCH = 8192
LOOPED = 16


def _runner(kind: str, algorithm: str):
    game = get_method("minmax-games", "almost-bilinear")()
    oracle = Oracle(game, 0.0, torch.Generator().manual_seed(0))
    method = get_method("minmax", algorithm)()
    schedule = Schedule(step=0.01)
    n = BATCH if kind == "batched" else LOOPED
    z0 = game.sample_init(n, torch.Generator().manual_seed(0))
    if kind == "batched":
        return n, lambda: simulate(method, oracle, z0, schedule, STEPS, STEPS - 8, 8)
    return n, lambda: [simulate(method, oracle, z0[i:i + 1], schedule, STEPS, STEPS - 8, 8)
                       for i in range(n)]


@pytest.mark.parametrize("algorithm", ["gda", "eg", "ppm"])
@pytest.mark.parametrize("kind", ["batched", "loop"])
def test_trajectory_steps_per_second(benchmark, kind, algorithm):
    n, run = _runner(kind, algorithm)
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["trajectories"] = n
    benchmark.extra_info["steps"] = STEPS
    if benchmark.stats is not None:
        benchmark.extra_info["trajectory_steps_per_s"] = n * STEPS / benchmark.stats.stats.mean
