"""Small multi-class classifiers batched over seeds: an MLP and a two-convolution CNN.

Both map inputs of shape (S, B, *input) to logits (S, B, K): S independent networks, seed s
reading batch slice s. They are ``nn.Module``\\ s whose parameters carry the leading seed
dimension, so one optimizer step updates the S networks independently (elementwise optimizers
such as SGD with momentum, weight decay, or Adam never mix seeds: the loss is a sum of per-seed
losses).

* :class:`SeedMLP`: h⁽⁰⁾ = flatten(a), h⁽ˡ⁾ = ReLU(h⁽ˡ⁻¹⁾ W_l + b_l), logits = h⁽ᴸ⁻¹⁾ W_L + b_L,
  computed with batched matmuls (``torch.baddbmm``).
* :class:`SeedCNN`: the MNIST network of Wong, Rice, Kolter (ICLR 2020), conv(c→16, 4, stride 2,
  pad 1) – ReLU – conv(16→32, 4, stride 2, pad 1) – ReLU – fc(·→100) – ReLU – fc(100→K); the S
  networks run as one grouped convolution with S groups.

Initialization is PyTorch's default for ``nn.Linear``/``nn.Conv2d``: weights and biases
U(−1/√fan_in, 1/√fan_in), drawn for seed s from ``generator(s)`` alone, so a network does not
depend on the other seeds of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from theorybench.device import generator


def _uniform(shape: Sequence[int], fan_in: int, g: torch.Generator) -> torch.Tensor:
    bound = fan_in**-0.5
    return (torch.rand(tuple(shape), generator=g) * 2 - 1) * bound


def _stacked(
    seeds: Sequence[int], shapes: Sequence[tuple[Sequence[int], int]]
) -> list[torch.Tensor]:
    """For each (shape, fan_in), a tensor (S, *shape) whose slice s is drawn from generator(s)
    (all of seed s's tensors from one generator, in order)."""
    per_seed = []
    for seed in seeds:
        g = generator(seed)
        per_seed.append([_uniform(shape, fan_in, g) for shape, fan_in in shapes])
    return [torch.stack([p[i] for p in per_seed]) for i in range(len(shapes))]


class SeedMLP(nn.Module):
    """ReLU MLP with layer sizes ``sizes`` = (d_in, h_1, …, K), one network per seed."""

    def __init__(self, seeds: Sequence[int], sizes: Sequence[int]) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least input and output sizes, got {list(sizes)}")
        shapes = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            shapes += [((d_in, d_out), d_in), ((1, d_out), d_in)]
        tensors = _stacked(seeds, shapes)
        self.weights = nn.ParameterList(nn.Parameter(t) for t in tensors[0::2])
        self.biases = nn.ParameterList(nn.Parameter(t) for t in tensors[1::2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h


class SeedCNN(nn.Module):
    """Wong et al.'s small MNIST CNN for (C, H, W) inputs with H, W divisible by 4."""

    def __init__(
        self,
        seeds: Sequence[int],
        input_shape: tuple[int, int, int],
        num_classes: int,
        channels: tuple[int, int] = (16, 32),
        hidden: int = 100,
    ) -> None:
        super().__init__()
        c, h, w = input_shape
        if h % 4 or w % 4:
            raise ValueError(f"SeedCNN needs H and W divisible by 4, got {input_shape}")
        c1, c2 = channels
        flat = c2 * (h // 4) * (w // 4)
        shapes = [
            ((c1, c, 4, 4), c * 16), ((c1,), c * 16),
            ((c2, c1, 4, 4), c1 * 16), ((c2,), c1 * 16),
            ((flat, hidden), flat), ((1, hidden), flat),
            ((hidden, num_classes), hidden), ((1, num_classes), hidden),
        ]
        names = ["conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"]
        for name, tensor in zip(names, _stacked(seeds, shapes), strict=True):
            self.register_parameter(name, nn.Parameter(tensor))
        self.num_seeds = len(seeds)

    def _conv(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.conv2d(h, w.flatten(0, 1), b.flatten(), stride=2, padding=1,
                        groups=self.num_seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, n = x.shape[:2]
        h = x.transpose(0, 1).flatten(1, 2)  # (B, S·C, H, W): seed s is group s
        h = torch.relu(self._conv(h, self.conv1_w, self.conv1_b))
        h = torch.relu(self._conv(h, self.conv2_w, self.conv2_b))
        h = h.view(n, s, -1).transpose(0, 1)  # (S, B, C2·H/4·W/4)
        h = torch.relu(torch.baddbmm(self.fc1_b, h, self.fc1_w))
        return torch.baddbmm(self.fc2_b, h, self.fc2_w)
