"""Surrogate-gradient kernels: compiled == NumPy reference bit for bit, sparse with an infinite
window == dense, every layer's backward == finite differences of the network with the
surrogate's primitive in place of the step, hand-counted active sets and operation counts,
no subnormal state."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_frontend import _bptt_reference as ref
from snn_frontend.numerics import subnormals
from snn_frontend.surrogate import (
    Events,
    Record,
    SurrogateNetwork,
    SurrogateParams,
    events_from_raster,
)

try:
    from snn_frontend import _bptt_kernels
except ImportError:  # pragma: no cover - CI builds strictly
    _bptt_kernels = None

requires_compiled = pytest.mark.skipif(_bptt_kernels is None, reason="compiled kernels not built")
F32 = np.float32


def _inputs(B, T, n_in, p, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((B, T, n_in)) < p).astype(np.uint8)


def _net(backend, window, *, n_in=12, hidden=(9, 7), n_out=4, T=30, seed=3, threads=1,
         gain=60.0, **kw):
    p = SurrogateParams(n_in, hidden, n_out, steps=T, window=window, init_gain=gain, **kw)
    return SurrogateNetwork.initialise(p, seed, backend=backend, threads=threads)


def _step(net, raster, labels):
    rec = net.forward(events_from_raster(raster))
    loss, grads, counts = net.backward(rec, labels)
    return rec, loss, grads, counts


# ----------------------------------------------------------------------------- parity


@requires_compiled
@pytest.mark.parametrize("window", [None, 0.2, 0.5])
@pytest.mark.parametrize("loss", ["max", "sum"])
def test_compiled_equals_reference_bit_for_bit(window, loss):
    raster = _inputs(5, 30, 12, 0.15, 0)
    labels = np.array([0, 1, 2, 3, 1])
    a = _net("numpy", window, loss=loss)
    b = _net("cython", window, loss=loss, threads=2)
    for _ in range(3):  # three Adam steps: the weights stay equal too
        ra, la, ga, ca = _step(a, raster, labels)
        rb, lb, gb, cb = _step(b, raster, labels)
        assert la == lb and ca == cb
        for x, y in zip(ra.layers, rb.layers):
            assert (x.V is None and y.V is None) or np.array_equal(x.V, y.V)
            assert np.array_equal(x.spikes.off, y.spikes.off)
            assert np.array_equal(x.spikes.idx, y.spikes.idx)
            if x.active is not None:
                assert np.array_equal(x.active.off, y.active.off)
                assert np.array_equal(x.active.idx, y.active.idx)
                assert np.array_equal(x.active_sg, y.active_sg)
        assert np.array_equal(ra.O, rb.O)
        for x, y in zip(ga, gb):
            assert np.array_equal(x, y)
        a.adam_step(ga)
        b.adam_step(gb)
    assert sum(len(x.spikes.idx) for x in ra.layers) > 20  # the test network does spike
    for x, y in zip(a.W, b.W):
        assert np.array_equal(x, y)


@requires_compiled
def test_results_do_not_depend_on_the_thread_count():
    raster = _inputs(7, 30, 12, 0.15, 1)
    labels = np.arange(7) % 4
    one = _step(_net("cython", 0.3, threads=1), raster, labels)
    three = _step(_net("cython", 0.3, threads=3), raster, labels)
    for x, y in zip(one[2], three[2]):
        assert np.array_equal(x, y)


# ----------------------------------------------------------------------------- sparse vs dense


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cython", marks=requires_compiled)])
def test_sparse_with_an_infinite_window_equals_dense(backend):
    raster = _inputs(4, 30, 12, 0.15, 2)
    labels = np.array([3, 2, 1, 0])
    _, ld, gd, cd = _step(_net(backend, None), raster, labels)
    _, ls, gs, cs = _step(_net(backend, math.inf), raster, labels)
    assert ld == ls
    for x, y in zip(gd, gs):
        np.testing.assert_allclose(y, x, rtol=2e-5, atol=1e-7 * np.abs(x).max())
    assert cs.active == cd.active == [4 * 29 * 9, 4 * 29 * 7]


def test_a_narrow_window_drops_gradient_and_counts_only_active_entries():
    raster = _inputs(4, 30, 12, 0.15, 2)
    labels = np.array([3, 2, 1, 0])
    net = _net("numpy", 0.05)
    rec, _, grads, counts = _step(net, raster, labels)
    drec, _, dense, _ = _step(_net("numpy", None), raster, labels)  # same weights, every V
    for layer, dlayer, n in zip(rec.layers, drec.layers, counts.active):
        mask = np.abs(dlayer.V - F32(1.0)) < F32(0.05)
        mask[:, 0] = False
        assert n == int(mask.sum())  # the active fraction is exactly what the mask says
        b, t, j = np.nonzero(mask)
        assert np.array_equal(layer.active.idx, j)
        assert np.array_equal(layer.active.counts(), mask.sum(axis=2))
        np.testing.assert_array_equal(layer.active_sg, ref.surrogate(dlayer.V[b, t, j]))
    assert not np.allclose(grads[0], dense[0])


# ----------------------------------------------------------------------------- finite differences


def _relaxed_layer(x, W, beta, reset):
    """float64 LIF layer with the reset held at the recorded spikes and the step replaced by
    the surrogate's primitive f(v) = (v - 1) / (1 + 100 |v - 1|): returns (V, f(V))."""
    B, T, _ = x.shape
    V = np.zeros((B, T, W.shape[1]))
    for k in range(1, T):
        V[:, k] = beta * V[:, k - 1] + x[:, k - 1] @ W - reset[:, k - 1]
    d = V - 1.0
    return V, d / (1.0 + 100.0 * np.abs(d))


