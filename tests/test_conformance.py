"""One contract for every registered entry (as scikit-learn's check_estimator): each experiment
kind (declared columns, determinism, picklable cells, seeds independent of each other), each
method against its family's protocol and behavioural check, each rule's description, each
data set."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import torch

from theorybench.registry import (
    datasets,
    experiment_kinds,
    method_families,
    methods,
    protocol_mismatch,
    rules,
)
from theorybench.runner import Cell, run_cell

KINDS = sorted(experiment_kinds())
METHODS = sorted((family, name) for family in method_families() for name in methods(family))


def test_kinds_are_registered() -> None:
    assert "perturbation_stability" in KINDS
    assert {"at-method", "game", "minmax-algorithm"} <= set(method_families())


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
def test_a_seed_gives_the_same_rows_whichever_seeds_share_its_cell(name: str) -> None:
    """Batching seeds must not couple them: seed 5's rows are the same alone, after seed 3,
    and before seed 9. The example must be non-trivial: its seeds must give different rows."""
    kind = experiment_kinds()[name]
    params = kind.params.model_validate(kind.example).model_dump()
    cpu = torch.device("cpu")
    alone = kind(params, (5,), cpu).reset_index(drop=True)
    for seeds in ((3, 5), (5, 9)):
        table = kind(params, seeds, cpu)
        rows = table[table["seed"] == 5].reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, alone, check_exact=False, rtol=1e-4, atol=1e-6)
        other = table[table["seed"] != 5].drop(columns="seed").reset_index(drop=True)
        numeric = alone.drop(columns="seed").select_dtypes("number")
        assert not numeric.equals(other[numeric.columns]), \
            f"{name}: its example gives every seed the same rows, so independence is untested"


@pytest.mark.parametrize("name", KINDS)
def test_cells_round_trip_through_pickle(name: str) -> None:
    kind = experiment_kinds()[name]
    cell = Cell("t/x", "claim", 0, name, dict(kind.example), {}, (0,), "cpu")
    out = run_cell(pickle.loads(pickle.dumps(cell)))
    assert out.error is None, out.error
    assert list(out.table.columns[:2]) == ["arm", "cell"]


@pytest.mark.parametrize(("family", "name"), METHODS, ids=lambda v: str(v))
def test_method_satisfies_its_family(family: str, name: str) -> None:
    declared = method_families()[family]
    method = methods(family)[name]
    assert protocol_mismatch(method, declared.protocol) is None
    assert declared.check is not None, f"family {family} declares no behavioural check"
    declared.check(method)


@pytest.mark.parametrize("name", sorted(rules()))
def test_rule_has_words_and_a_figure(name: str) -> None:
    rule = rules()[name]
    assert rule.evaluate.__doc__ or rule.spec.__doc__, f"rule {name} needs a docstring"
    fields = {k: (None if f.is_required() else f.get_default(call_default_factory=True))
              for k, f in rule.spec.model_fields.items()}
    fields.update(rule=name, metric="m")
    words = rule.describe(fields)
    assert isinstance(words, str) and "m" in words and len(words) > 20
    assert callable(rule.figure)


@pytest.mark.parametrize("name", sorted(datasets()))
def test_data_set_is_described_and_loads_offline(name: str) -> None:
    entry = datasets()[name]
    assert entry.description and callable(entry.load)
    if name == "digits":  # the others read a local torchvision folder (tests/test_dry_run.py)
        x, y = entry.load()
        assert len(x) == len(y) == 1797 and float(x.max()) <= 1.0
