"""Tests for snn_frontend.datasets (real files from $ACCEL_SIM_DATA, plus damaged copies)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import snn_frontend
from snn_frontend.datasets import (
    DATASETS,
    Dataset,
    DatasetError,
    class_tasks,
    data_root,
    load_dataset,
    select,
    split_validation,
)

SHARED = os.environ.get("ACCEL_SIM_DATA")
IDX_FILES = [
    f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k") for k, d in (("images", 3), ("labels", 1))
]


def _have(folder: str) -> bool:
    return bool(SHARED) and all((Path(SHARED) / folder / "raw" / f).is_file() for f in IDX_FILES)


needs_mnist = pytest.mark.skipif(not _have("MNIST"), reason="MNIST files not under $ACCEL_SIM_DATA")
needs_fashion = pytest.mark.skipif(
    not _have("FashionMNIST"), reason="Fashion-MNIST files not under $ACCEL_SIM_DATA"
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def mnist_train() -> Dataset:
    return load_dataset("mnist", "train", root=SHARED)


@pytest.fixture(scope="module")
def digits_train() -> Dataset:
    return load_dataset("digits", "train")


def _mnist_test_copy(tmp_path: Path, unpack: bool = False) -> Path:
    """Copy the MNIST t10k files into tmp_path/MNIST/raw (optionally unpacked); return the root."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in IDX_FILES[2:]:
        src = Path(SHARED) / "MNIST" / "raw" / f
        if unpack:
            (raw / f[:-3]).write_bytes(gzip.decompress(src.read_bytes()))
        else:
            shutil.copyfile(src, raw / f)
    return tmp_path


def _assert_helpful(exc: pytest.ExceptionInfo, path: Path) -> None:
    msg = str(exc.value)
    assert str(path) in msg
    assert "ACCEL_SIM_DATA" in msg and "data.root" in msg and "download_dataset" in msg


