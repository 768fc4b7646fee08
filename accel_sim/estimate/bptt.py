"""Closed forms of BPTT training on the chip: the backward pass and the optimiser of a
training sample (docs/analytical.md, "Training by BPTT")."""
from __future__ import annotations

from collections import Counter

import numpy as np

from snn_frontend.trace import grad_stream, optimizer_stream

from ..chip.access import burst_bits
from ..chip.counting import ChipCounter, StepWork
from ..chip.mapping import words_for
from ..chip.timing import HwRates, pass_cycles
from ..chip.topology import ROUTER_COUNTS
from .activity import PhaseActivity, last_key, stream_of_last

__all__ = ["backward", "backward_cycles"]


def backward(counter: ChipCounter, act: PhaseActivity, cnt: Counter) -> dict:
    """The backward pass and the optimiser of a BPTT training presentation (one sample):
    counts into cnt; returns the expected per-step, per-core learning work (ops, words),
    DRAM bits per step, and the optimiser's whole-matrix pass (docs/analytical.md)."""
    bp, m, spec = counter.backprop, counter.m, counter.spec
    T = len(act.per_step(spec.populations[0].name))
    C = m.n_cores
    ops, words, dram = np.zeros((T, C)), np.zeros((T, C)), np.zeros(T)
    buffer_bits = np.zeros(C)
    pass_words, pass_ops, pass_bits = np.zeros(C), np.zeros(C), 0.0
    optimiser = 0.0
    share = bp.state_sram  # the SRAM share of each core's gradient state

    def rmw(w_tc: np.ndarray, sram: np.ndarray | None = None) -> None:
        """Read-modify-write of gradient words (T, C), sram of them in SRAM (default: the
        core's share)."""
        sram = w_tc * share if sram is None else sram
        words[:] += 2 * sram
        cnt["sram", "read_word"] += sram.sum()
        cnt["sram", "write_word"] += sram.sum()
        bits = (w_tc - sram).sum(axis=1) * bp.one_word_bits
        dram[:] += 2 * bits
        cnt["dram", "read_bit"] += bits.sum()
        cnt["dram", "write_bit"] += bits.sum()

    def grads(q: str):  # expected entries per step, and each core's share of them
        name = grad_stream(q)
        if name not in act.rates:
            return None
        who = act.per_neuron(name, spec.population(q).size)
        on_core = np.bincount(m.core[q], who, C)
        return act.per_step(name), on_core / max(on_core.sum(), 1e-300), who

    for pr in bp.projs:
        k = pr.k.astype(float)
        src_t = act.per_step(pr.src)
        src_before = np.concatenate([[0.0], np.cumsum(src_t)[:-1]])  # spikes at steps < t
        early = src_t.copy()
        early[-1] = 0.0  # a spike at the last step reaches nothing
        g_dst = None if pr.dst_readout else grads(pr.dst)
        if g_dst is not None:  # sparse: the gradient entries
            g_t, sigma, _ = g_dst
            ops += np.outer(g_t, sigma)
            cnt["core", "surrogate_eval"] += g_t.sum()
            index_bits = int(np.ceil(np.log2(max(spec.population(pr.dst).size, 2))))
            buffer_bits += sigma * g_t.sum() * (bp.state_bits + index_bits)
        elif not pr.dst_readout:  # dense: every neuron at every step >= 1
            ops[1:] += k
            cnt["core", "surrogate_eval"] += k.sum() * max(T - 1, 0)
            buffer_bits += bp.state_bits * k * max(T - 1, 0)
        idx_bits = int(np.ceil(np.log2(max(pr.n_src, 2))))
        buffer_bits += idx_bits * early.sum() * (k > 0)
        # weight gradient
        if g_dst is None:  # every input event adds a gradient row (binary spikes)
            arrive = np.concatenate([[0.0], early[:-1]])  # a spike at t is added at t + 1
            ops += np.outer(arrive, k)
            cnt["core", "weight_grad_add"] += early.sum() * k.sum()
            row = words_for(pr.k, bp.grad_bits, bp.word) * (k > 0)  # a gradient row per core
            rmw(np.outer(arrive, row), np.outer(arrive, np.round(row * share)))
        else:  # per entry at t, one MAC per src spike before t
            g_t, sigma, _ = g_dst
            macs_t = _paired(act, grad_stream(pr.dst), pr.src, g_t, src_before)
            macs = np.outer(macs_t, sigma)
            ops += macs
            cnt["core", "weight_grad_mac"] += macs.sum()
            rmw(macs)
        # input gradient
        if pr.src_on_chip:
            g_src = grads(pr.src)
            tbl = counter.tables[pr.name]
            if g_src is None or (g_dst is None and not pr.dst_readout):  # dense
                ops[1:] += pr.n_src * k
                cnt["core", "input_grad_mac"] += (pr.n_src * k).sum() * max(T - 1, 0)
                words[1:] += tbl.block_sram
                cnt["sram", "read_word"] += tbl.block_sram.sum() * max(T - 1, 0)
                dram[1:] += tbl.block_dram_bits.sum()
                cnt["dram", "read_bit"] += tbl.block_dram_bits.sum() * max(T - 1, 0)
                need = np.full(pr.n_src, float(max(T - 1, 0)))
            elif pr.dst_readout:  # one weight row per src entry at a step <= T-2
                gs_t, _, who = g_src
                e_t = gs_t.copy()
                e_t[-1] = 0.0
                per_row = who / max(who.sum(), 1e-300)
                at = np.concatenate([[0.0], e_t[:-1]])
                ops += np.outer(at, k)
                cnt["core", "input_grad_mac"] += e_t.sum() * k.sum()
                row_sram = tbl.sram @ per_row
                words += np.outer(at, row_sram)
                cnt["sram", "read_word"] += e_t.sum() * row_sram.sum()
                bits = float(tbl.dram_bits.sum(axis=0) @ per_row)
                dram += at * bits
                cnt["dram", "read_bit"] += e_t.sum() * bits
                need = e_t.sum() * per_row
            else:  # the backward walk: per dst neuron, the src entries before its last one
                gs_t, _, who_src = g_src
                gd_t, sigma_dst, who_dst = g_dst
                before = np.concatenate([[0.0], np.cumsum(gs_t)[:-1]])
                rho = act.comoment(grad_stream(pr.dst), grad_stream(pr.src))
                ends = act.last.get(grad_stream(pr.dst))
                if ends is not None:  # measured: neurons ending their entries at each step
                    ends = np.asarray(ends[:T])
                    per_t = _paired(act, last_key(grad_stream(pr.dst)), grad_stream(pr.src),
                                    ends, before[:len(ends)])
                    on = np.outer(per_t, sigma_dst)
                else:  # Poisson entries per neuron: P(its last entry is at t)
                    lam = np.outer(who_dst / max(who_dst.sum(), 1e-300), gd_t)  # (n_dst, T)
                    after = np.cumsum(lam[:, ::-1], axis=1)[:, ::-1]  # entries at >= t
                    none_after = np.exp(-np.concatenate([after[:, 1:],
                                                         np.zeros((len(lam), 1))], axis=1))
                    p_last = (1 - np.exp(-lam)) * none_after
                    on = np.zeros((T, C))
                    np.add.at(on.T, m.core[pr.dst], rho * p_last * before)
                ops += on
                total = on.sum()
                cnt["core", "input_grad_mac"] += total
                frac = pr.block_sram / np.maximum(pr.block_words, 1)
                cnt["sram", "read_word"] += float(on.sum(axis=0) @ frac)
                words += on
                spilled = on @ (1 - frac)
                dram += spilled * bp.one_word_bits
                cnt["dram", "read_bit"] += spilled.sum() * bp.one_word_bits
                need = gs_t.sum() * who_src / max(who_src.sum(), 1e-300)
            for action, key in ROUTER_COUNTS:
                cnt["router", action] += float(pr.back[key] @ need)
        # the optimiser, once per batch
        n_opt = act.rates.get(optimizer_stream(pr.name), 0.0) * act.steps
        if n_opt:
            n_w = pr.n_src * pr.k
            cnt["core", "optimizer_op"] += n_opt * n_w.sum()
            moments = 3 * pr.grad_words
            sram_m = np.round(moments * bp.state_sram)
            w_dram = pr.block_words - pr.block_sram
            opt_words = pr.block_sram + sram_m
            bits = float((burst_bits(w_dram, bp.word, bp.dram)
                          + burst_bits((moments - sram_m).astype(np.int64), bp.word,
                                       bp.dram)).sum())
            pass_words += opt_words  # one optimiser step; n_opt of them per presentation
            pass_ops += n_w
            pass_bits += 2 * bits
            optimiser = n_opt
            for what in ("read_word", "write_word"):
                cnt["sram", what] += n_opt * opt_words.sum()
            cnt["dram", "read_bit"] += n_opt * bits
            cnt["dram", "write_bit"] += n_opt * bits
    # the backward's state: written in the forward, read back
    state_words = np.ceil(buffer_bits / bp.word)
    in_sram = np.minimum(state_words, bp.free_after_state)
    spilled_bits = float(burst_bits(np.ceil(state_words - in_sram).astype(np.int64), bp.word,
                                    bp.dram).sum())
    for what in ("read_word", "write_word"):
        cnt["sram", what] += in_sram.sum()
    cnt["dram", "write_bit"] += spilled_bits
    cnt["dram", "read_bit"] += spilled_bits
    words[0] += in_sram
    dram[0] += 2 * spilled_bits
    return {"ops": ops, "words": words, "dram_bits": dram, "optimiser": optimiser,
            "pass": (pass_words, pass_ops, pass_bits)}


