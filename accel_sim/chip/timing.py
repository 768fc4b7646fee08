"""Time of a presentation: the chip's rates and the `timestep` fidelity.

One time step = neuron phase -> delivery (messages over the NoC, synaptic accumulation at
the destination cores, spilled weights from DRAM) -> learning -> barrier. Whole-matrix
passes (normalisation, decay) run before the first step of a presentation.

`timestep` (the fast default) derives each step from its counts: per core, work /
throughput (synops / synapse lanes, SRAM words / (banks x ports), learning ops / learning
lanes), DRAM bytes / bandwidth + a row miss per access stream, the messages serialised at
the input port and at each core's network interface (one per destination core when
unicast), plus the longest route's hop latency to fill the pipeline. Cores run in
parallel; the slowest sets the step. `event` and `simpy` (chip/event.py, chip/des.py)
follow every message instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snn_frontend._backend import kernels

from . import steps
from .counting import StepWork
from .steps import ceil_div

__all__ = [
    "CoreLoad",
    "HwRates",
    "TimestepTimer",
    "barrier_cycles",
    "core_busy_cycles",
    "core_load",
    "learn_cycles_per_core",
    "learn_load",
    "pass_cycles",
    "tiles_in_use",
    "timestep_cycles",
]


class HwRates:
    """Per-cycle throughputs and latencies of one chip with one mapping, in cycles."""

    def __init__(self, hw, mapping, topology):
        c, s, n, d = hw.cores, hw.sram, hw.noc, hw.dram
        self.syn_lanes, self.neuron_lanes, self.learn_lanes = (
            c.synapse_lanes, c.neuron_lanes, c.learning_lanes)
        self.synop_cycles, self.receive_cycles = c.synop_cycles, c.message_receive_cycles
        self.soma_blocks = c.soma_blocks_synapses
        self.ports = s.banks * s.ports_per_bank
        self.read_lat, self.write_lat = s.read_latency_cycles, s.write_latency_cycles
        self.flits = ceil_div(n.packet_bits, n.link_width_bits)
        self.hop_lat_ew = n.router_latency_cycles + n.link_latency_cycles
        self.hop_lat_ns = n.router_latency_cycles + (n.link_latency_ns_cycles or n.link_latency_cycles)
        self.hop_lat = max(self.hop_lat_ew, self.hop_lat_ns)  # a bound, for pipeline fill
        # a chip-to-chip hop (hardware.system): its router, its link, its narrower width
        self.hop_lat_chip = n.router_latency_cycles + hw.system.link_latency_cycles
        self.flits_chip = ceil_div(n.packet_bits, hw.system.link_width_bits)
        self.message_cycles = n.message_cycles  # generation time per message at a core
        self.out_service = max(self.flits, self.message_cycles)  # a core's network interface
        # the input port, fed by the host link: its packets' flits over the link, and the
        # link's latency on top of the message cycles before a message leaves the port
        host = hw.system.host_link_width_bits
        self.port_service = max(ceil_div(n.packet_bits, host) if host else self.flits,
                                self.message_cycles)
        self.port_delay = self.message_cycles + hw.system.host_latency_cycles
        cycle_ns = 1e3 / hw.clock_mhz
        self.dram_bytes_per_cycle = d.bandwidth_gb_s * cycle_ns  # GB/s * ns = bytes
        # a stream's first data after a hit's latency; an activation adds tRCD, a conflict
        # (another row of the bank open) tRP before it (chip/dram.py)
        self.dram_hit = math.ceil(d.row_hit_ns / cycle_ns)
        self.dram_act = math.ceil(max(d.row_miss_ns - d.row_hit_ns - d.precharge_ns, 0) / cycle_ns)
        self.dram_pre = math.ceil(d.precharge_ns / cycle_ns)
        self.tiles_in_use = tiles_in_use(mapping, topology)
        self.barrier = barrier_cycles(hw.sync, self.tiles_in_use) if hw.sync.barrier else 0
        per_core = mapping.neurons_per_core()
        self.neuron_cycles_per_core = ceil_div(per_core, self.neuron_lanes).astype(np.int64)
        self.neuron_cycles = int(self.neuron_cycles_per_core.max(initial=0))

    def neuron_phase(self, work: StepWork) -> np.ndarray:
        """(T, C) cycles of each core's neuron phase in each step."""
        if work.soma is not None:
            return work.soma.dense
        return np.broadcast_to(self.neuron_cycles_per_core, work.shape)

    def neuron_phase_at(self, work: StepWork, steps: np.ndarray) -> np.ndarray:
        """(len(steps), C) the neuron phases of `steps` (ascending, distinct)."""
        if work.soma is not None:
            return work.soma.at(steps)
        return np.broadcast_to(self.neuron_cycles_per_core, (len(steps), work.shape[1]))

    def longest_neuron_phase(self, work: StepWork) -> np.ndarray:
        """(T,) the longest neuron phase of each step."""
        if work.soma is not None:
            return work.soma.step_max()
        return np.full(work.shape[0], self.neuron_cycles, np.int64)

    def neuron_phase_per_core(self, work: StepWork) -> np.ndarray:
        """(C,) each core's neuron phases summed over the steps."""
        if work.soma is not None:
            return work.soma.per_core()
        return work.shape[0] * self.neuron_cycles_per_core

    def dram_cycles(self, bits, streams):
        """Cycles of DRAM transfers before their rows' activations: whole cycles of
        bandwidth plus a hit's latency per stream."""
        return (np.ceil(np.asarray(bits) / 8 / self.dram_bytes_per_cycle).astype(np.int64)
                + np.asarray(streams) * self.dram_hit)

    def dram_step_cycles(self, work: StepWork) -> np.ndarray:
        """(T,) cycles of each step's DRAM transfers: `dram_cycles`, plus tRCD per activation
        and tRP per conflict of the step's row buffers."""
        cycles = self.dram_cycles(work.dram_bits, work.dram_streams)
        rows = work.dram_rows
        if rows is None:
            return cycles
        return cycles + rows.acts * self.dram_act + rows.conflicts * self.dram_pre

    def step_load(self, synop_cycles, sram, deliveries, messages, neurons) -> CoreLoad:
        """The cores' load of (T, C) arrays of synaptic-operation cycles, SRAM words,
        deliveries, messages and neuron-phase cycles (steps.reduce_arrays: of counts, or of
        expected counts)."""
        return CoreLoad(*steps.reduce_arrays(
            synop_cycles, sram, deliveries, messages, neurons, ports=self.ports,
            read_latency=self.read_lat, receive_cycles=self.receive_cycles,
            message_cycles=self.message_cycles, chain=not self.soma_blocks))

    def service_cycles(self, synops, words, per_synop=None):
        """A core's cycles for one message's synaptic work: the fixed receive cost, then
        synapse lanes and SRAM ports in parallel (`per_synop`: each job's synapse unit's
        cycles, where they differ)."""
        c = self.synop_cycles if per_synop is None else per_synop
        return self.receive_cycles + np.maximum(ceil_div(synops, self.syn_lanes) * c,
                                                ceil_div(words, self.ports))


