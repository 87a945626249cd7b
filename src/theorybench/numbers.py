"""Numbers as records store them and as pages and summaries show them.

* :func:`jsonable`: numpy scalars and arrays, pandas indexes and series, tuples and mappings as
  plain JSON values; NaN becomes ``None`` and an infinity the string ``"inf"`` or ``"-inf"``
  (JSON has neither), which :func:`as_number` reads back.
* :func:`fmt`: a number with 3 significant digits, ``-`` for a missing or NaN value.

No import of theorybench here: every module can import this one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """``value`` with every number a Python int, float or bool, recursively through mappings,
    lists, tuples, arrays, indexes and series; NaN is ``None``, ±infinity ``"inf"``/``"-inf"``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple | pd.Index | pd.Series):
        return [jsonable(v) for v in list(value)]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def as_number(value: Any) -> float:
    """A stored number as a float: ``None`` and non-numbers are NaN, ``"inf"`` is infinite."""
    if value is None or isinstance(value, bool):
        return math.nan if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fmt(value: Any) -> str:
    """A number with 3 significant digits; ``-`` for ``None`` and NaN; other values as text."""
    if value is None or isinstance(value, bool):
        return "-" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if math.isnan(number) else f"{number:.3g}"
