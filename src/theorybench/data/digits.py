"""scikit-learn's 8x8 digits (1797 images, shipped with the package: no download).

``load_digits_tensors`` returns pixels scaled to [0, 1] and integer labels; ``digit_pair`` picks
two classes with ±1 targets; ``split`` makes a seeded train/validation/test split.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_digits


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits: inputs of shape (1797, 64) in [0, 1] and labels in 0..9."""
    x, y = _digits()
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


def digit_pair(a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits of classes ``a`` and ``b`` with targets +1 (class a) and -1 (class b)."""
    x, y = load_digits_tensors()
    keep = (y == a) | (y == b)
    return x[keep], torch.where(y[keep] == a, 1.0, -1.0)


def split(
    n: int, sizes: tuple[int, ...], seed: int
) -> tuple[torch.Tensor, ...]:
    """Disjoint random index sets of the given sizes drawn from ``range(n)``."""
    if sum(sizes) > n:
        raise ValueError(f"split sizes {sizes} exceed the {n} available examples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, start = [], 0
    for size in sizes:
        out.append(perm[start : start + size])
        start += size
    return tuple(out)
