"""One contract for every registered experiment kind (as scikit-learn's check_estimator):
declared columns, a ``seed`` column covering the seeds, determinism, picklable cells."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import torch

from theorybench.registry import experiment_kinds
from theorybench.runner import Cell, run_cell

KINDS = sorted(experiment_kinds())


def test_kinds_are_registered() -> None:
    assert "perturbation_stability" in KINDS


@pytest.mark.parametrize("name", KINDS)
def test_kind_follows_the_contract(name: str) -> None:
    kind = experiment_kinds()[name]
    params = kind.params.model_validate(kind.example).model_dump()
    seeds = (0, 1)
    first = kind(params, seeds, torch.device("cpu"))
    assert isinstance(first, pd.DataFrame) and len(first) > 0
    missing = [c for c in ("seed", *kind.columns) if c not in first.columns]
    assert not missing, f"{name} lacks declared columns {missing}"
    assert set(first["seed"]) == set(seeds)
    again = kind(params, seeds, torch.device("cpu"))
    pd.testing.assert_frame_equal(first, again)
    assert kind.family and kind.fn.__doc__, f"{name} needs a family and a docstring"


@pytest.mark.parametrize("name", KINDS)
def test_cells_round_trip_through_pickle(name: str) -> None:
    kind = experiment_kinds()[name]
    cell = Cell("t/x", "claim", 0, name, dict(kind.example), {}, (0,), "cpu")
    out = run_cell(pickle.loads(pickle.dumps(cell)))
    assert out.error is None, out.error
    assert list(out.table.columns[:2]) == ["arm", "cell"]


def test_each_seed_alone_gives_the_same_rows_as_in_a_batch() -> None:
    """Batching seeds must not couple them: seed 1's rows do not depend on seed 0 being there."""
    kind = experiment_kinds()["perturbation_stability"]
    params = kind.params.model_validate(kind.example).model_dump()
    both = kind(params, (0, 1), torch.device("cpu"))
    alone = kind(params, (1,), torch.device("cpu"))
    pd.testing.assert_frame_equal(both[both.seed == 1].reset_index(drop=True), alone,
                                  check_exact=False, rtol=1e-4, atol=1e-6)
