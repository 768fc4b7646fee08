"""Per-spike access tables: how many SRAM words, DRAM words and DRAM activations
one spike of each source causes on each core (precomputed once per mapping).

Row access (a presynaptic spike reads its weight row on every target core),
column access (a postsynaptic spike's STDP update of its fan-in column), with
the chosen SRAM layout deciding how many words each touches and the mapping
deciding which of them live in DRAM.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mapping import Mapping

__all__ = ["AccessTables"]


def _activations(dram_words: np.ndarray, word_bits: int, dram) -> np.ndarray:
    """DRAM row activations of one access stream of `dram_words` contiguous words."""
    nbytes = dram_words * word_bits // 8 + ((dram_words * word_bits) % 8 > 0)
    unit = dram.row_bytes if dram.page_policy == "open" else dram.burst_bytes
    return -(-nbytes // unit)


def _burst_bits(dram_words: np.ndarray, word_bits: int, dram) -> np.ndarray:
    """Bits actually moved for a stream of `dram_words` words (whole bursts)."""
    nbytes = -(-(dram_words * word_bits) // 8)
    return -(-nbytes // dram.burst_bytes) * dram.burst_bytes * 8


@dataclass
class AccessTables:
    # input spike i -> per core (C, n_in)
    in_sram: np.ndarray
    in_dram: np.ndarray
    in_dram_bits: np.ndarray
    in_act: np.ndarray
    # inhibitory spike k -> per core (C, n_inh)
    inh_sram: np.ndarray
    inh_dram: np.ndarray
    inh_dram_bits: np.ndarray
    inh_act: np.ndarray
    inh_synops: np.ndarray  # (C, n_inh): targets of inh k on core c
    # excitatory spike j -> its inhibitory partner's core (n_exc,)
    ei_sram: np.ndarray
    ei_dram: np.ndarray
    ei_dram_bits: np.ndarray
    ei_act: np.ndarray
    # STDP column access of exc neuron j on its core (n_exc,)
    col_sram: np.ndarray
    col_dram: np.ndarray
    col_dram_bits: np.ndarray
    col_act: np.ndarray
    # whole input->exc block per core (normalisation reads and writes it all)
    block_sram: np.ndarray
    block_dram: np.ndarray
    block_dram_bits: np.ndarray
    block_act: np.ndarray

    @classmethod
    def build(cls, m: Mapping) -> "AccessTables":
        net, hw = m.net, m.hw
        C, word, wb, dram = m.n_cores, hw.sram.word_bits, net.weight_bits, hw.dram
        col_major = hw.sram.layout == "column_major"
        z = lambda *shape: np.zeros(shape, np.int64)  # noqa: E731
        in_sram, in_dram, in_bits, in_act = z(C, net.n_in), z(C, net.n_in), z(C, net.n_in), z(C, net.n_in)
        inh_sram, inh_dram = z(C, net.n_inh), z(C, net.n_inh)
        inh_bits, inh_act, inh_syn = z(C, net.n_inh), z(C, net.n_inh), z(C, net.n_inh)
        col_sram, col_dram, col_bits, col_act = z(net.n_exc), z(net.n_exc), z(net.n_exc), z(net.n_exc)
        blk_sram, blk_dram, blk_bits, blk_act = z(C), z(C), z(C), z(C)
        for c in range(C):
            k = int(m.k_exc[c])
            if k == 0:
                continue
            b = m.input_exc[c]
            exc_ids = np.flatnonzero(m.exc_core == c)
            slots = m.exc_slot[exc_ids]
            if not col_major:
                in_sram[c], in_dram[c] = b.row_sram, b.row_dram
                in_bits[c] = _burst_bits(b.row_dram, word, dram)
                in_act[c] = _activations(b.row_dram, word, dram)
                # column of slot s: word floor(s*wb/word) of every row
                widx = (slots * wb) // word
                in_sram_rows = b.row_sram[None, :] > widx[:, None]  # (k, n_in)
                col_sram[exc_ids] = in_sram_rows.sum(axis=1)
                col_dram[exc_ids] = net.n_in - col_sram[exc_ids]
                col_bits[exc_ids] = col_dram[exc_ids] * int(_burst_bits(np.int64(1), word, dram))
                col_act[exc_ids] = col_dram[exc_ids]  # scattered words: one activation each
            else:
                # block rows are columns; an input row touches word floor(i*wb/word) of each
                widx = (np.arange(net.n_in) * wb) // word  # (n_in,)
                in_col_sram = b.row_sram[:, None] > widx[None, :]  # (k, n_in)
                in_sram[c] = in_col_sram.sum(axis=0)
                in_dram[c] = k - in_sram[c]
                in_bits[c] = in_dram[c] * int(_burst_bits(np.int64(1), word, dram))
                in_act[c] = in_dram[c]
                col_sram[exc_ids], col_dram[exc_ids] = b.row_sram[slots], b.row_dram[slots]
                col_bits[exc_ids] = _burst_bits(b.row_dram[slots], word, dram)
                col_act[exc_ids] = _activations(b.row_dram[slots], word, dram)
            blk_sram[c], blk_dram[c] = int(b.row_sram.sum()), int(b.row_dram.sum())
            blk_bits[c] = int(_burst_bits(b.row_dram, word, dram).sum())
            blk_act[c] = int(_activations(b.row_dram, word, dram).sum())
            h = m.inh_exc[c]
            inh_sram[c], inh_dram[c] = h.row_sram, h.row_dram
            inh_bits[c] = _burst_bits(h.row_dram, word, dram)
            inh_act[c] = _activations(h.row_dram, word, dram)
            own = (m.exc_core[: net.n_inh] == c).astype(np.int64) if net.n_inh <= net.n_exc else 0
            inh_syn[c] = k - own
        # exc j -> inh j: one word in the inhibitory partner's core
        ei_sram, ei_dram = z(net.n_exc), z(net.n_exc)
        for j in range(min(net.n_exc, net.n_inh)):
            blk = m.exc_inh[int(m.inh_core[j])]
            s = int(m.inh_slot[j])
            ei_sram[j], ei_dram[j] = blk.row_sram[s], blk.row_dram[s]
        ei_bits = _burst_bits(ei_dram, word, dram)
        ei_act = _activations(ei_dram, word, dram)
        return cls(in_sram, in_dram, in_bits, in_act, inh_sram, inh_dram, inh_bits, inh_act,
                   inh_syn, ei_sram, ei_dram, ei_bits, ei_act, col_sram, col_dram, col_bits,
                   col_act, blk_sram, blk_dram, blk_bits, blk_act)
