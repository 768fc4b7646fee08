"""Spike-train datasets for surrogate-gradient SNNs, stored as event lists.

Three sources, all giving a :class:`SpikeSet` (binary rasters on a grid of
``steps`` time steps of ``dt_ms`` each):

* :func:`latency_code`: images (e.g. MNIST / Fashion-MNIST from
  :func:`snn_frontend.datasets.load_dataset`) turned into one spike per bright
  pixel, as in Perez-Nieves & Goodman, "Sparse Spiking Gradient Descent"
  (NeurIPS 2021) and the SpyTorch tutorials it builds on.
* :func:`load_nmnist`: the N-MNIST subset ``ROOT/NMNIST-small/nmnist_small.tar.gz``
  (1,000 train / 100 test recordings), both polarities merged into 34 x 34 = 1156
  inputs.
* :func:`load_shd`: the Spiking Heidelberg Digits, ``ROOT/SHD/shd_{train,test}.h5``
  (700 inputs, 20 classes). Not bundled; needs h5py.

``ROOT`` is resolved by :func:`snn_frontend.datasets.data_root`. Recorded events are
binned with ``floor(t_ms / dt_ms)``; events at or after ``steps * dt_ms`` are dropped
and several events of one input in one bin count once. Problems raise
:class:`~snn_frontend.datasets.DatasetError`.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from snn_frontend.datasets import SPLITS, DatasetError, data_root

__all__ = [
    "NMNIST_INPUTS",
    "SHD_CLASSES",
    "SHD_INPUTS",
    "SpikeSet",
    "latency_code",
    "load_nmnist",
    "load_shd",
]

NMNIST_SIDE = 34
NMNIST_INPUTS = NMNIST_SIDE * NMNIST_SIDE  # ON and OFF events share an input
NMNIST_TARBALL = Path("NMNIST-small") / "nmnist_small.tar.gz"
_NMNIST_LISTS = {"train": "train1K.txt", "test": "test100.txt"}
_NMNIST_EVENT_BYTES = 5

SHD_INPUTS = 700
SHD_CLASSES = 20
_SHD_FILES = {s: Path("SHD") / f"shd_{s}.h5" for s in SPLITS}
_SHD_URL = "https://zenkelab.org/datasets/"

_LATENCY_CHUNK = 4096  # images coded at once: bounds the temporaries to a few MB

Indices = int | slice | Sequence[int] | np.ndarray


@dataclass(frozen=True, eq=False)
class SpikeSet:
    """Labelled binary spike rasters, stored as events (compressed sparse rows).

    Sample ``i`` has the events ``offsets[i]:offsets[i + 1]`` of ``times`` (time step,
    ``0 <= t < steps``) and ``units`` (input index, ``0 <= u < n_inputs``); the loaders
    here give each (step, input) pair at most once, sorted by step then input.
    ``labels`` is int64 (n,). A dense raster exists only for a :meth:`batch`.
    """

    times: np.ndarray
    units: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    n_inputs: int
    steps: int
    dt_ms: float

    def __post_init__(self) -> None:
        problem = _spikeset_problem(self)
        if problem:
            raise DatasetError(f"inconsistent SpikeSet: {problem}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def duration_ms(self) -> float:
        """Length of the raster: ``steps * dt_ms``."""
        return self.steps * self.dt_ms

    def spike_counts(self) -> np.ndarray:
        """Spikes per sample, int64 (n,)."""
        return np.diff(self.offsets)

    def batch(self, indices: Indices) -> np.ndarray:
        """Dense rasters of the samples ``indices``: bool (B, steps, n_inputs)."""
        idx = self._positions(indices)
        rows, events = _gather(self.offsets, idx)
        raster = np.zeros((len(idx), self.steps, self.n_inputs), dtype=bool)
        raster[rows, self.times[events], self.units[events]] = True
        return raster

    def subset(self, indices: Indices) -> SpikeSet:
        """A new SpikeSet with the samples ``indices``, in that order (events copied)."""
        idx = self._positions(indices)
        _, events = _gather(self.offsets, idx)
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(np.diff(self.offsets)[idx], out=offsets[1:])
        return SpikeSet(self.times[events], self.units[events], offsets, self.labels[idx],
                        self.n_inputs, self.steps, self.dt_ms)

    def _positions(self, indices: Indices) -> np.ndarray:
        """Sample positions (int64, 1-D) for an index, slice, sequence or bool mask."""
        return np.atleast_1d(np.arange(len(self), dtype=np.int64)[indices])


def latency_code(
    images_uint8: np.ndarray,
    steps: int = 100,
    dt_ms: float = 1.0,
    tau_eff_ms: float = 20.0,
    theta: float = 0.2,
    labels: np.ndarray | None = None,
) -> SpikeSet:
    """Latency-code images: each bright pixel spikes once, brighter ones earlier.

    ``images_uint8`` is uint8 (n, pixels), or (n, h, w) flattened row-major. A pixel
    with ``x = pixel / 255 > theta`` spikes at ``T = tau_eff_ms * ln(x / (x - theta))``
    ms, i.e. at step ``floor(T / dt_ms)``, if that step is ``< steps``; other pixels
    never spike. ``labels`` (n,) is stored as int64; None stores -1 for every sample.
    """
    _check_grid(steps, dt_ms)
    if tau_eff_ms <= 0 or not 0 <= theta < 1:
        raise DatasetError(f"need tau_eff_ms > 0 and 0 <= theta < 1, got {tau_eff_ms}, {theta}")
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise DatasetError(
            f"images must be uint8 (n, pixels) or (n, h, w), got {images.dtype} {images.shape}"
        )
    images = images.reshape(len(images), -1)
    step_of_value = _latency_steps(steps, dt_ms, tau_eff_ms, theta)
    t_type, u_type = _index_dtype(steps), _index_dtype(images.shape[1])
    parts = []  # each chunk's events in their compact types: bounded memory for 60,000 images
    for s in range(0, len(images), _LATENCY_CHUNK):
        t, u, n = _latency_events(images[s : s + _LATENCY_CHUNK], step_of_value, steps)
        parts.append((t.astype(t_type), u.astype(u_type), n))
    times = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    units = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    counts = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    labels = np.full(len(images), -1) if labels is None else np.asarray(labels)
    return _spikeset(times, units, counts, labels, images.shape[1], steps, dt_ms)


def load_nmnist(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    steps: int = 300,
    dt_ms: float = 1.0,
) -> SpikeSet:
    """Load the N-MNIST subset (``"train"``: 1,000 samples, ``"test"``: 100).

    Reads ``ROOT/NMNIST-small/nmnist_small.tar.gz`` in one pass, nothing is cached.
    Samples and labels follow the order of ``train1K.txt`` / ``test100.txt``. An event
    at pixel (x, y) with polarity p drives input ``(x + 34 y + 1156 p) mod 1156 =
    x + 34 y`` (1156 inputs) at step ``floor(t_us / 1000 / dt_ms)``.
    """
    _check_split(split)
    _check_grid(steps, dt_ms)
    base = data_root(root)
    path = base / NMNIST_TARBALL
    fail = _nmnist_fail(base, path, split)
    if not path.is_file():
        raise fail(f"missing file {path}")
    listing, recordings = _read_nmnist_tar(path, _NMNIST_LISTS[split], fail)
    samples = []
    for sample_id in listing[:, 0]:
        if sample_id not in recordings:
            raise fail(f"{_NMNIST_LISTS[split]} lists sample {sample_id}, "
                       f"but the tarball has no {sample_id}.bs2")
        samples.append(_nmnist_raster(recordings[sample_id], steps, dt_ms, fail, sample_id))
    return _spikeset_from_samples(samples, listing[:, 1], NMNIST_INPUTS, steps, dt_ms)


def load_shd(
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    steps: int = 500,
    dt_ms: float = 2.0,
) -> SpikeSet:
    """Load one split of the Spiking Heidelberg Digits from ``ROOT/SHD/shd_{split}.h5``.

    The file layout is SHD's: ragged ``spikes/times`` (seconds) and ``spikes/units``
    (0..699), one entry per sample, and ``labels`` (0..19). An event at ``t`` s drives
    its unit at step ``floor(1000 t / dt_ms)``. Needs h5py.
    """
    _check_split(split)
    _check_grid(steps, dt_ms)
    base = data_root(root)
    path = base / _SHD_FILES[split]
    fail = _shd_fail(base, path, split)
    if not path.is_file():
        raise fail(f"missing file {path}")
    try:
        import h5py
    except ImportError as exc:
        raise DatasetError(f"reading SHD ({path}) needs h5py: pip install h5py") from exc
    try:
        with h5py.File(path, "r") as f:
            times_s, units, labels = f["spikes/times"][()], f["spikes/units"][()], f["labels"][()]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise fail(f"cannot read {path}: {exc} (not an SHD file, truncated or corrupt?)") from exc
    _check_shd_arrays(times_s, units, labels, fail)
    samples = [_bin_events(np.asarray(t, np.float64) * 1000.0, np.asarray(u, np.int64),
                           SHD_INPUTS, steps, dt_ms)
               for t, u in zip(times_s, units, strict=True)]
    return _spikeset_from_samples(samples, labels, SHD_INPUTS, steps, dt_ms)


# --------------------------------------------------------------------------- helpers


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")


def _check_grid(steps: int, dt_ms: float) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DatasetError(f"steps must be a positive integer, got {steps!r}")
    if not dt_ms > 0:
        raise DatasetError(f"dt_ms must be positive, got {dt_ms!r}")


def _index_dtype(limit: int) -> type[np.signedinteger]:
    """The smallest of int16 / int32 holding every value in ``0..limit - 1``."""
    return np.int16 if limit <= np.iinfo(np.int16).max + 1 else np.int32


def _spikeset_problem(s: SpikeSet) -> str:
    """What is wrong with ``s`` ("" if nothing): shapes, offsets and value ranges."""
    if s.times.ndim != 1 or s.units.shape != s.times.shape:
        return f"times and units must be 1-D of one length, got {s.times.shape}, {s.units.shape}"
    if s.labels.ndim != 1 or s.offsets.shape != (len(s.labels) + 1,):
        return f"need labels (n,) and offsets (n + 1,), got {s.labels.shape}, {s.offsets.shape}"
    if s.offsets[0] != 0 or s.offsets[-1] != len(s.times) or np.any(np.diff(s.offsets) < 0):
        return "offsets must rise from 0 to the number of events"
    if s.steps < 1 or s.n_inputs < 1 or not s.dt_ms > 0:
        return f"need steps, n_inputs, dt_ms > 0, got {s.steps}, {s.n_inputs}, {s.dt_ms}"
    if len(s.times) and not (0 <= s.times.min() and s.times.max() < s.steps):
        return f"times must lie in 0..{s.steps - 1}"
    if len(s.units) and not (0 <= s.units.min() and s.units.max() < s.n_inputs):
        return f"units must lie in 0..{s.n_inputs - 1}"
    return ""


def _gather(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For samples ``idx``: (row in the batch, position in the event arrays) of each event."""
    starts, counts = offsets[idx], offsets[idx + 1] - offsets[idx]
    rows = np.repeat(np.arange(len(idx)), counts)
    first_out = np.cumsum(counts) - counts  # where each sample starts in the output
    events = np.arange(counts.sum(), dtype=np.int64) + np.repeat(starts - first_out, counts)
    return rows, events


