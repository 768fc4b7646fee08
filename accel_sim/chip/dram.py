"""DRAM row buffers: where every spilled word lives, and which accesses find their row open.

Addresses. Each core's words past its SRAM's capacity (in allocation order: projections
in spec order, rows in order; chip/mapping.py) are one contiguous DRAM region, the cores'
regions one after another. An address splits into (row, bank, column) with `row_bytes`
chunks interleaved over the banks: chunk = address // row_bytes, bank = chunk % banks,
DRAM row = chunk // banks.

Streams. A spike's spilled weights on one core, an STDP read-modify-write of a row or a
column on one core, a whole-matrix pass over a core's spilled words: each touches a list
of word ranges, hence a sequence of chunks (a range stays in its chunk until it crosses
a row boundary); a read-modify-write touches its chunks twice, reading then writing.

Row buffers. An access finds its row open (a hit) when the last access to its bank was
to the same row; otherwise it activates the row (a miss), after precharging the bank's
open row if there was one (a conflict). Open page: every bank is precharged at the end
of each time step (a step outlasts the refresh interval, 3.9 us in LPDDR4, and refresh
closes every row). Closed page: each stream closes the rows it opened. Every activated
row is precharged once: precharges = activations. Counted: `dram.activate`,
`dram.precharge` and `dram.row_hit` (a burst whose row was open: a stream's bursts less
its activations).

Order, the same for every fidelity: each step's deliveries (projections in spec order,
spikes in trace order, cores ascending), then its learning write-backs (projections in
spec order; rows, then columns). Whole-matrix passes start from closed banks.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .mapping import Block, Mapping

__all__ = ["DramMap", "DramSteps", "RowBatch", "Streams", "bursts", "row_outcomes"]


def bursts(dram_words: np.ndarray, word_bits: int, burst_bytes: int) -> np.ndarray:
    """Whole bursts a stream of `dram_words` contiguous words moves."""
    nbytes = -(-(np.asarray(dram_words) * word_bits) // 8)
    return -(-nbytes // burst_bytes)


def _gather(ptr: np.ndarray, ids: np.ndarray, repeat: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The CSR entries of rows `ids`, each row's entries `repeat` times over: (position in
    ids of each entry's row, entry index)."""
    n = ptr[ids + 1] - ptr[ids]
    total = n * repeat
    owner = np.repeat(np.arange(len(ids)), total)
    within = np.arange(int(total.sum())) - np.repeat(np.cumsum(total) - total, total)
    return owner, np.repeat(ptr[ids], total) + within % np.maximum(np.repeat(n, total), 1)