def tiles_in_use(mapping, topology) -> int:
    """Tiles holding neurons, the input port's tile included when spikes enter there."""
    tiles = set(np.unique(topology.tile_of(np.flatnonzero(mapping.neurons_per_core() > 0))).tolist())
    if any(not p.on_chip for p in mapping.spec.populations):
        tiles.add(topology.tile_at(*topology.port))
    return len(tiles)


def barrier_cycles(sync, tiles: int) -> int:
    """The barrier's length: `barrier_cycles`, or the sync table's entry for the largest
    number of tiles <= `tiles` (SANA-FE's lookup)."""
    table = sync.barrier_cycles_by_tiles
    if not table:
        return sync.barrier_cycles
    keys = [k for k in table if k <= tiles]
    return int(table[max(keys)] if keys else table[min(table)])


def learn_cycles_per_core(work: StepWork, r: HwRates) -> np.ndarray:
    """(T, C): STDP arithmetic vs read-modify-write words, the write latency at the end."""
    if work.learn_ops is None:
        return np.zeros(work.shape, np.int64)
    words = work.learn_words_total()
    ops = ceil_div(work.learn_ops_total(), r.learn_lanes)
    mem = ceil_div(words, r.ports) + np.where(words > 0, r.write_lat, 0)
    return np.maximum(ops, mem)