# ----------------------------------------------------------------- data root


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCEL_SIM_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("ACCEL_SIM_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "accel-sim" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "accel-sim" / "data"


@needs_mnist
def test_env_variable_is_used(monkeypatch):
    monkeypatch.setenv("ACCEL_SIM_DATA", SHARED)
    ds = load_dataset("mnist", "test")
    assert len(ds) == 10000


def test_import_is_numpy_only():
    code = (
        "import sys, snn_frontend.datasets; "
        "print('sklearn' in sys.modules, 'torchvision' in sys.modules)"
    )
    src = str(Path(snn_frontend.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["False", "False"]


def test_unknown_name_and_split():
    with pytest.raises(DatasetError, match="mnist"):
        load_dataset("mnsit", "train")
    with pytest.raises(DatasetError, match="train"):
        load_dataset("digits", "validation")


# ----------------------------------------------------------------- MNIST / Fashion-MNIST


@needs_mnist
def test_mnist_train(mnist_train):
    assert len(mnist_train) == 60000 and mnist_train.name == "mnist"
    assert mnist_train.images.shape == (60000, 28, 28) and mnist_train.n_pixels == 784
    assert mnist_train.images.dtype == np.uint8 and mnist_train.labels.dtype == np.int64
    assert mnist_train.labels[0] == 5
    assert np.bincount(mnist_train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert mnist_train.images.max() == 255


@needs_mnist
def test_mnist_test():
    ds = load_dataset("mnist", "test", root=SHARED)
    assert ds.images.shape == (10000, 28, 28) and ds.labels.shape == (10000,)
    assert ds.labels[0] == 7


@needs_fashion
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_fashion_mnist(split, n):
    ds = load_dataset("fashion_mnist", split, root=SHARED)
    assert ds.images.shape == (n, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels[0] == 9
    assert np.bincount(ds.labels).tolist() == [n // 10] * 10


@needs_mnist
def test_gz_and_unpacked_identical(tmp_path):
    gz = load_dataset("mnist", "test", root=_mnist_test_copy(tmp_path / "gz"))
    raw = load_dataset("mnist", "test", root=_mnist_test_copy(tmp_path / "raw", unpack=True))
    np.testing.assert_array_equal(gz.images, raw.images)
    np.testing.assert_array_equal(gz.labels, raw.labels)


@needs_mnist
def test_unpacked_preferred_over_gz(tmp_path):
    root = _mnist_test_copy(tmp_path)
    raw = root / "MNIST" / "raw"
    data = bytearray(gzip.decompress((raw / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    data[8] = 3  # first label 7 -> 3, in the unpacked copy only
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(data))
    assert load_dataset("mnist", "test", root=root).labels[0] == 3


@needs_mnist
@pytest.mark.parametrize("unpack", [False, True])
def test_truncated_file(tmp_path, unpack):
    root = _mnist_test_copy(tmp_path, unpack=unpack)
    path = root / "MNIST" / "raw" / ("t10k-images-idx3-ubyte" + ("" if unpack else ".gz"))
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DatasetError, match="truncated") as exc:
        load_dataset("mnist", "test", root=root)
    _assert_helpful(exc, path)


@needs_mnist
def test_trailing_bytes(tmp_path):
    root = _mnist_test_copy(tmp_path, unpack=True)
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DatasetError, match="holds 10001") as exc:
        load_dataset("mnist", "test", root=root)
    _assert_helpful(exc, path)


@needs_mnist
def test_wrong_magic(tmp_path):
    root = _mnist_test_copy(tmp_path, unpack=True)
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = path.read_bytes()
    path.write_bytes((2051).to_bytes(4, "big") + data[4:])
    with pytest.raises(DatasetError, match="magic number 2051") as exc:
        load_dataset("mnist", "test", root=root)
    _assert_helpful(exc, path)


@needs_mnist
def test_corrupt_gzip(tmp_path):
    root = _mnist_test_copy(tmp_path)
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip data" * 10)
    with pytest.raises(DatasetError) as exc:
        load_dataset("mnist", "test", root=root)
    _assert_helpful(exc, path)


@needs_mnist
def test_count_mismatch(tmp_path):
    root = _mnist_test_copy(tmp_path, unpack=True)
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:4] + (9999).to_bytes(4, "big") + data[8:-1])  # consistent but short
    with pytest.raises(DatasetError, match="10000 images but 9999 labels"):
        load_dataset("mnist", "test", root=root)


def test_missing_file(tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(DatasetError, match="missing file") as exc:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_helpful(exc, tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte")


# ----------------------------------------------------------------- digits


def test_digits(digits_train):
    test = load_dataset("digits", "test")
    assert (len(digits_train), len(test)) == (1500, 297)
    assert digits_train.images.shape == (1500, 8, 8) and digits_train.n_pixels == 64
    assert digits_train.images.dtype == np.uint8 and digits_train.labels.dtype == np.int64
    assert digits_train.images.min() == 0 and digits_train.images.max() == 255
    assert digits_train.labels[:3].tolist() == [0, 1, 2]  # scikit-learn order
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(test.labels, load_digits().target[1500:])


# ----------------------------------------------------------------- select / class_tasks


def test_select_dataset_order_and_classes(digits_train):
    first = select(digits_train, n=10)
    np.testing.assert_array_equal(first.images, digits_train.images[:10])
    sub = select(digits_train, classes=[3, 7])
    assert set(sub.labels.tolist()) == {3, 7}
    assert len(sub) == int(np.isin(digits_train.labels, [3, 7]).sum())
    assert isinstance(sub, Dataset) and sub.name == "digits" and sub.split == "train"
    sub.images[0, 0, 0] = 1  # a copy: the source is untouched
    assert not np.shares_memory(sub.images, digits_train.images)


def test_select_shuffled_reproducible(digits_train):
    a = select(digits_train, n=100, order="shuffled", rng=np.random.default_rng(1))
    b = select(digits_train, n=100, order="shuffled", rng=np.random.default_rng(1))
    c = select(digits_train, n=100, order="shuffled", rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.labels, digits_train.labels[:100])
    with pytest.raises(DatasetError, match="rng"):
        select(digits_train, n=10, order="shuffled")


def test_select_class_incremental(digits_train):
    ds = select(digits_train, n=61, classes=[4, 0, 9], order="class_incremental")
    assert ds.labels.tolist() == [4] * 20 + [0] * 20 + [9] * 20
    first_fours = np.flatnonzero(digits_train.labels == 4)[:20]
    np.testing.assert_array_equal(ds.images[:20], digits_train.images[first_fours])
    assert class_tasks(ds, [4, 0, 9]) == [(4, slice(0, 20)), (0, slice(20, 40)), (9, slice(40, 60))]
    with pytest.raises(DatasetError, match="expected"):
        class_tasks(ds, [0, 4, 9])
    with pytest.raises(DatasetError, match="not class-ordered"):
        class_tasks(digits_train)


def test_select_errors(digits_train):
    with pytest.raises(DatasetError, match="only 1500 are available"):
        select(digits_train, n=1501)
    with pytest.raises(DatasetError, match="available classes: 0, 1, 2"):
        select(digits_train, classes=[1, 11])
    n_zero = int((digits_train.labels == 0).sum())
    with pytest.raises(DatasetError, match=f"class 0 has {n_zero}"):
        select(digits_train, n=2 * (n_zero + 1), classes=[0, 1], order="class_incremental")
    with pytest.raises(DatasetError, match="order"):
        select(digits_train, order="random")


def test_dataset_names():
    assert DATASETS == ("digits", "mnist", "fashion_mnist")


def test_split_validation_holds_out_the_last_samples():
    ds = load_dataset("digits", "train")
    rest, val = split_validation(ds, 100)
    assert len(rest) + len(val) == len(ds) and len(val) == 100 and val.split == "validation"
    assert np.array_equal(val.images, ds.images[-100:]) and np.array_equal(rest.labels, ds.labels[:-100])
    for bad in (0, len(ds), True, 2.5):
        with pytest.raises(DatasetError, match="validation_samples"):
            split_validation(ds, bad)


def test_a_validation_run_never_trains_or_labels_on_its_evaluation_images():
    from accel_sim import load_config
    from accel_sim.families.stdp import load_data

    cfg = load_config(None, ["data.evaluate_on=validation", "data.validation_samples=200"])
    data = load_data(cfg)
    full = load_dataset("digits", "train")
    assert data.test.split == "validation" and len(data.test) == 200
    assert np.array_equal(data.test.images, full.images[-200:])
    assert len(data.train) == len(full) - 200