def test_hidden_backward_equals_finite_differences():
    """One hidden layer: dense and sparse (infinite window) backward = the gradient of
    L = sum c[b, k, j] f(V[b, k, j]) (k >= 1) w.r.t. W and w.r.t. the input spikes."""
    rng = np.random.default_rng(5)
    B, T, n_in, N, beta = 2, 12, 5, 4, 0.9
    x = (rng.random((B, T, n_in)) < 0.3).astype(np.uint8)
    W = rng.normal(0, 0.6, (n_in, N)).astype(F32)
    V = np.empty((B, T, N), F32)
    ev = events_from_raster(x)
    spk_n, spk_idx = np.empty(B * T, np.int64), np.empty(B * T * N, np.int32)
    ref.hidden_forward(ev.off, ev.idx, W, beta, V, spk_n, spk_idx, 0, B)
    S = np.zeros((B, T, N), np.uint8)
    rows = np.repeat(np.arange(B * T), spk_n)
    S.reshape(B * T, N)[rows, spk_idx[:len(rows)]] = 1
    assert 0 < S.sum() < S.size
    c = rng.normal(0, 1, (B, T, N)).astype(F32)
    c[:, 0] = 0

    def loss(Wd, xd):
        _, f = _relaxed_layer(xd, Wd, beta, S.astype(np.float64))
        return float((c * f)[:, 1:].sum())

    V64, _ = _relaxed_layer(x.astype(np.float64), W.astype(np.float64), beta, S.astype(float))
    np.testing.assert_allclose(V, V64, atol=1e-5)  # the kernel's membranes, in float64
    eps = 1e-6
    fd_W = np.zeros((n_in, N))
    for i in range(n_in):
        for j in range(N):
            e = np.zeros((n_in, N))
            e[i, j] = eps
            fd_W[i, j] = (loss(W + e, x.astype(float)) - loss(W - e, x.astype(float))) / (2 * eps)
    fd_x = np.zeros((B, T, n_in))
    for b in range(B):
        for t in range(T):
            for i in range(n_in):
                e = np.zeros((B, T, n_in))
                e[b, t, i] = eps
                xd = x.astype(float)
                fd_x[b, t, i] = (loss(W.astype(float), xd + e) - loss(W.astype(float), xd - e)) / (
                    2 * eps)
    # dense
    G = np.empty((B, T, N), F32)
    ref.hidden_delta(V, c, np.zeros((B, N), F32), beta, G, 0, B)
    dW = np.zeros((n_in, N), F32)
    ref.weight_grad(ev.off, ev.idx, G, dW, 0, N)
    dx = np.empty((B, T, n_in), F32)
    ref.input_grad(G, np.ascontiguousarray(W.T), dx, 0, B)
    np.testing.assert_allclose(dW, fd_W, rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(dx, fd_x, rtol=2e-3, atol=2e-5)
    # sparse, every entry active; the previous layer "active" everywhere too
    act = _all_active(B, T, N)
    prev = _all_active(B, T, n_in, from_step=0)
    delta = c[:, 1:, :].reshape(-1) * ref.surrogate(V[:, 1:, :]).reshape(-1)
    dWs = np.zeros((N, n_in), F32)  # the sparse kernel accumulates dW transposed
    ref.sparse_weight_grad(ev.off, ev.idx, act.off, act.idx, delta, ref.power_table(beta, T),
                           dWs, T, 0, N)
    dWs = dWs.T
    dxs = np.zeros(len(prev.idx), F32)
    ref.sparse_input_grad(act.off, act.idx, delta, prev.off, prev.idx, W,
                          ref.power_table(beta, T), dxs, T, 0, B)
    np.testing.assert_allclose(dWs, fd_W, rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(dxs.reshape(B, T, n_in), fd_x, rtol=2e-3, atol=2e-5)


def _all_active(B, T, N, from_step=1) -> Events:
    counts = np.full((B, T), N, np.int64)
    counts[:, :from_step] = 0
    off = np.zeros(B * T + 1, np.int64)
    np.cumsum(counts.reshape(-1), out=off[1:])
    return Events(off, np.tile(np.arange(N, dtype=np.int32), int(counts.sum() // N)), T)


@pytest.mark.parametrize("loss_kind", ["max", "sum"])
def test_readout_and_loss_gradients_equal_finite_differences(loss_kind):
    """Readout: dL/dW3 and dL/dS2 of the max-over-time (and sum) log-softmax loss."""
    rng = np.random.default_rng(6)
    B, T, N, C = 3, 10, 5, 4
    p = SurrogateParams(2, (N,), C, steps=T, window=None, loss=loss_kind,
                        reg_upper_strength=0.0, reg_lower_strength=0.0)
    S = (rng.random((B, T, N)) < 0.4).astype(np.uint8)
    W = rng.normal(0, 1.0, (N, C)).astype(F32)
    labels = rng.integers(0, C, B)
    net = SurrogateNetwork(p, [np.zeros((2, N), F32), W], backend="numpy")
    ev = events_from_raster(S)
    O = np.empty((B, T, C), F32)
    ref.readout_forward(ev.off, ev.idx, W, p.beta_out, O, 0, B)

    def loss(Wd, Sd):
        O64 = np.zeros((B, T, C))
        for k in range(1, T):
            O64[:, k] = p.beta_out * O64[:, k - 1] + (1 - p.beta_out) * Sd[:, k - 1] @ Wd
        z = O64.max(axis=1) if loss_kind == "max" else O64.sum(axis=1)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(B), labels].mean()

    nll, _, dO, _ = net.loss_grad(Record([], O, []), labels)
    assert nll == pytest.approx(loss(W.astype(float), S.astype(float)), rel=1e-5)
    G = np.empty_like(dO)
    ref.readout_delta(dO, p.beta_out, G, 0, B)
    dW = np.zeros_like(W)
    ref.weight_grad(ev.off, ev.idx, G, dW, 0, C)
    dS = np.empty((B, T, N), F32)
    ref.input_grad(G, np.ascontiguousarray(W.T), dS, 0, B)
    eps = 1e-6
    for i in range(N):
        for c in range(C):
            e = np.zeros((N, C))
            e[i, c] = eps
            fd = (loss(W + e, S.astype(float)) - loss(W - e, S.astype(float))) / (2 * eps)
            assert dW[i, c] == pytest.approx(fd, rel=1e-3, abs=1e-6)
    for b, t, j in [(0, 0, 0), (1, 3, 2), (2, 8, 4), (0, 9, 1)]:
        e = np.zeros((B, T, N))
        e[b, t, j] = eps
        fd = (loss(W.astype(float), S + e) - loss(W.astype(float), S - e)) / (2 * eps)
        assert dS[b, t, j] == pytest.approx(fd, rel=1e-3, abs=1e-6)


def test_regulariser_gradient_equals_finite_differences():
    p = SurrogateParams(2, (6,), 3, steps=8, reg_upper_target=0.5, reg_lower_target=0.5)
    net = SurrogateNetwork(p, [np.zeros((2, 6), F32), np.zeros((6, 3), F32)], backend="numpy")
    S = np.zeros((2, 8, 6), np.uint8)
    S[0, 2:6, 1] = 1  # sample 0: 4 spikes on neuron 1 -> above the upper target on average
    S[1, 3, 2] = 1  # sample 1: one spike; five silent neurons below the lower target
    loss, grad = net._regulariser(events_from_raster(S), 6)
    # upper: sample 0: 0.06 (4/6 - 0.5); lower: 100/6 * 0.25 per silent neuron (5 per sample)
    up = 0.06 * (4 / 6 - 0.5)
    low = 100 / 6 * 0.25 * 5
    assert loss == pytest.approx((up + low + 0 + low) / 2)
    assert grad[0, 0] == pytest.approx((0.06 / 6 - 100 / 6 * 2 * 0.5) / 2)
    assert grad[0, 1] == pytest.approx((0.06 / 6) / 2)
    assert grad[1, 2] == 0.0 and grad[1, 0] == pytest.approx(-100 / 6 * 2 * 0.5 / 2)


# ----------------------------------------------------------------------------- counts


def test_operation_counts_by_hand():
    """Two samples, 4 steps, 2 inputs -> 2 hidden -> 1 readout, beta = exp(-0.1) = 0.904837;
    input spikes (b, t, i): (0, 0, 0), (0, 1, 1), (1, 2, 0).
    sample 0: k=1: V = W[0] = (1.5, 0.6), neuron 0 spikes;
              k=2: V = (1.5 beta + 0.2 - 1, 0.6 beta + 0.6) = (0.5573, 1.1429), neuron 1 spikes;
              k=3: V = (0.5573 beta, 1.1429 beta - 1) = (0.5042, 0.0342).
    sample 1: k=3: V = (1.5, 0.6), neuron 0 spikes (too late to reach the readout).
    Active |V - 1| < 0.5: (0,1,1) (0,2,0) (0,2,1) (0,3,0) (1,3,1) = 5 entries; the
    weight-gradient MACs are the input events before each: 1 + 2 + 2 + 2 + 1 = 8."""
    p = SurrogateParams(2, (2,), 1, steps=4, window=0.5)
    beta = math.exp(-0.1)
    W1 = np.array([[1.5, 0.6], [0.2, 0.6]], F32)
    net = SurrogateNetwork(p, [W1, np.ones((2, 1), F32)], backend="numpy")
    x = np.zeros((2, 4, 2), np.uint8)
    x[0, 0, 0] = x[0, 1, 1] = x[1, 2, 0] = 1
    rec = net.forward(events_from_raster(x))
    dense = SurrogateNetwork(SurrogateParams(2, (2,), 1, steps=4, window=None),
                             [W1, np.ones((2, 1), F32)], backend="numpy")
    drec = dense.forward(events_from_raster(x))
    V = drec.layers[0].V
    np.testing.assert_allclose(V[0, 1:], [[1.5, 0.6], [1.5 * beta - 0.8, 0.6 * beta + 0.6],
                                          [(1.5 * beta - 0.8) * beta, (0.6 * beta + 0.6) * beta - 1]],
                               rtol=1e-5)
    sp = rec.layers[0].spikes
    assert sp.idx.tolist() == [0, 1, 0] and np.flatnonzero(sp.counts().ravel()).tolist() == [
        1, 2, 7]  # (0, 1, 0), (0, 2, 1), (1, 3, 0)
    assert rec.synops == [3 * 2, 2 * 1]  # input events x 2 neurons; hidden spikes at k < 3
    _, _, counts = net.backward(rec, np.array([0, 0]))
    assert counts.active == counts.surrogate == [5]
    assert counts.weight_macs[0] == 8
    assert counts.weight_macs[1] == 2  # readout dW: one add per hidden spike reaching it
    # no gradient for the input spikes; the readout's gradient reaches the 3 active entries
    # before the last step (C = 1 multiply-add each)
    assert counts.input_macs == [0, 3]
    _, _, dc = dense.backward(drec, np.array([0, 0]))
    assert dc.active == [2 * 3 * 2] and dc.weight_macs == [3 * 2, 2]
    assert dc.input_macs == [0, 2 * 3 * 1 * 2]  # readout -> hidden: B (T-1) C N


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cython", marks=requires_compiled)])
@pytest.mark.parametrize("window", [None, pytest.param(math.inf, marks=pytest.mark.slow)])
def test_no_subnormal_state_after_a_long_silence(backend, window):
    """SHD's grid (dt 2 ms, beta = 0.8187, 500 steps) with input only in the first 5 steps:
    membranes, readout and the backward recursions decay for ~500 steps (0.8187^500 = 1e-44,
    far into float32's subnormals) and must be flushed to exactly zero instead."""
    raster = np.zeros((2, 500, 6), np.uint8)
    raster[:, :5] = _inputs(2, 5, 6, 0.5, 4)
    net = _net(backend, window, n_in=6, hidden=(5, 4), n_out=3, T=500, dt_ms=2.0,
               tau_out_ms=10.0, gain=40.0)
    rec, _, grads, _ = _step(net, raster, np.array([0, 2]))
    state = {"O": rec.O, **{f"dW{i}": g for i, g in enumerate(grads)}}
    for i, x in enumerate(rec.layers):
        state.update({f"V{i}": x.V} if window is None else {f"sg{i}": x.active_sg})
    assert subnormals(state) == {}
    assert np.all(rec.O[:, -1] == 0) and np.any(rec.O[:, 6] != 0)
    if window is None:
        assert np.all(rec.layers[0].V[:, -1] == 0) and np.any(rec.layers[0].V[:, 5] != 0)


def test_sparse_layer_equals_dense_with_the_surrogate_masked_to_the_active_set():
    """With a narrow window, the sparse weight gradient and the backward walk equal the dense
    recursion run with the surrogate zeroed outside the active set, the input gradient read
    at the previous layer's active entries only."""
    rng = np.random.default_rng(11)
    B, T, n_in, N, beta, w = 3, 25, 6, 5, 0.9, 0.3
    x = (rng.random((B, T, n_in)) < 0.25).astype(np.uint8)
    ev = events_from_raster(x)
    W = rng.normal(0, 0.7, (n_in, N)).astype(F32)
    V = rng.normal(1.0, 0.4, (B, T, N)).astype(F32)
    dS = rng.normal(0, 1, (B, T, N)).astype(F32)
    act = np.abs(V - F32(1.0)) < F32(w)
    act[:, 0] = False
    prev = rng.random((B, T, n_in)) < 0.3  # the previous layer's active entries
    prev[:, 0] = False
    # dense, masked: the surrogate is 0 off the active set
    G = np.empty((B, T, N), F32)
    ref.hidden_delta(V, np.where(act, dS, F32(0)), np.zeros((B, N), F32), beta, G, 0, B)
    dW = np.zeros((n_in, N), F32)
    ref.weight_grad(ev.off, ev.idx, G, dW, 0, N)
    dx = np.empty((B, T, n_in), F32)
    ref.input_grad(G, np.ascontiguousarray(W.T), dx, 0, B)
    # sparse
    a_ev, p_ev = events_from_raster(act), events_from_raster(prev)
    b, t, j = np.nonzero(act)
    delta = (dS[b, t, j] * ref.surrogate(V[b, t, j])).astype(F32)
    powers = ref.power_table(beta, T)
    dWs = np.zeros((N, n_in), F32)  # transposed
    ref.sparse_weight_grad(ev.off, ev.idx, a_ev.off, a_ev.idx, delta, powers, dWs, T, 0, N)
    dWs = dWs.T
    dxs = np.zeros(len(p_ev.idx), F32)
    ref.sparse_input_grad(a_ev.off, a_ev.idx, delta, p_ev.off, p_ev.idx, W, powers, dxs, T, 0, B)
    np.testing.assert_allclose(dWs, dW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dxs, dx[prev], rtol=1e-4, atol=1e-6)
    assert 0 < act.sum() < act.size / 2 and np.abs(dx[prev]).max() > 0
