"""SpikeTrace: the contract between the frontend and the chip simulator.

A trace covers one phase (train, label or infer) of one network, and carries that
network's `NetworkSpec` in its meta: everything the chip needs to replay it is in the
trace. For every presentation (a sample, or a re-presentation of it after a silent
attempt) and every simulated time step it holds which neurons of each population
spiked, and the learning events. Storage is CSR-like and compact:

- per presentation: `sample` (index within the phase), `attempt`, `normalised` (plastic
  weights normalised before it), `decays` (whole-matrix weight decay or leak passes
  after it) and `step_ptr` (offsets into the step axis);
- per *stream* (a population of the spec, or a learning event stream): spike counts per
  step and the flat indices in step order.

Learning event streams are named `<projection>:<kind>` and keyed by projection: for STDP,
`input->exc:row` (a weight row written back: D&C writes the row of every input spike)
and `input->exc:col` (a weight column written back: every excitatory spike in D&C; with
timestep-based updates only at the end of each window, and not at all for updates
dropped as spurious). For BPTT (one presentation per training sample): `<hidden>:grad`,
the entries where a sparse backward's surrogate is non-zero (none in a dense backward's
trace: every entry), and `<projection>:optimizer`, one optimiser step after a batch.

Meta keys the chip reads: `spec`, `learn` (whether this phase learns), `learning` (per
plastic projection: `pre_updates`, whether a presynaptic spike updates its row),
`state_reset` (the rest between samples is a reset), `dt_ms`.

On disk a trace is one `.npz` (`SpikeTrace.save`) or a directory of parts
`part-00000.npz, ...` written as the run goes (`TraceBuilder(out_dir=...)`), so a trace of
any length needs bounded memory; `SpikeTrace.parts(path)` streams the parts,
`SpikeTrace.load(path)` reads either form into one trace. Format version 2; version-1
traces (written before the spec existed, D&C family only) still load.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from .files import atomic_write
from .models import dc_family_spec
from .spec import NetworkSpec, SpecError

__all__ = ["SpikeTrace", "TraceBuilder", "Presentation", "TraceError", "concatenate",
           "FORMAT_VERSION", "stdp_event_streams", "grad_stream", "optimizer_stream",
           "active_stream", "is_grad_stream"]

FORMAT_VERSION = 2


class TraceError(ValueError):
    """A trace file that cannot be read as a SpikeTrace (a user error: exit 2)."""


def stdp_event_streams(projection: str) -> tuple[str, str]:
    """The learning event streams of a plastic STDP projection: rows and columns written."""
    return f"{projection}:row", f"{projection}:col"


def active_stream(population: str) -> str:
    """The neurons of a population whose state the frontend updated at each step (given by
    a frontend that knows the state; without it the chip takes those a synaptic event
    reached in the previous step)."""
    return f"{population}:active"


def is_grad_stream(stream: str) -> bool:
    """Whether a stream is a BPTT gradient set (`grad_stream`)."""
    return stream.endswith(":grad")


def grad_stream(population: str) -> str:
    """BPTT: a hidden population's gradient set, the (step, neuron) entries where a sparse
    backward's surrogate is non-zero (a dense backward's trace has none: every entry)."""
    return f"{population}:grad"


def optimizer_stream(projection: str) -> str:
    """BPTT: one optimiser step of a projection, at the last step of a batch's last sample."""
    return f"{projection}:optimizer"


def _spike_raster(name: str, raster) -> np.ndarray:
    """A raster as bool; a raster that is not boolean or 0/1 (a float potential, NaN, -1,
    2) is an error, not spikes."""
    a = np.asarray(raster)
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise SpecError(f"raster of {name!r} must be boolean (or 0/1), got dtype {a.dtype}")
    ok = (a == 0) | (a == 1)
    if not ok.all():
        bad = a[~ok].ravel()[0]
        raise SpecError(f"raster of {name!r} must be boolean (or 0/1): it holds {bad!r} "
                        f"({int((~ok).sum())} entries are neither 0 nor 1)")
    return a.astype(bool)


@dataclass(frozen=True)
class Presentation:
    """One presentation, as the simulator iterates it."""

    sample: int
    attempt: int
    normalised: bool
    n_steps: int
    counts: dict[str, np.ndarray]  # stream -> per step (n_steps,)
    indices: dict[str, np.ndarray]  # stream -> indices, step order
    decays: int = 0  # weight decay / leak passes over the whole matrix after it

    def step_spikes(self, stream: str, step: int) -> np.ndarray:
        c = self.counts[stream]
        start = int(c[:step].sum())
        return self.indices[stream][start:start + int(c[step])]


