"""What a family's protocol works with during a run: the `Run` (config, data, network,
spec, chip, output directory, the checkpoint being resumed) and its `Phase`s.

A phase holds its frontend counts, its SpikeTrace builder (streamed into the chip's
replay as parts fill, and saved when `run.trace_phases` names it) and its wall time.
Time is measured only inside `with phase:` blocks (and its closing), so a phase's time
includes the chip replay that its trace parts trigger; the driver reports the replay's
share apart from the frontend's own (both never negative).

    with run.phase("infer", learn=False) as ph:     # open, time, close
        net.infer(..., counts=ph.counts, trace=ph.trace)

    ph = run.open_phase("train", learn=True)        # phases used in turns (continual)
    with ph:
        ...
    run.checkpoint(position, extra={...})           # the network, every open phase, extra
    ph.close()
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from snn_frontend.spec import NetworkSpec
from snn_frontend.trace import TraceBuilder

from ..chip import PhaseResult
from ..costing import ChipSetup
from ..executors import make_executor
from .checkpoint import Checkpoint, save_checkpoint
from .family import Counts, NetworkFamily

__all__ = ["Run", "Phase"]

_PART_SIZE = 512  # presentations per trace part (the replay's and the files' unit)


@dataclass
class Phase:
    name: str
    learn: bool
    counts: Counts
    trace: TraceBuilder | None
    replay: Any  # chip.PhaseReplay or None
    wall_s: float = 0.0
    result: PhaseResult | None = None
    _depth: int = field(default=0, repr=False)
    _t0: float = field(default=0.0, repr=False)

    def __enter__(self) -> "Phase":
        if self._depth == 0:
            self._t0 = time.perf_counter()
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.wall_s += time.perf_counter() - self._t0

    @property
    def elapsed_s(self) -> float:
        """Wall time so far, the stretch in progress included."""
        running = time.perf_counter() - self._t0 if self._depth else 0.0
        return self.wall_s + running

    @property
    def replay_s(self) -> float:
        """The share of the phase's time spent replaying its trace on the chip."""
        return self.replay.result.wall_s if self.replay is not None else 0.0

    @property
    def replay_worker_s(self) -> float:
        """Seconds the replay's worker processes spent on the phase's shards (0: it ran
        here, or it was sampled)."""
        return getattr(self.replay, "worker_s", 0.0) if self.replay is not None else 0.0

    def state(self) -> dict:
        """For a checkpoint: what was done so far (the trace's parts flushed first)."""
        if self.trace is not None:
            self.trace.flush()
        return {"counts": self.counts.as_dict(),
                "trace_parts": self.trace.parts_written if self.trace is not None else 0,
                "chip": self.replay.snapshot() if self.replay is not None else None,
                "wall_s": self.elapsed_s}

    def restore(self, state: dict | None) -> None:
        """Undo what was done after the checkpoint (None: the phase had not begun)."""
        if self.trace is not None:  # parts written after the checkpoint are redone
            self.trace.truncate_parts(state["trace_parts"] if state else 0)
        if state is None:
            return
        self.counts.load(state["counts"])
        if self.replay is not None and state["chip"] is not None:
            self.replay.restore(state["chip"])
        self.wall_s = state["wall_s"]

    def close(self) -> None:
        """The last trace part to the chip and to disk; the replay's result."""
        with self:
            if self.trace is not None:
                self.trace.close()
            if self.replay is not None:
                self.result = self.replay.finish()


@dataclass
class Run:
    """One run in progress, as a family's protocol sees it."""

    cfg: Any
    out: Path
    family: NetworkFamily
    data: Any
    net: Any
    spec: NetworkSpec
    setup: ChipSetup | None
    show: bool
    resume: Checkpoint | None = None
    phases: dict[str, Phase] = field(default_factory=dict)
    results: dict = field(default_factory=dict)  # what the protocol produced (family-owned)
    executor: Any = None  # the chip replay's workers (run.chip_workers), started on first use

    def chip_executor(self):
        """The executor the chip replay shards onto, or None (replay in this process)."""
        r = self.cfg.run
        if not (r.chip_workers or r.chip_scheduler):
            return None
        if self.executor is None:
            self.executor = make_executor(r.chip_executor, r.chip_workers or None,
                                          r.chip_scheduler)
        return self.executor

    def close(self) -> None:
        """Stop the chip replay's workers (if any were started)."""
        if self.executor is not None:
            self.executor.close()
            self.executor = None

    @property
    def position(self) -> int:
        """Where the resumed checkpoint stood (0 for a fresh run)."""
        return self.resume.position if self.resume is not None else 0

    @property
    def extra(self) -> dict:
        """The protocol's progress saved with the resumed checkpoint ({} for a fresh run)."""
        return self.resume.extra if self.resume is not None else {}

    def open_phase(self, name: str, *, learn: bool) -> Phase:
        """A phase's counts, its trace (streamed into the chip's replay and/or saved) and,
        when resuming, its state at the checkpoint."""
        if name in self.phases:
            raise RuntimeError(f"phase {name!r} is opened twice")
        replay = (self.setup.chip.phase(name, self.chip_executor(), self.cfg.run.chip_sample)
                  if self.setup is not None else None)
        save = name in self.cfg.run.trace_phases
        trace = None
        if save or replay is not None:
            meta, events = self.family.trace_meta(self.cfg, self.net, self.spec, learn=learn)
            meta = dict(meta, phase=name, model=self.cfg.network.model, seed=self.cfg.seed)
            trace = TraceBuilder(meta, events,
                                 out_dir=self.out / f"trace_{name}" if save else None,
                                 on_part=replay.consume if replay is not None else None,
                                 part_size=_PART_SIZE)
        ph = Phase(name, learn, self.family.new_counts(name, self.spec), trace, replay)
        if self.resume is not None:
            ph.restore(self.resume.phases.get(name))
        self.phases[name] = ph
        return ph

    @contextmanager
    def phase(self, name: str, *, learn: bool) -> Iterator[Phase]:
        """Open a phase, time the block, close it."""
        ph = self.open_phase(name, learn=learn)
        with ph:
            yield ph
        ph.close()

    def bar(self, total: int, desc: str, *, unit: str = "sample", initial: int = 0) -> tqdm:
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not self.show,
                    dynamic_ncols=True, file=sys.stderr)

    def checkpoint_due(self, done: int, total: int) -> bool:
        """After `done` of `total` training samples: is a checkpoint due (every
        `run.checkpoint_every`; the end of training checkpoints on its own)?"""
        every = self.cfg.run.checkpoint_every
        return bool(every) and done % every == 0 and done < total

    def checkpoint(self, position: int, extra: dict | None = None) -> None:
        """Save the network, every phase opened so far, and the protocol's progress."""
        save_checkpoint(self.out, Checkpoint(
            position, self.family.state(self.net),
            {name: ph.state() for name, ph in self.phases.items()}, extra or {}))
