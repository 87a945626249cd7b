"""Parameter rewrites that need no knowledge of a kind: the data root and the dry run's caps.

* **Data root.** A kind that reads a local torchvision folder declares one top-level parameter
  ``data_root`` marked ``Field(..., json_schema_extra={"data_root": True})``;
  :func:`fill_data_root` sets it to ``--data-root`` where the spec leaves it unset.
* **Dry run.** :func:`cap_params` shrinks a cell to one step of each loop, by parameter *name*
  (``CAPS``): epochs, steps, sample counts, widths, attack iterations, trajectories. Each cap
  is kept only when the kind's params model still accepts the result, and choices (the model,
  the data set, the methods, the loaders) are never touched, so every code path of a
  ``paper`` profile runs once, on the CPU, in seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

DRY_RUN_SEEDS = 2


def _at_most(cap: int) -> Callable[[Any], Any]:
    """``min(value, cap)``; ``None`` (meaning "all") becomes ``cap``; lists elementwise."""

    def shrink(value: Any) -> Any:
        if value is None:
            return cap
        if isinstance(value, list):
            return [min(v, cap) if isinstance(v, int) else v for v in value]
        return min(value, cap) if isinstance(value, int) and not isinstance(value, bool) \
            else value

    return shrink


def _first_two_small(value: Any) -> Any:
    """An increasing list of horizons becomes its two first entries scaled down to 10, 20."""
    if not isinstance(value, list) or not value:
        return value
    return [10 * (i + 1) for i in range(min(2, len(value)))]


CAPS: dict[str, Callable[[Any], Any]] = {
    **{name: _at_most(1) for name in (
        "epochs", "train_steps", "inner_steps", "attack_steps", "eval_steps", "eval_restarts",
        "power_iters", "n_directions", "hidden_layers")},
    **{name: _at_most(2) for name in ("steps", "trajectories", "draws", "n_perturb",
                                      "curve_points", "error_points", "record_every")},
    **{name: _at_most(2) for name in ("batch_size", "eval_batch")},
    **{name: _at_most(4) for name in ("fit_points", "n_train", "n_val", "n_test",
                                      "n_train_eval", "n_eval", "n")},
    **{name: _at_most(8) for name in ("width", "widths", "mlp_width", "hidden", "dim",
                                      "tail_samples")},
    **{name: _at_most(1) for name in ("noise_repeats",)},
    "horizons": _first_two_small,
}


def _nested(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    annotation = model.model_fields[name].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def data_root_fields(model: type[BaseModel]) -> list[str]:
    """The top-level fields of ``model`` marked as its data root (``[]`` or ``["data_root"]``)."""
    return [name for name, field in model.model_fields.items()
            if isinstance(field.json_schema_extra, dict)
            and field.json_schema_extra.get("data_root")]


def fill_data_root(model: type[BaseModel], params: dict[str, Any], root: str) -> None:
    """Set the data-root field of ``params`` to ``root`` where the spec left it unset (absent
    or empty), in place."""
    for name in data_root_fields(model):
        if not params.get(name):
            params[name] = root


def _valid(model: type[BaseModel], params: dict[str, Any]) -> bool:
    try:
        model.model_validate(params)
    except ValidationError:
        return False
    return True


def _candidates(new: Any, old: Any) -> list[Any]:
    """The capped value, then (for an int the model rejects, e.g. below a minimum) doublings
    of it up to the original."""
    out = [new]
    if isinstance(new, int) and isinstance(old, int) and not isinstance(new, bool):
        while out[-1] * 2 < old:
            out.append(out[-1] * 2)
    return out


def _cap_level(root: type[BaseModel], model: type[BaseModel], params: dict[str, Any],
               node: dict[str, Any]) -> None:
    for name in model.model_fields:
        sub = _nested(model, name)
        if sub is not None:
            child = node.get(name, {})
            if isinstance(child, dict):
                node[name] = child
                _cap_level(root, sub, params, child)
                if not child:
                    del node[name]
            continue
        if name not in CAPS:
            continue
        had, old = name in node, node.get(name, model.model_fields[name].default)
        new = CAPS[name](copy.deepcopy(old))
        if new == old:
            continue
        for value in _candidates(new, old):
            node[name] = value
            if _valid(root, params):
                break
        else:
            if had:
                node[name] = old
            else:
                del node[name]


def cap_params(model: type[BaseModel], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with every size named in ``CAPS`` capped (see the module
    docstring); a cap the params model rejects is left out."""
    out = copy.deepcopy(params)
    _cap_level(model, model, out, out)
    return out