def _spikeset(
    times: np.ndarray,
    units: np.ndarray,
    counts: np.ndarray,
    labels: np.ndarray,
    n_inputs: int,
    steps: int,
    dt_ms: float,
) -> SpikeSet:
    """Build a SpikeSet from concatenated events and the number of events per sample."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return SpikeSet(times.astype(_index_dtype(steps)), units.astype(_index_dtype(n_inputs)),
                    offsets, labels.astype(np.int64), int(n_inputs), int(steps), float(dt_ms))


def _spikeset_from_samples(
    samples: list[tuple[np.ndarray, np.ndarray]],
    labels: np.ndarray,
    n_inputs: int,
    steps: int,
    dt_ms: float,
) -> SpikeSet:
    """Build a SpikeSet from one (times, units) pair per sample."""
    empty = np.zeros(0, np.int64)
    times = np.concatenate([t for t, _ in samples]) if samples else empty
    units = np.concatenate([u for _, u in samples]) if samples else empty
    counts = np.array([len(t) for t, _ in samples], dtype=np.int64)
    return _spikeset(times, units, counts, np.asarray(labels), n_inputs, steps, dt_ms)


def _bin_events(
    t_ms: np.ndarray, units: np.ndarray, n_inputs: int, steps: int, dt_ms: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bin events to steps ``floor(t_ms / dt_ms)``, drop those past ``steps``, merge
    repeats of one (step, unit); return (steps, units) sorted by step then unit."""
    step = np.floor(t_ms / dt_ms)
    keep = (step >= 0) & (step < steps)
    keys = np.sort(step[keep].astype(np.int64) * n_inputs + units[keep])
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return keys // n_inputs, keys % n_inputs


