"""MNIST-1D (Greydanus and Steinbach, 2024), generated locally by the ``mnist1d`` package.

``load_mnist1d_tensors`` runs the package's generator ``make_dataset`` with its default arguments
(``get_dataset_args()``: 5000 sequences of length 40, 10 classes, seed 42) and returns all 5000
(its 4000 training and 1000 test sequences, concatenated); the package's download
(``get_dataset``) is never used. The generator seeds NumPy's and Python's global random states;
they are restored afterwards, so loading the data has no side effect on other draws.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _mnist1d() -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return x, y


def load_mnist1d_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5000 MNIST-1D sequences: inputs (5000, 40) (standardised by the generator) and
    labels in 0..9."""
    x, y = _mnist1d()
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
