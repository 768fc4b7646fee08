"""Tests for snn_frontend.spiking_data: latency code, N-MNIST, SHD and SpikeSet."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_mnist

from snn_frontend.datasets import DatasetError, load_dataset
from snn_frontend.spiking_data import (
    NMNIST_INPUTS,
    SHD_INPUTS,
    SpikeSet,
    latency_code,
    load_nmnist,
    load_shd,
)

DATA_ROOT = os.environ.get("ACCEL_SIM_DATA")


def _has(*parts: str) -> bool:
    return bool(DATA_ROOT) and os.path.exists(os.path.join(DATA_ROOT or "", *parts))


requires_fashion_mnist = pytest.mark.skipif(
    not _has("FashionMNIST", "raw", "t10k-images-idx3-ubyte.gz"),
    reason="set ACCEL_SIM_DATA to a folder with Fashion-MNIST")
requires_nmnist = pytest.mark.skipif(
    not _has("NMNIST-small", "nmnist_small.tar.gz"),
    reason="set ACCEL_SIM_DATA to a folder with NMNIST-small/nmnist_small.tar.gz")

# pixel:  255 -> x = 1:       T = 20 ln(1/0.8)      =  4.46 ms
#          51 -> x = 0.2:     no spike (x must exceed theta)
#          52 -> x/(x-0.2) = 52/(52-51): T = 20 ln 52 = 79.02 ms
#         128 -> 128/77:      T = 20 ln(1.662)      = 10.16 ms
#         102 -> 102/51 = 2:  T = 20 ln 2           = 13.86 ms
#           0 -> no spike
PIXELS = np.array([[255, 51, 52, 128, 102, 0],
                   [0, 0, 0, 0, 0, 255]], dtype=np.uint8)


def _dense(events: list[list[tuple[int, int]]], steps: int, n_inputs: int) -> np.ndarray:
    """A bool raster (n, steps, n_inputs) from per-sample lists of (step, unit)."""
    out = np.zeros((len(events), steps, n_inputs), dtype=bool)
    for i, sample in enumerate(events):
        for t, u in sample:
            out[i, t, u] = True
    return out


# --------------------------------------------------------------------------- latency code


def test_latency_code_hand_computed_steps() -> None:
    s = latency_code(PIXELS, labels=np.array([4, 2]))
    assert (len(s), s.steps, s.n_inputs, s.dt_ms) == (2, 100, 6, 1.0)
    np.testing.assert_array_equal(s.spike_counts(), [4, 1])
    np.testing.assert_array_equal(s.times[:4], [4, 10, 13, 79])  # sorted by step
    np.testing.assert_array_equal(s.units[:4], [0, 3, 4, 2])
    expected = _dense([[(4, 0), (10, 3), (13, 4), (79, 2)], [(4, 5)]], 100, 6)
    np.testing.assert_array_equal(s.batch([0, 1]), expected)
    np.testing.assert_array_equal(s.labels, [4, 2])


def test_latency_code_dt_and_window() -> None:
    coarse = latency_code(PIXELS, steps=50, dt_ms=2.0)  # 4.46/2, 10.16/2, 13.86/2, 79.02/2
    expected = _dense([[(2, 0), (5, 3), (6, 4), (39, 2)], [(2, 5)]], 50, 6)
    np.testing.assert_array_equal(coarse.batch(slice(None)), expected)
    short = latency_code(PIXELS, steps=79)  # pixel 52 would spike at step 79: dropped
    np.testing.assert_array_equal(short.spike_counts(), [3, 1])
    np.testing.assert_array_equal(latency_code(PIXELS).labels, [-1, -1])


def test_latency_code_matches_reference_formula_for_every_pixel_value() -> None:
    imgs = np.arange(256, dtype=np.uint8)[None, :]
    x = imgs / 255.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ms = np.where(x > 0.2, 20.0 * np.log(x / (x - 0.2)), np.inf)[0]
    ref_units = np.flatnonzero(t_ms < 100)
    s = latency_code(imgs)
    order = np.argsort(s.units)
    np.testing.assert_array_equal(s.units[order], ref_units)
    np.testing.assert_array_equal(s.times[order], t_ms[ref_units].astype(int))
    assert ref_units[0] == 52 and s.spike_counts()[0] == 256 - 52


def test_latency_code_accepts_2d_images_and_rejects_floats() -> None:
    imgs = np.stack([PIXELS[:, :4], PIXELS[:, 2:]], axis=1)  # (2, 2, 4), row-major
    np.testing.assert_array_equal(latency_code(imgs).spike_counts(), [6, 1])
    with pytest.raises(DatasetError, match="uint8"):
        latency_code(PIXELS.astype(np.float32))
    with pytest.raises(DatasetError, match="steps"):
        latency_code(PIXELS, steps=0)


@requires_fashion_mnist
def test_fashion_mnist_latency_code() -> None:
    ds = load_dataset("fashion_mnist", "test")
    s = latency_code(ds.images, labels=ds.labels)
    assert len(s) == 10000 and s.n_inputs == 784
    assert s.times.dtype == np.int16 and s.units.dtype == np.int16  # events, not a dense raster
    # exactly the pixels brighter than theta = 51/255 spike (all of them before 100 ms)
    np.testing.assert_array_equal(s.spike_counts(), (ds.images > 51).reshape(10000, -1).sum(1))
    fraction = s.spike_counts().sum() / ds.images.size
    assert fraction == pytest.approx(0.425, abs=0.005)  # Fashion-MNIST: about 42 %
    assert s.times.max() < 100 and s.times.min() == 4  # pixel 255 -> step 4
    np.testing.assert_array_equal(s.labels, ds.labels)


@requires_mnist
def test_mnist_latency_code_fraction() -> None:
    ds = load_dataset("mnist", "test")
    s = latency_code(ds.images)
    fraction = s.spike_counts().sum() / ds.images.size
    assert fraction == pytest.approx(0.163, abs=0.005)  # 19 % of pixels are > 0, 16 % > 51


# --------------------------------------------------------------------------- SpikeSet


def test_spikeset_subset_batch_and_counts() -> None:
    s = latency_code(np.array([[255, 0, 128], [0, 0, 0], [102, 255, 52]], np.uint8),
                     labels=np.array([7, 8, 9]))
    np.testing.assert_array_equal(s.spike_counts(), [2, 0, 3])
    sub = s.subset([2, 0, 1])
    np.testing.assert_array_equal(sub.labels, [9, 7, 8])
    np.testing.assert_array_equal(sub.spike_counts(), [3, 2, 0])
    np.testing.assert_array_equal(sub.batch(slice(None)), s.batch([2, 0, 1]))
    np.testing.assert_array_equal(s.batch(-1), s.batch([2]))
    np.testing.assert_array_equal(s.batch(np.array([False, True, True])), s.batch([1, 2]))
    assert s.batch([1]).dtype == bool and not s.batch([1]).any()
    assert s.subset([]).spike_counts().size == 0 and s.batch([]).shape == (0, 100, 3)
    assert s.duration_ms == 100.0
    with pytest.raises(IndexError):
        s.batch([3])


def test_spikeset_rejects_inconsistent_events() -> None:
    good = {"times": np.array([0, 1], np.int16), "units": np.array([2, 3], np.int16),
            "offsets": np.array([0, 2]), "labels": np.array([1]), "n_inputs": 4, "steps": 2,
            "dt_ms": 1.0}
    assert len(SpikeSet(**good)) == 1
    for bad, match in [({"units": np.array([2, 4], np.int16)}, "units"),
                       ({"times": np.array([0, 2], np.int16)}, "times"),
                       ({"offsets": np.array([0, 1])}, "offsets")]:
        with pytest.raises(DatasetError, match=match):
            SpikeSet(**{**good, **bad})


# --------------------------------------------------------------------------- N-MNIST


@pytest.fixture(scope="module")
def nmnist_train() -> SpikeSet:
    return load_nmnist(DATA_ROOT, "train")


def _keys(s: SpikeSet) -> np.ndarray:
    """One int64 key per event: (sample, step, unit)."""
    sample = np.repeat(np.arange(len(s)), s.spike_counts())
    return (sample * s.steps + s.times.astype(np.int64)) * s.n_inputs + s.units


@requires_nmnist
def test_nmnist_subset(nmnist_train: SpikeSet) -> None:
    test = load_nmnist(DATA_ROOT, "test")
    for s, n, first_label in [(nmnist_train, 1000, 5), (test, 100, 7)]:
        assert (len(s), s.n_inputs, s.steps, s.dt_ms) == (n, NMNIST_INPUTS, 300, 1.0)
        assert s.labels[0] == first_label and set(np.unique(s.labels)) == set(range(10))
        assert 0 <= s.units.min() and s.units.max() < 1156
        assert 0 <= s.times.min() and s.times.max() < 300
        keys = _keys(s)
        assert np.all(np.diff(keys) > 0)  # no duplicate (bin, unit); sorted per sample
        assert s.spike_counts().min() > 500


@requires_nmnist
def test_nmnist_sample_matches_the_readme_reader(nmnist_train: SpikeSet) -> None:
    path = Path(DATA_ROOT or "") / "NMNIST-small" / "nmnist_small.tar.gz"
    with tarfile.open(path) as tar:
        raw = tar.extractfile("NMNISTsmall/1.bs2").read()
    b = np.frombuffer(raw, np.uint8).reshape(-1, 5).astype(np.int64)
    x, y, p = b[:, 0], b[:, 1], b[:, 2] >> 7
    t_us = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    assert p.min() == 0 and p.max() == 1
    keep = t_us < 300_000
    expected = np.zeros((300, 1156), bool)
    expected[t_us[keep] // 1000, (x + 34 * y + 1156 * p)[keep] % 1156] = True
    np.testing.assert_array_equal(nmnist_train.batch([0])[0], expected)


@requires_nmnist
def test_nmnist_coarser_bins_pool_the_fine_ones() -> None:
    coarse = load_nmnist(DATA_ROOT, "test", steps=150, dt_ms=2.0)
    fine = load_nmnist(DATA_ROOT, "test").batch([0, 1])
    np.testing.assert_array_equal(coarse.batch([0, 1]), fine[:, 0::2] | fine[:, 1::2])


def test_nmnist_missing_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCEL_SIM_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="missing file") as exc:
        load_nmnist(split="test")  # root from $ACCEL_SIM_DATA
    msg = str(exc.value)
    assert str(tmp_path / "NMNIST-small" / "nmnist_small.tar.gz") in msg
    assert "ACCEL_SIM_DATA" in msg
    with pytest.raises(DatasetError, match="split"):
        load_nmnist(tmp_path, "validation")


def test_nmnist_corrupt_tarball(tmp_path: Path) -> None:
    path = tmp_path / "NMNIST-small" / "nmnist_small.tar.gz"
    path.parent.mkdir()
    path.write_bytes(b"\x1f\x8b\x08\x00 not really a gzip stream")
    with pytest.raises(DatasetError, match="corrupt") as exc:
        load_nmnist(tmp_path, "train")
    assert "nmnist_small.tar.gz" in str(exc.value) and "ACCEL_SIM_DATA" in str(exc.value)


# synthetic recordings in the N-MNIST binary format: 5 bytes per event

def _nmnist_event(x, y, pol, t_us) -> bytes:
    return bytes([x, y, (pol << 7) | ((t_us >> 16) & 0x7F), (t_us >> 8) & 0xFF, t_us & 0xFF])


def _write_nmnist(root: Path, recordings: dict[int, bytes], listing: str, list_name="test100.txt"):
    folder = root / "NMNIST-small"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "nmnist_small.tar.gz", "w:gz") as tar:
        for name, data in [(f"NMNISTsmall/{k}.bs2", v) for k, v in recordings.items()] + [
                (f"NMNISTsmall/{list_name}", listing.encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_nmnist_decodes_bins_and_merges_polarities(tmp_path):
    events = (_nmnist_event(3, 2, 0, 500) + _nmnist_event(3, 2, 1, 900)   # same pixel, bin 0
              + _nmnist_event(33, 33, 1, 1_000) + _nmnist_event(0, 0, 0, 299_999)
              + _nmnist_event(1, 0, 0, 300_000))                           # past 300 steps
    _write_nmnist(tmp_path, {7: events, 9: b""}, "# id label\n7 4\n9 1\n")
    s = load_nmnist(tmp_path, "test")
    assert s.n_inputs == NMNIST_INPUTS == 1156 and s.steps == 300 and len(s) == 2
    assert s.labels.tolist() == [4, 1]
    assert list(zip(s.times.tolist(), s.units.tolist())) == [(0, 3 + 34 * 2), (1, 33 + 34 * 33),
                                                             (299, 0)]
    assert s.spike_counts().tolist() == [3, 0]



# --------------------------------------------------------------------------- SHD

SHD_TIMES_S = [[0.0005, 0.0015, 0.0031, 0.9985, 1.2], [], [0.0501, 0.0101, 0.0103]]
SHD_UNITS = [[5, 5, 699, 0, 3], [], [1, 2, 3]]
SHD_LABELS = [3, 0, 19]


def _write_shd(root: Path, split: str = "train") -> Path:
    """A 3-sample file in SHD's layout: ragged spikes/times (s), spikes/units, labels."""
    h5py = pytest.importorskip("h5py")
    path = root / "SHD" / f"shd_{split}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (3,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (3,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(3):
            times[i] = np.array(SHD_TIMES_S[i], np.float32)
            units[i] = np.array(SHD_UNITS[i], np.uint16)
        f.create_dataset("labels", data=np.array(SHD_LABELS, np.uint8))
    return path


