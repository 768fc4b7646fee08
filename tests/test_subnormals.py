"""No subnormal arithmetic: decaying state is flushed to zero in both backends.

Silent neurons' conductances and traces decay exponentially and, left alone, sink
through the subnormal range (2.2e-308 .. 5e-324) on their way to zero; every operation
on a subnormal costs ~100 cycles on Intel cores. Each test here fails on a kernel that
lets them through.
"""
import math

import numpy as np
import pytest

from snn_frontend import _reference as R
from snn_frontend.network import DiehlCookNetwork, Plasticity, PresentationPlan
from snn_frontend.numerics import FLUSH_BELOW, flush, flush_inplace, subnormal_count, subnormals
from snn_frontend.params import sample_key
from snn_frontend.state import DCState, PresentBuffers

from conftest import _dc_kernels as C
from conftest import digit_like, make_params, requires_compiled

TINY = np.finfo(np.float64).tiny


def test_flush_threshold_sign_and_nan():
    x = np.array([FLUSH_BELOW, -FLUSH_BELOW, 0.99 * FLUSH_BELOW, -1e-310, 5e-324, 0.0, 1.0,
                  np.nan])
    y = flush(x)
    assert y[0] == FLUSH_BELOW and y[1] == -FLUSH_BELOW  # the threshold itself is kept
    assert np.array_equal(y[2:6], np.zeros(4)) and not np.signbit(y[3])
    assert y[6] == 1.0 and np.isnan(y[7])  # a NaN is not hidden
    w = np.array([1e-31, 0.5, -2e-40], np.float32)
    flush_inplace(w)
    assert list(w) == [0.0, 0.5, 0.0]


def test_subnormal_count():
    assert subnormal_count(np.array([0.0, TINY, TINY / 2, -5e-324, 1.0])) == 2
    assert subnormal_count(np.array([1e-39, 1e-37], np.float32)) == 1
    assert subnormal_count(np.arange(5)) == 0
    assert subnormals({"a": np.array([1e-320]), "b": np.ones(3)}) == {"a": 1}


@requires_compiled
def test_compiled_threshold_equals_the_reference():
    assert C.flush_below == FLUSH_BELOW


def _step_by_step(K, p, steps):
    """Present a blank image one step at a time from large conductances and traces; return
    the subnormals seen in any state array at any step, and the final state."""
    W = np.full((p.n_in, p.n_exc), 0.1, np.float32)
    st = DCState.initial(p, 20.0)
    for a in (st.ge_e, st.gi_e, st.ge_i):
        a.fill(1e-3)  # below any spike, decaying from here
    for a in (st.pre, st.post1, st.post2):
        a.fill(1.0)
    buf, seen = PresentBuffers(p), {}
    blank = np.zeros(p.n_in, np.uint8)
    for t in range(steps):
        tot = K.present(p, W, st, blank, sample_key(0, t, 0), 0.0, True, buf)
        assert tot == (0, 0, 0)
        for name, n in subnormals({**st.arrays(), "W": W}).items():
            seen.setdefault(name, t)
    return seen, st


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cython", marks=requires_compiled)])
def test_decaying_state_never_passes_through_the_subnormal_range(backend):
    # decay 0.5 per step: an unflushed 1.0 is subnormal at steps 1022..1074, then 0
    half = 0.5
    p = make_params(n_in=16, n_exc=4, dt=1.0, present_ms=1.0, decay_ge=half, decay_gi=half,
                    decay_pre=half, decay_post1=half, decay_post2=half)
    K = R if backend == "numpy" else C
    seen, st = _step_by_step(K, p, 1100)
    assert seen == {}, f"subnormal state (array: first step) {seen}"
    for name in ("ge_e", "gi_e", "ge_i", "pre", "post1", "post2"):
        assert np.all(getattr(st, name) == 0.0), name  # flushed to exactly zero
    # the flush happened where the equation says: the last nonzero value is >= FLUSH_BELOW
    k_last = math.floor(math.log(FLUSH_BELOW) / math.log(half))
    assert half ** k_last >= FLUSH_BELOW > half ** (k_last + 1)


def _literal_rest_network(backend, seed=0):
    p = make_params(n_in=784, n_exc=20, dt=0.5, present_ms=100.0, rest_ms=150.0)
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.003, 0.303, (784, 20)).astype(np.float32)
    plan = PresentationPlan(dt_ms=0.5, max_rate_hz=63.75, retry_rate_step_hz=31.875,
                            retry_min_spikes=5, max_retries=2, seed=seed)
    return DiehlCookNetwork(p, plan, W, np.full(20, 20.0), norm_total=78.0, state_reset=False,
                            backend=backend)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cython", marks=requires_compiled)])
def test_literal_rest_training_leaves_no_subnormal_state(backend):
    """D&C with the 150 ms rest integrated and the state carried over (mnist_dc400's
    protocol): silent inhibitory neurons' conductances would be subnormal after two
    presentations, the input traces after a few."""
    net = _literal_rest_network(backend)
    for s in range(12):
        net.train_sample(digit_like(s), s)
        bad = subnormals({**net.state.arrays(), "weights": net.weights})
        assert bad == {}, f"after sample {s}: {bad}"
    # the test is only meaningful if state did decay to (flushed) zero somewhere
    assert np.count_nonzero(net.state.ge_i == 0.0) > 0
    assert np.count_nonzero(net.state.pre == 0.0) > 0
    labels = net.infer(np.stack([digit_like(100 + s) for s in range(3)]), 1000)
    assert labels.shape == (3, 20)
    assert subnormals(net.state.arrays()) == {}


@requires_compiled
def test_literal_rest_backends_stay_bit_identical():
    nets = {b: _literal_rest_network(b) for b in ("numpy", "cython")}
    for s in range(6):
        for net in nets.values():
            net.train_sample(digit_like(s), s)
    a, b = nets["numpy"], nets["cython"]
    assert np.array_equal(a.weights, b.weights)
    for k, v in a.state.arrays().items():
        assert np.array_equal(v, b.state.arrays()[k]), k


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cython", marks=requires_compiled)])
def test_normalisation_and_leak_flush_tiny_weights(backend):
    K = R if backend == "numpy" else C
    W = np.full((4, 2), 0.25, np.float32)
    W[0, 0] = 1e-30  # scaled by 0.5: below the threshold
    K.normalise_columns(W, 0.5)
    assert W[0, 0] == 0.0 and subnormal_count(W) == 0
    p = make_params(n_in=4, n_exc=2)
    net = DiehlCookNetwork(p, PresentationPlan(0.5, 63.75, 31.875, 5, 0, 0),
                           np.full((4, 2), 2e-30, np.float32), np.full(2, 20.0),
                           norm_total=None, backend=backend,
                           plasticity=Plasticity(weight_decay_rate=0.6))
    assert net._between_presentations(net._buf, (0, 0, 0)) == 1
    assert np.all(net.weights == 0.0)  # 2e-30 * 0.4 = 8e-31 < FLUSH_BELOW
