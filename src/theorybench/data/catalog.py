"""The data sets experiment kinds read, registered by name (``theorybench.registry.datasets()``).

* ``digits``   scikit-learn's 8×8 digits, shipped with scikit-learn: 1797 images in [0, 1].
* ``mnist1d``  MNIST-1D, generated locally by the ``mnist1d`` package: 5000 sequences of 40.
* ``mnist``    MNIST from a local torchvision folder (never downloaded): (N, 1, 28, 28).
* ``cifar10``  CIFAR-10 from a local torchvision folder (never downloaded): (N, 3, 32, 32).

Local folders follow torchvision's layout; a kind that reads one declares a ``data_root``
parameter, which ``--data-root`` fills (:mod:`theorybench.dryrun`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from theorybench.data.digits import load_digits_tensors
from theorybench.data.mnist1d import load_mnist1d_tensors
from theorybench.data.torchvision_local import load_local
from theorybench.registry import dataset


@dataset("digits", description="scikit-learn's 8×8 digits (no download): images in [0, 1]")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return load_digits_tensors()


@dataset("mnist1d", description="MNIST-1D generated locally by the mnist1d package (default "
         "arguments, never downloaded): (5000, 40) standardised, labels 0..9")
def mnist1d() -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist1d_tensors()


@dataset("mnist", description="MNIST from a local torchvision folder: (N, 1, 28, 28) in [0, 1]")
def mnist(root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return load_local("mnist", root, train)


@dataset("cifar10", description="CIFAR-10 from a local torchvision folder: (N, 3, 32, 32)")
def cifar10(root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return load_local("cifar10", root, train)
