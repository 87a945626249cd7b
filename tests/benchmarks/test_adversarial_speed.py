"""PGD adversarial training, seeds batched versus a Python loop over seeds (run with
``pytest --benchmark-enable tests/benchmarks/test_adversarial_speed.py``).

One epoch of PGD-3 training (the robust-overfitting task's base parameters: 300 digits, batch 32,
MLP 64-256-256-10) for 6 seeds: ``batched`` trains one :class:`SeedMLP` holding the 6 networks
(batched matmuls, attacks batched over seeds); ``loop`` trains 6 one-seed networks one after the
other. The same for the BETA attack (9 targeted margin attacks per example). ``extra_info`` holds
the example-passes per second (forward + backward of one example through one network)."""

from __future__ import annotations

import pytest
import torch

from theorybench.attacks import ThreatModel
from theorybench.data.digits import load_digits_tensors
from theorybench.models.mlp import SeedMLP
from theorybench.registry import get_method
from theorybench.streams import streams

SEEDS = tuple(range(6))
N, BATCH = 300, 32
THREAT = ThreatModel(eps=0.05, step_size=0.025, steps=3, fgsm_step_size=0.0625, num_classes=10)
PASSES = {"pgd": THREAT.steps + 1, "beta": 9 * THREAT.steps + 1}


def _epoch(method_name: str, seeds: tuple[int, ...]) -> None:
    method = get_method("at-method", method_name)
    x, y = load_digits_tensors()
    net = SeedMLP(streams(seeds, "test"), [64, 256, 256, 10])
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    xs = x[:N].view(1, N, 1, 8, 8).expand(len(seeds), N, 1, 8, 8)
    ys = y[:N].expand(len(seeds), N)
    for start in range(0, N, BATCH):
        loss = method(net, xs[:, start:start + BATCH], ys[:, start:start + BATCH], THREAT, gens)
        opt.zero_grad()
        loss.mean(1).sum().backward()
        opt.step()


@pytest.mark.parametrize("method_name", ["pgd", "beta"])
@pytest.mark.parametrize("kind", ["batched", "loop"])
def test_adversarial_epoch_speed(benchmark, kind: str, method_name: str) -> None:
    if kind == "batched":
        def run() -> None:
            _epoch(method_name, SEEDS)
    else:
        def run() -> None:
            for seed in SEEDS:
                _epoch(method_name, (seed,))
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable (a plain run)
        passes = len(SEEDS) * N * PASSES[method_name]
        benchmark.extra_info["example_passes_per_s"] = passes / benchmark.stats.stats.mean