def learn_load(work: StepWork, r: HwRates) -> tuple[np.ndarray, np.ndarray]:
    """((T,) the slowest core's learning cycles in each step, (C,) each core's summed over
    the steps): `learn_cycles_per_core` reduced in one pass (steps.reduce_learning, compiled
    for integer counts), once per presentation (kept on `work`)."""
    if work._learn_load is None:
        ops, words = work.learn_ops, work.learn_words
        if ops is None:
            T, C = work.shape
            work._learn_load = (np.zeros(T, np.int64), np.zeros(C, np.int64))
        else:
            T, C = ops.shape
            pre = [_factor_arrays(f, T, C) for f in (work.learn_pre, work.learn_words_pre)]
            module = steps
            if ops.dtype == np.int64 and words.dtype == np.int64:
                _, module = kernels(None, "steps")
                ops, words = np.ascontiguousarray(ops), np.ascontiguousarray(words)
            work._learn_load = module.reduce_learning(ops, words, *pre[0], *pre[1],
                                                      r.learn_lanes, r.ports, r.write_lat)
    return work._learn_load


def _factor_arrays(factors: list, T: int, C: int) -> tuple[np.ndarray, np.ndarray]:
    """Outer-product factors [((T,), (C,))] as two arrays (P, T) and (P, C)."""
    return (np.array([n for n, _ in factors], np.int64).reshape(-1, T),
            np.array([k for _, k in factors], np.int64).reshape(-1, C))


def pass_cycles(work: StepWork, r: HwRates) -> int:
    """Whole-matrix passes before the presentation: every core reads, scales and writes its
    words; spilled words stream over the DRAM channel."""
    if not work.pass_words.any() and not work.pass_ops.any():
        return 0
    mem = int(ceil_div(2 * work.pass_words, r.ports).max())
    ops = int(ceil_div(work.pass_ops, r.learn_lanes).max())
    dram = math.ceil(work.pass_dram_bits / 8 / r.dram_bytes_per_cycle)
    return max(mem, ops) + dram


@dataclass
class CoreLoad:
    """The cores' synaptic load of a presentation, as the timing reads it (chip/steps.py):
    per step the slowest core's synaptic cycles (`service`) and the busiest network
    interface's messages (`most_messages`); per core its synaptic cycles summed over the
    steps; and, when the soma does not block the synapses, per step the longest soma
    chain (a core's neuron phase and the messages it sends)."""

    service: np.ndarray  # (T,)
    synaptic_per_core: np.ndarray  # (C,)
    most_messages: np.ndarray  # (T,)
    chain: np.ndarray | None  # (T,)


