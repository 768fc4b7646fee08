"""Image datasets for the frontend: loading, validation and sample selection.

Three datasets are supported (``DATASETS``):

* ``digits``: scikit-learn's bundled 8x8 digits (1797 samples, no download).
  There is no official split, so a fixed one is used: the first 1500 samples in
  scikit-learn's order are ``"train"`` and the remaining 297 are ``"test"``.
* ``mnist`` / ``fashion_mnist``: the original IDX files in torchvision's layout,
  ``ROOT/MNIST/raw/`` and ``ROOT/FashionMNIST/raw/``, each file either gzipped or
  unpacked (the unpacked file wins if both exist). ``ROOT`` comes from
  :func:`data_root`. Files are parsed with NumPy and checked thoroughly (magic
  number, header dims, exact payload size, counts); any problem raises
  :class:`DatasetError` with a message that says how to fix it.

Only NumPy is imported at module import; scikit-learn and torchvision are
imported lazily, when needed.
"""

from __future__ import annotations

import gzip
import operator
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "ORDERS",
    "Dataset",
    "DatasetError",
    "class_tasks",
    "data_root",
    "download_dataset",
    "load_dataset",
    "select",
    "split_validation",
]

DATASETS = ("digits", "mnist", "fashion_mnist")
SPLITS = ("train", "test")
ORDERS = ("dataset", "shuffled", "class_incremental")

DIGITS_N_TRAIN = 1500  # first 1500 samples in scikit-learn order are "train"

_IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_COUNTS = {"train": 60000, "test": 10000}
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
_IMAGE_SHAPE = (28, 28)
_N_CLASSES = 10
_PIP_EXTRA = 'pip install "neuro-accel-sim[datasets]"'  # the optional torchvision extra


class DatasetError(ValueError):
    """A dataset is missing, corrupt, or was asked for something it cannot give.

    The message is meant for users: the CLI prints it without a traceback.
    """


