"""A small all-convolutional ReLU network for 8×8 images, batched over seeds.

``depth − 1`` convolutions (3×3, padding 1, ``width`` channels, no biases, ReLU), global average
pooling, and a linear read-out to one output: h(a) = v · mean_pixels σ(C_{L−1} ∗ … σ(C_1 ∗ a)).
Seeds run as convolution groups: the S networks are one grouped convolution with S groups.
Initialization: He (variance 2/fan-in) or LeCun (1/fan-in), fan-in = channels_in · 9; the
read-out has variance 2/m (He) or 1/m (LeCun).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from theorybench.device import generator

CNN_INITS = {"he": 2.0, "lecun": 1.0}


def init_cnn(
    seeds: tuple[int, ...], width: int, depth: int, scheme: str,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Kernels of shape (S, m, c_in, 3, 3) for each convolution, then the read-out (S, 1, m)."""
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    gain = CNN_INITS[scheme]
    shapes = [(width, 1, 3, 3)] + [(width, width, 3, 3)] * (depth - 2)
    per_seed = []
    for seed in seeds:
        g = generator(seed)
        layers = [torch.randn(s, generator=g) * (gain / (s[1] * 9)) ** 0.5 for s in shapes]
        layers.append(torch.randn((1, width), generator=g) * (gain / width) ** 0.5)
        per_seed.append(layers)
    return [torch.stack([w[i] for w in per_seed]).to(device) for i in range(depth)]


def cnn_forward(weights: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Outputs (S, N) for images (N, H, W) shared by all seeds, or (S, N, H, W)."""
    s = weights[0].shape[0]
    x = images if images.dim() == 4 else images.expand(s, *images.shape)
    n, hh, ww = x.shape[1:]
    h = x.permute(1, 0, 2, 3)  # (N, S·1, H, W): seed s is group s
    for w in weights[:-1]:
        h = torch.relu(F.conv2d(h, w.reshape(-1, *w.shape[2:]), padding=1, groups=s))
    pooled = h.reshape(n, s, -1, hh * ww).mean(-1)  # (N, S, m)
    return torch.einsum("nsm,sm->sn", pooled, weights[-1][:, 0])
