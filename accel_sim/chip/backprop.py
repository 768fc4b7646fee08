"""What training by surrogate-gradient BPTT costs on the chip, per presentation.

A training presentation is one sample: its forward pass is counted like any other
(chip/counting.py); then each core runs the sample's backward pass over the steps,
accumulating the weight gradients of the batch, and after a batch's last sample (the
trace's `<projection>:optimizer` event) every core applies one Adam step to its weights.
docs/chip.md ("Training by BPTT") states every count; in short, for a plastic `bptt`
projection src -> dst held on core c (k_c targets):

- `core.surrogate_eval`: one per entry of dst's gradient set (its `<dst>:grad` stream: the
  (step, neuron) entries where the sparse backward's surrogate is non-zero; all entries at
  steps >= 1 when the trace has none, a dense backward). The readout has no surrogate.
- `core.weight_grad_add` (dense, and the readout): k_c per src spike at a step <= T-2 (the
  gradient row of every input event, added: spikes are binary), reading and writing a row
  of ceil(k_c grad_bits / word) gradient words; `core.weight_grad_mac` (sparse): per
  gradient entry (t, j), one multiply-add (the input trace beta^(t-1-s) times the delta)
  per src spike at a step s < t, reading and writing one gradient word each.
- `core.input_grad_mac` (src on the chip): dense: n_src x k_c per step t = 1..T-1, reading
  the whole weight block every step; sparse: the authors' backward walk (per dst neuron j
  with gradient entries, |src gradient set at t| for every step t < j's last entry
  holding src entries), one scattered weight word per MAC; the readout, sparse: k_c per
  src gradient entry at a step <= T-2, reading its weight row. Every partial sum goes back
  to the src neuron's core: one message per (entry, core holding targets), over the route
  from that core (router counts).
- the state the backward reads, written during the forward and read back: per dst neuron
  and step the membrane (dense), or per gradient entry the surrogate and the neuron index
  (sparse), `state_bits` (+ index bits) each, plus each received src spike's index.
- `core.optimizer_op`: one per weight at an optimiser step, which reads and writes the
  weight block and the gradient and both Adam moments (`grad_bits` each).

Gradients, moments and the backward's state are placed in each core's SRAM after its
weights, in that order; what does not fit is in DRAM and every access to it is counted
there (`dram.read_bit` / `write_bit`, whole bursts).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from snn_frontend.trace import Presentation, grad_stream, optimizer_stream

from .access import burst_bits
from .mapping import Mapping, words_for
from .topology import ROUTER_COUNTS, Topology

__all__ = ["BackpropCounter"]


@dataclass
class _Proj:
    name: str
    src: str
    dst: str
    n_src: int
    src_on_chip: bool
    dst_readout: bool
    k: np.ndarray  # (C,) targets per core
    block_words: np.ndarray  # (C,) weight words per core (SRAM + DRAM)
    block_sram: np.ndarray  # (C,) of them in SRAM
    grad_words: np.ndarray  # (C,) words of one gradient-sized array (grad_bits per weight)
    back: dict[str, np.ndarray] | None  # gather routes: per src neuron, summed over cores


class BackpropCounter:
    """The backward pass and the optimiser of every `bptt` projection of one mapping."""

    def __init__(self, mapping: Mapping, topology: Topology, tables):
        m, spec, hw = mapping, mapping.spec, mapping.hw
        self.m, self.hw, self.spec, self.tables = m, hw, spec, tables
        self.word = hw.sram.word_bits
        self.grad_bits = hw.formats.grad_bits
        self.state_bits = hw.formats.state_bits
        C = m.n_cores
        self.projs: list[_Proj] = []
        for pr in spec.projections:
            if pr.plastic != "bptt":
                continue
            src, dst = spec.population(pr.src), spec.population(pr.dst)
            k = m.k[pr.dst]
            blocks = m.blocks[pr.name]
            words = np.array([int(b.row_words.sum()) if b else 0 for b in blocks], np.int64)
            sram = np.array([int(b.row_sram.sum()) if b else 0 for b in blocks], np.int64)
            grad = words_for(src.size * k, self.grad_bits, self.word)
            back = self._gather_routes(pr, topology) if src.on_chip else None
            self.projs.append(_Proj(pr.name, pr.src, pr.dst, src.size, src.on_chip,
                                    dst.kind == "readout", k, words, sram, grad, back))
        self.hidden = sorted({q for pr in self.projs for q in (pr.src, pr.dst)
                              if spec.population(q).kind not in ("input", "readout")})
        # SRAM after the weights: the gradients and Adam moments first, then the backward's
        # state; the fraction of each that fits (the rest is in DRAM)
        free = np.maximum(m.capacity_words - np.minimum(m.words_used, m.capacity_words), 0)
        state = sum((3 * p.grad_words for p in self.projs), np.zeros(C, np.int64))
        self.state_sram = np.where(state > 0, np.minimum(state, free) / np.maximum(state, 1), 1.0)
        self.free_after_state = free - np.minimum(state, free)
        self.dram = hw.dram
        self.one_word_bits = int(burst_bits(np.int64(1), self.word, hw.dram))

    def _gather_routes(self, pr, topology: Topology) -> dict[str, np.ndarray]:
        """Per src neuron: messages and hops of sending one partial sum from every core
        holding its targets back to its own core."""
        m = self.m
        n_src = self.spec.population(pr.src).size
        out = {f: np.zeros(n_src, np.int64) for _, f in ROUTER_COUNTS}
        for i in range(n_src):
            home = int(m.core[pr.src][i])
            for c in m.dest_cores(pr.name, i):
                r = topology.route(int(c), (home,))
                for f, counts in out.items():
                    counts[i] += getattr(r, f)
        return out

    # ------------------------------------------------------------------ one sample
    def count(self, p: Presentation, spikes: dict, steps: dict, T: int, cnt: Counter,
              learn_ops: np.ndarray, learn_words: np.ndarray, dram_bits: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, int]:
        """Add the backward (and any optimiser step) of presentation p: counts into cnt,
        per-step per-core work into learn_ops / learn_words, DRAM bits per step into
        dram_bits. Returns the optimiser's whole-matrix pass: (words per core, ops per
        core, DRAM bits)."""
        m = self.m
        C = m.n_cores
        pass_words = np.zeros(C, np.int64)
        pass_ops = np.zeros(C, np.int64)
        pass_bits = 0
        grads = {q: self._grad_set(p, q, T) for q in self.hidden if self._sparse(p, q)}
        buffer_bits = np.zeros(C, np.int64)
        for pr in self.projs:
            core_dst = m.core[pr.dst]
            n_ev = spikes[pr.src][0]
            st_ev = steps[pr.src]
            if not pr.dst_readout and pr.dst in grads:  # sparse: the gradient entries
                gst, gj = grads[pr.dst]
                np.add.at(learn_ops, (gst, core_dst[gj]), 1)
                cnt["core", "surrogate_eval"] += len(gj)
                index_bits = int(np.ceil(np.log2(max(self.spec.population(pr.dst).size, 2))))
                np.add.at(buffer_bits, core_dst[gj], self.state_bits + index_bits)
            elif not pr.dst_readout:  # dense: every neuron at every step >= 1
                learn_ops[1:] += pr.k
                cnt["core", "surrogate_eval"] += int(pr.k.sum()) * max(T - 1, 0)
                buffer_bits += self.state_bits * pr.k * max(T - 1, 0)
            # received spikes: their index, per core holding targets
            idx_bits = int(np.ceil(np.log2(max(pr.n_src, 2))))
            buffer_bits += idx_bits * int((st_ev <= T - 2).sum()) * (pr.k > 0)
            self._weight_grad(p, pr, grads, n_ev, st_ev, T, cnt, learn_ops, learn_words,
                              dram_bits)
            if pr.src_on_chip:
                self._input_grad(p, pr, grads, T, cnt, learn_ops, learn_words, dram_bits)
            if int(p.counts.get(optimizer_stream(pr.name), np.zeros(1)).sum()):
                n_w = pr.n_src * pr.k
                cnt["core", "optimizer_op"] += int(n_w.sum())
                moments = 3 * pr.grad_words  # gradient, first and second moment
                sram_m = np.round(moments * self.state_sram).astype(np.int64)
                w_dram = pr.block_words - pr.block_sram
                words = pr.block_sram + sram_m  # each read, then written
                bits = int((burst_bits(w_dram, self.word, self.dram)
                            + burst_bits(moments - sram_m, self.word, self.dram)).sum())
                pass_words += words
                pass_ops += n_w
                pass_bits += 2 * bits
                cnt["sram", "read_word"] += int(words.sum())
                cnt["sram", "write_word"] += int(words.sum())
                cnt["dram", "read_bit"] += bits
                cnt["dram", "write_bit"] += bits
        # the backward's state: written in the forward, read in the backward
        words = words_for(buffer_bits, 1, self.word)
        in_sram = np.minimum(words, self.free_after_state)
        spilled = words - in_sram
        cnt["sram", "write_word"] += int(in_sram.sum())
        cnt["sram", "read_word"] += int(in_sram.sum())
        bits = int(burst_bits(spilled, self.word, self.dram).sum())
        cnt["dram", "write_bit"] += bits
        cnt["dram", "read_bit"] += bits
        if T:
            learn_words[0] += in_sram  # the reads; the writes overlap the forward's steps
            dram_bits[0] += 2 * bits
        return pass_words, pass_ops, pass_bits

    # ------------------------------------------------------------------ parts
    def _sparse(self, p: Presentation, population: str) -> bool:
        return grad_stream(population) in p.counts

    def _grad_set(self, p: Presentation, population: str, T: int) -> tuple[np.ndarray, np.ndarray]:
        """(step, neuron) of every gradient entry of a hidden population (its `:grad` stream)."""
        name = grad_stream(population)
        n = p.counts[name].astype(np.int64)
        return np.repeat(np.arange(T), n), p.indices[name].astype(np.int64)

    def _rmw(self, pr: _Proj, c: np.ndarray, t: np.ndarray, words: np.ndarray, cnt: Counter,
             learn_words: np.ndarray, dram_bits: np.ndarray) -> None:
        """Read-modify-write `words` gradient words on cores c at steps t (the SRAM share of
        the core's gradient state, the rest in DRAM)."""
        share = self.state_sram[c]
        sram = np.round(words * share).astype(np.int64)
        dram = words - sram
        np.add.at(learn_words, (t, c), 2 * sram)
        cnt["sram", "read_word"] += int(sram.sum())
        cnt["sram", "write_word"] += int(sram.sum())
        if dram.any():
            bits = dram * self.one_word_bits
            np.add.at(dram_bits, t, 2 * bits)
            cnt["dram", "read_bit"] += int(bits.sum())
            cnt["dram", "write_bit"] += int(bits.sum())

    def _weight_grad(self, p, pr: _Proj, grads, n_ev, st_ev, T, cnt, learn_ops, learn_words,
                     dram_bits) -> None:
        m = self.m
        if pr.dst_readout or not self._sparse(p, pr.dst):
            ok = st_ev <= T - 2  # a spike at the last step reaches nothing
            t = st_ev[ok] + 1
            cores = np.flatnonzero(pr.k)
            if not len(t) or not len(cores):
                return
            tt = np.repeat(t, len(cores))
            cc = np.tile(cores, len(t))
            np.add.at(learn_ops, (tt, cc), pr.k[cc])
            cnt["core", "weight_grad_add"] += int(len(t) * pr.k.sum())  # binary spikes: adds
            row = words_for(pr.k[cc], self.grad_bits, self.word)
            self._rmw(pr, cc, tt, row, cnt, learn_words, dram_bits)
            return
        gst, gj = grads[pr.dst]
        before = np.concatenate([[0], np.cumsum(n_ev)])  # src spikes at steps < t
        macs = before[gst]
        c = m.core[pr.dst][gj]
        np.add.at(learn_ops, (gst, c), macs)
        cnt["core", "weight_grad_mac"] += int(macs.sum())
        self._rmw(pr, c, gst, macs, cnt, learn_words, dram_bits)

    def _input_grad(self, p, pr: _Proj, grads, T, cnt, learn_ops, learn_words, dram_bits) -> None:
        sparse = self._sparse(p, pr.src if pr.dst_readout else pr.dst)
        if not sparse:  # the whole block against the gradient vector, every step 1..T-1
            cnt["core", "input_grad_mac"] += int((pr.n_src * pr.k).sum()) * max(T - 1, 0)
            learn_ops[1:] += pr.n_src * pr.k
            self._read_weights(pr, np.arange(1, T), None, cnt, learn_words, dram_bits)
            need_i, repeats = slice(None), max(T - 1, 0)  # every src neuron at t <= T-2
        elif pr.dst_readout:  # at the src's gradient entries: one weight row each
            sst, si = grads[pr.src]
            keep = sst <= T - 2
            need_t, need_i, repeats = sst[keep], si[keep], 1
            cores = np.flatnonzero(pr.k)
            tt, cc = np.repeat(need_t + 1, len(cores)), np.tile(cores, len(need_t))
            np.add.at(learn_ops, (tt, cc), pr.k[cc])
            cnt["core", "input_grad_mac"] += int(len(need_t) * pr.k.sum())
            self._read_weights(pr, need_t + 1, need_i, cnt, learn_words, dram_bits)
        else:  # the backward walk
            sst, need_i = grads[pr.src]
            repeats = 1
            macs_t, macs_c = self._walk(pr, grads[pr.dst], sst, T)
            np.add.at(learn_ops, (macs_t, macs_c), 1)
            cnt["core", "input_grad_mac"] += len(macs_t)
            self._read_scattered(pr, macs_t, macs_c, cnt, learn_words, dram_bits)
        # every partial sum travels back to its src neuron's core
        for action, key in ROUTER_COUNTS:
            cnt["router", action] += repeats * int(pr.back[key][need_i].sum())

    def _walk(self, pr: _Proj, dst_grad, src_steps: np.ndarray, T: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """The multiply-adds of the sparse input-gradient walk, as (step, core) per MAC: for
        every dst neuron j with gradient entries, each src gradient entry at a step t below
        j's last entry."""
        gst, gj = dst_grad
        if not len(gj) or not len(src_steps):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        last = np.full(self.spec.population(pr.dst).size, -1, np.int64)
        np.maximum.at(last, gj, gst)
        per_t = np.bincount(src_steps, minlength=T)  # src entries per step
        cum = np.concatenate([[0], np.cumsum(per_t)])  # entries at steps < t
        js = np.flatnonzero(last >= 0)
        n = cum[last[js]]  # MACs of neuron j: src entries at steps < last[j]
        core = self.m.core[pr.dst][js]
        # attribute each neuron's MACs to the step of its last entry (where its walk starts)
        return np.repeat(last[js], n), np.repeat(core, n)

    def _read_weights(self, pr: _Proj, t: np.ndarray, rows: np.ndarray | None, cnt, learn_words,
                      dram_bits) -> None:
        """Weight reads of the input gradient: the whole block at each step t (rows None),
        or the row of src neuron rows[n] at step t[n]."""
        tbl = self.tables[pr.name]
        if rows is None:
            words = np.broadcast_to(tbl.block_sram, (len(t), len(tbl.block_sram)))
            learn_words[t] += words
            cnt["sram", "read_word"] += int(words.sum())
            bits = int(tbl.block_dram_bits.sum()) * len(t)
            np.add.at(dram_bits, t, int(tbl.block_dram_bits.sum()))
            cnt["dram", "read_bit"] += bits
            return
        sram = tbl.sram[:, rows]  # (C, n)
        np.add.at(learn_words, (np.repeat(t, sram.shape[0]), np.tile(np.arange(sram.shape[0]),
                                                                      len(t))), sram.T.ravel())
        cnt["sram", "read_word"] += int(sram.sum())
        bits = tbl.dram_bits[:, rows].sum(axis=0)
        np.add.at(dram_bits, t, bits)
        cnt["dram", "read_bit"] += int(bits.sum())

    def _read_scattered(self, pr: _Proj, t: np.ndarray, c: np.ndarray, cnt, learn_words,
                        dram_bits) -> None:
        """One weight word per MAC of the walk: a core's words are in SRAM in the share of
        its block that is (the rest in DRAM, one burst each)."""
        share = pr.block_sram / np.maximum(pr.block_words, 1)
        per_core = np.bincount(c, minlength=len(share))
        sram = np.round(per_core * share).astype(np.int64)
        cnt["sram", "read_word"] += int(sram.sum())
        np.add.at(learn_words, (t, c), 1)
        spilled = 1.0 - share[c]
        if spilled.any():
            bits = np.bincount(t, spilled * self.one_word_bits, len(dram_bits))
            dram_bits += np.round(bits).astype(np.int64)
            cnt["dram", "read_bit"] += int((per_core - sram).sum()) * self.one_word_bits
