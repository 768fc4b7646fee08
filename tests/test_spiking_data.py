"""Tests for snn_frontend.spiking_data: the latency code, N-MNIST's event files, SHD's HDF5
layout (a small file written here in SHD's layout) and the SpikeSet container."""

from __future__ import annotations

import io
import math
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from snn_frontend.datasets import DatasetError
from snn_frontend.spiking_data import (
    NMNIST_INPUTS,
    SpikeSet,
    latency_code,
    load_nmnist,
    load_shd,
)

SHARED = os.environ.get("ACCEL_SIM_DATA")
needs_nmnist = pytest.mark.skipif(
    not (SHARED and (Path(SHARED) / "NMNIST-small" / "nmnist_small.tar.gz").is_file()),
    reason="N-MNIST subset not under $ACCEL_SIM_DATA")


# ----------------------------------------------------------------------------- latency code


def test_latency_code_spike_times_by_hand():
    # x = 255/255 = 1: T = 20 ln(1/0.8) = 4.46 ms -> step 4; x = 102/255 = 0.4: T = 20 ln 2 =
    # 13.86 -> step 13; x = 52/255 = 0.204: T = 20 ln(0.2039/0.0039) = 79.2 -> step 79;
    # 51/255 = 0.2 is not above theta and 0 never spikes.
    img = np.array([[255, 102, 52, 51, 0]], np.uint8)
    s = latency_code(img, steps=100, labels=np.array([3]))
    assert s.times.tolist() == [4, 13, 79] and s.units.tolist() == [0, 1, 2]
    assert s.labels.tolist() == [3] and s.n_inputs == 5
    # a 50-step grid drops the late spike; dt 2 ms halves the steps
    assert latency_code(img, steps=50).times.tolist() == [4, 13]
    assert latency_code(img, steps=100, dt_ms=2.0).times.tolist() == [2, 6, 39]
    x = 52 / 255
    assert math.floor(20 * math.log(x / (x - 0.2))) == 79


def test_latency_code_sorts_each_sample_by_step_then_input():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 6, 5), dtype=np.uint8)
    s = latency_code(imgs, steps=100)
    for b in range(7):
        t = s.times[s.offsets[b]:s.offsets[b + 1]].astype(np.int64)
        u = s.units[s.offsets[b]:s.offsets[b + 1]].astype(np.int64)
        keys = t * 30 + u
        assert np.all(np.diff(keys) > 0)
        x = imgs[b].reshape(-1).astype(np.float64) / 255
        late = np.zeros_like(x, bool)
        late[x > 0.2] = 20 * np.log(x[x > 0.2] / (x[x > 0.2] - 0.2)) >= 100
        assert len(t) == int((x > 0.2).sum() - late.sum())


def test_latency_code_rejects_bad_input():
    with pytest.raises(DatasetError, match="uint8"):
        latency_code(np.zeros((2, 4), np.float32))
    with pytest.raises(DatasetError, match="steps"):
        latency_code(np.zeros((2, 4), np.uint8), steps=0)
    with pytest.raises(DatasetError, match="theta"):
        latency_code(np.zeros((2, 4), np.uint8), theta=1.5)


# ----------------------------------------------------------------------------- SpikeSet


def _small_set() -> SpikeSet:
    times = np.array([0, 2, 1, 1, 3], np.int16)
    units = np.array([1, 0, 0, 2, 2], np.int16)
    return SpikeSet(times, units, np.array([0, 2, 2, 5]), np.array([4, 5, 6]), 3, 4, 1.0)


def test_spikeset_batch_and_subset():
    s = _small_set()
    b = s.batch([2, 0])
    assert b.shape == (2, 4, 3) and b.dtype == bool
    assert sorted(zip(*np.nonzero(b[0]))) == [(1, 0), (1, 2), (3, 2)]
    assert sorted(zip(*np.nonzero(b[1]))) == [(0, 1), (2, 0)]
    assert s.batch(1).sum() == 0
    sub = s.subset([2, 1])
    assert sub.labels.tolist() == [6, 5] and sub.offsets.tolist() == [0, 3, 3]
    assert np.array_equal(sub.batch([0]), s.batch([2]))
    assert s.spike_counts().tolist() == [2, 0, 3] and s.duration_ms == 4.0


def test_spikeset_rejects_inconsistent_arrays():
    with pytest.raises(DatasetError, match="times must lie"):
        SpikeSet(np.array([4]), np.array([0]), np.array([0, 1]), np.array([0]), 3, 4, 1.0)
    with pytest.raises(DatasetError, match="offsets"):
        SpikeSet(np.array([0]), np.array([0]), np.array([0, 2]), np.array([0]), 3, 4, 1.0)


# ----------------------------------------------------------------------------- N-MNIST


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


def test_nmnist_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="nmnist_small.tar.gz"):
        load_nmnist(tmp_path, "train")
    _write_nmnist(tmp_path, {7: b"\x00" * 4}, "7 4\n")
    with pytest.raises(DatasetError, match="not a multiple of 5"):
        load_nmnist(tmp_path, "test")
    with pytest.raises(DatasetError, match="train1K.txt"):
        load_nmnist(tmp_path, "train")
    with pytest.raises(DatasetError, match="unknown split"):
        load_nmnist(tmp_path, "validation")


@needs_nmnist
def test_nmnist_subset_from_the_shared_data():
    s = load_nmnist(SHARED, "test")
    assert len(s) == 100 and s.n_inputs == 1156 and s.steps == 300
    assert sorted(set(s.labels.tolist())) == list(range(10))
    counts = s.spike_counts()
    assert counts.min() > 100  # every recording has events in its first 300 ms
    raster = s.batch(np.arange(4))
    assert raster.sum() == counts[:4].sum()


# ----------------------------------------------------------------------------- SHD


def _write_shd(path: Path, samples, labels):
    h5py = pytest.importorskip("h5py")
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        ft = h5py.vlen_dtype(np.dtype("float32"))
        ut = h5py.vlen_dtype(np.dtype("uint16"))
        times = f.create_dataset("spikes/times", (len(samples),), dtype=ft)
        units = f.create_dataset("spikes/units", (len(samples),), dtype=ut)
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, np.float32)
            units[i] = np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint8))


def test_shd_reads_the_hdf5_layout(tmp_path):
    _write_shd(tmp_path / "SHD" / "shd_train.h5",
               [([0.0005, 0.0015, 0.0019, 0.9999, 1.2], [5, 699, 699, 3, 1]), ([], [])],
               [19, 0])
    s = load_shd(tmp_path, "train")  # 500 steps of 2 ms
    assert s.n_inputs == 700 and s.steps == 500 and s.labels.tolist() == [19, 0]
    # 0.5 ms -> step 0; 1.5 and 1.9 ms -> step 0 (one spike); 999.9 ms -> 499; 1.2 s dropped
    assert list(zip(s.times.tolist(), s.units.tolist())) == [(0, 5), (0, 699), (499, 3)]
    assert s.spike_counts().tolist() == [3, 0]


def test_shd_missing_and_bad_files(tmp_path):
    with pytest.raises(DatasetError, match=r"shd_train\.h5[\s\S]*shd_test\.h5"):
        load_shd(tmp_path, "test")
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_test.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="cannot read"):
        load_shd(tmp_path, "test")
    _write_shd(tmp_path / "SHD" / "shd_train.h5", [([0.1], [700])], [0])
    with pytest.raises(DatasetError, match="units outside"):
        load_shd(tmp_path, "train")
