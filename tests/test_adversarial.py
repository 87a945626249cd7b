"""The adversarial family: networks, training methods, schedules, splits, summaries, the Danskin
counterexample, and the experiment's contract (columns, determinism, seed independence)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from theorybench.attacks import ThreatModel
from theorybench.data.torchvision_local import LocalDataMissing
from theorybench.experiments.adversarial import (
    COLUMNS,
    AdversarialTrainingParams,
    _augment,
    _BestCheckpoint,
    _Data,
    _one_seed,
    learning_rate,
    summarize,
)
from theorybench.models.cnn import SeedCNN
from theorybench.models.mlp import SeedMLP
from theorybench.models.resnet import PreActResNet18, SeedEnsemble
from theorybench.registry import get_experiment, methods
from theorybench.streams import streams

CPU = torch.device("cpu")
METHODS = ("standard", "fgsm", "pgd", "trades", "beta")


def test_seed_mlp_equals_per_seed_linear_layers() -> None:
    net = SeedMLP(streams([3, 4], "test"), [64, 16, 10])
    x = torch.rand(2, 5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = net(x)
    for s in range(2):
        h = torch.relu(x[s].flatten(1) @ net.weights[0][s] + net.biases[0][s])
        ref = h @ net.weights[1][s] + net.biases[1][s]
        assert torch.allclose(out[s], ref, atol=1e-5)
    assert torch.equal(SeedMLP(streams([4], "test"), [64, 16, 10]).weights[0][0], net.weights[0][1])


def test_seed_cnn_groups_equal_separate_networks() -> None:
    both = SeedCNN(streams([0, 1], "test"), (1, 8, 8), 10)
    solo = SeedCNN(streams([1], "test"), (1, 8, 8), 10)
    x = torch.rand(2, 7, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    out = both(x)
    assert out.shape == (2, 7, 10)
    assert torch.allclose(out[1], solo(x[1:])[0], atol=1e-5)


def test_preact_resnet_shape_and_seed_ensemble() -> None:
    ens = SeedEnsemble([0, 1], lambda: PreActResNet18(10, mean=(0.5,) * 3, std=(0.25,) * 3))
    ens.eval()
    out = ens(torch.rand(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    assert out.shape == (2, 2, 10)
    again = SeedEnsemble([1], lambda: PreActResNet18(10))
    assert torch.equal(again.nets[0].conv1.weight, ens.nets[1].conv1.weight)


def test_every_method_is_registered_and_returns_per_example_losses() -> None:
    assert set(METHODS) <= set(methods("at-method"))
    net = SeedMLP(streams([0, 1], "test"), [64, 16, 10])
    x = torch.rand(2, 6, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 10, (2, 6), generator=torch.Generator().manual_seed(4))
    threat = ThreatModel(eps=0.1, step_size=0.025, steps=2, fgsm_step_size=0.125, num_classes=10)
    for name in METHODS:
        loss = methods("at-method")[name](net, x, y, threat, streams([5, 6], "attack"))
        assert loss.shape == (2, 6) and torch.isfinite(loss).all(), name
        net.zero_grad()
        loss.mean(1).sum().backward()
        assert all(p.grad is not None for p in net.parameters()), name
        assert net.training, name


def test_adversarial_losses_exceed_clean_loss() -> None:
    """Each attack raises the cross-entropy above the clean one on average (same network)."""
    net = SeedMLP(streams([0], "test"), [64, 32, 10])
    x = torch.rand(1, 64, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    y = torch.randint(0, 10, (1, 64), generator=torch.Generator().manual_seed(8))
    threat = ThreatModel(eps=0.2, step_size=0.05, steps=5, fgsm_step_size=0.25, num_classes=10)
    known = methods("at-method")
    clean = known["standard"](net, x, y, threat, streams([9], "attack")).mean()
    for name in ("fgsm", "pgd", "beta"):
        assert known[name](net, x, y, threat, streams([9], "attack")).mean() > clean, name


def test_piecewise_schedule_of_rice_et_al() -> None:
    p = AdversarialTrainingParams(epochs=200, lr=0.1, milestones=[0.5, 0.75])
    assert learning_rate(p, 100.0) == pytest.approx(0.1)  # last step of epoch 100
    assert learning_rate(p, 100.01) == pytest.approx(0.01)
    assert learning_rate(p, 150.5) == pytest.approx(0.001)


def test_cyclic_schedule_peaks_midway() -> None:
    p = AdversarialTrainingParams(epochs=10, lr=0.2, schedule="cyclic")
    assert learning_rate(p, 5.0) == pytest.approx(0.2)
    assert learning_rate(p, 2.5) == pytest.approx(0.1)
    assert learning_rate(p, 10.0) == pytest.approx(0.0)


def test_splits_are_disjoint_and_label_noise_flips_the_requested_fraction() -> None:
    p = AdversarialTrainingParams(n_train=1000, n_val=300, n_test=400, label_noise=0.3)
    data = _Data(p, (0, 1), CPU)
    for s in range(2):
        parts = [set(data.train[s].tolist()), set(data.val[s].tolist()), set(data.test[s].tolist())]
        assert sum(map(len, parts)) == len(set().union(*parts)) == 1700
        flipped = (data.train_labels[s] != data.y[data.train[s]]).float().mean().item()
        assert abs(flipped - 0.3) < 0.05  # binomial sd ≈ 0.0145
    assert not torch.equal(data.train[0], data.train[1])


def test_augment_keeps_shape_and_values() -> None:
    x = torch.rand(2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(10))
    out = _augment(x, [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)], pad=2)
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


def test_summary_picks_best_epoch_on_validation() -> None:
    curves = pd.DataFrame({
        "seed": 0, "method": "pgd", "kind": "epoch", "epoch": [1, 2, 3, 4],
        "robust_val": [0.2, 0.6, 0.6, 0.3], "robust_test": [0.25, 0.55, 0.7, 0.4],
        "clean_test": [0.5, 0.8, 0.85, 0.8], "robust_train": [0.1, 0.5, 0.7, 0.9],
        "fgsm_test": [0.3, 0.6, 0.7, 0.6],
    })
    row = summarize(curves).iloc[0]
    assert row["best_epoch"] == 2  # first of the tied validation maxima, not the test maximum
    assert row["robust_gap"] == pytest.approx(0.15)
    assert row["clean_gap"] == pytest.approx(0.0)
    assert row["robust_train_rise"] == pytest.approx(0.4)
    assert row["fgsm_pgd_gap"] == pytest.approx(0.2)


def test_experiment_contract_and_seed_independence() -> None:
    kind = get_experiment("adversarial_training")
    small = dict(kind.example, methods=["pgd"], epochs=2)
    table = kind(small, (0, 1), CPU)
    assert list(table.columns) == ["seed", *COLUMNS]
    epochs = table[table["kind"] == "epoch"]
    assert len(epochs) == 2 * 2 and len(table[table["kind"] == "summary"]) == 2
    assert epochs[["clean_test", "robust_test"]].apply(lambda c: c.between(0, 1)).all().all()
    pd.testing.assert_frame_equal(table, kind(small, (0, 1), CPU))
    alone = kind(small, (1,), CPU)
    both = table[table["seed"] == 1].reset_index(drop=True)
    numeric = [c for c in COLUMNS if c not in ("method", "kind")]
    np.testing.assert_allclose(both[numeric].to_numpy(float), alone[numeric].to_numpy(float),
                               atol=1e-5)


def test_validation_every_epoch_test_every_k_and_the_last() -> None:
    kind = get_experiment("adversarial_training")
    table = kind(dict(kind.example, methods=["standard"], epochs=5, eval_every=2), (0,), CPU)
    epochs = table[table["kind"] == "epoch"]
    assert epochs["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert epochs["robust_val"].notna().all()
    assert epochs.loc[epochs["robust_test"].notna(), "epoch"].tolist() == [2, 4, 5]


def test_best_checkpoint_is_the_best_validation_epoch() -> None:
    """The summary's best accuracies come from the checkpoint of the best validation epoch: its
    clean test accuracy (no attack randomness) equals that epoch's row."""
    kind = get_experiment("adversarial_training")
    table = kind(dict(kind.example, methods=["pgd"], epochs=4, eval_every=1), (0, 1), CPU)
    epochs = table[table["kind"] == "epoch"]
    for _, row in table[table["kind"] == "summary"].iterrows():
        mine = epochs[epochs["seed"] == row["seed"]]
        first_best = mine.loc[mine["robust_val"].idxmax()]
        assert row["best_epoch"] == first_best["epoch"]
        assert row["clean_best"] == pytest.approx(first_best["clean_test"])
    assert "aa_best" not in table.columns  # AutoAttack columns only when asked for