@dataclass(frozen=True)
class Dataset:
    """A labelled image set: ``images`` uint8 (n, h, w), ``labels`` int64 (n,)."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.labels.ndim != 1 or len(self.images) != len(self.labels):
            raise DatasetError(
                f"{self.name} ({self.split}): images must be (n, h, w) and labels (n,), "
                f"got {self.images.shape} and {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_pixels(self) -> int:
        """Pixels per image (h * w), i.e. the number of input neurons."""
        return int(self.images.shape[1] * self.images.shape[2])


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the dataset folder.

    ``root`` if given (and not empty), else ``$ACCEL_SIM_DATA``, else
    ``$XDG_CACHE_HOME/accel-sim/data`` (``~/.cache/accel-sim/data`` when
    ``XDG_CACHE_HOME`` is unset or not absolute). ``~`` is expanded.
    """
    if root is not None and os.fspath(root) != "":
        return Path(root).expanduser()
    env = os.environ.get("ACCEL_SIM_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    cache = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return cache / "accel-sim" / "data"


def load_dataset(name: str, split: str, root: str | os.PathLike[str] | None = None) -> Dataset:
    """Load one split (``"train"`` or ``"test"``) of dataset ``name``.

    ``root`` is only used for the IDX datasets (see :func:`data_root`).
    """
    _check_name(name)
    if split not in SPLITS:
        raise DatasetError(
            f"unknown split {split!r} for {name}; choose one of: {', '.join(SPLITS)}"
        )
    if name == "digits":
        return _load_digits(split)
    return _load_idx(name, split, data_root(root))


def download_dataset(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Download ``mnist`` or ``fashion_mnist`` with torchvision; return its ``raw`` folder.

    Needs the optional extra (``pip install "neuro-accel-sim[datasets]"``) and
    internet access (existing ``.gz`` files with the right MD5 are reused).
    torchvision also writes unpacked copies of the files into the folder.
    """
    _check_name(name)
    if name == "digits":
        raise DatasetError("digits is bundled with scikit-learn and needs no download")
    try:
        from torchvision import datasets as tv
    except ImportError as exc:
        raise DatasetError(f"downloading datasets needs torchvision: {_PIP_EXTRA}") from exc
    base = data_root(root)
    cls = tv.MNIST if name == "mnist" else tv.FashionMNIST
    try:
        for train in (True, False):
            cls(str(base), train=train, download=True)
    except (OSError, RuntimeError) as exc:
        raise DatasetError(f"could not download {name} into {base}: {exc}") from exc
    return base / _IDX_FOLDERS[name] / "raw"


def select(
    ds: Dataset,
    n: int | None = None,
    classes: Sequence[int] | None = None,
    order: str = "dataset",
    rng: np.random.Generator | None = None,
) -> Dataset:
    """Return a Dataset holding a subset of ``ds`` (copied rows; ``ds`` itself when the
    selection is all of it in file order).

    Keeps only ``classes`` (None: all), then orders by ``order``:

    * ``"dataset"``: file order, the first ``n``;
    * ``"shuffled"``: a permutation drawn from ``rng`` (required), the first ``n``;
    * ``"class_incremental"``: one block per class in the order of ``classes``,
      each with that class's first ``n // len(classes)`` samples in file order
      (the remainder of ``n`` is dropped; ``n=None`` takes as many as the
      smallest class has). Use :func:`class_tasks` to get the blocks back.
    """
    if order not in ORDERS:
        raise DatasetError(f"unknown order {order!r}; choose one of: {', '.join(ORDERS)}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise DatasetError(f"n must be a non-negative integer or None, got {n!r}")
    available = [int(c) for c in np.unique(ds.labels)]
    wanted = available if classes is None else _as_classes(classes)
    if not wanted:
        raise DatasetError("classes must not be empty (use None for all classes)")
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise DatasetError(
            f"class(es) {unknown} not in {ds.name} ({ds.split}); "
            f"available classes: {', '.join(map(str, available))}"
        )
    if order == "class_incremental":
        per_class = [np.flatnonzero(ds.labels == c) for c in wanted]
        k = min(map(len, per_class)) if n is None else n // len(wanted)
        if k == 0:
            raise DatasetError(
                f"n={n} is too small for {len(wanted)} classes (0 samples per class)"
            )
        short = [
            f"class {c} has {len(i)}" for c, i in zip(wanted, per_class, strict=True) if len(i) < k
        ]
        if short:
            raise DatasetError(
                f"class_incremental needs {k} samples per class from {ds.name} ({ds.split}), "
                f"but {'; '.join(short)} available"
            )
        idx = np.concatenate([i[:k] for i in per_class])
    else:
        idx = np.flatnonzero(np.isin(ds.labels, wanted))
        if n is not None and n > len(idx):
            raise DatasetError(
                f"asked for {n} samples but only {len(idx)} are available in "
                f"{ds.name} ({ds.split}) for classes {', '.join(map(str, wanted))}"
            )
        if order == "shuffled":
            if rng is None:
                raise DatasetError('order="shuffled" needs an rng (np.random.Generator)')
            idx = rng.permutation(idx)
        idx = idx[:n]
    if len(idx) == len(ds) and np.array_equal(idx, np.arange(len(ds))):
        return ds  # the whole split in file order: share it (datasets are never mutated)
    return Dataset(ds.name, ds.split, ds.images[idx], ds.labels[idx])


def class_tasks(ds: Dataset, classes: Sequence[int] | None = None) -> list[tuple[int, slice]]:
    """Split a class-ordered Dataset into tasks: ``[(class, slice of its samples), ...]``.

    ``ds`` must consist of one contiguous block per class (as made by
    ``select(..., order="class_incremental")``). If ``classes`` is given, the
    blocks must appear in exactly that order.
    """
    labels = ds.labels
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(labels)]
    tasks = [
        (int(labels[s]), slice(int(s), int(e))) for s, e in zip(starts, ends, strict=True) if e > s
    ]
    order = [c for c, _ in tasks]
    if len(set(order)) != len(order):
        raise DatasetError(
            f"{ds.name} ({ds.split}) is not class-ordered: a class appears in several blocks"
        )
    expected = None if classes is None else _as_classes(classes)
    if expected is not None and order != expected:
        raise DatasetError(f"{ds.name} ({ds.split}) has class blocks {order}, expected {expected}")
    return tasks


def split_validation(ds: Dataset, n: int) -> tuple[Dataset, Dataset]:
    """Hold out the last ``n`` samples of ``ds``: ``(the rest, the held-out validation set)``.

    Use the validation set instead of the test split to choose settings, so that the
    test split is only read for the final figures.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n < len(ds):
        raise DatasetError(
            f"validation_samples must be between 1 and {len(ds) - 1} for {ds.name} ({ds.split}), "
            f"got {n!r}"
        )
    cut = len(ds) - int(n)
    return (Dataset(ds.name, ds.split, ds.images[:cut], ds.labels[:cut]),
            Dataset(ds.name, "validation", ds.images[cut:], ds.labels[cut:]))


# --------------------------------------------------------------------------- helpers


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def _as_classes(classes: Sequence[int]) -> list[int]:
    try:
        out = [operator.index(c) for c in classes]
    except TypeError as exc:
        raise DatasetError(f"classes must be integers, got {list(classes)!r}") from exc
    if len(set(out)) != len(out):
        raise DatasetError(f"classes must not repeat, got {out}")
    return out


def _load_digits(split: str) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DatasetError(
            "the digits dataset needs scikit-learn: pip install scikit-learn"
        ) from exc
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    part = slice(None, DIGITS_N_TRAIN) if split == "train" else slice(DIGITS_N_TRAIN, None)
    return Dataset("digits", split, images[part].copy(), labels[part].copy())


def _load_idx(name: str, split: str, root: Path) -> Dataset:
    raw = root / _IDX_FOLDERS[name] / "raw"
    stems = [f"{_IDX_PREFIX[split]}-images-idx3-ubyte", f"{_IDX_PREFIX[split]}-labels-idx1-ubyte"]

    def fail(problem: str) -> DatasetError:
        expected = "\n".join(f"  {raw / s}[.gz]" for s in stems)
        return DatasetError(
            f"cannot load dataset {name!r} ({split}) from {root}: {problem}\n"
            f"expected files (torchvision layout, gzipped or unpacked):\n{expected}\n"
            f"fix: set `data.root` in the config or the ACCEL_SIM_DATA environment variable to a "
            f"folder holding {_IDX_FOLDERS[name]}/raw/, or run `{_PIP_EXTRA}` "
            f"and download_dataset({name!r})"
        )

    images = _read_idx(raw / stems[0], _IMAGE_MAGIC, 3, fail)
    labels = _read_idx(raw / stems[1], _LABEL_MAGIC, 1, fail)
    if images.shape[1:] != _IMAGE_SHAPE:
        raise fail(f"images are {images.shape[1:]}, expected {_IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise fail(f"{len(images)} images but {len(labels)} labels")
    if len(labels) != _IDX_COUNTS[split]:
        raise fail(f"{len(labels)} samples, expected {_IDX_COUNTS[split]} for the {split} split")
    if labels.size and labels.max() >= _N_CLASSES:
        raise fail(f"label {labels.max()} out of range 0..{_N_CLASSES - 1}")
    return Dataset(name, split, images, labels.astype(np.int64))


def _read_idx(stem: Path, magic: int, ndim: int, fail: Callable[[str], DatasetError]) -> np.ndarray:
    """Read the IDX file ``stem`` (or ``stem.gz``), checking magic, dims and size."""
    gz = stem.with_name(stem.name + ".gz")
    path = stem if stem.is_file() else gz
    if not path.is_file():
        raise fail(f"missing file {stem} (or {gz.name})")
    try:
        data = gzip.decompress(path.read_bytes()) if path is gz else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise fail(f"cannot read {path}: {exc} (truncated or corrupt file?)") from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise fail(f"{path} is truncated: {len(data)} bytes, shorter than its IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise fail(
            f"{path} has magic number {found}, expected {magic} (not an IDX {ndim}-d uint8 file)"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != size:
        raise fail(
            f"{path} is truncated or corrupt: its header says {dims} = {size} bytes of data, "
            f"but it holds {len(data) - header}"
        )
    # a read-only view of the decompressed bytes: no second copy of a 47 MB split
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(dims)
