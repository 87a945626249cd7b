"""PreAct ResNet-18 (He, Zhang, Ren, Sun, ECCV 2016), the network of Rice, Wong, Kolter (ICML 2020)
and Robey et al. (2023) for CIFAR-10, and :class:`SeedEnsemble`, which gives any per-seed network
the seed-batched interface (S, B, *input) → (S, B, K) of ``attacks.py``.

Pre-activation block: out = conv₂(ReLU(BN₂(conv₁(ReLU(BN₁(x)))))) + shortcut(ReLU(BN₁(x))), with
a 1×1 strided convolution as the shortcut when the shape changes. Stages of 2 blocks with 64, 128,
256, 512 channels (strides 1, 2, 2, 2), then BN–ReLU, 4×4 average pooling and a linear layer.

Batch normalization keeps running statistics, so the seeds cannot share one vectorized call
(``torch.func.vmap`` forbids the in-place updates); :class:`SeedEnsemble` runs its S networks one
after the other. This is the ``paper`` profile's network, meant for a GPU with one or few seeds.
Each network is initialized with PyTorch's defaults under ``torch.random.fork_rng`` seeded with its
own seed (a stream seed of ``theorybench.streams``), so it depends on that seed alone and the
global random state is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 for 3×32×32 inputs in [0, 1]; ``mean``/``std`` normalize them per channel
    inside the network (as Rice et al. do), so attacks work in pixel space."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        shape = (1, in_channels, 1, 1)
        self.register_buffer("mean", torch.tensor(mean or [0.0] * in_channels).view(shape))
        self.register_buffer("std", torch.tensor(std or [1.0] * in_channels).view(shape))
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        layers, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            for s in (stride, 1):
                layers.append(PreActBlock(in_planes, planes, s))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.conv1((x - self.mean) / self.std))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


class SeedEnsemble(nn.Module):
    """S networks behind the seed-batched interface, one per entry of ``seeds`` (each built by
    ``build()`` with the global generator seeded with that entry)."""

    def __init__(self, seeds: Sequence[int], build: Callable[[], nn.Module]) -> None:
        super().__init__()
        nets = []
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                nets.append(build())
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(xs) for net, xs in zip(self.nets, x, strict=True)])