def test_shd_raster_exact(tmp_path: Path) -> None:
    _write_shd(tmp_path, "test")
    s = load_shd(tmp_path, "test")  # 500 steps of 2 ms
    assert (len(s), s.n_inputs, s.steps, s.dt_ms) == (3, SHD_INPUTS, 500, 2.0)
    np.testing.assert_array_equal(s.labels, SHD_LABELS)
    # 0.5 and 1.5 ms -> step 0 (unit 5 once); 3.1 ms -> 1; 998.5 ms -> 499; 1200 ms dropped
    expected = [[(0, 5), (1, 699), (499, 0)], [], [(5, 2), (5, 3), (25, 1)]]
    np.testing.assert_array_equal(s.spike_counts(), [3, 0, 3])
    np.testing.assert_array_equal(s.batch([0, 1, 2]), _dense(expected, 500, 700))
    np.testing.assert_array_equal(s.times, [0, 1, 499, 5, 5, 25])
    np.testing.assert_array_equal(s.units, [5, 699, 0, 2, 3, 1])
    fine = load_shd(tmp_path, "test", steps=10, dt_ms=1.0)
    np.testing.assert_array_equal(fine.batch([0])[0], _dense([[(0, 5), (1, 5), (3, 699)]],
                                                               10, 700)[0])


def test_shd_corrupt_file(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = tmp_path / "SHD" / "shd_train.h5"
    path.parent.mkdir()
    path.write_bytes(b"this is not HDF5")
    with pytest.raises(DatasetError, match="corrupt") as exc:
        load_shd(tmp_path, "train")
    assert str(path) in str(exc.value)


def test_shd_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing file") as exc:
        load_shd(tmp_path, "train")
    msg = str(exc.value)
    for f in ("shd_train.h5", "shd_test.h5"):
        assert str(tmp_path / "SHD" / f) in msg
    assert "ACCEL_SIM_DATA" in msg and "not bundled" in msg and "zenkelab.org" in msg


def test_shd_without_h5py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "SHD" / "shd_train.h5"
    path.parent.mkdir()
    path.touch()
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(DatasetError, match="pip install h5py"):
        load_shd(tmp_path, "train")
