"""MNIST-1D (Greydanus and Steinbach, 2024), generated locally by the ``mnist1d`` package.

``load_mnist1d_tensors`` runs the package's generator ``make_dataset`` with its default arguments
(``get_dataset_args()``: 5000 sequences of length 40, 10 classes, seed 42) and returns all 5000
(its 4000 training and 1000 test sequences, concatenated); the package's download
(``get_dataset``) is never used. The generator seeds NumPy's and Python's global random states;
they are restored afterwards, so loading the data has no side effect on other draws. While it
runs, the package's ``interpolate`` (a SciPy ``interp1d`` object built per call, most of the
generator's time) is replaced by :func:`linear_interpolate`, the ``np.interp`` call that
``interp1d`` makes for these signals, so the data are bit for bit the package's.
"""

from __future__ import annotations

import importlib
import random
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=256)
def _grids(length: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``length`` and ``n`` equispaced points of [0, 1]."""
    return np.linspace(0, 1, length), np.linspace(0, 1, n)


def linear_interpolate(x: np.ndarray, n: int) -> np.ndarray:
    """``mnist1d.transform.interpolate`` for the generator's 1-D float64 signals: ``x`` on
    ``len(x)`` equispaced points of [0, 1] read at ``n`` equispaced points by ``np.interp``,
    which is what SciPy's linear ``interp1d`` delegates to for such a signal (so the result is
    bit for bit the same), without building an ``interp1d`` and its grids per call."""
    if x.ndim != 1 or x.dtype != np.float64:
        raise TypeError(f"a 1-D float64 signal is expected, got {x.dtype} of shape {x.shape}")
    scale, new_scale = _grids(len(x), n)
    return np.interp(new_scale, scale, x)


@lru_cache(maxsize=1)
def _mnist1d() -> tuple[np.ndarray, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # the module (the package's __init__ shadows the name with its function `transform`)
    transforms = importlib.import_module("mnist1d.transform")
    np_state, py_state = np.random.get_state(), random.getstate()
    package_interpolate = transforms.interpolate
    transforms.interpolate = linear_interpolate
    try:
        data = make_dataset(get_dataset_args())
    finally:
        transforms.interpolate = package_interpolate
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