def _paired(act: PhaseActivity, a: str, b: str, a_t: np.ndarray, b_before: np.ndarray
            ) -> np.ndarray:
    """Per step, the pairs (event of a, earlier event of b): a's events at each step times
    b's events before it; with the measured pairs per event of a, scaled to that total
    (without them, samples are taken as independent: the mean comoment of a and b)."""
    per_t = a_t * b_before
    given = act.preceding.get(a, {}).get(b)
    if given is None:
        return act.comoment(stream_of_last(a), b) * per_t
    total = given * a_t.sum()
    return per_t * (total / per_t.sum()) if per_t.sum() > 0 else np.full_like(per_t, total / len(per_t))


def backward_cycles(work: dict, r: HwRates) -> float:
    """Cycles of the backward (per step: the busiest core's learning work, then the
    DRAM channel) and of the optimiser steps, per presentation."""
    ops, words = work["ops"], work["words"]
    learn = np.maximum(np.ceil(ops / r.learn_lanes),
                       np.ceil(words / r.ports) + np.where(words > 0, r.write_lat, 0))
    dram = np.ceil(work["dram_bits"] / 8 / r.dram_bytes_per_cycle)
    total = float(learn.max(axis=1).sum() + dram.sum())
    if work["optimiser"]:
        pw, po, pb = work["pass"]
        zero = np.zeros(1)
        one = StepWork(deliveries=None, learn_ops=None, learn_words=None, dram_bits=zero,
                       dram_streams=zero, port_messages=zero, spikes=zero, max_hops=zero,
                       pass_words=pw.astype(np.int64), pass_ops=po.astype(np.int64),
                       pass_dram_bits=int(pb))
        total += work["optimiser"] * pass_cycles(one, r)
    return total
