"""Batched versus naive double-descent sweep (run with ``pytest --benchmark-enable``).

Both compute the minimum-norm random-features test predictions for every m/n of the smoke sweep,
every seed and every feature draw, from the same data and frequencies: ``batched`` builds the
(S, D, n, m) feature tensor of a ratio at once and calls ``torch.linalg.pinv`` on the whole
batch; ``naive`` loops over seeds and draws with 2-D tensors. pytest-benchmark prints both
timings in the group ``double-descent-sweep``; their ratio is the speed-up of batching.
"""

from __future__ import annotations

import torch

from theorybench.experiments.double_descent import (
    RFData,
    Split,
    draw_features,
    featurize,
    make_split,
    min_norm_fit,
)

RATIOS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.33, 2.0, 4.0)
SEEDS = tuple(range(6))
DRAWS = 8
DATA = RFData(name="digits", n_train=100, n_val=60, n_test=200)


def _features(split: Split, ratio: float, seeds: tuple[int, ...]
              ) -> tuple[torch.Tensor, torch.Tensor]:
    m = round(ratio * split.x_train.shape[-2])
    return draw_features(split.x_train, m, DRAWS, seeds)


def batched_sweep(split: Split, seeds: tuple[int, ...]) -> list[torch.Tensor]:
    """Test predictions (S, D, t) per ratio, seeds and draws batched."""
    out = []
    for ratio in RATIOS:
        w, b = _features(split, ratio, seeds)
        phi_tr = featurize(split.x_train, w, b, "fourier")
        phi_te = featurize(split.x_test, w, b, "fourier")
        coef = min_norm_fit(phi_tr, split.y_train.unsqueeze(1).expand(-1, DRAWS, -1))
        out.append(torch.einsum("sdtm,sdm->sdt", phi_te, coef))
    return out


def naive_sweep(split: Split, seeds: tuple[int, ...]) -> list[torch.Tensor]:
    """The same predictions with a Python loop over seeds and draws (2-D solves)."""
    out = []
    for ratio in RATIOS:
        w, b = _features(split, ratio, seeds)
        preds = torch.empty(len(seeds), DRAWS, split.x_test.shape[-2], dtype=w.dtype)
        for s in range(len(seeds)):
            for d in range(DRAWS):
                ws, bs = w[s : s + 1, d : d + 1], b[s : s + 1, d : d + 1]
                phi_tr = featurize(split.x_train[s : s + 1], ws, bs, "fourier")[0, 0]
                phi_te = featurize(split.x_test[s : s + 1], ws, bs, "fourier")[0, 0]
                preds[s, d] = phi_te @ (torch.linalg.pinv(phi_tr) @ split.y_train[s])
        out.append(preds)
    return out


def test_batched_and_naive_sweeps_agree() -> None:
    seeds = SEEDS[:2]
    split = make_split(DATA, seeds)
    for fast, slow in zip(batched_sweep(split, seeds), naive_sweep(split, seeds), strict=True):
        torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-6)


def test_batched_sweep_speed(benchmark) -> None:
    split = make_split(DATA, SEEDS)
    benchmark.group = "double-descent-sweep"
    benchmark.pedantic(batched_sweep, args=(split, SEEDS), rounds=3, iterations=1, warmup_rounds=1)


def test_naive_sweep_speed(benchmark) -> None:
    split = make_split(DATA, SEEDS)
    benchmark.group = "double-descent-sweep"
    benchmark.pedantic(naive_sweep, args=(split, SEEDS), rounds=3, iterations=1, warmup_rounds=1)
