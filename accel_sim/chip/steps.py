"""The cores' load in every step, reduced as the timing needs it (NumPy reference).

A presentation's synaptic deliveries come in groups, one per projection with spikes
(counting.Deliveries): group g's spikes of step t are `src[ptr[g, t]:ptr[g, t + 1]]`,
each a row `row_base[g] + s` of the chip's delivery tables, which give per core the
synaptic operations (`syn_tab`), the SRAM words read (`sram_tab`) and, for a source on
the chip, the core that sends its messages (`msg_core`, -1 for the input port) and how
many (`msg_count`). A rate group (`rate[g]`, every source alike) has one row, which each
of its spikes adds. Per step t and core c:

    synop_cycles[t, c] = sum over synapse units u of ceil(synops_u[t, c] / lanes) x unit_cycles[u]
    memory[t, c]       = ceil(sram[t, c] / ports) + read_latency if sram[t, c] > 0 else 0
    synaptic[t, c]     = max(synop_cycles, memory) + receive_cycles x deliveries[t, c]

(deliveries: the spikes whose operations reach the core), and the timing reads of them
only (timing.core_load):
    service[t]            = max over c of synaptic[t, c]
    synaptic_per_core[c]  = sum over t of synaptic[t, c]
    most_messages[t]      = max over c of messages[t, c]
    chain[t]              = max over c of neurons[t, c] + messages[t, c] x message_cycles
                            (when the soma does not block the synapses; else not computed)

Steps alike are reduced once (`alike_steps`): a step where only rate groups have spikes
depends on their counts alone, so every step with the same counts has the same load; each
such class is one row of the reduction, weighted by its steps in the per-core sums (a
D&C MNIST presentation of 700 steps of Poisson input reduces ~25 rows instead of 700).

Learning's cycles (`reduce_learning`) from its (T, C) STDP operations and read-modify-write
words, per step t and core c, the operations given as a (T, C) array plus the outer
products of P factors (pre_n (P, T) spikes per step, pre_k (P, C) operations per spike):

    ops[t, c]   = ops[t, c] + sum over p of pre_n[p, t] x pre_k[p, c]
    learn[t, c] = max(ceil(ops[t, c] / learn_lanes),
                      ceil(words[t, c] / ports) + write_latency if words[t, c] > 0 else 0)

reduced to the slowest core of each step (max over c) and each core's sum over the steps.

The compiled kernel (ext/step_kernels.pyx, `accel_sim.chip._step_kernels`) computes the
same row by row from C-long rows, without the (T, C) arrays built here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["alike_steps", "ceil_div", "reduce_arrays", "reduce_learning", "reduce_steps"]


def ceil_div(a, b):
    """ceil(a / b) by a positive integer b, of arrays or scalars; an integer array by a
    power of two is a shift (floor((a + b - 1) / b) = ceil(a / b) for integers), as
    integer division of a (steps x cores) array costs ~10x more."""
    if isinstance(b, (int, np.integer)) and b > 0 and not b & (b - 1) and isinstance(a, np.ndarray) \
            and a.dtype.kind == "i":
        return (a + (b - 1)) >> (int(b).bit_length() - 1) if b > 1 else a.copy()
    return -(-a // b)


def reduce_arrays(synop_cycles, sram, deliveries, messages, neurons, *, ports: int,
                  read_latency: int, receive_cycles: int, message_cycles: int,
                  chain: bool, weight=None) -> tuple:
    """(service, synaptic_per_core, most_messages, chain or None) of (T, C) arrays (of
    counts, or of expected counts: the closed-form estimate's); `weight`: the steps each
    row stands for in the per-core sums (None: one)."""
    memory = ceil_div(sram, ports)
    if read_latency:
        memory = memory + np.where(sram > 0, read_latency, 0)
    synaptic = np.maximum(synop_cycles, memory)
    if receive_cycles:
        synaptic = synaptic + receive_cycles * deliveries
    longest = (neurons + messages * message_cycles).max(axis=1, initial=0) if chain else None
    per_core = synaptic.sum(axis=0) if weight is None else weight @ synaptic
    return (synaptic.max(axis=1, initial=0), per_core, messages.max(axis=1, initial=0), longest)


def alike_steps(ptr: np.ndarray, rate: np.ndarray) -> tuple:
    """(row of each step, the rows' ptr, each row's steps): the steps where only rate
    groups have spikes, one row per distinct combination of their counts (first), then
    every other step in order, its own row. A rate group's row counts are its spikes; any
    other group's rows keep their spikes' ranges of `src` (it has none in the first)."""
    T = ptr.shape[1] - 1
    n = np.diff(ptr, axis=1)  # (G, T) spikes of each group in each step
    rated = rate.astype(bool)
    own = n[~rated].any(axis=0)  # steps with spikes of their own rows
    alike = n[rated][:, ~own].T  # (steps alike, rate groups)
    keys, cls = _classes(alike)
    K, steps = len(keys), np.flatnonzero(own)
    row_of = np.empty(T, np.int64)
    row_of[~own] = cls
    row_of[own] = K + np.arange(len(steps))
    rows = np.zeros((len(ptr), K + len(steps) + 1), np.int64)
    rows[~rated] = np.concatenate([np.repeat(ptr[~rated, :1], K + 1, axis=1),
                                   ptr[~rated][:, steps + 1]], axis=1)
    rows[rated, 1:] = np.cumsum(np.concatenate([keys.T, n[rated][:, steps]], axis=1), axis=1)
    weight = np.concatenate([np.bincount(cls, minlength=K), np.ones(len(steps), np.int64)])
    return row_of, rows, weight.astype(np.int64)


def _classes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, class of each row) of a (n, R) array of counts, classes in the
    order of the rows' integer keys (mixed radix): a table of the keys where they are few
    (a sort costs more), np.unique over rows where they do not fit in 62 bits."""
    n, R = rows.shape
    if not n or not R:  # no rows, or all alike (no counts)
        return rows[:1], np.zeros(n, np.int64)
    radix = rows.max(axis=0) + 1
    if float(np.prod(radix.astype(float))) >= 2.0 ** 62:
        keys, cls = np.unique(rows, axis=0, return_inverse=True)
        return keys, cls.ravel()
    key = rows[:, 0] if R == 1 else rows @ np.concatenate([[1], np.cumprod(radix[:-1])])
    top = int(key.max()) + 1
    if top > 4 * n + 1024:
        _, first, cls = np.unique(key, return_index=True, return_inverse=True)
        return rows[first], cls.ravel()
    first = np.full(top, n, np.int64)
    np.minimum.at(first, key, np.arange(n))  # the first row of each key present
    present = first < n
    return rows[first[present]], (np.cumsum(present) - 1)[key]


def reduce_steps(ptr, src, rate, unit, row_base, syn_tab, sram_tab, msg_core, msg_count,
                 weight, neurons, lanes: int, unit_cycles, ports: int, read_latency: int,
                 receive_cycles: int, message_cycles: int, chain: bool) -> tuple:
    """(service, synaptic_per_core, most_messages, chain or None) of a presentation's
    delivery groups (module docstring), row by row of `ptr` (steps, or classes of alike
    steps: `weight` counts each row's steps in the per-core sums); `neurons`: (rows, C)
    cycles of each core's neuron phase (read only for the chain)."""
    T, C = ptr.shape[1] - 1, syn_tab.shape[1]
    synops = np.zeros((len(unit_cycles), T, C), np.int64)
    sram = np.zeros((T, C), np.int64)
    deliveries = np.zeros((T, C), np.int64)
    messages = np.zeros((T, C), np.int64)
    steps = np.arange(T)
    for g in range(len(ptr)):
        n = np.diff(ptr[g])
        if rate[g]:  # every spike adds the group's one row
            row = row_base[g]
            synops[unit[g]] += np.outer(n, syn_tab[row])
            sram += np.outer(n, sram_tab[row])
            deliveries += np.outer(n, syn_tab[row] > 0)
            if msg_core[row] >= 0:
                messages[:, msg_core[row]] += n * msg_count[row]
            continue
        rows = row_base[g] + src[ptr[g, 0]:ptr[g, T]]
        st = np.repeat(steps, n)
        np.add.at(synops[unit[g]], st, syn_tab[rows])
        np.add.at(sram, st, sram_tab[rows])
        np.add.at(deliveries, st, syn_tab[rows] > 0)
        sends = msg_core[rows] >= 0
        np.add.at(messages, (st[sends], msg_core[rows][sends]), msg_count[rows][sends])
    synop_cycles = sum(ceil_div(synops[u], lanes) * int(c) for u, c in enumerate(unit_cycles))
    return reduce_arrays(synop_cycles, sram, deliveries, messages, neurons, ports=ports,
                         read_latency=read_latency, receive_cycles=receive_cycles,
                         message_cycles=message_cycles, chain=chain, weight=weight)


def reduce_learning(ops, words, pre_n, pre_k, word_n, word_k, lanes: int, ports: int,
                    write_latency: int) -> tuple:
    """(slowest core's learning cycles per step (T,), each core's summed over the steps
    (C,)) of (T, C) STDP operations (plus the outer products of the factors pre_n (P, T)
    and pre_k (P, C)) and read-modify-write words (plus those of word_n (Q, T) and
    word_k (Q, C)) (module docstring)."""
    ops = ops + pre_n.T @ pre_k
    words = words + word_n.T @ word_k
    learn = np.maximum(ceil_div(ops, lanes),
                       ceil_div(words, ports) + np.where(words > 0, write_latency, 0))
    return learn.max(axis=1, initial=0), learn.sum(axis=0)
