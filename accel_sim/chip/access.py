"""Per-spike access tables of one projection: how many synaptic operations, SRAM words,
DRAM words and bits, and DRAM rows (row-buffer chunks, chip/dram.py) one presynaptic
spike causes on each core, and what an STDP column update of one target costs
(precomputed once per mapping).

Row access: a presynaptic spike reads its weight row on every target core. Column
access: a postsynaptic spike's STDP update of its fan-in column. The SRAM layout decides
how many words each touches, the mapping which of them live in DRAM.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dram import DramMap, bursts
from .mapping import Block, Mapping

__all__ = ["AccessTable", "access_tables", "burst_bits"]


def burst_bits(dram_words: np.ndarray, word_bits: int, dram) -> np.ndarray:
    """Bits actually moved for a stream of `dram_words` words (whole bursts)."""
    return bursts(dram_words, word_bits, dram.burst_bytes) * dram.burst_bytes * 8


@dataclass
class AccessTable:
    """One projection. Row tables are (C, n_src); column tables (n_dst,); block (C,)."""

    synops: np.ndarray  # targets of each source on each core
    sram: np.ndarray  # words read from SRAM per source spike per core
    dram: np.ndarray  # words read from DRAM
    dram_bits: np.ndarray
    act: np.ndarray  # DRAM rows touched (its activations, when no row is open before)
    col_sram: np.ndarray  # STDP column update of a target: SRAM words (read, then written)
    col_dram: np.ndarray
    col_dram_bits: np.ndarray
    col_act: np.ndarray
    block_sram: np.ndarray  # the whole projection on each core (whole-matrix passes)
    block_dram_bits: np.ndarray
    block_act: np.ndarray


def access_tables(m: Mapping, dram: DramMap) -> dict[str, AccessTable]:
    return {pr.name: _table(m, pr, dram) for pr in m.spec.projections}


def _table(m: Mapping, pr, dmap: DramMap) -> AccessTable:
    hw = m.hw
    C, word, wb, dram = m.n_cores, hw.sram.word_bits, pr.weight_bits, hw.dram
    n_src, n_dst = m.spec.population(pr.src).size, m.spec.population(pr.dst).size
    z = lambda *shape: np.zeros(shape, np.int64)  # noqa: E731
    sram, drm, bits = z(C, n_src), z(C, n_src), z(C, n_src)
    col_sram, col_dram, col_bits = z(n_dst), z(n_dst), z(n_dst)
    blk_sram, blk_bits = z(C), z(C)
    one_word_bits = int(burst_bits(np.int64(1), word, dram))
    for c in range(C):
        b: Block | None = m.blocks[pr.name][c]
        if b is None:
            continue
        ids = np.flatnonzero(m.core[pr.dst] == c)  # targets on this core, in slot order
        slots = m.slot[pr.dst][ids]
        if b.row_of is not None:  # a shared kernel: each source reads its channel's slice
            reads = m.targets[pr.name][c] > 0
            sram[c] = np.where(reads, b.row_sram[b.row_of], 0)
            drm[c] = np.where(reads, b.row_dram[b.row_of], 0)
            bits[c] = np.where(reads, burst_bits(b.row_dram[b.row_of], word, dram), 0)
        elif not b.column_major:
            sram[c], drm[c] = b.row_sram, b.row_dram
            bits[c] = burst_bits(b.row_dram, word, dram)
            # column of slot s: word floor(s*wb/word) of every row holding it
            widx = (slots * wb) // word
            in_sram = (b.row_sram[None, :] > widx[:, None]) & (b.row_words[None, :] > 0)
            held = np.broadcast_to(b.row_words[None, :] > 0, in_sram.shape)
            col_sram[ids] = in_sram.sum(axis=1)
            col_dram[ids] = held.sum(axis=1) - col_sram[ids]
            col_bits[ids] = col_dram[ids] * one_word_bits
        else:
            # block rows are this core's columns; source i touches word floor(i*wb/word)
            widx = (np.arange(n_src) * wb) // word
            in_sram = b.row_sram[:, None] > widx[None, :]  # (k, n_src)
            sram[c] = in_sram.sum(axis=0)
            drm[c] = len(ids) - sram[c]
            bits[c] = drm[c] * one_word_bits
            col_sram[ids], col_dram[ids] = b.row_sram[slots], b.row_dram[slots]
            col_bits[ids] = burst_bits(b.row_dram[slots], word, dram)
        blk_sram[c] = int(b.row_sram.sum())
        blk_bits[c] = int(burst_bits(b.row_dram, word, dram).sum())
    src_ptr, core, streams = dmap.reads[pr.name]
    act = z(C, n_src)
    act[core, np.repeat(np.arange(n_src), np.diff(src_ptr))] = streams.chunks_of()
    return AccessTable(m.targets[pr.name], sram, drm, bits, act, col_sram, col_dram, col_bits,
                       dmap.columns[pr.name].chunks_of(), blk_sram, blk_bits,
                       dmap.blocks[pr.name].chunks_of())
