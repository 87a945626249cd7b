"""The paper-profile dry run: tiny data sets in torchvision's on-disk formats, and every task's
``paper`` profile run through its real loaders and models for one step on the CPU."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from theorybench.cli import app
from theorybench.dryrun import cap_params, data_root_fields, fill_data_root
from theorybench.registry import get_experiment

N_TRAIN, N_TEST = 300, 150  # per split


def _labels(n: int, classes: int = 10) -> np.ndarray:
    """Labels cycling through ``classes`` classes."""
    return (np.arange(n) % classes).astype(np.uint8)


def fake_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cifar-10-batches-py/`` as CIFAR-10's python version lays it out (five training
    batches, a test batch, ``batches.meta``), with torchvision's checksums set to these files.
    Three classes only: BETA attacks every other class, and the dry run needs its code path,
    not nine copies of each batch."""
    import torchvision

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = N_TRAIN // 5 if name != "test_batch" else N_TEST
        batch = {"batch_label": name, "labels": _labels(n, 3).tolist(),
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "filenames": [f"{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": N_TRAIN // 5}))

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, md5(n)] for n in names[:5]])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(cls, "meta", dict(cls.meta, md5=md5("batches.meta")))


def _idx(path: Path, array: np.ndarray) -> None:
    """An idx file (MNIST's format): magic 0x08 (unsigned byte) and ndim, then big-endian
    dimensions and the bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", _labels(n))


def test_fabricated_data_reads_through_torchvision(tmp_path, monkeypatch) -> None:
    from theorybench.data.torchvision_local import load_local

    fake_cifar10(tmp_path, monkeypatch)
    fake_mnist(tmp_path)
    x, y = load_local("cifar10", tmp_path, train=True)
    assert x.shape == (N_TRAIN, 3, 32, 32) and y.tolist()[:4] == [0, 1, 2, 0]
    x, y = load_local("mnist", tmp_path, train=False)
    assert x.shape == (N_TEST, 1, 28, 28) and int(y.max()) == 9


def test_data_root_fields_are_declared_by_the_params_models() -> None:
    assert data_root_fields(get_experiment("adversarial_training").params) == ["data_root"]
    assert data_root_fields(get_experiment("rf_double_descent").params) == ["data_root"]
    assert data_root_fields(get_experiment("random_label_fit").params) == []
    params = {"data": {"name": "mnist"}}
    fill_data_root(get_experiment("rf_double_descent").params, params, "/data")
    assert params == {"data": {"name": "mnist"}, "data_root": "/data"}
    params = {"data_root": "/mine"}
    fill_data_root(get_experiment("rf_double_descent").params, params, "/data")
    assert params["data_root"] == "/mine"  # the spec's own value stays


def test_caps_shrink_sizes_by_name_and_keep_choices() -> None:
    model = get_experiment("adversarial_training").params
    capped = cap_params(model, {"model": "preact_resnet18", "dataset": "cifar10",
                                "epochs": 200, "n_train": None, "hidden": [512, 512],
                                "attack_steps": 10})
    assert capped["model"] == "preact_resnet18" and capped["dataset"] == "cifar10"
    assert capped["epochs"] == 1 and capped["attack_steps"] == 1
    assert capped["n_train"] == 4 and capped["hidden"] == [8, 8]
    model.model_validate(capped)
    rf = cap_params(get_experiment("rf_double_descent").params,
                    {"data": {"n_train": 600, "dim": 784}, "draws": 20})
    assert rf == {"data": {"n_train": 4, "n_val": 4, "n_test": 4, "dim": 8}, "draws": 2}
    labels = cap_params(get_experiment("random_label_fit").params, {"n_train": 1200})
    assert labels["n_train"] == 16  # 4 and 8 are below its minimum of 10: the next doubling


def test_every_paper_profile_runs_one_step_on_the_cpu(tmp_path, monkeypatch) -> None:
    """``theorybench run paper --dry-run``: every task, the paper's data sets, models and
    methods, capped to one step; no cell may fail."""
    fake_cifar10(tmp_path, monkeypatch)
    fake_mnist(tmp_path)
    # --jobs 1: in this process, where the checksums of the fabricated files are patched in
    result = CliRunner().invoke(app, ["run", "paper", "--dry-run", "--device", "cpu",
                                      "--jobs", "1", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "cell error" not in result.output
