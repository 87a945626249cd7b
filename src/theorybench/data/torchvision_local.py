"""MNIST and CIFAR-10 read from a local folder with torchvision (never downloaded here).

``load_local(name, root, train)`` returns the whole split as two tensors: images as float32 in
[0, 1] of shape (N, 1, 28, 28) for MNIST and (N, 3, 32, 32) for CIFAR-10, and int64 labels.
The folder layout is torchvision's own: ``<root>/MNIST/raw/*-ubyte[.gz]`` and
``<root>/cifar-10-batches-py/``. When the files are absent, :class:`LocalDataMissing` (a
``FileNotFoundError``) names the folder and how to fetch the data once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

DatasetName = Literal["mnist", "cifar10"]

_LAYOUT = {"mnist": "MNIST/raw", "cifar10": "cifar-10-batches-py"}
_CLASS = {"mnist": "MNIST", "cifar10": "CIFAR10"}


class LocalDataMissing(FileNotFoundError):
    """A torchvision data set is not in the local folder the spec points at."""

    def __init__(self, name: DatasetName, root: Path) -> None:
        folder = root / _LAYOUT[name]
        fetch = (
            f"python -c \"import torchvision; torchvision.datasets.{_CLASS[name]}"
            f"('{root}', train=True, download=True); torchvision.datasets.{_CLASS[name]}"
            f"('{root}', train=False, download=True)\""
        )
        super().__init__(
            f"{name} not found under {folder} (theorybench never downloads data). "
            f"Fetch it once on a machine with network access: {fetch}, "
            f"or point the task's data root at an existing torchvision folder."
        )
        self.name, self.root = name, root


@lru_cache(maxsize=4)
def _raw(name: DatasetName, root: str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision

    cls = getattr(torchvision.datasets, _CLASS[name])
    try:
        dataset = cls(root, train=train, download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found ..."
        raise LocalDataMissing(name, Path(root)) from exc
    images = dataset.data
    images = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    labels = np.asarray(dataset.targets, dtype=np.int64)
    return images, labels


def load_local(
    name: DatasetName, root: str | Path, train: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``train`` (or test) split of ``name`` from ``root``: ``(images, labels)``."""
    if name not in _LAYOUT:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(_LAYOUT)}")
    images, labels = _raw(name, str(Path(root).expanduser().resolve()), bool(train))
    x = torch.from_numpy(images).to(torch.float32).div_(255.0)
    x = x.unsqueeze(1) if name == "mnist" else x.permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels.copy())


def image_pool(dataset: str, data_root: str | None
               ) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """The images (N, C, H, W) and labels an experiment draws from: scikit-learn's ``digits``
    as 1×8×8 images (no fixed split: ``None``), or the local torchvision data set ``dataset``
    under ``data_root``, its training images then its test images (the training set's size)."""
    if dataset == "digits":
        from theorybench.data.digits import load_digits_tensors

        x, y = load_digits_tensors()
        return x.view(-1, 1, 8, 8), y, None
    if not data_root:
        raise ValueError(f"dataset {dataset} is read from a local torchvision folder: set the "
                         "data_root parameter (theorybench never downloads data)")
    x_tr, y_tr = load_local(dataset, data_root, train=True)  # type: ignore[arg-type]
    x_te, y_te = load_local(dataset, data_root, train=False)  # type: ignore[arg-type]
    return torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te]), len(y_tr)