@dataclass
class Streams:
    """Access streams in CSR form: stream e touches the chunk ranges [first, first + count)
    of ranges ptr[e] .. ptr[e + 1], in that order, moving `bursts` bursts in each."""

    ptr: np.ndarray
    first: np.ndarray
    count: np.ndarray
    bursts: np.ndarray

    @classmethod
    def of(cls, n_streams: int, owner: np.ndarray, first: np.ndarray, count: np.ndarray,
           bursts: np.ndarray) -> Streams:
        """Streams from ranges listed with their stream (`owner`), in order per stream."""
        o = np.argsort(owner, kind="stable")
        ptr = np.zeros(n_streams + 1, np.int64)
        np.cumsum(np.bincount(owner, minlength=n_streams), out=ptr[1:])
        as64 = lambda a: np.asarray(a, np.int64)[o]  # noqa: E731
        return cls(ptr, as64(first), as64(count), as64(bursts))

    def chunks_of(self) -> np.ndarray:
        """Rows each stream opens when it runs alone from closed banks: its chunks, a run
        of accesses to one chunk counted once (the order-free bound of its activations)."""
        n = len(self.ptr) - 1
        owner, chunk, _ = self.chunks(np.arange(n, dtype=np.int64))
        new = np.ones(len(chunk), bool)
        new[1:] = (owner[1:] != owner[:-1]) | (chunk[1:] != chunk[:-1])
        return np.bincount(owner, new, n).astype(np.int64)

    def chunks(self, ids: np.ndarray, repeat: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chunk sequence of streams `ids`, each touching its chunks `repeat` times in a
        row: (position in ids of each access's stream, its chunk), and the bursts of each
        stream."""
        owner, rng = _gather(self.ptr, ids, repeat)
        n = self.count[rng]
        pos = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        bursts = np.bincount(owner, self.bursts[rng], len(ids)).astype(np.int64)
        return np.repeat(owner, n), np.repeat(self.first[rng], n) + pos, bursts


def row_outcomes(chunk: np.ndarray, group: np.ndarray, banks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per access, in order: whether it misses (activates its row) and whether it
    conflicts (precharges another open row first). `group`: the span at whose end every
    bank is precharged (non-negative, one per access)."""
    key = group * banks + chunk % banks
    o = np.argsort(key, kind="stable")
    k, c = key[o], chunk[o]
    used = np.concatenate([[False], k[1:] == k[:-1]])  # the bank was opened before
    hit = used & np.concatenate([[False], c[1:] == c[:-1]])
    miss, conflict = np.empty(len(o), bool), np.empty(len(o), bool)
    miss[o], conflict[o] = ~hit, used & ~hit
    return miss, conflict


@dataclass
class RowBatch:
    """Streams of one presentation that touch DRAM, in the order of the module docstring:
    each stream's step, its order key within the step, the streams table and stream ids
    it comes from and how many times it touches its chunks (2: read-modify-write)."""

    step: np.ndarray
    rank: int
    streams: Streams
    ids: np.ndarray
    repeat: int = 1


@dataclass
class DramSteps:
    """One presentation's row-buffer outcomes: per step the deliveries' activations and
    conflicts (what the step's time pays), and per delivery stream (CSR by spike, the
    spikes in the trace's projection-major order; cores ascending) its core,
    activations and conflicts."""

    acts: np.ndarray  # (T,)
    conflicts: np.ndarray  # (T,)
    spike_ptr: np.ndarray
    core: np.ndarray
    stream_acts: np.ndarray
    stream_conflicts: np.ndarray

    def stream_cycles(self, r) -> np.ndarray:
        """Each delivery stream's activation and precharge cycles (timing.HwRates)."""
        return self.stream_acts * r.dram_act + self.stream_conflicts * r.dram_pre

    def job_cycles(self, spike: np.ndarray, core: np.ndarray, n_cores: int, r) -> np.ndarray:
        """The activation and precharge cycles of jobs given by (spike, core); 0 for a job
        that reads nothing from DRAM."""
        spikes = np.repeat(np.arange(len(self.spike_ptr) - 1), np.diff(self.spike_ptr))
        codes = spikes * n_cores + self.core
        want = spike * n_cores + core
        at = np.minimum(np.searchsorted(codes, want), max(len(codes) - 1, 0))
        found = (codes[at] == want) if len(codes) else np.zeros(len(want), bool)
        return np.where(found, self.stream_cycles(r)[at] if len(codes) else 0, 0)


class DramMap:
    """Where the spilled words of one (spec, chip) pair live: the chunk ranges each spike's
    read (per source: the cores it reads spilled words on), each STDP column update and
    each whole-matrix pass touch."""

    def __init__(self, m: Mapping):
        d = m.hw.dram
        self.banks, self.open_page = d.banks, d.page_policy == "open"
        self._word, self._chunk_bits, self._cap = m.hw.sram.word_bits, d.row_bytes * 8, m.capacity_words
        self._burst_bytes = d.burst_bytes
        # each core's DRAM region starts after the regions of the cores before it (words)
        self._base = np.concatenate([[0], np.cumsum(m.words_spilled)[:-1]]).astype(np.int64)
        self.reads: dict[str, tuple[np.ndarray, np.ndarray, Streams]] = {}
        self.columns: dict[str, Streams] = {}
        self.blocks: dict[str, Streams] = {}
        C = m.n_cores
        for pr in m.spec.projections:
            n_src, n_dst = m.spec.population(pr.src).size, m.spec.population(pr.dst).size
            # per core: (source, core, first chunk, chunks, bursts) of each read's word
            # ranges, (target, first chunk, chunks, bursts) of each column's, its block's
            reads, cols, blocks = [], [], []
            for c in range(C):
                b: Block | None = m.blocks[pr.name][c]
                if b is None or not b.row_dram.any():
                    continue
                self._core(m, pr, c, b, n_src, reads, cols)
                blocks.append(self._block(c, b))
            src, core, rf, rn, rb = ((np.concatenate(x).astype(np.int64) for x in zip(*reads))
                                     if reads else (np.zeros(0, np.int64),) * 5)
            # one stream per (source, core), sources then cores ascending
            key = src * C + core
            uniq, owner = np.unique(key, return_inverse=True)
            src_ptr = np.zeros(n_src + 1, np.int64)
            np.cumsum(np.bincount(uniq // C, minlength=n_src), out=src_ptr[1:])
            self.reads[pr.name] = (src_ptr, uniq % C, Streams.of(len(uniq), owner, rf, rn, rb))
            tgt, cf, cn, cb = ((np.concatenate(x) for x in zip(*cols)) if cols
                               else (np.zeros(0, np.int64),) * 4)
            self.columns[pr.name] = Streams.of(n_dst, tgt, cf, cn, cb)
            bc, bf, bn, bb = ((np.array(x, np.int64) for x in zip(*blocks)) if blocks
                              else (np.zeros(0, np.int64),) * 4)
            self.blocks[pr.name] = Streams.of(C, bc, bf, bn, bb)

    # ------------------------------------------------------------------ layout
    def _ranges(self, start_word: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, ...]:
        """Chunk ranges (first, count) of word ranges at DRAM word addresses, and the
        whole bursts each moves (access.burst_bits)."""
        first = start_word * self._word // self._chunk_bits
        last = ((start_word + words) * self._word - 1) // self._chunk_bits
        return first, last - first + 1, bursts(words, self._word, self._burst_bytes)

    def _address(self, c: int, b: Block) -> np.ndarray:
        """DRAM word address of each row's first spilled word on core c."""
        return self._base[c] + b.row_start + b.row_sram - self._cap

    def _core(self, m: Mapping, pr, c: int, b: Block, n_src: int, reads: list, cols: list) -> None:
        """The spike reads and STDP column updates of projection pr's block on core c."""
        addr = self._address(c, b)
        ids = np.flatnonzero(m.core[pr.dst] == c)  # targets on this core, in slot order
        slots = m.slot[pr.dst][ids]
        wb, word = pr.weight_bits, self._word
        if b.column_major:  # rows are the core's targets; source i is word i*wb//word of each
            widx = (np.arange(n_src) * wb) // word
            spilled = (widx[None, :] >= b.row_sram[:, None]) & (widx[None, :] < b.row_words[:, None])
            k, s = np.nonzero(spilled.T)[::-1]  # (row, source) pairs, by source then row
            rng = self._ranges(addr[k] + widx[s] - b.row_sram[k], np.ones(len(k), np.int64))
            reads.append((s, np.full(len(s), c), *rng))
            held = b.row_dram > 0
            rng = self._ranges(addr[slots][held[slots]], b.row_dram[slots][held[slots]])
            cols.append((ids[held[slots]], *rng))
            return
        if b.row_of is not None:  # a shared kernel: each source reads its channel's slice
            s = np.flatnonzero((m.targets[pr.name][c] > 0) & (b.row_dram[b.row_of] > 0))
            r = b.row_of[s]
        else:
            s = r = np.flatnonzero(b.row_dram > 0)
            # column of slot t: word t*wb//word of every row holding words, where spilled
            widx = (slots * wb) // word
            spilled = (widx[:, None] >= b.row_sram[None, :]) & (widx[:, None] < b.row_words[None, :])
            t, row = np.nonzero(spilled)  # by target, then row
            rng = self._ranges(addr[row] + widx[t] - b.row_sram[row], np.ones(len(t), np.int64))
            cols.append((ids[t], *rng))
        reads.append((s, np.full(len(s), c), *self._ranges(addr[r], b.row_dram[r])))

    def _block(self, c: int, b: Block) -> tuple[int, int, int, int]:
        """The chunk range of all the block's spilled words on core c (contiguous), and
        its bursts (row by row, as the pass moves them)."""
        held = np.flatnonzero(b.row_dram > 0)
        first, count, _ = self._ranges(self._address(c, b)[held[:1]], np.array([b.row_dram.sum()]))
        bursts = self._ranges(self._address(c, b)[held], b.row_dram[held])[2]
        return c, int(first[0]), int(count[0]), int(bursts.sum())

    # --------------------------------------------------------------- per spike
    def read_streams(self, name: str, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For spikes of sources `src` (in order): the spike of each DRAM stream (position
        in src) and the stream id, cores ascending per spike."""
        src_ptr = self.reads[name][0]
        return _gather(src_ptr, src)

    def core_of(self, name: str, stream: np.ndarray) -> np.ndarray:
        """The core of each spike-read stream (`read_streams`' ids)."""
        return self.reads[name][1][stream]

    # ---------------------------------------------------------------- outcomes
    def outcomes(self, batches: list[RowBatch]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(activations, conflicts, hits) of every stream of each batch, the batches'
        streams served step by step, by rank within a step, in order within a batch."""
        if not batches:
            return []
        sizes = [len(b.ids) for b in batches]
        step = np.concatenate([b.step for b in batches])
        rank = np.concatenate([np.full(n, b.rank) for n, b in zip(sizes, batches)])
        owners, chunks, bursts = [], [], []
        base = 0
        for b in batches:
            o, ch, bu = b.streams.chunks(b.ids, b.repeat)
            owners.append(o + base)
            chunks.append(ch)
            bursts.append(bu)
            base += len(b.ids)
        owner, chunk = np.concatenate(owners), np.concatenate(chunks)
        order = np.argsort(step * (max(b.rank for b in batches) + 1) + rank, kind="stable")
        pos = np.empty(len(order), np.int64)
        pos[order] = np.arange(len(order))
        seq = np.argsort(pos[owner], kind="stable")  # accesses in service order
        group = (step[owner] if self.open_page else pos[owner])[seq]
        miss_s, conflict_s = row_outcomes(chunk[seq], group - group.min(initial=0), self.banks)
        acts = np.bincount(owner[seq], miss_s, base).astype(np.int64)
        conflicts = np.bincount(owner[seq], conflict_s, base).astype(np.int64)
        hits = np.concatenate(bursts) - acts  # the bursts that found their row open
        bounds = np.cumsum([0] + sizes).tolist()
        return [(acts[a:z], conflicts[a:z], hits[a:z]) for a, z in pairwise(bounds)]
