"""NumPy reference of the surrogate-gradient kernels (`ext/bptt_kernels.pyx`).

The specification the compiled kernels are held to, operation for operation: every sum
runs in the same order, in float32, so both give bit-identical membranes, spikes and
gradients (tests/test_bptt.py). Slow, but always importable. docs/equations.md,
"Surrogate-gradient network", has the equations.

Conventions shared with the compiled module:
* a batch has B samples of T steps; arrays indexed (b, k, neuron) are float32 C-contiguous;
* spikes and active sets are event lists in compressed rows over (b, k): the entries of
  sample b at step k are `idx[off[b*T + k] : off[b*T + k + 1]]`, ascending (int64 `off`
  (B*T + 1,), int32 `idx`);
* a spike at step k drives the next layer at step k + 1; V[:, 0] = 0 and no spike at k = 0;
* every kernel works on a range of samples [b0, b1) or of weight columns [j0, j1), so the
  wrapper can run ranges on threads; each output element is written by one range only, in
  an order that does not depend on the ranges (results do not depend on the thread count);
* kernels that do arithmetic worth pricing return how many operations they did.
"""
from __future__ import annotations

import numpy as np

from .numerics import flush

__all__ = [
    "adam", "hidden_delta", "hidden_forward", "hidden_forward_active", "input_grad", "input_grad_at",
    "power_table", "readout_delta", "readout_forward", "sparse_input_grad",
    "sparse_weight_grad", "surrogate", "weight_grad",
]

F32 = np.float32
ONE = F32(1.0)


def surrogate(v):
    """SuperSpike's fast-sigmoid derivative at membrane v: 1 / (100 |v - 1| + 1)^2."""
    x = F32(100.0) * np.abs(v - ONE) + ONE
    return ONE / (x * x)


def power_table(beta: float, steps: int) -> np.ndarray:
    """beta^m for m = 0..steps (float32, repeated multiplication, flushed to zero)."""
    out = np.ones(steps + 1, F32)
    for m in range(1, steps + 1):
        out[m] = flush(out[m - 1] * F32(beta))
    return out


def _events(off: np.ndarray, idx: np.ndarray, T: int, b: int, k: int) -> np.ndarray:
    return idx[off[b * T + k]:off[b * T + k + 1]]


# ----------------------------------------------------------------------------- forward


def _advance(W, events, v, s, b32):
    """One step: the input events (the previous step's) add their weight rows in index
    order, then v = flush((beta v + h) - s) and the new spikes v > 1 (the reset is the
    previous step's spikes, subtracted). Returns (v, s, synaptic additions)."""
    h = np.zeros(W.shape[1], F32)
    for i in events:
        h += W[i]
    v = flush((b32 * v + h) - s.astype(F32))
    return v, (v > ONE).astype(np.uint8), len(events) * W.shape[1]


def _put(out, pos: int, values) -> int:
    out[pos:pos + len(values)] = values
    return pos + len(values)


def hidden_forward(ev_off, ev_idx, W, beta, V, spk_n, spk_idx, b0, b1) -> int:
    """LIF layer over samples [b0, b1), keeping every membrane: V[b, k] = flush((beta
    V[b, k-1] + h[k]) - S[b, k-1]), h[k] the sum of the weight rows of the inputs spiking
    at k - 1 (in index order); a neuron spikes when V > 1. The spikes are listed in
    spk_idx from position 0, sample by sample and step by step, ascending, with
    spk_n[b*T + k] of them at (b, k). Returns the synaptic additions (input events x N)."""
    _, T, N = V.shape
    b32 = F32(beta)
    adds, pos = 0, 0
    for b in range(b0, b1):
        v, s = np.zeros(N, F32), np.zeros(N, np.uint8)
        V[b, 0] = 0
        spk_n[b * T] = 0
        for k in range(1, T):
            v, s, n = _advance(W, _events(ev_off, ev_idx, T, b, k - 1), v, s, b32)
            adds += n
            V[b, k] = v
            js = np.flatnonzero(s)
            spk_n[b * T + k] = len(js)
            pos = _put(spk_idx, pos, js)
    return adds