@dataclass
class SpikeTrace:
    meta: dict
    sample: np.ndarray
    attempt: np.ndarray
    normalised: np.ndarray
    step_ptr: np.ndarray
    counts: dict[str, np.ndarray]  # populations and learning event streams
    indices: dict[str, np.ndarray]
    events: tuple[str, ...] = ()  # the learning event streams held in counts/indices
    decays: np.ndarray | None = None  # per presentation; None: no decay passes
    _spec: NetworkSpec | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.decays is None:
            self.decays = np.zeros(len(self.sample), np.int8)

    # ---- the network -----------------------------------------------------------
    @property
    def spec(self) -> NetworkSpec:
        if self._spec is None:
            self._spec = NetworkSpec.from_dict(self.meta["spec"])
        return self._spec

    @property
    def streams(self) -> tuple[str, ...]:
        return self.spec.names + tuple(self.events)

    @classmethod
    def from_rasters(cls, spec: NetworkSpec, rasters: Mapping[str, np.ndarray], *,
                     streams: Mapping[str, np.ndarray] | None = None, learn: bool = False,
                     dt_ms: float = 1.0, **meta) -> "SpikeTrace":
        """A one-presentation trace from boolean rasters (steps, neurons) per population
        (a population left out never spikes). `streams` adds event streams in the same
        form, named `<population>:<kind>` (e.g. `exc:active`: the neurons whose state a
        frontend updated at each step) or `<projection>:<kind>` (learning events)."""
        rasters = {k: _spike_raster(k, v) for k, v in rasters.items()}
        extra = {k: _spike_raster(k, v) for k, v in (streams or {}).items()}
        unknown = sorted(set(rasters) - set(spec.names))
        if unknown:
            raise SpecError(f"rasters for unknown populations: {', '.join(unknown)} "
                            f"(the spec has {', '.join(spec.names)})")
        owners = set(spec.names) | {p.name for p in spec.projections}
        bad = sorted(k for k in extra if k.rpartition(":")[0] not in owners)
        if bad:
            raise SpecError(f"streams must be named <population or projection>:<kind>: "
                            f"{', '.join(bad)}")
        steps = {v.shape[0] for v in (*rasters.values(), *extra.values())}
        if len(steps) > 1:
            raise SpecError(f"rasters differ in their number of steps: {sorted(steps)}")
        T = steps.pop() if steps else 0
        counts, indices = {}, {}
        sizes = {p.name: p.size for p in spec.populations}
        for name in (*spec.names, *extra):
            r = extra[name] if name in extra else rasters.get(name, np.zeros((T, sizes[name]), bool))
            if r.ndim != 2:
                raise SpecError(f"raster of {name!r} must be (steps, neurons), got {r.shape}")
            if name in sizes and r.shape[1] != sizes[name]:
                raise SpecError(f"raster of {name!r} must be (steps, {sizes[name]}), got "
                                f"{r.shape}")
            t, i = np.nonzero(r)
            counts[name] = np.bincount(t, minlength=T).astype(np.int32)
            indices[name] = i.astype(np.int32)
        tb = TraceBuilder(dict(meta, spec=spec.to_dict(), learn=learn, dt_ms=dt_ms), tuple(extra))
        tb.add(0, 0, False, T, counts, indices)
        return tb.build()

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

    def spike_ptr(self, stream: str) -> np.ndarray:
        """Offsets of each presentation's spikes in `indices[stream]`."""
        per_step = np.concatenate([[0], np.cumsum(self.counts[stream], dtype=np.int64)])
        return per_step[self.step_ptr]

    def total(self, stream: str) -> int:
        return int(self.counts[stream].sum(dtype=np.int64))

    def select(self, start: int, stop: int) -> "SpikeTrace":
        """Presentations [start, stop) as a trace of their own (views of these arrays)."""
        if not 0 <= start <= stop <= self.n_presentations:
            raise TraceError(f"presentations [{start}, {stop}) are not within the trace's "
                             f"{self.n_presentations}")
        a, b = int(self.step_ptr[start]), int(self.step_ptr[stop])
        ptrs = {p: self.spike_ptr(p) for p in self.streams}
        return SpikeTrace(meta=self.meta, sample=self.sample[start:stop],
                          attempt=self.attempt[start:stop],
                          normalised=self.normalised[start:stop],
                          step_ptr=self.step_ptr[start:stop + 1] - a,
                          counts={p: self.counts[p][a:b] for p in self.streams},
                          indices={p: self.indices[p][ptrs[p][start]:ptrs[p][stop]]
                                   for p in self.streams},
                          events=self.events, decays=self.decays[start:stop], _spec=self._spec)

    def take(self, positions) -> "SpikeTrace":
        """The presentations at these increasing positions, as a trace of their own (a copy)."""
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) == 0 or np.any(np.diff(pos) <= 0):
            raise TraceError("take: positions must be increasing and not empty")
        breaks = np.flatnonzero(np.diff(pos) != 1) + 1  # runs of consecutive presentations
        runs = [(int(r[0]), int(r[-1]) + 1) for r in np.split(pos, breaks)]
        return concatenate([self.select(a, b) for a, b in runs])

    def shard_bounds(self, n: int) -> list[tuple[int, int]]:
        """At most n ranges [start, stop) of consecutive presentations, as even in steps as
        whole presentations allow (empty ones left out)."""
        if n < 1:
            raise ValueError(f"shards: n must be >= 1 (got {n})")
        cuts = np.searchsorted(self.step_ptr, np.linspace(0, self.n_steps, n + 1))
        cuts[0], cuts[-1] = 0, self.n_presentations
        return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]

    def shards(self, n: int) -> list["SpikeTrace"]:
        """The presentations of `shard_bounds(n)`, each as a trace of its own."""
        return [self.select(a, b) for a, b in self.shard_bounds(n)]

    def __iter__(self) -> Iterator[Presentation]:
        names = self.streams
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
    def _arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the .npz format (FORMAT_VERSION)."""
        arrays = {"sample": self.sample, "attempt": self.attempt, "normalised": self.normalised,
                  "decays": self.decays, "step_ptr": self.step_ptr}
        for i, p in enumerate(self.streams):
            arrays[f"s{i}_cnt"] = self.counts[p]
            arrays[f"s{i}_idx"] = self.indices[p]
        meta = dict(self.meta, format_version=FORMAT_VERSION, events=list(self.events),
                    streams=list(self.streams))
        arrays["meta_json"] = np.array(json.dumps(meta))
        return arrays

    def save(self, path: str | os.PathLike) -> Path:
        """Write an uncompressed .npz atomically (temp file + rename)."""
        path = Path(path)
        with atomic_write(path) as fh:
            np.savez(fh, **self._arrays())
        return path

    def to_bytes(self) -> bytes:
        """The .npz file's bytes (for a trace kept inside another file, e.g. a checkpoint)."""
        buf = io.BytesIO()
        np.savez(buf, **self._arrays())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "<bytes>") -> "SpikeTrace":
        """The trace `to_bytes` gave."""
        return cls._read(io.BytesIO(data), where)

    @classmethod
    def parts(cls, path: str | os.PathLike) -> Iterator["SpikeTrace"]:
        """Stream a trace part by part (a single .npz is one part)."""
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("part-*.npz"))
            if not files:
                raise TraceError(f"{path}: no trace parts (part-*.npz)")
            for f in files:
                yield cls._load_file(f)
        elif not path.exists():
            raise TraceError(f"{path}: no such trace file or directory")
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
        try:
            with open(path, "rb") as fh:
                return cls._read(fh, path)
        except OSError as exc:
            raise TraceError(f"{path}: not a readable SpikeTrace ({exc})") from None

    @classmethod
    def _read(cls, fh, path) -> "SpikeTrace":
        try:
            with np.load(fh, allow_pickle=False) as z:
                meta = json.loads(str(z["meta_json"]))
                version = meta.get("format_version")
                if version == 1:
                    return _from_v1(z, meta)
                if version != FORMAT_VERSION:
                    raise TraceError(f"{path}: trace format {version!r} is not one this version "
                                     f"reads ({FORMAT_VERSION}, 1)")
                events = tuple(meta.pop("events", ()))
                streams = meta.pop("streams")
                meta.pop("format_version")
                trace = cls(meta=meta, sample=z["sample"], attempt=z["attempt"],
                            normalised=z["normalised"], step_ptr=z["step_ptr"],
                            counts={p: z[f"s{i}_cnt"] for i, p in enumerate(streams)},
                            indices={p: z[f"s{i}_idx"] for i, p in enumerate(streams)},
                            events=events, decays=z["decays"])
                trace._check(path)
                return trace
        except TraceError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise TraceError(f"{path}: not a readable SpikeTrace ({exc})") from None

    def _check(self, path) -> None:
        """A trace whose arrays disagree with each other or with its spec is refused."""
        try:
            spec = self.spec
        except (SpecError, KeyError) as exc:
            raise TraceError(f"{path}: the trace's network spec is invalid: {exc}") from None
        T = self.n_steps
        if len(self.step_ptr) != self.n_presentations + 1:
            raise TraceError(f"{path}: step pointers do not match the presentations")
        for p in self.streams:
            if len(self.counts[p]) != T:
                raise TraceError(f"{path}: stream {p!r} has {len(self.counts[p])} steps, the "
                                 f"trace {T}")
            if self.total(p) != len(self.indices[p]):
                raise TraceError(f"{path}: stream {p!r} counts {self.total(p)} spikes but holds "
                                 f"{len(self.indices[p])}")
        for pop in spec.populations:
            idx = self.indices[pop.name]
            if len(idx) and int(idx.max()) >= pop.size:
                raise TraceError(f"{path}: population {pop.name!r} has {pop.size} neurons but "
                                 f"the trace names neuron {int(idx.max())}")


