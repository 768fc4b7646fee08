"""SpikeTrace: the contract between the frontend and the chip simulator.

A trace covers one phase (train, label or infer) and holds, for every
presentation (a sample, or a re-presentation of it after a silent attempt) and
every simulated time step, which neurons of each population spiked, plus the
learning events. Storage is CSR-like and compact:

- per presentation: `sample` (index within the phase), `attempt`, `normalised`
  (weights normalised before it), `decays` (whole-matrix weight decay or leak
  passes after it: SpikeDyn's decay, ASP's leak) and `step_ptr` (offsets into the
  step axis);
- per step and population: spike counts `<pop>_cnt`;
- per population: flat spiking indices `<pop>_idx` in step order, with
  `<pop>_ptr` = offsets derived from the counts.

Populations are "input", "exc" and "inh". A training trace also holds its
learning events, per step, in the same CSR form: `row_update` (a weight row
written back: D&C writes the row of every input spike) and `col_update` (a
weight column written back: every excitatory spike in D&C; with timestep-based
updates only at the end of each update window, and not at all for updates
dropped as spurious).

On disk a trace is either one `.npz` (`SpikeTrace.save`) or a directory of
parts `part-00000.npz, ...` written as the run goes (`TraceBuilder(out_dir=...)`),
so a trace of any length needs bounded memory; `SpikeTrace.parts(path)` streams
the parts, `SpikeTrace.load(path)` reads either form into one trace.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

__all__ = ["SpikeTrace", "TraceBuilder", "Presentation", "POPULATIONS", "EVENTS", "concatenate"]

POPULATIONS = ("input", "exc", "inh")
EVENTS = ("row_update", "col_update")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Presentation:
    """One presentation, as the simulator iterates it."""

    sample: int
    attempt: int
    normalised: bool
    n_steps: int
    counts: dict[str, np.ndarray]  # population or event -> per step (n_steps,)
    indices: dict[str, np.ndarray]  # population or event -> indices, step order
    decays: int = 0  # weight decay / leak passes over the whole matrix after it

    def step_spikes(self, population: str, step: int) -> np.ndarray:
        c = self.counts[population]
        start = int(c[:step].sum())
        return self.indices[population][start:start + int(c[step])]


@dataclass
class SpikeTrace:
    meta: dict
    sample: np.ndarray
    attempt: np.ndarray
    normalised: np.ndarray
    step_ptr: np.ndarray
    counts: dict[str, np.ndarray]  # populations and (training traces) learning events
    indices: dict[str, np.ndarray]
    events: tuple[str, ...] = ()  # learning event types held in counts/indices
    decays: np.ndarray | None = None  # per presentation; None: no decay passes

    def __post_init__(self) -> None:
        if self.decays is None:
            self.decays = np.zeros(len(self.sample), np.int8)

    # ---- shape -------------------------------------------------------------
    @property
    def n_presentations(self) -> int:
        return len(self.sample)

    @property
    def n_samples(self) -> int:
        return int(self.sample.max()) + 1 if len(self.sample) else 0

    @property
    def n_steps(self) -> int:
        return int(self.step_ptr[-1])

    def spike_ptr(self, population: str) -> np.ndarray:
        """Offsets of each presentation's spikes in `indices[population]`."""
        per_step = np.concatenate([[0], np.cumsum(self.counts[population], dtype=np.int64)])
        return per_step[self.step_ptr]

    def total(self, population: str) -> int:
        return int(self.counts[population].sum(dtype=np.int64))

    def event_counts(self, event: str) -> np.ndarray:
        """Per-step counts of a learning event type ('row_update' or 'col_update')."""
        return self.counts[event]

    def __iter__(self) -> Iterator[Presentation]:
        names = POPULATIONS + tuple(self.events)
        ptrs = {p: self.spike_ptr(p) for p in names}
        for k in range(self.n_presentations):
            a, b = int(self.step_ptr[k]), int(self.step_ptr[k + 1])
            yield Presentation(
                sample=int(self.sample[k]), attempt=int(self.attempt[k]),
                normalised=bool(self.normalised[k]), n_steps=b - a,
                counts={p: self.counts[p][a:b] for p in names},
                indices={p: self.indices[p][ptrs[p][k]:ptrs[p][k + 1]] for p in names},
                decays=int(self.decays[k]),
            )

    # ---- files -------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write an uncompressed .npz (atomically: temp file + rename)."""
        path = Path(path)
        arrays = {"sample": self.sample, "attempt": self.attempt, "normalised": self.normalised,
                  "decays": self.decays, "step_ptr": self.step_ptr}
        for p in POPULATIONS + tuple(self.events):
            arrays[f"{p}_cnt"] = self.counts[p]
            arrays[f"{p}_idx"] = self.indices[p]
        meta = dict(self.meta, format_version=FORMAT_VERSION, events=list(self.events))
        arrays["meta_json"] = np.array(__import__("json").dumps(meta))
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def parts(cls, path: str | os.PathLike) -> Iterator["SpikeTrace"]:
        """Stream a trace part by part (a single .npz is one part)."""
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("part-*.npz"))
            if not files:
                raise FileNotFoundError(f"{path}: no trace parts (part-*.npz)")
            for f in files:
                yield cls._load_file(f)
        else:
            yield cls._load_file(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SpikeTrace":
        """Read a whole trace (a .npz, or a directory of parts) into memory."""
        parts = list(cls.parts(path))
        if len(parts) == 1:
            return parts[0]
        return concatenate(parts)

    @classmethod
    def _load_file(cls, path: Path) -> "SpikeTrace":
        import json

        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{path}: unsupported trace format {meta.get('format_version')}")
            events = tuple(meta.pop("events", ()))
            names = POPULATIONS + events
            return cls(
                meta=meta, sample=z["sample"], attempt=z["attempt"], normalised=z["normalised"],
                step_ptr=z["step_ptr"],
                counts={p: z[f"{p}_cnt"] for p in names},
                indices={p: z[f"{p}_idx"] for p in names},
                events=events, decays=z["decays"] if "decays" in z.files else None,
            )


class TraceBuilder:
    """Collects presentations in order and freezes them into a SpikeTrace."""

    def __init__(self, meta: dict, events: tuple[str, ...] | bool = (), *,
                 out_dir: str | os.PathLike | None = None, part_size: int = 2048,
                 on_part: "Callable[[SpikeTrace], None] | None" = None):
        """Collect in memory (`build()`), or stream: every `part_size` presentations a
        part is written to `out_dir` and/or handed to `on_part` (e.g. the chip
        simulator); finish a streaming builder with `close()`."""
        self.meta = dict(meta)
        self.events = EVENTS if events is True else tuple(events or ())
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.on_part = on_part
        self.part_size = part_size
        self.parts_written = 0
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        n_max = max(int(meta.get("n_input", 0)), int(meta.get("n_exc", 0)))
        self._idx_dtype = np.uint16 if n_max <= np.iinfo(np.uint16).max else np.int32
        self._rows: list[tuple[int, int, bool, int, int]] = []
        self._names = POPULATIONS + self.events
        self._cnt: dict[str, list[np.ndarray]] = {p: [] for p in self._names}
        self._idx: dict[str, list[np.ndarray]] = {p: [] for p in self._names}

    def add(self, sample: int, attempt: int, normalised: bool, n_steps: int,
            counts: dict[str, np.ndarray], indices: dict[str, np.ndarray],
            decays: int = 0) -> None:
        self._rows.append((sample, attempt, normalised, n_steps, decays))
        for p in self._names:
            self._cnt[p].append(np.asarray(counts[p][:n_steps], dtype=self._idx_dtype))
            self._idx[p].append(np.asarray(indices[p], dtype=self._idx_dtype))
        if self.streaming and len(self._rows) >= self.part_size:
            self.flush()

    @property
    def streaming(self) -> bool:
        return self.out_dir is not None or self.on_part is not None

    def flush(self) -> None:
        """Hand the buffered presentations on as the next part (streaming builders only)."""
        if not self.streaming or not self._rows:
            return
        part = self.build()
        if self.out_dir is not None:
            part.save(self.out_dir / f"part-{self.parts_written:05d}.npz")
        if self.on_part is not None:
            self.on_part(part)
        self.parts_written += 1
        self._rows = []
        self._cnt = {p: [] for p in self._names}
        self._idx = {p: [] for p in self._names}

    def truncate_parts(self, keep: int) -> None:
        """Drop parts numbered >= keep (written after the checkpoint being resumed)."""
        if self.out_dir is None:
            return
        for f in self.out_dir.glob("part-*.npz"):
            if int(f.stem.split("-")[1]) >= keep:
                f.unlink()
        self.parts_written = keep

    def close(self) -> Path | None:
        """Flush the last part of a streaming builder; returns its directory (if any)."""
        if not self.streaming:
            raise ValueError("close() is for streaming builders; use build()")
        self.flush()
        if self.out_dir is None:
            return None
        if not any(self.out_dir.glob("part-*.npz")):  # an empty trace is still a readable one
            self.build().save(self.out_dir / "part-00000.npz")
            self.parts_written = 1
        return self.out_dir


    def build(self) -> SpikeTrace:
        rows = np.array(self._rows, dtype=np.int64).reshape(-1, 5)
        step_ptr = np.concatenate([[0], np.cumsum(rows[:, 3])]).astype(np.int64)

        def cat(parts, dtype):
            return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

        return SpikeTrace(
            meta=self.meta, sample=rows[:, 0].astype(np.int32), attempt=rows[:, 1].astype(np.int16),
            normalised=rows[:, 2].astype(bool), step_ptr=step_ptr,
            counts={p: cat(self._cnt[p], self._idx_dtype) for p in self._names},
            indices={p: cat(self._idx[p], self._idx_dtype) for p in self._names},
            events=self.events, decays=rows[:, 4].astype(np.int8),
        )


def concatenate(parts: list[SpikeTrace]) -> SpikeTrace:
    """Join consecutive traces of one phase into one."""
    first = parts[0]
    ptr = [np.zeros(1, np.int64)]
    offset = 0
    for t in parts:
        ptr.append(t.step_ptr[1:] + offset)
        offset += int(t.step_ptr[-1])
    return SpikeTrace(
        meta=first.meta, sample=np.concatenate([t.sample for t in parts]),
        attempt=np.concatenate([t.attempt for t in parts]),
        normalised=np.concatenate([t.normalised for t in parts]),
        step_ptr=np.concatenate(ptr),
        counts={p: np.concatenate([t.counts[p] for t in parts]) for p in POPULATIONS + first.events},
        indices={p: np.concatenate([t.indices[p] for t in parts])
                 for p in POPULATIONS + first.events},
        events=first.events, decays=np.concatenate([t.decays for t in parts]),
    )
