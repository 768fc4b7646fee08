"""Power states of each core's weight SRAM banks (`hardware.power.sram`; docs/chip.md,
"SRAM power states").

A core's SRAM of `sram.banks` banks is filled from address 0 (chip/mapping.py), so its
first `used` banks hold the words the mapping put there and the rest hold nothing:
- `always_on`: every bank is on for the whole simulated time (nothing is counted here);
- `gate_unused`: the banks that hold nothing are off for the whole presentation;
- `retention_when_idle`: besides, each used bank that no access touches for a stretch of
  whole steps of at least `retention_after_cycles` cycles (the step cycles the fidelity
  gave) spends the stretch in retention and wakes once after it; a step that starts
  with a bank waking lasts `wake_cycles` longer (the bank wakes before the step's
  deliveries read it). A bank still in retention at the end of a presentation wakes in
  the pause before the next one (counted, its latency not): presentations stay
  independent. A step's accesses: the rows its spikes read in SRAM (a spike of source s
  on core c reads row s of each projection there, or all columns of a column-major
  block); STDP's write-backs (the trace's learning events: a row's banks, a column's
  every used bank on its neuron's core); every used bank of a core with BPTT's learning
  words in the step; and every used bank at the first step of a presentation with
  whole-matrix passes.

Counted per core: `sram.wake` (a bank's wake-ups), `sram.retention_bank_cycles` and
`sram.off_bank_cycles` (bank-cycles in each low-power state), priced as static power
saved (energy/price.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_frontend.trace import Presentation, stdp_event_streams

from .counting import StepWork
from .steps import ceil_div

__all__ = ["BankStates", "SramPower"]


@dataclass
class BankStates:
    """One presentation's SRAM bank states, per core."""

    wake: np.ndarray  # (C,) bank wake-ups
    retention_bank_cycles: np.ndarray  # (C,)
    off_bank_cycles: np.ndarray  # (C,)
    step_extra_cycles: np.ndarray  # (T,) wake-up cycles added to each step

    def counts(self) -> dict[str, np.ndarray]:
        return {"sram.wake": self.wake,
                "sram.retention_bank_cycles": self.retention_bank_cycles,
                "sram.off_bank_cycles": self.off_bank_cycles}


