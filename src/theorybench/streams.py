"""Per-seed random streams: every random draw of an experiment kind comes from
:func:`stream` ``(seed, purpose)``.

A *purpose* names what a stream draws (``"adversarial/order"``: one seed's minibatch orders).
The generator's own seed is a function of the run seed and the purpose alone, never of the other
seeds of a cell, so a seed's rows do not depend on which seeds share its cell, and two purposes
of one seed never share draws. :data:`STREAMS` declares the purposes of the built-in kinds with
the derivation each has always used (the published records were measured with them); any other
purpose is derived as ``crc32("<purpose>/<seed>")``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch


def _offset(k: int) -> Callable[[int], int]:
    return lambda seed: seed + k


def _hashed(key: str) -> Callable[[int], int]:
    """``crc32`` of ``key`` with ``{seed}`` replaced by the seed."""
    return lambda seed: zlib.crc32(key.format(seed=seed).encode())


STREAMS: dict[str, Callable[[int], int]] = {
    # perturbation_stability (the data set and its split are shared by all seeds: seed 0)
    "stability/init": _offset(0),
    "stability/perturb": _offset(1_000_003),
    "stability/power": _offset(2_000_003),
    "stability/data": _offset(10_000),
    "stability/split": _offset(0),
    # overparam kinds
    "overparam/gd": _offset(0),
    "overparam/random-labels": _offset(0),
    "overparam/sgd": _offset(0),
    # double descent
    "double_descent/data": _offset(0),
    "double_descent/features": _offset(1_000_003),
    "double_descent/sgd": _offset(2_000_003),
    # extrapolation_fit: data and each model's initialization
    **{f"extrapolation/{name}": _hashed(f"extrapolation/{{seed}}/{name}")
       for name in ("data", "pn", "mlp", "reference_mlp")},
    # adversarial kinds
    "adversarial/init": _offset(0),
    "adversarial/data": _offset(1 * 2**40),
    "adversarial/order": _offset(2 * 2**40),
    "adversarial/attack": _offset(3 * 2**40),
    "adversarial/eval": _offset(4 * 2**40),
    "adversarial/danskin": _offset(0),
    # min-max kinds
    "minmax/init": _offset(0),
    "minmax/noise": _offset(2**40),
    "mixed_nash/run": _offset(0),
}
"""Declared purposes and how each derives its generator's seed from the run seed."""


def stream_seed(seed: int, purpose: str) -> int:
    """The seed of ``purpose``'s generator for run seed ``seed``."""
    rule = STREAMS.get(purpose) or _hashed(purpose + "/{seed}")
    return rule(int(seed))


def stream(seed: int, purpose: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` for ``purpose`` of run seed ``seed``."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, purpose))


def streams(seeds: tuple[int, ...] | list[int], purpose: str) -> list[torch.Generator]:
    """One generator per seed for ``purpose``."""
    return [stream(s, purpose) for s in seeds]
