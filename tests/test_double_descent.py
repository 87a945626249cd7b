"""Random-features estimators against closed forms and known identities; the local torchvision
loader on a fake MNIST folder."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from theorybench.data.torchvision_local import LocalDataMissing, load_local
from theorybench.experiments.double_descent import (
    RFData,
    RFParams,
    RFSGDParams,
    bias_variance,
    make_split,
    min_norm_fit,
    rf_double_descent,
    rf_sgd_vs_min_norm,
    ridge_operator,
    sgd_fit,
)

CPU = torch.device("cpu")
SMALL = {"n_train": 12, "n_val": 6, "n_test": 20}


def _phi(n: int, m: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 1, n, m, dtype=torch.float64, generator=g)


@pytest.mark.parametrize(("n", "m"), [(20, 5), (5, 20)])
def test_min_norm_fit_equals_numpy_lstsq(n: int, m: int) -> None:
    phi = _phi(n, m)
    y = torch.randn(1, 1, n, dtype=torch.float64)
    expected = np.linalg.lstsq(phi[0, 0].numpy(), y[0, 0].numpy(), rcond=None)[0]
    np.testing.assert_allclose(min_norm_fit(phi, y)[0, 0].numpy(), expected, atol=1e-10)


def test_ridge_operator_at_fixed_lambda_equals_normal_equations() -> None:
    n, m, lam = 8, 13, 0.3
    phi, phi_val = _phi(n, m, 1), _phi(4, m, 2)
    y = torch.randn(1, n, dtype=torch.float64)
    op, chosen = ridge_operator(phi, phi_val, y, torch.zeros(1, 4, dtype=torch.float64),
                                torch.tensor([lam], dtype=torch.float64))
    a = phi[0, 0]
    expected = torch.linalg.solve(a.T @ a + n * lam * torch.eye(m, dtype=torch.float64), a.T)
    torch.testing.assert_close(op[0, 0], expected)
    assert float(chosen[0, 0]) == lam


def test_ridge_operator_picks_the_lambda_with_smallest_validation_error() -> None:
    n, m = 30, 10
    phi, phi_val = _phi(n, m, 3), _phi(15, m, 4)
    coef = torch.randn(m, dtype=torch.float64)
    y, y_val = (phi[0, 0] @ coef).unsqueeze(0), (phi_val[0, 0] @ coef).unsqueeze(0)
    lams = torch.tensor([1e-8, 1.0, 100.0], dtype=torch.float64)
    _, chosen = ridge_operator(phi, phi_val, y, y_val, lams)
    assert float(chosen[0, 0]) == 1e-8  # noiseless targets: the smallest penalty wins


def test_bias_variance_identity_without_label_noise() -> None:
    """With no label noise, mean_{d,t}(f_d − y*)² = bias2 + variance exactly."""
    g = torch.Generator().manual_seed(5)
    phi_te = torch.randn(2, 5, 7, 4, dtype=torch.float64, generator=g)
    op = torch.randn(2, 5, 4, 6, dtype=torch.float64, generator=g)
    y, y_test = (torch.randn(2, k, dtype=torch.float64, generator=g) for k in (6, 7))
    parts = bias_variance(phi_te, op, y, y_test, noise=0.0)
    pred = torch.einsum("sdtm,sdmn,sn->sdt", phi_te, op, y)
    error = ((pred - y_test.unsqueeze(1)) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(parts["bias2"] + parts["variance"], error)
    assert torch.all(parts["var_noise"] == 0)


def test_label_noise_variance_matches_monte_carlo() -> None:
    g = torch.Generator().manual_seed(6)
    phi_te = torch.randn(1, 2, 5, 3, dtype=torch.float64, generator=g)
    op = torch.randn(1, 2, 3, 4, dtype=torch.float64, generator=g)
    noise = 0.7
    exact = bias_variance(phi_te, op, torch.zeros(1, 4, dtype=torch.float64),
                          torch.zeros(1, 5, dtype=torch.float64), noise)["var_noise"]
    eps = noise * torch.randn(200_000, 4, dtype=torch.float64, generator=g)
    hat = phi_te[0] @ op[0]  # (D, t, n)
    mc = (torch.einsum("dtn,kn->kdt", hat, eps) ** 2).mean(dim=(0, 2)).mean()
    assert float(mc) == pytest.approx(float(exact[0]), rel=0.02)


def test_sgd_from_zero_converges_to_the_min_norm_solution() -> None:
    n, m = 10, 30
    phi = _phi(n, m, 7) / m**0.5
    y = torch.randn(1, 1, n, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    epochs = 3000
    orders = torch.rand(1, epochs, n, generator=torch.Generator().manual_seed(9)).argsort(-1)
    coef = sgd_fit(phi, y, torch.zeros(1, 1, m, dtype=torch.float64), 1.0, epochs, 5, orders)
    expected = min_norm_fit(phi, y)
    assert float((coef - expected).norm() / expected.norm()) < 1e-3


def test_splits_are_per_seed_and_independent_of_the_batch() -> None:
    data = RFData(**SMALL)
    both, alone = make_split(data, (0, 3)), make_split(data, (3,))
    torch.testing.assert_close(both.x_train[1], alone.x_train[0])
    torch.testing.assert_close(both.y_train[1], alone.y_train[0])
    assert not torch.equal(both.x_train[0], both.x_train[1])
    assert both.x_test.shape == (2, 20, 64)


def test_rows_do_not_depend_on_the_other_seeds() -> None:
    p = RFParams(ratio=1.5, draws=3, data=RFData(**SMALL))
    pair, single = rf_double_descent(p, (0, 3), CPU), rf_double_descent(p, (3,), CPU)
    np.testing.assert_allclose(pair.iloc[1, 1:].to_numpy(float), single.iloc[0, 1:].to_numpy(float),
                               rtol=1e-9, atol=1e-12)


def test_interpolation_and_peak_on_a_small_problem() -> None:
    data = RFData(name="synthetic", dim=10, n_train=30, n_val=5, n_test=100)
    error = {}
    for ratio in (0.25, 1.0, 4.0):
        rows = rf_double_descent(RFParams(ratio=ratio, draws=4, data=data), (0, 1, 2), CPU)
        error[ratio] = rows["log_test_error"].mean()
        if ratio >= 1.0:
            assert rows["train_error"].max() < 1e-12
    assert error[1.0] > error[0.25] and error[1.0] > error[4.0]


def test_tuned_ridge_lowers_the_threshold_error() -> None:
    data = RFData(name="synthetic", dim=10, n_train=30, n_val=20, n_test=100)
    plain = rf_double_descent(RFParams(ratio=1.0, draws=3, data=data), (0, 1), CPU)
    tuned = rf_double_descent(RFParams(ratio=1.0, draws=3, data=data, ridge="tuned"), (0, 1), CPU)
    assert (tuned["test_error"] < plain["test_error"]).all()
    assert (tuned["ridge_lambda"] > 0).all()


def test_sgd_vs_min_norm_rows() -> None:
    p = RFSGDParams(ratio=2.0, draws=1, epochs=2, batch_size=4, data=RFData(**SMALL))
    rows = rf_sgd_vs_min_norm(p, (0, 1), CPU)
    assert sorted(rows["solver"].unique()) == ["min_norm", "sgd"]
    assert rows.loc[rows.solver == "min_norm", "train_error"].max() < 1e-12
    np.testing.assert_allclose(rows["log_test_error"], np.log(rows["test_error"]))


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_load_local_reads_a_torchvision_mnist_folder(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", 2051, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, np.arange(n) % 10)
    x, y = load_local("mnist", tmp_path, train=True)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y.tolist() == [0, 1, 2, 3, 4]
    assert load_local("mnist", tmp_path, train=False)[0].shape == (3, 1, 28, 28)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_load_local_names_the_missing_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(LocalDataMissing, match=str(tmp_path)) as info:
        load_local(name, tmp_path / "nothing", train=True)
    assert isinstance(info.value, FileNotFoundError)
    assert "download=True" in str(info.value)


def test_mnist_data_needs_a_local_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        make_split(RFData(name="mnist"), (0,), str(tmp_path))


def test_mnist1d_is_generated_locally_and_leaves_global_randomness_alone() -> None:
    """The mnist1d generator seeds NumPy's global state; the loader restores it. Pair 3 vs 7
    has 500 sequences of each class."""
    import random

    from theorybench.data.mnist1d import load_mnist1d_tensors

    np.random.seed(5)
    random.seed(5)
    expected = (np.random.rand(), random.random())
    np.random.seed(5)
    random.seed(5)
    x, y = load_mnist1d_tensors()
    assert (np.random.rand(), random.random()) == expected
    assert x.shape == (5000, 40) and int((y == 3).sum()) == int((y == 7).sum()) == 500
    split = make_split(RFData(name="mnist1d", n_train=20, n_val=5, n_test=10), (0,))
    assert split.x_train.shape == (1, 20, 40)
    assert set(split.y_test.flatten().tolist()) <= {-1.0, 1.0}



@pytest.mark.parametrize("length,n", [(2, 5), (24, 60), (60, 40), (37, 37), (80, 3)])
def test_linear_interpolate_is_the_packages_interpolate_bit_for_bit(length: int, n: int) -> None:
    """The NumPy stand-in used while MNIST-1D is generated gives the very floats of the
    package's SciPy ``interp1d``, so the data set is unchanged."""
    import importlib

    from theorybench.data.mnist1d import linear_interpolate

    package = importlib.import_module("mnist1d.transform").interpolate
    x = np.random.default_rng(length * n).normal(size=length)
    assert np.array_equal(linear_interpolate(x, n), package(x, n))