@pytest.mark.parametrize("build", [
    lambda seeds: SeedMLP(streams(seeds, "test"), [64, 8, 10]),
    lambda seeds: SeedCNN(streams(seeds, "test"), (1, 8, 8), 10),
], ids=["mlp", "cnn"])
def test_one_seed_view_is_that_seeds_network(build) -> None:
    """AutoAttack sees seed i of the seed-batched model as an ordinary (B, *input) classifier
    that computes that seed's network alone, and the input gradient flows through it."""
    both, solo = build([3, 4]), build([4])
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(13), requires_grad=True)
    one = _one_seed(both, 1)
    out = one(x)
    assert torch.allclose(out, solo(x[None])[0], atol=1e-6)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in both.parameters())


def test_best_checkpoint_copies_only_improved_seeds() -> None:
    net = SeedMLP(streams([0, 1], "test"), [64, 8, 10])
    best = _BestCheckpoint(net, 2)
    best.update(net, np.array([0.5, 0.5]), 1)
    before = [w.detach().clone() for w in net.weights]
    with torch.no_grad():
        for w in net.weights:
            w.add_(1.0)
    best.update(net, np.array([0.6, 0.4]), 2)
    assert best.epoch.tolist() == [2, 1]
    assert torch.equal(best.model.weights[0][0], net.weights[0][0])
    assert torch.equal(best.model.weights[0][1], before[0][1])


