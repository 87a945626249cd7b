"""How much work a spec asks for, checked against a budget per profile before anything runs.

The cost of an arm is ``cells × seeds × work per seed``: ``cells`` is the size of its sweep,
``work per seed`` is the kind's own ``cost(params)`` when it declares one (see
:func:`theorybench.registry.experiment`), else the product of every positive integer
parameter (steps, epochs, widths, sample counts, ...), a crude but monotone stand-in for
"steps × size". Both are evaluated at the sweep's largest values, so the estimate bounds every
cell. A spec whose total over its arms exceeds :data:`BUDGETS` for a profile is refused unless
the user says ``--allow-expensive``; :data:`MAX_CELLS` cells per arm is a hard limit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from theorybench.registry import get_experiment

MAX_CELLS = 100_000
#: Budgets in units of the estimate: 60-100× the most expensive task of each profile today.
BUDGETS: dict[str, float] = {"smoke": 1e9, "standard": 3e10, "paper": 5e12}


STEP_WORDS = ("step", "epoch", "iter", "round")


def _ints(value: Any, name: str = "") -> list[tuple[str, int]]:
    """(name, value) of every positive integer in nested parameters."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [(name, value)] if value > 0 else []
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _ints(v, str(k))]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _ints(v, name)]
    return []


def generic_cost(params: Any) -> float:
    """The default estimate of one seed's work, ``steps × size``: the largest integer parameter
    named like a step count (``steps``, ``epochs``, ``iterations``, ...) times the largest other
    integer parameter (a width, a sample count, ...)."""
    dumped = params.model_dump() if hasattr(params, "model_dump") else params
    ints = _ints(dumped)
    steps = [n for name, n in ints if any(w in name.lower() for w in STEP_WORDS)]
    sizes = [n for name, n in ints if not any(w in name.lower() for w in STEP_WORDS)]
    return float(max(steps, default=1)) * float(max(sizes, default=1))


def _largest(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return max(numbers) if numbers else values[0]


def arm_cells(arm: Any) -> int:
    return math.prod(len(v) for v in arm.sweep.values())


def arm_cost(arm: Any) -> float:
    """``cells × seeds × work per seed`` of one resolved arm, at its sweep's largest values."""
    from theorybench.spec import _set_path  # the spec's dotted-path rule (imported late: cycle)

    kind = get_experiment(arm.kind)
    point = copy.deepcopy(arm.params)
    for name, values in arm.sweep.items():
        _set_path(point, name, _largest(values))
    params = kind.params.model_validate(point)
    per_seed = (kind.cost or generic_cost)(params)
    return float(arm_cells(arm)) * len(arm.seeds) * float(per_seed)


def estimate(arms: Sequence[Any]) -> float:
    return sum(arm_cost(a) for a in arms)


def over_budget(arms: Sequence[Any], profile: str) -> list[tuple[str, str]]:
    """(field, message) problems: too many cells in an arm, or a total over the budget."""
    found = []
    for arm in arms:
        if arm_cells(arm) > MAX_CELLS:
            found.append((f"profiles.{profile}", f"arm {arm.name!r} has {arm_cells(arm)} sweep "
                          f"cells, more than the limit of {MAX_CELLS}"))
    if found:
        return found
    total, budget = estimate(arms), BUDGETS.get(profile, BUDGETS["paper"])
    if total > budget:
        found.append((f"profiles.{profile}", f"estimated cost {total:.3g} exceeds the "
                      f"{profile} budget {budget:.3g} (cells × seeds × work per seed); "
                      "pass --allow-expensive to run it anyway"))
    return found
