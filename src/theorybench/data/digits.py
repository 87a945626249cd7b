"""scikit-learn's 8x8 digits (1797 images, shipped with the package: no download).

``load_digits_tensors`` returns pixels scaled to [0, 1] and integer labels, read on first use.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # here: scikit-learn takes ~0.5 s to import

    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits: inputs of shape (1797, 64) in [0, 1] and labels in 0..9."""
    x, y = _digits()
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