def hidden_forward_active(ev_off, ev_idx, W, beta, window, steps, spk_n, spk_idx, act_n,
                          act_idx, act_sg, b0, b1) -> int:
    """The same layer keeping only what the sparse backward needs: the spikes (as
    hidden_forward) and the active entries, the neurons with |V - 1| < window at each
    step k >= 1 (ascending), listed in act_idx from position 0 with the surrogate
    derivative there in act_sg, act_n[b*T + k] of them at (b, k). A window of 0 keeps
    none (inference)."""
    T, N = steps, W.shape[1]
    b32, w = F32(beta), F32(window)
    adds, pos, apos = 0, 0, 0
    for b in range(b0, b1):
        v, s = np.zeros(N, F32), np.zeros(N, np.uint8)
        spk_n[b * T] = 0
        act_n[b * T] = 0
        for k in range(1, T):
            v, s, n = _advance(W, _events(ev_off, ev_idx, T, b, k - 1), v, s, b32)
            adds += n
            js = np.flatnonzero(s)
            spk_n[b * T + k] = len(js)
            pos = _put(spk_idx, pos, js)
            js = np.flatnonzero(np.abs(v - ONE) < w)
            act_n[b * T + k] = len(js)
            act_sg[apos:apos + len(js)] = surrogate(v[js])
            apos = _put(act_idx, apos, js)
    return adds


def readout_forward(ev_off, ev_idx, W, beta_out, O, b0, b1) -> int:
    """Leaky readout over samples [b0, b1): O[b, k] = beta_out O[b, k-1] + (1 - beta_out) a[k],
    a[k] the sum of the rows of W of the neurons spiking at k - 1; flushed. Returns the
    synaptic additions."""
    _, T, C = O.shape
    b32, gain = F32(beta_out), ONE - F32(beta_out)
    adds = 0
    for b in range(b0, b1):
        O[b, 0] = 0
        o = np.zeros(C, F32)
        for k in range(1, T):
            a = np.zeros(C, F32)
            for j in _events(ev_off, ev_idx, T, b, k - 1):
                a += W[j]
                adds += C
            o = flush(b32 * o + gain * a)
            O[b, k] = o
    return adds


# ----------------------------------------------------------------------------- dense backward


def readout_delta(dO, beta_out, G, b0, b1) -> None:
    """G[b, k] = (1 - beta_out) R[k], R[k] = dO[b, k] + beta_out R[k+1] (flushed), k = T-1..1;
    G[b, 0] = 0. G[b, k, c] is dL/da[k, c]: the gradient reaching the readout's inputs."""
    _, T, C = dO.shape
    b32, gain = F32(beta_out), ONE - F32(beta_out)
    for b in range(b0, b1):
        r = np.zeros(C, F32)
        for k in range(T - 1, 0, -1):
            r = flush(dO[b, k] + b32 * r)
            G[b, k] = gain * r
        G[b, 0] = 0


def hidden_delta(V, dS, reg, beta, G, b0, b1) -> None:
    """Dense BPTT through a LIF layer: G[b, k] = (dS[b, k] + reg[b]) s(V[b, k]) + beta G[b, k+1]
    (flushed) for k = T-1..1, G[b, 0] = 0; s is the surrogate. G[b, k, j] is dL/dh[k, j]."""
    _, T, N = V.shape
    b32 = F32(beta)
    for b in range(b0, b1):
        g = np.zeros(N, F32)
        for k in range(T - 1, 0, -1):
            g = flush((dS[b, k] + reg[b]) * surrogate(V[b, k]) + b32 * g)
            G[b, k] = g
        G[b, 0] = 0


def weight_grad(ev_off, ev_idx, G, dW, j0, j1) -> int:
    """Columns [j0, j1) of dW += G[b, k] at every input event (b, k-1, i), samples and steps
    in order. Returns the additions done."""
    B, T, _ = G.shape
    adds = 0
    for b in range(B):
        for k in range(1, T):
            for i in _events(ev_off, ev_idx, T, b, k - 1):
                dW[i, j0:j1] += G[b, k, j0:j1]
                adds += j1 - j0
    return adds


def input_grad(G, WT, dS_in, b0, b1) -> int:
    """Dense gradient of the layer's input spikes: dS_in[b, k-1] = sum over j (ascending) of
    WT[j] G[b, k, j] for k = 1..T-1; dS_in[b, T-1] = 0. WT is W transposed (N, N_in).
    Returns the multiply-adds."""
    _, T, N = G.shape
    n_in = WT.shape[1]
    for b in range(b0, b1):
        for k in range(1, T):
            acc = np.zeros(n_in, F32)
            for j in range(N):
                acc += WT[j] * G[b, k, j]
            dS_in[b, k - 1] = acc
        dS_in[b, T - 1] = 0
    return (b1 - b0) * (T - 1) * N * n_in


