"""Small grayscale crops of scikit-learn's two sample photographs (china, flower; shipped with the
package: no download).

``sample_crop(name, size, block)`` returns a (size, size) float32 image in [0, 1]: the photograph
in grayscale (ITU-R 601 luma), the square crop of side ``block * size`` at the named position,
averaged over ``block`` × ``block`` blocks.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

# name -> (photograph, crop centre as fractions of (height, width))
CROPS: dict[str, tuple[int, float, float]] = {
    "china": (0, 0.5, 0.5),
    "china-left": (0, 0.55, 0.25),
    "flower": (1, 0.5, 0.5),
    "flower-right": (1, 0.45, 0.72),
}


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images  # here: scikit-learn takes ~0.5 s to import

    images = load_sample_images().images
    luma = np.array([0.299, 0.587, 0.114])
    return tuple((im.astype(np.float64) @ luma / 255.0) for im in images)


def sample_crop(name: str, size: int, block: int = 4) -> torch.Tensor:
    """The (size, size) grayscale crop ``name`` (a key of ``CROPS``), values in [0, 1]."""
    if name not in CROPS:
        raise ValueError(f"unknown crop {name!r}; known: {sorted(CROPS)}")
    index, fy, fx = CROPS[name]
    photo = _photos()[index]
    side = block * size
    if side > min(photo.shape):
        raise ValueError(f"size {size} too large: the crop of side {side} exceeds the photograph")
    top = int(np.clip(round(fy * photo.shape[0] - side / 2), 0, photo.shape[0] - side))
    left = int(np.clip(round(fx * photo.shape[1] - side / 2), 0, photo.shape[1] - side))
    crop = photo[top:top + side, left:left + side]
    small = crop.reshape(size, block, size, block).mean((1, 3))
    return torch.from_numpy(small.astype(np.float32))