def _from_v1(z, meta: dict) -> SpikeTrace:
    """A version-1 trace (D&C family, populations input/exc/inh, events row_update /
    col_update on input->exc): rebuild its spec from the meta it had."""
    model = meta.get("model", "diehl_cook")
    lateral = bool(meta.get("lateral", False))
    n_in, n_exc = int(meta["n_input"]), int(meta["n_exc"])
    fixed = model == "fspinn"  # the only v1 model with 8-bit fixed-point weights by default
    spec = dc_family_spec(n_in, n_exc, lateral, 8 if fixed else 32)
    events = tuple(meta.pop("events", ()))
    rename = {"row_update": "input->exc:row", "col_update": "input->exc:col"}
    names = ("input", "exc", "inh") + events
    counts = {rename.get(p, p): z[f"{p}_cnt"] for p in names}
    indices = {rename.get(p, p): z[f"{p}_idx"] for p in names}
    if lateral:  # v1 stored an always-empty inhibitory population
        counts.pop("inh")
        indices.pop("inh")
    meta.pop("format_version")
    meta.update(spec=spec.to_dict(),
                learning={"input->exc": {"pre_updates": model != "fspinn"}},
                state_reset=not meta.get("steps_rest", 0))
    return SpikeTrace(meta=meta, sample=z["sample"], attempt=z["attempt"],
                      normalised=z["normalised"], step_ptr=z["step_ptr"], counts=counts,
                      indices=indices, events=tuple(rename.get(e, e) for e in events),
                      decays=z["decays"] if "decays" in z.files else None)


