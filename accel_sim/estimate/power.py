"""The expected SRAM bank states of a presentation (hardware.power.sram; chip/power.py
counts the replay's), in closed form.

Each used bank b of core c is read at a step when a spike of a source whose row lies in it
arrives: with Poisson spikes at the activity's per-neuron rates, `lam` reads per step and
an idle step with probability p = exp(-lam), independently from step to step. With steps
of the estimate's mean length E, a stretch qualifies for retention when it spans at least
k = max(1, ceil(retention_after_cycles / E)) idle steps. In a long run of T steps:
- idle steps in stretches of at least k: T p^k (k (1 - p) + p) (a step is idle with its
  a idle steps before and b after, a + b >= k - 1, a and b geometric);
- such stretches ended by a read: T (1 - p) p^k, plus p^k for one reaching the end (a
  wake-up each);
- steps with a wake-up (lengthened by `wake_cycles`): T (1 - prod over banks (1 - (1 - p)
  p^k)).
When learning, STDP's write-backs add their rates: a row's to its banks, a column's to
every used bank of its neuron's core; BPTT's learning keeps every used bank on. Whole-
matrix passes (once per presentation) are left out.
"""
from __future__ import annotations

import math

import numpy as np

from snn_frontend.trace import stdp_event_streams

from ..chip.power import SramPower
from .activity import PhaseActivity

__all__ = ["expected_bank_states"]


def expected_bank_states(power: SramPower, act: PhaseActivity,
                         step_cycles: float) -> tuple[dict[str, float], float]:
    """Expected "sram.wake" and "sram.retention_bank_cycles" of one presentation of the
    activity's steps of `step_cycles` each, and the cycles its wake-ups add to it
    (`sram.off_bank_cycles` follows from the presentation's cycles: SramPower.off)."""
    if not power.retention:
        return {}, 0.0
    C, B, T = len(power.used), power.banks, act.steps
    lam = np.zeros((C, B))  # accesses per step of each bank
    for name, src, masks, dst_core in power.reads:
        bits = ((masks[:, :, None] >> np.arange(B, dtype=np.uint64)) & 1).astype(float)
        rate = act.per_neuron(src, masks.shape[0])  # (n_src,) spikes per step
        if act.learn:
            row, col = stdp_event_streams(name)
            rate = rate + act.per_neuron(row, masks.shape[0])
            lam += np.bincount(dst_core, act.per_neuron(col, len(dst_core)), C)[:, None]
        lam += np.tensordot(rate, bits, axes=1)
    if act.learn and power.learning_touches_all:
        lam[:] = np.inf
    p = np.exp(-lam[np.arange(B) < power.used[:, None]])  # used banks, idle per step
    k = max(1, math.ceil(power.after_cycles / step_cycles)) if step_cycles > 0 else 1
    pk = p ** k
    ended = (1 - p) * pk
    retention = T * pk * (k * (1 - p) + p) * step_cycles
    wakes = T * ended + pk
    extra = power.wake_cycles * T * (1 - float(np.prod(1 - ended)))
    return ({"sram.wake": float(wakes.sum()),
             "sram.retention_bank_cycles": float(retention.sum())}, extra)