def test_cifar_without_local_folder_fails_clearly(tmp_path) -> None:
    with pytest.raises(ValueError, match="data_root"):
        _Data(AdversarialTrainingParams(dataset="cifar10"), (0,), CPU)
    p = AdversarialTrainingParams(dataset="cifar10", data_root=str(tmp_path))
    with pytest.raises(LocalDataMissing, match="never downloads"):
        _Data(p, (0,), CPU)


def test_unknown_method_is_a_parameter_error() -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        AdversarialTrainingParams(methods=["pgd", "madry"])


def test_danskin_counterexample_ascends_at_zero() -> None:
    kind = get_experiment("danskin_direction")
    table = kind({"x0": 0.0}, tuple(range(8)), CPU)
    assert table["is_maximizer"].all()
    np.testing.assert_allclose(table["slope"], table["delta_star"].abs(), atol=1e-6)
    assert (table["ascent"] == 1).all()


def test_danskin_holds_with_a_unique_maximizer() -> None:
    kind = get_experiment("danskin_direction")
    table = kind({"x0": 0.5}, tuple(range(8)), CPU)
    np.testing.assert_allclose(table["delta_star"], 1.0)
    np.testing.assert_allclose(table["slope"], -1.0, atol=1e-6)
    assert (table["ascent"] == 0).all()


def test_validation_attack_has_its_own_step_count(monkeypatch) -> None:
    """``val_steps`` sets the PGD steps of the per-epoch validation attack only; the training
    subset and the test split keep ``eval_steps``."""
    import theorybench.experiments.adversarial as adv

    steps_by_size: dict[int, set[int]] = {}
    real_pgd = adv.attacks.pgd

    def spy(model, x, y, **kw):
        steps_by_size.setdefault(x.shape[1], set()).add(kw["steps"])
        return real_pgd(model, x, y, **kw)

    monkeypatch.setattr(adv.attacks, "pgd", spy)
    kind = get_experiment("adversarial_training")
    params = dict(kind.example, methods=["standard"], epochs=2, n_val=8, n_test=12,
                  n_train_eval=16, eval_steps=3, val_steps=1)
    kind(params, (0,), CPU)
    assert steps_by_size == {8: {1}, 12: {3}, 16: {3}}