class SramPower:
    """One chip's SRAM power policy over its mapping (None for `always_on`: see `of`)."""

    def __init__(self, hw, mapping):
        p, C = hw.power, mapping.n_cores
        self.banks = B = hw.sram.banks
        self.retention = p.sram == "retention_when_idle"
        self.after_cycles, self.wake_cycles = p.retention_after_cycles, p.wake_cycles
        bank_words = ceil_div(mapping.capacity_words, B)
        resident = np.minimum(mapping.words_used, mapping.capacity_words)
        self.used = np.minimum(ceil_div(resident, bank_words), B).astype(np.int64)  # (C,)
        self.off = B - self.used
        # per projection storing weights: its name, source population, (n_src, C) the
        # banks a spike of each source reads on each core, and its targets' cores
        self.reads: list[tuple[str, str, np.ndarray, np.ndarray]] = []
        self.used_mask = None  # (C,) bitmask of each core's used banks (at most 63)
        if self.retention:
            self.used_mask = (np.uint64(1) << self.used.astype(np.uint64)) - np.uint64(1)
            for pr in mapping.spec.projections:
                blocks = mapping.blocks.get(pr.name)
                if blocks and any(b is not None for b in blocks):
                    n_src = mapping.spec.population(pr.src).size
                    self.reads.append((pr.name, pr.src, _bank_masks(blocks, n_src, C, bank_words),
                                       mapping.core[pr.dst]))
        # BPTT's gradient and optimiser words: a learning core touches all its used banks
        self.learning_touches_all = any(pr.plastic not in ("none", "stdp")
                                        for pr in mapping.spec.projections)

    @classmethod
    def of(cls, hw, mapping) -> SramPower | None:
        return None if hw.power.sram == "always_on" else cls(hw, mapping)

    def presentation(self, p: Presentation, work: StepWork,
                     step_cycles: np.ndarray) -> BankStates:
        """The bank states of one presentation whose steps took `step_cycles` (T,)."""
        T, C = len(step_cycles), len(self.used)
        total = int(step_cycles.sum())
        wake = np.zeros(C, np.int64)
        retention = np.zeros(C, np.int64)
        extra = np.zeros(T, np.int64)
        if self.retention and T:
            wake, retention, extra = self._retention(p, work, step_cycles)
        off = self.off * (total + int(extra.sum()))
        return BankStates(wake, retention, off, extra)

    def _accessed(self, p: Presentation, work: StepWork, T: int) -> np.ndarray:
        """(T, C) bitmask of the banks each step's accesses touch on each core."""
        C = len(self.used)
        out = np.zeros((T, C), np.uint64)
        for name, src, masks, dst_core in self.reads:
            _or_rows(out, *work.fired[src], masks)  # spikes read their rows
            if work.learn_ops is None:
                continue
            row, col = stdp_event_streams(name)  # learning writes back rows and columns
            if row in p.counts:
                _or_rows(out, p.counts[row], p.indices[row].astype(np.int64), masks)
            if col in p.counts:  # a column: a word of every row
                steps = np.repeat(np.arange(T), p.counts[col].astype(np.int64))
                cores = dst_core[p.indices[col].astype(np.int64)]
                np.bitwise_or.at(out, (steps, cores), self.used_mask[cores])
        if self.learning_touches_all and work.learn_words is not None:
            learns = work.learn_words_total() > 0
            out[learns] |= np.broadcast_to(self.used_mask, (T, C))[learns]
        if T and (work.pass_words.any() or work.pass_ops.any()):
            out[0] |= np.where(work.pass_words > 0, self.used_mask, np.uint64(0))
        return out & self.used_mask

    def _retention(self, p, work, step_cycles):
        T, C, B = len(step_cycles), len(self.used), self.banks
        bits = (self._accessed(p, work, T)[:, :, None] >> np.arange(B, dtype=np.uint64)) & 1
        idle = (bits == 0) & (np.arange(B) < self.used[:, None])  # (T, C, B), used banks
        edges = np.diff(np.pad(idle.reshape(T, C * B).astype(np.int8), ((1, 1), (0, 0))),
                        axis=0)
        col_s, t0 = np.nonzero(edges.T == 1)  # runs of idle steps [t0, t1), by column
        _, t1 = np.nonzero(edges.T == -1)
        ends = np.concatenate([[0], np.cumsum(step_cycles)])
        length = ends[t1] - ends[t0]
        ok = (length >= self.after_cycles) & (length > 0)
        core = col_s[ok] // B
        wake = np.bincount(core, minlength=C).astype(np.int64)
        retention = np.bincount(core, weights=length[ok], minlength=C).astype(np.int64)
        extra = np.zeros(T, np.int64)
        woke = t1[ok]
        extra[np.unique(woke[woke < T])] = self.wake_cycles
        return wake, retention, extra


def _or_rows(out: np.ndarray, per_step: np.ndarray, idx: np.ndarray,
             masks: np.ndarray) -> None:
    """Add to `out` (T, C) the banks of the rows `idx` read at their steps (`per_step`:
    how many at each step)."""
    if not len(idx):
        return
    steps = np.repeat(np.arange(len(per_step)), per_step.astype(np.int64))
    first = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    out[steps[first]] |= np.bitwise_or.reduceat(masks[idx], first, axis=0)


def _bank_masks(blocks, n_src: int, C: int, bank_words: int) -> np.ndarray:
    """(n_src, C) bitmask of the banks a spike of each source reads on each core: its
    row's SRAM words (all rows of a column-major block)."""
    out = np.zeros((n_src, C), np.uint64)
    for c, b in enumerate(blocks):
        if b is None:
            continue
        has = b.row_sram > 0
        first = b.row_start // bank_words
        last = (b.row_start + np.maximum(b.row_sram, 1) - 1) // bank_words
        span = np.where(has, (np.uint64(1) << (last + 1).astype(np.uint64))
                        - (np.uint64(1) << first.astype(np.uint64)), np.uint64(0))
        if b.column_major:
            out[:, c] = np.bitwise_or.reduce(span) if len(span) else 0
        elif b.row_of is not None:
            out[:, c] = span[b.row_of]
        else:
            out[:, c] = span
    return out