def _latency_steps(steps: int, dt_ms: float, tau_eff_ms: float, theta: float) -> np.ndarray:
    """Spike step of each pixel value 0..255 (int64 (256,)); -1 for pixels that never spike."""
    x = np.arange(256, dtype=np.float64) / 255.0
    bright = x > theta
    t_ms = np.full(256, np.inf)
    t_ms[bright] = tau_eff_ms * np.log(x[bright] / (x[bright] - theta))
    step = np.floor(t_ms / dt_ms)
    return np.where(step < steps, step, -1).astype(np.int64)


def _latency_events(
    images: np.ndarray, step_of_value: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events of uint8 images (n, pixels): (steps, units, spikes per image), each image's
    events sorted by step then pixel."""
    sample, unit = np.nonzero((step_of_value >= 0)[images])  # sorted by sample, then pixel
    step = step_of_value[images[sample, unit]]
    order = np.argsort(sample * steps + step, kind="stable")
    counts = np.bincount(sample, minlength=len(images))
    return step[order], unit[order], counts


def _nmnist_fail(base: Path, path: Path, split: str) -> Callable[[str], DatasetError]:
    def fail(problem: str) -> DatasetError:
        return DatasetError(
            f"cannot load dataset 'nmnist' ({split}) from {base}: {problem}\n"
            f"expected file (the N-MNIST subset, members NMNISTsmall/<id>.bs2, "
            f"{_NMNIST_LISTS[split]}):\n  {path}\n"
            f"fix: set `data.root` in the config or the ACCEL_SIM_DATA environment variable to a "
            f"folder holding {NMNIST_TARBALL.as_posix()}"
        )

    return fail


def _read_nmnist_tar(
    path: Path, list_name: str, fail: Callable[[str], DatasetError]
) -> tuple[np.ndarray, dict[int, bytes]]:
    """One pass over the tarball: (listing int64 (n, 2) of sample id and label, bytes of
    every ``<id>.bs2`` by id)."""
    listing, recordings = None, {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if not member.isfile() or not (name == list_name or name.endswith(".bs2")):
                    continue
                data = tar.extractfile(member).read()
                if name == list_name:
                    listing = _parse_nmnist_listing(data, list_name, fail)
                elif name[:-4].isdigit():
                    recordings[int(name[:-4])] = data
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise fail(f"cannot read {path}: {exc} (truncated or corrupt file?)") from exc
    if listing is None:
        raise fail(f"{path} holds no {list_name}")
    return listing, recordings


def _parse_nmnist_listing(
    data: bytes, list_name: str, fail: Callable[[str], DatasetError]
) -> np.ndarray:
    """``sample_id label`` lines (``#`` comments skipped) as int64 (n, 2)."""
    try:
        rows = [[int(v) for v in line.split()] for line in data.decode("ascii").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
        listing = np.array(rows, dtype=np.int64).reshape(-1, 2)
    except (UnicodeDecodeError, ValueError) as exc:
        raise fail(f"{list_name} is not a list of `sample_id label` lines: {exc}") from exc
    if len(listing) and not (0 <= listing[:, 1].min() and listing[:, 1].max() <= 9):
        raise fail(f"{list_name} has labels outside 0..9")
    return listing


def _nmnist_raster(
    data: bytes, steps: int, dt_ms: float, fail: Callable[[str], DatasetError], sample_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one N-MNIST recording (5 bytes per event) and bin it: (steps, units)."""
    if len(data) % _NMNIST_EVENT_BYTES:
        raise fail(f"{sample_id}.bs2 has {len(data)} bytes, not a multiple of 5 (truncated?)")
    b = np.frombuffer(data, np.uint8).reshape(-1, _NMNIST_EVENT_BYTES).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    if len(b) and max(x.max(), y.max()) >= NMNIST_SIDE:
        raise fail(f"{sample_id}.bs2 has pixels outside the 34 x 34 sensor (corrupt?)")
    t_us = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]  # bit 23 is the polarity
    return _bin_events(t_us / 1000.0, x + NMNIST_SIDE * y, NMNIST_INPUTS, steps, dt_ms)


def _shd_fail(base: Path, path: Path, split: str) -> Callable[[str], DatasetError]:
    def fail(problem: str) -> DatasetError:
        expected = "\n".join(f"  {base / f}" for f in _SHD_FILES.values())
        return DatasetError(
            f"cannot load dataset 'shd' ({split}) from {base}: {problem}\n"
            f"expected files (Spiking Heidelberg Digits, HDF5):\n{expected}\n"
            f"SHD is not bundled with the shared data: download shd_train.h5.gz and "
            f"shd_test.h5.gz from {_SHD_URL} (zenkelab.org), gunzip them into SHD/, and set "
            f"`data.root` in the config or the ACCEL_SIM_DATA environment variable to the "
            f"folder holding SHD/"
        )

    return fail


def _check_shd_arrays(
    times_s: np.ndarray, units: np.ndarray, labels: np.ndarray, fail: Callable[[str], DatasetError]
) -> None:
    """Check the ragged SHD arrays: matching lengths and units, labels in range."""
    if not len(times_s) == len(units) == len(labels):
        raise fail(f"{len(times_s)} spike-time rows, {len(units)} unit rows, {len(labels)} labels")
    if len(labels) and not (0 <= np.min(labels) and np.max(labels) < SHD_CLASSES):
        raise fail(f"labels outside 0..{SHD_CLASSES - 1}")
    for i, (t, u) in enumerate(zip(times_s, units, strict=True)):
        if len(t) != len(u):
            raise fail(f"sample {i} has {len(t)} spike times but {len(u)} units")
        if len(u) and not (0 <= np.min(u) and np.max(u) < SHD_INPUTS):
            raise fail(f"sample {i} has units outside 0..{SHD_INPUTS - 1}")