def core_load(work: StepWork, r: HwRates) -> CoreLoad:
    """The cores' load of a presentation's deliveries (kept on `work`: the timing and the
    per-instance busy cycles both read it), by the compiled kernel or its reference, alike
    steps reduced once (steps.alike_steps). Their rate rows send no messages (their
    sources are the input port's), so an alike step's chain is its longest neuron phase."""
    if work.load is None:
        d, t = work.deliveries, work.deliveries.tables
        chain = not r.soma_blocks
        _, module = kernels(None, "steps")
        row_of, ptr, weight = module.alike_steps(d.ptr, t.rate)
        C = work.shape[1]
        rows = np.zeros((len(weight) if chain else 0, C), np.int64)
        if chain:  # each own step's neuron phase on its row
            own = np.flatnonzero(np.diff(d.ptr[t.rate == 0], axis=1).any(axis=0))
            rows[row_of[own]] = r.neuron_phase_at(work, own)
        service, per_core, most, longest = module.reduce_steps(
            ptr, d.src, t.rate, t.unit, t.row_base, t.syn_tab, t.sram_tab, t.msg_core,
            t.msg_count, weight, rows, r.syn_lanes, t.unit_cycles,
            r.ports, r.read_lat, r.receive_cycles, r.message_cycles, chain)
        if chain:
            chain_cycles = r.longest_neuron_phase(work)
            chain_cycles[own] = longest[row_of[own]]
        work.load = CoreLoad(service[row_of], per_core, most[row_of],
                             chain_cycles if chain else None)
    return work.load


def core_busy_cycles(work: StepWork, r: HwRates) -> np.ndarray:
    """(C,): the cycles each core is occupied over a presentation: its neuron phase, its
    synaptic work and its learning in every step (as `timestep` times them), and its
    share of the whole-matrix passes."""
    busy = r.neuron_phase_per_core(work) + core_load(work, r).synaptic_per_core
    if work.learn_ops is not None:
        busy = busy + learn_load(work, r)[1]
    if work.pass_words.any() or work.pass_ops.any():
        busy = busy + np.maximum(ceil_div(2 * work.pass_words, r.ports),
                                 ceil_div(work.pass_ops, r.learn_lanes))
    return np.asarray(busy, np.int64)


def timestep_cycles(work: StepWork, r: HwRates) -> np.ndarray:
    """Cycles of each step (T,), the whole-matrix passes added to the first step."""
    load = core_load(work, r)
    service = load.service
    port = work.port_messages * r.port_service + np.where(work.port_messages > 0, r.port_delay, 0)
    most = load.most_messages  # messages of the busiest network interface
    inject = most * r.out_service + np.where(most > 0, r.message_cycles, 0)
    fill = work.max_hops * r.hop_lat
    if work.max_chip_hops is not None:  # chip-to-chip hops on the way (systems of chips)
        fill = fill + work.max_chip_hops * max(r.hop_lat_chip - r.hop_lat, 0)
    dram = r.dram_step_cycles(work)
    # the ports, the cores, the DRAM channel and the busiest chip-to-chip link work in
    # parallel (pipelined delivery)
    deliver = np.maximum(np.maximum(np.maximum(port, inject), service), dram) + fill
    if work.chip_link_messages is not None:
        deliver = np.maximum(deliver, work.chip_link_messages * r.flits_chip + fill)
    deliver = np.where(work.spikes > 0, deliver, 0)
    if r.soma_blocks:  # the neuron phase, then delivery
        steps = r.longest_neuron_phase(work) + deliver + r.barrier
    else:  # the soma chain (with the messages it sends) and delivery overlap
        steps = np.maximum(load.chain, deliver) + r.barrier
    if work.learn_ops is not None:
        steps += learn_load(work, r)[0]
    if len(steps):
        steps[0] += pass_cycles(work, r)
    return steps


class TimestepTimer:
    """The `timestep` fidelity as the chip drives it: each presentation's cycles from
    its counts."""

    events = 0  # it schedules no SimPy events of its own

    def __init__(self, chip):
        self.env, self.rates = chip.env, chip.rates

    def presentation(self, p, work: StepWork):
        """SimPy process body (driven with `yield from`): the chip's clock advances by the
        presentation's cycles, which it returns."""
        self.last_step_cycles = timestep_cycles(work, self.rates)
        cycles = int(self.last_step_cycles.sum())
        yield self.env.timeout(cycles)
        return cycles