class TraceBuilder:
    """Collects presentations in order and freezes them into a SpikeTrace."""

    def __init__(self, meta: dict, events: tuple[str, ...] = (), *,
                 out_dir: str | os.PathLike | None = None, part_size: int = 2048,
                 on_part: "Callable[[SpikeTrace], None] | None" = None):
        """`meta` must hold the network `spec` (a dict). Collect in memory (`build()`), or
        stream: every `part_size` presentations a part is written to `out_dir` and/or
        handed to `on_part` (e.g. the chip simulator); finish a streaming builder with
        `close()`."""
        if "spec" not in meta:
            raise ValueError("a trace needs the network spec in its meta (meta['spec'])")
        self.meta = dict(meta)
        spec = NetworkSpec.from_dict(self.meta["spec"])
        self.events = tuple(events)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.on_part = on_part
        self.part_size = part_size
        self.parts_written = 0
        if self.out_dir is not None:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TraceError(f"cannot create {self.out_dir}: {exc.strerror or exc}") from None
        n_max = max(p.size for p in spec.populations)
        self._idx_dtype = np.uint16 if n_max <= np.iinfo(np.uint16).max else np.int32
        self._rows: list[tuple[int, int, bool, int, int]] = []
        self._names = spec.names + self.events
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

    @property
    def stream_names(self) -> tuple[str, ...]:
        """What `add` takes counts and indices of: every population, then the events."""
        return self._names

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
    names = first.streams
    return SpikeTrace(
        meta=first.meta, sample=np.concatenate([t.sample for t in parts]),
        attempt=np.concatenate([t.attempt for t in parts]),
        normalised=np.concatenate([t.normalised for t in parts]),
        step_ptr=np.concatenate(ptr),
        counts={p: np.concatenate([t.counts[p] for t in parts]) for p in names},
        indices={p: np.concatenate([t.indices[p] for t in parts]) for p in names},
        events=first.events, decays=np.concatenate([t.decays for t in parts]),
    )