def input_grad_at(G, W, act_off, act_idx, out, b0, b1) -> int:
    """The gradient of input spikes at active entries only: out[n] = sum over c (ascending)
    of W[j, c] G[b, k+1, c] for active entry n = (b, k, j) (0 at k = T-1). Returns the
    multiply-adds."""
    _, T, C = G.shape
    macs = 0
    for b in range(b0, b1):
        for k in range(1, T):
            lo, hi = act_off[b * T + k], act_off[b * T + k + 1]
            for n in range(lo, hi):
                acc = F32(0.0)
                if k + 1 < T:
                    for c in range(C):
                        acc = acc + W[act_idx[n], c] * G[b, k + 1, c]
                    macs += C
                out[n] = acc
    return macs


# ----------------------------------------------------------------------------- sparse backward


def sparse_weight_grad(ev_off, ev_idx, act_off, act_idx, delta, powers, dWT, steps, j0,
                       j1) -> int:
    """Weight gradient from the input traces at the active entries (Perez-Nieves & Goodman),
    for the neurons j in [j0, j1), into the transposed gradient dWT (N, n_in): for every
    active entry n = (b, k, j) and every input event (b, t, i) with t < k:
    dWT[j, i] += beta^(k-1-t) delta[n]. Order: b, k, n, t, i (each element sees its
    contributions in b, k, t order, whatever the neuron ranges). Returns the multiply-adds."""
    T = steps
    B = (len(act_off) - 1) // T
    macs = 0
    for b in range(B):
        for k in range(1, T):
            for n in range(act_off[b * T + k], act_off[b * T + k + 1]):
                j = act_idx[n]
                if not j0 <= j < j1:
                    continue
                for t in range(k):
                    events = _events(ev_off, ev_idx, T, b, t)
                    dWT[j, events] += powers[k - 1 - t] * delta[n]
                macs += ev_off[b * T + k] - ev_off[b * T]
    return macs


def sparse_input_grad(act_off, act_idx, delta, in_off, in_idx, W, powers, dS_in, steps,
                      b0, b1) -> int:
    """Gradient of the input spikes at the previous layer's active entries (the authors'
    backward walk): dS_in[m] += W[i, j] D_j(t) for each previous-layer active entry
    m = (b, t, i), where D_j(t) = sum over active (b, k, j) with k > t of beta^(k-1-t)
    delta[k, j]. Per sample, neurons j ascending; each walks its active times backwards,
    merged with the times at which the previous layer has active entries, carrying D
    (flushed). Times t >= the neuron's last active time are skipped (D = 0 there).
    Returns the multiply-adds into dS_in."""
    T = steps
    N = W.shape[1]
    macs = 0
    for b in range(b0, b1):
        lo_b, hi_b = act_off[b * T], act_off[(b + 1) * T]
        ks = np.repeat(np.arange(T), np.diff(act_off[b * T:(b + 1) * T + 1]))
        in_times = [t for t in range(T) if in_off[b * T + t + 1] > in_off[b * T + t]]
        for j in range(N):
            outs = [lo_b + m for m in np.flatnonzero(act_idx[lo_b:hi_b] == j)]
            if not outs:
                continue
            d, last = F32(0.0), T - 1
            o = len(outs) - 1
            nt = len(in_times) - 1
            while nt >= 0 and in_times[nt] >= ks[outs[o] - lo_b]:
                nt -= 1  # after the last active time: D = 0
            while nt >= 0:
                t = in_times[nt]
                if o >= 0 and ks[outs[o] - lo_b] - 1 >= t:  # an output event first
                    k = ks[outs[o] - lo_b]
                    d = flush(delta[outs[o]] + d * powers[last - (k - 1)])
                    last = k - 1
                    o -= 1
                    continue
                d = flush(d * powers[last - t])
                last = t
                for m in range(in_off[b * T + t], in_off[b * T + t + 1]):
                    dS_in[m] += W[in_idx[m], j] * d
                    macs += 1
                nt -= 1
    return macs


# ----------------------------------------------------------------------------- optimiser


def adam(W, m, v, g, lr, beta1, beta2, eps, c1, c2, r0, r1) -> None:
    """Adam (PyTorch's form) on rows [r0, r1) of W, in place: m = beta1 m + (1 - beta1) g,
    v = beta2 v + ((1 - beta2) g) g (float64, flushed), W -= float32(lr (m / c1) /
    (sqrt(v / c2) + eps)) with c1, c2 the bias corrections 1 - beta^t."""
    g64 = g[r0:r1].astype(np.float64)
    mr, vr = m[r0:r1], v[r0:r1]
    mr[...] = flush(mr * beta1 + (1.0 - beta1) * g64)
    vr[...] = flush(vr * beta2 + (1.0 - beta2) * g64 * g64)
    W[r0:r1] -= (lr * (mr / c1) / (np.sqrt(vr / c2) + eps)).astype(F32)

