"""Map a network onto cores: neurons to cores, fan-in weights to each core's SRAM.

A core stores the fan-in weights of the neurons it holds, one projection after
another (input->exc, inh->exc, exc->inh), row by row (a row = the weights of one
presynaptic neuron onto this core's targets, padded to whole words). With
`layout: column_major` the plastic input->exc block is stored column by column
(a column = one target neuron's fan-in) instead. Words past the SRAM's capacity
spill to DRAM and every access to them is a DRAM access.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NetworkShape", "Mapping", "MappingError", "words_for"]


class MappingError(ValueError):
    """The network cannot be placed on the chip (a user error: exit 2)."""


def words_for(n_weights, weight_bits: int, word_bits: int):
    """Words that hold n weights packed side by side (n may be an array)."""
    return -(-np.asarray(n_weights, dtype=np.int64) * weight_bits // word_bits)


@dataclass(frozen=True)
class NetworkShape:
    """What the chip needs to know about the network (from the SpikeTrace meta)."""

    n_in: int
    n_exc: int
    n_inh: int
    weight_bits: int = 32
    lateral: bool = False  # direct lateral inhibition: an exc spike inhibits all other exc
    depression: bool = True  # STDP depresses the row of every input spike


@dataclass
class _Block:
    """A projection's weights on one core: per presynaptic row, words in SRAM / DRAM."""

    row_words: np.ndarray
    row_sram: np.ndarray
    row_dram: np.ndarray


class Mapping:
    def __init__(self, net: NetworkShape, hw):
        cores = hw.cores
        self.net, self.hw = net, hw
        self.n_cores = cores.count
        need = net.n_exc + net.n_inh
        have = cores.count * cores.neurons_per_core
        if need > have:
            raise MappingError(
                f"the network has {need} neurons ({net.n_exc} excitatory + {net.n_inh} "
                f"inhibitory) but the chip holds {cores.count} cores x {cores.neurons_per_core} "
                f"= {have}; add cores or neurons_per_core")
        wb, word = net.weight_bits, hw.sram.word_bits
        if word < wb:
            raise MappingError(f"hardware.sram.word_bits = {word} is narrower than one "
                               f"{wb}-bit weight")
        self.exc_core, self.inh_core = self._place(net, hw)
        C = self.n_cores
        self.k_exc = np.bincount(self.exc_core, minlength=C)
        self.k_inh = np.bincount(self.inh_core, minlength=C)
        self.capacity_words = int(hw.sram.size_kib * 1024 * 8 // word)
        self._allocate(net, wb, word)

    # ------------------------------------------------------------- placement
    @staticmethod
    def _place(net: NetworkShape, hw) -> tuple[np.ndarray, np.ndarray]:
        C, per = hw.cores.count, hw.cores.neurons_per_core
        if hw.mapping == "balanced":  # each population spread evenly; exc j next to inh j
            exc = (np.arange(net.n_exc) * C) // max(net.n_exc, 1)
            inh = (np.arange(net.n_inh) * C) // max(net.n_inh, 1)
        else:  # contiguous: fill core 0, then core 1, ... with exc then inh neurons
            slots = np.arange(net.n_exc + net.n_inh) // per
            exc, inh = slots[: net.n_exc], slots[net.n_exc:]
        return exc.astype(np.int64), inh.astype(np.int64)

    # ------------------------------------------------------------ allocation
    def _allocate(self, net: NetworkShape, wb: int, word: int) -> None:
        C, cap = self.n_cores, self.capacity_words
        self.input_exc: list[_Block] = []
        self.inh_exc: list[_Block] = []
        self.exc_inh: list[_Block] = []
        self.col_words = np.zeros(C, np.int64)  # column-major: words per input->exc column
        column_major = self.hw.sram.layout == "column_major"
        for c in range(C):
            k = int(self.k_exc[c])
            used = 0

            def block(row_words: np.ndarray) -> _Block:
                nonlocal used
                start = used + np.concatenate([[0], np.cumsum(row_words)[:-1]])
                sram = np.clip(cap - start, 0, row_words)
                used += int(row_words.sum())
                return _Block(row_words, sram, row_words - sram)

            if k and column_major:
                cw = int(words_for(net.n_in, wb, word))
                self.col_words[c] = cw
                cols = block(np.full(k, cw, np.int64))  # rows of this block are columns
                self.input_exc.append(cols)
            else:
                rw = int(words_for(k, wb, word)) if k else 0
                self.input_exc.append(block(np.full(net.n_in if k else 0, rw, np.int64)))
            # inh k projects onto this core's exc neurons except its own partner (exc k)
            self_here = (self.exc_core == c)[: net.n_inh] if net.n_inh <= net.n_exc else None
            targets = np.full(net.n_inh, k, np.int64)
            if self_here is not None:
                targets = targets - self_here.astype(np.int64)
            self.inh_exc.append(block(words_for(targets, wb, word) if k else targets * 0))
            self.exc_inh.append(block(np.ones(int(self.k_inh[c]), np.int64)))
            self._used = used
        self.words_used = np.array([sum(int(b.row_words.sum()) for b in blocks)
                                    for blocks in zip(self.input_exc, self.inh_exc, self.exc_inh)])
        self.words_spilled = np.array([
            sum(int(b.row_dram.sum()) for b in blocks)
            for blocks in zip(self.input_exc, self.inh_exc, self.exc_inh)])
        # inhibitory neuron k's row index inside core c's exc_inh block
        self.inh_slot = np.zeros(net.n_inh, np.int64)
        for c in range(C):
            ids = np.flatnonzero(self.inh_core == c)
            self.inh_slot[ids] = np.arange(len(ids))
        self.exc_slot = np.zeros(net.n_exc, np.int64)
        for c in range(C):
            ids = np.flatnonzero(self.exc_core == c)
            self.exc_slot[ids] = np.arange(len(ids))

    # --------------------------------------------------------------- report
    def report(self, state_bits: int, trace_bits: int) -> dict:
        """Bytes of weights, neuron state and traces per core, and SRAM utilisation."""
        net, word = self.net, self.hw.sram.word_bits
        wbytes = self.words_used * word / 8
        sram_bytes = self.hw.sram.size_kib * 1024
        # exc: v, g_e, g_i, theta (state) + 2 post traces + n_in pre traces (replicated per core)
        state = (self.k_exc * 4 + self.k_inh * 2) * state_bits / 8
        traces = (self.k_exc * 2 + np.where(self.k_exc > 0, net.n_in, 0)) * trace_bits / 8
        resident = np.minimum(self.words_used, self.capacity_words) * word / 8
        return {
            "cores_used": int(((self.k_exc + self.k_inh) > 0).sum()),
            "neurons_per_core": (self.k_exc + self.k_inh).tolist(),
            "weight_bytes_per_core": wbytes.tolist(),
            "state_bytes_per_core": state.tolist(),
            "trace_bytes_per_core": traces.tolist(),
            "sram_bytes_per_core": sram_bytes,
            "sram_utilisation": (resident / sram_bytes).tolist(),
            "spilled_bytes_per_core": (self.words_spilled * word / 8).tolist(),
            "weight_bytes_total": float(wbytes.sum()),
            "spilled_bytes_total": float((self.words_spilled * word / 8).sum()),
        }

    @property
    def exc_cores(self) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.k_exc > 0)]