def test_sgd_fit_equals_per_seed_minibatch_gathers() -> None:
    """``sgd_fit`` (rows of every seed and draw picked at once) takes the same steps as
    gathering each seed's mini-batch from its own features, bit for bit."""
    from theorybench.splits import epoch_orders, minibatches

    g = torch.Generator().manual_seed(3)
    s, d, n, m, epochs, batch = 3, 2, 11, 7, 4, 4
    phi = torch.randn(s, d, n, m, generator=g, dtype=torch.float64)
    y = torch.randn(s, 1, n, generator=g, dtype=torch.float64).expand(-1, d, -1)
    orders = epoch_orders([torch.Generator().manual_seed(k) for k in range(s)], epochs, n)
    start = torch.randn(s, d, m, generator=g, dtype=torch.float64)
    lr = 0.5 / (phi**2).sum(dim=-1).amax(dim=-1, keepdim=True)
    coef = start
    for epoch in range(epochs):
        for idx in minibatches(orders[:, epoch], batch):
            phi_b = torch.stack([phi[k][:, idx[k]] for k in range(s)])
            y_b = torch.stack([y[k][:, idx[k]] for k in range(s)])
            resid = (coef.unsqueeze(-2) @ phi_b.mT).squeeze(-2) - y_b
            coef = coef - lr / idx.shape[-1] * (resid.unsqueeze(-2) @ phi_b).squeeze(-2)
    assert torch.equal(sgd_fit(phi, y, start, 0.5, epochs, batch, orders), coef)
