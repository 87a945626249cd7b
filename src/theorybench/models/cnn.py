"""Convolutional networks batched over seeds: the stability family's all-convolutional ReLU network
(:func:`init_cnn`, :func:`cnn_forward`) and the adversarial family's classifier (:class:`SeedCNN`).

All-convolutional network, for 8×8 images:

``depth − 1`` convolutions (3×3, padding 1, ``width`` channels, no biases, ReLU), global average
pooling, and a linear read-out to one output: h(a) = v · mean_pixels σ(C_{L−1} ∗ … σ(C_1 ∗ a)).
Seeds run as convolution groups: the S networks are one grouped convolution with S groups.
Initialization: He (variance 2/fan-in) or LeCun (1/fan-in), fan-in = channels_in · 9; the
read-out has variance 2/m (He) or 1/m (LeCun).

:class:`SeedCNN`: the MNIST network of Wong, Rice, Kolter (ICLR 2020), conv(c→16, 4, stride 2,
pad 1) – ReLU – conv(16→32, 4, stride 2, pad 1) – ReLU – fc(·→100) – ReLU – fc(100→K), mapping
(S, B, C, H, W) to logits (S, B, K); the S networks run as one grouped convolution with S groups.
PyTorch's default initialization U(−1/√fan_in, 1/√fan_in) for weights and biases, seed s drawing
all its tensors from ``generators[s]`` in order.

:class:`SeedConvNet`: the visual-addition task's convolutional network, ``depth`` convolutions
(``kernel × kernel``, same padding, ``width`` channels, biases, ReLU) composed,
hₗ = σ(Wₗ ⋆ hₗ₋₁ + bₗ), then :func:`pooled_readout` (2×2 average pooling, flatten, linear map
to one output), the head it shares with :class:`~theorybench.models.polynomial.ConvCCP`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from theorybench.models.mlp import uniform

CNN_INITS = {"he": 2.0, "lecun": 1.0}


def init_cnn(
    generators: Sequence[torch.Generator], width: int, depth: int, scheme: str,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Kernels of shape (S, m, c_in, 3, 3) for each convolution, then the read-out (S, 1, m)."""
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    gain = CNN_INITS[scheme]
    shapes = [(width, 1, 3, 3)] + [(width, width, 3, 3)] * (depth - 2)
    per_seed = []
    for g in generators:
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


def seed_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Seed s's convolution (``weight[s]``: (out, in, k, k), odd k, same padding) of its own
    images ``x[s]``: (S, n, in, H, W) → (S, n, out, H, W), as one grouped convolution (seed s
    is group s)."""
    s = x.shape[0]
    out = F.conv2d(x.transpose(0, 1).flatten(1, 2), weight.flatten(0, 1), bias.flatten(),
                   padding=weight.shape[-1] // 2, groups=s)
    return out.unflatten(1, (s, -1)).transpose(0, 1)


def pooled_readout(x: torch.Tensor, c: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling of feature maps (S, n, m, H, W), flattened, then the linear read-out
    ``c`` (S, m·⌊H/2⌋·⌊W/2⌋, 1) plus ``beta`` (S, 1, 1): outputs (S, n)."""
    pooled = F.avg_pool2d(x.flatten(0, 1), 2).unflatten(0, x.shape[:2]).flatten(2)
    return torch.baddbmm(beta, pooled, c).squeeze(-1)


class SeedConvNet(nn.Module):
    """``depth`` composed ReLU convolutions and the pooled linear read-out (module docstring),
    for images (S, n, C, H, W); PyTorch's default initialization, seed s from ``generators[s]``."""

    def __init__(self, generators: Sequence[torch.Generator], input_shape: tuple[int, int, int],
                 width: int, depth: int, kernel: int = 3) -> None:
        super().__init__()
        c, h, w = input_shape
        channels = [c] + [width] * depth
        per_seed = []
        for g in generators:
            layers = []
            for cin, cout in zip(channels[:-1], channels[1:], strict=True):
                fan_in = cin * kernel * kernel
                layers += [uniform((cout, cin, kernel, kernel), fan_in, g),
                           uniform((cout,), fan_in, g)]
            features = width * (h // 2) * (w // 2)
            layers += [uniform((features, 1), features, g), uniform((1, 1), features, g)]
            per_seed.append(layers)
        self.params = nn.ParameterList(
            nn.Parameter(torch.stack([p[i] for p in per_seed])) for i in range(len(per_seed[0])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *convs, c, beta = self.params
        h = x
        for w, b in zip(convs[::2], convs[1::2], strict=True):
            h = torch.relu(seed_conv(h, w, b))
        return pooled_readout(h, c, beta)


class SeedCNN(nn.Module):
    """Wong et al.'s small MNIST CNN for (C, H, W) inputs with H, W divisible by 4."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
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
        per_seed = [[uniform(shape, fan_in, g) for shape, fan_in in shapes] for g in generators]
        for i, name in enumerate(names):
            self.register_parameter(name, nn.Parameter(torch.stack([p[i] for p in per_seed])))

    @staticmethod
    def _conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Seed s's filters ``w[s]`` on channel group s (one group per seed of ``w``)."""
        return F.conv2d(h, w.flatten(0, 1), b.flatten(), stride=2, padding=1, groups=w.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, n = x.shape[:2]
        h = x.transpose(0, 1).flatten(1, 2)  # (B, S·C, H, W): seed s is group s
        h = torch.relu(self._conv(h, self.conv1_w, self.conv1_b))
        h = torch.relu(self._conv(h, self.conv2_w, self.conv2_b))
        h = h.view(n, s, -1).transpose(0, 1)  # (S, B, C2·H/4·W/4)
        h = torch.relu(torch.baddbmm(self.fc1_b, h, self.fc1_w))
        return torch.baddbmm(self.fc2_b, h, self.fc2_w)
