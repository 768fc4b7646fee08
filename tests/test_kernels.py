"""The D&C kernels: compiled == reference bit for bit, and hand-countable cases."""
import numpy as np
import pytest

from snn_frontend import _reference as R
from snn_frontend.params import RNG_GAMMA, mix64, sample_key
from snn_frontend.state import DCState, PresentBuffers

from conftest import _dc_kernels as C
from conftest import digit_like, make_params, requires_compiled

RATE = 63.75 / 255 * 0.5 / 1000  # D&C rate scale at dt 0.5 ms


def _run(K, p, W, st, images, learn, normalise=True, key_seed=3):
    buf = PresentBuffers(p)
    out = []
    for s, img in enumerate(images):
        if learn and normalise:
            K.normalise_columns(W, 78.0 * p.n_in / 784)
        tot = K.present(p, W, st, img, sample_key(key_seed, s, 0), RATE * 3, learn, buf)
        steps = p.steps_per_attempt
        out.append((tot, buf.response.copy(), buf.in_cnt[:steps].copy(), buf.exc_cnt[:steps].copy(),
                    buf.inh_cnt[:steps].copy(), buf.in_idx[:tot[0]].copy(),
                    buf.exc_idx[:tot[1]].copy(), buf.inh_idx[:tot[2]].copy()))
    return out


@requires_compiled
@pytest.mark.parametrize("learn", [True, False])
@pytest.mark.parametrize("rest_ms", [0.0, 20.0])
@pytest.mark.parametrize("dt", [0.5, 1.0])
def test_compiled_equals_reference_bit_for_bit(learn, rest_ms, dt):
    p = make_params(n_exc=30, dt=dt, present_ms=120.0, rest_ms=rest_ms)
    rng = np.random.default_rng(0)
    W0 = rng.uniform(0.003, 0.303, (784, 30)).astype(np.float32)
    images = [digit_like(s) for s in range(4)]
    results = {}
    for name, K in (("ref", R), ("cy", C)):
        W, st = W0.copy(), DCState.initial(p, 20.0)
        results[name] = (W, st, _run(K, p, W, st, images, learn))
    (Wr, sr, outr), (Wc, sc, outc) = results["ref"], results["cy"]
    assert sum(o[0][1] for o in outr) > 0, "the test needs excitatory activity"
    assert sum(o[0][2] for o in outr) > 0, "the test needs inhibitory activity"
    assert np.array_equal(Wr, Wc)
    for k, v in sr.arrays().items():
        assert np.array_equal(v, sc.arrays()[k]), k
    for a, b in zip(outr, outc):
        assert a[0] == b[0]
        for x, y in zip(a[1:], b[1:]):
            assert np.array_equal(x, y)
    if learn:
        assert not np.array_equal(Wr, W0)


@requires_compiled
def test_normalise_columns_matches_and_sums_to_total():
    W = np.random.default_rng(1).uniform(0, 0.3, (784, 50)).astype(np.float32)
    W[:, 7] = 0  # an all-zero column is left alone
    a, b = W.copy(), W.copy()
    R.normalise_columns(a, 78.0)
    C.normalise_columns(b, 78.0)
    assert np.array_equal(a, b)
    sums = a.sum(axis=0, dtype=np.float64)
    assert np.allclose(np.delete(sums, 7), 78.0, rtol=1e-5)
    assert sums[7] == 0


def test_mix64_matches_numpy_rng_stream():
    key = sample_key(1, 2, 0)
    z = (key + (5 * 784 + 10 + 1) * RNG_GAMMA) % 2**64
    assert int(R._mix64(np.array([z], np.uint64))[0]) == mix64(z)
    # the reference draws step 5's spike of input 10 from exactly that number
    thr = np.array([(mix64(z) >> 32) + 1], np.uint64)  # just above the draw: spikes
    assert list(R.input_spikes(key, 5, 784, np.array([10]), thr)) == [10]
    assert list(R.input_spikes(key, 5, 784, np.array([10]), thr - np.uint64(1))) == []


def test_silent_input_gives_exact_counts_and_no_spikes(kern):
    p = make_params(n_exc=10, present_ms=30.0)
    W = np.full((784, 10), 0.1, np.float32)
    st = DCState.initial(p, 20.0)
    buf = PresentBuffers(p)
    tot = kern.present(p, W, st, np.zeros(784, np.uint8), 123, RATE, True, buf)
    assert tot == (0, 0, 0)
    # rest is a fixed point (to rounding: (v + a*v_rest) / (1 + a) is within 1 ulp of v_rest)
    assert np.allclose(st.v_e, -65.0, rtol=0, atol=1e-12)
    assert np.allclose(st.v_i, -60.0, rtol=0, atol=1e-12)
    assert np.array_equal(W, np.full((784, 10), 0.1, np.float32))


def test_always_on_input_spikes_every_step(kern):
    """Spike probability >= 1 (threshold >= 2**32) fires at every step: steps x inputs spikes."""
    p = make_params(n_exc=4, present_ms=10.0)  # 20 steps
    img = np.zeros(784, np.uint8)
    img[[3, 100, 500]] = 255
    buf = PresentBuffers(p)
    st = DCState.initial(p, 1e6)  # huge theta: no excitatory spikes
    W = np.zeros((784, 4), np.float32)
    tot = kern.present(p, W, st, img, 9, 1.0 / 255, False, buf)
    assert tot[0] == 3 * 20
    assert np.all(buf.in_cnt[:20] == 3)
    assert np.array_equal(buf.in_idx[:6], [3, 100, 500, 3, 100, 500])


def test_poisson_rate_and_reproducibility(kern):
    p = make_params(n_exc=2, present_ms=350.0)  # 700 steps
    img = np.full(784, 255, np.uint8)
    st = DCState.initial(p, 1e6)
    W = np.zeros((784, 2), np.float32)
    buf = PresentBuffers(p)
    n1 = kern.present(p, W, st, img, sample_key(0, 1, 0), RATE, False, buf)[0]
    idx1 = buf.in_idx[:n1].copy()
    expected = 784 * 700 * 63.75 * 0.5 / 1000  # 17,493 spikes
    assert abs(n1 - expected) < 5 * np.sqrt(expected)
    n2 = kern.present(p, W, st, img, sample_key(0, 1, 0), RATE, False, buf)[0]
    assert n2 == n1 and np.array_equal(buf.in_idx[:n2], idx1)
    n3 = kern.present(p, W, st, img, sample_key(0, 1, 1), RATE, False, buf)[0]
    assert not (n3 == n1 and np.array_equal(buf.in_idx[:n3], idx1))


def test_input_spike_adds_its_weight_row_and_depresses_it(kern):
    """One input spike at step 0: ge of every exc neuron += W[i]; W[i] -= nu_pre*post1."""
    p = make_params(n_exc=5, present_ms=0.5)  # one step
    img = np.zeros(784, np.uint8)
    img[42] = 255
    W = np.zeros((784, 5), np.float32)
    W[42] = [0.1, 0.2, 0.3, 0.4, 0.00001]
    st = DCState.initial(p, 1e6)
    st.post1[:] = [1.0, 0.5, 0.0, 0.25, 1.0]
    buf = PresentBuffers(p)
    kern.present(p, W, st, img, 1, 1.0 / 255, True, buf)
    row0 = np.array([0.1, 0.2, 0.3, 0.4, 0.00001], np.float32)
    assert np.array_equal(st.ge_e, row0.astype(np.float64))
    post1 = np.array([1.0, 0.5, 0.0, 0.25, 1.0]) * p.decay_post1
    expect = np.maximum(row0.astype(np.float64) - 1e-4 * post1, 0).astype(np.float32)
    assert np.array_equal(W[42], expect)
    assert W[42, 4] == 0.0  # clamped at w_min = 0
    assert st.pre[42] == 1.0


def test_excitatory_spike_potentiates_its_column_and_drives_its_partner(kern):
    p = make_params(n_exc=3, present_ms=0.5)
    W = np.full((784, 3), 0.5, np.float32)
    W[0, 1] = 0.99999
    st = DCState.initial(p, 20.0)
    st.v_e[1] = 0.0  # far above threshold: neuron 1 spikes in step 0
    st.pre[:3] = [1.0, 0.5, 0.0]
    st.post2[1] = 0.8
    buf = PresentBuffers(p)
    tot = kern.present(p, W, st, np.zeros(784, np.uint8), 1, RATE, True, buf)
    assert tot == (0, 1, 0) and buf.exc_idx[0] == 1
    gain = 1e-2 * 0.8 * p.decay_post2
    expect = np.minimum(0.5 + np.array([1.0, 0.5, 0.0]) * p.decay_pre * gain, 1.0)
    assert np.array_equal(W[1:3, 1], expect[1:3].astype(np.float32))
    assert W[0, 1] == 1.0  # clamped at w_max
    assert np.all(W[:, [0, 2]] == 0.5)  # other columns untouched
    assert st.ge_i[1] == 10.4 and st.ge_i[0] == 0.0
    assert st.post1[1] == 1.0 and st.post2[1] == 1.0
    assert st.theta[1] == 20.0 * p.decay_theta + 0.05
    assert st.v_e[1] == -65.0 and st.refrac_e[1] == 10 and st.lockout_e[1] == 100


def test_inhibitory_spike_inhibits_every_other_excitatory_neuron(kern):
    p = make_params(n_exc=4, present_ms=0.5)
    W = np.zeros((784, 4), np.float32)
    st = DCState.initial(p, 1e6)
    st.v_i[[0, 2]] = 0.0  # two inhibitory spikes in step 0
    buf = PresentBuffers(p)
    tot = kern.present(p, W, st, np.zeros(784, np.uint8), 1, RATE, False, buf)
    assert tot == (0, 0, 2)
    assert np.array_equal(st.gi_e, [17.0, 34.0, 17.0, 34.0])  # all but self


def test_refractory_and_lockout_limit_the_rate(kern):
    """With the D&C 50 ms lockout an excitatory neuron fires at most once per 50 ms."""
    p = make_params(n_exc=2, present_ms=200.0)
    W = np.full((784, 2), 1.0, np.float32)
    img = np.full(784, 255, np.uint8)
    st = DCState.initial(p, 20.0)
    buf = PresentBuffers(p)
    tot = kern.present(p, W, st, img, 5, RATE, False, buf)
    assert 0 < tot[1] <= 2 * 4  # 200 ms / 50 ms per neuron
    assert np.all(buf.response <= 4)


def test_stable_at_dt_1ms(kern):
    """Implicit integration: a strongly driven network at dt 1 ms stays bounded."""
    p = make_params(n_exc=100, dt=1.0, present_ms=100.0)
    W = np.random.default_rng(0).uniform(0.003, 0.303, (784, 100)).astype(np.float32)
    st = DCState.initial(p, 20.0)
    buf = PresentBuffers(p)
    tot = kern.present(p, W, st, digit_like(0), 1, 4 * 63.75 / 255 / 1000, False, buf)
    assert np.all(np.isfinite(st.v_e)) and np.all(st.v_e > -100.0001) and np.all(st.v_e < 0.0001)
    assert tot[1] <= 100 * 2  # lockout bound; an Euler blow-up fires every neuron every step


VARIANTS = {
    "lateral": dict(lateral=1),
    "potentiation_only": dict(lateral=1, depress_on_pre=0),
    "buffered_every_10": dict(update_every=10),
    "buffered_lateral": dict(lateral=1, depress_on_pre=0, update_every=7),
    "q8_nearest": dict(quant_scale=256.0, quant_max=255 / 256, rounding=1),
    "q8_truncate": dict(quant_scale=256.0, quant_max=255 / 256, rounding=0),
    "q4_stochastic_buffered": dict(quant_scale=16.0, quant_max=15 / 16, rounding=2,
                                   update_every=5, lateral=1),
    "spurious_reduction": dict(lateral=1, update_every=160, commit_min_spikes=2),
    "spurious_reduction_potentiation_only": dict(lateral=1, depress_on_pre=0, update_every=160,
                                                 commit_min_spikes=2),
    "adaptive_rates": dict(lateral=1, update_every=160, commit_min_spikes=2, commit_rate_ref=3.0,
                           commit_rate_max=3.0),
    "state_q24_8": dict(state_scale=256.0, state_lo=-2.0**23 / 256, state_hi=(2.0**23 - 1) / 256),
    "state_q16_4_population_q8": dict(state_scale=16.0, state_lo=-2.0**15 / 16,
                                      state_hi=(2.0**15 - 1) / 16, quant_scale=256.0,
                                      quant_max=255 / 256, rounding=2),
    "adaptive_rates_clamped_q8": dict(update_every=40, commit_rate_ref=0.5, commit_rate_max=1.5,
                                      quant_scale=256.0, quant_max=255 / 256, rounding=2),
}


@requires_compiled
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_compiled_equal_reference(variant):
    p = make_params(n_exc=25, present_ms=80.0, **VARIANTS[variant])
    W0 = np.random.default_rng(1).uniform(0.003, 0.303, (784, 25)).astype(np.float32)
    if p.quant_scale:
        W0 = R.quantise(W0.astype(np.float64), p, rounding=1).astype(np.float32)
    out = {}
    for name, K in (("ref", R), ("cy", C)):
        W, st = W0.copy(), DCState.initial(p, 20.0)
        buf = PresentBuffers(p)
        recs = []
        for s in range(3):
            K.normalise_columns(W, 78.0, p.quant_scale, p.quant_max)
            tot = K.present(p, W, st, digit_like(s), sample_key(5, s, 0), RATE * 3, True, buf,
                            w_lat=12.0, pot_gain=1.5)
            T = p.steps_per_attempt
            recs.append((tot, buf.row_cnt[:T].copy(), buf.col_cnt[:T].copy(),
                         buf.row_idx[:buf.row_cnt[:T].sum()].copy(),
                         buf.col_idx[:buf.col_cnt[:T].sum()].copy(), buf.exc_idx[:tot[1]].copy()))
        out[name] = (W, st, recs)
    (Wr, sr, rr), (Wc, sc, rc) = out["ref"], out["cy"]
    assert sum(r[0][1] for r in rr) > 0
    assert np.array_equal(Wr, Wc)
    for k, v in sr.arrays().items():
        assert np.array_equal(v, sc.arrays()[k]), k
    for a, b in zip(rr, rc):
        assert a[0] == b[0]
        for x, y in zip(a[1:], b[1:]):
            assert np.array_equal(x, y)
    if p.lateral:
        assert all(r[0][2] == 0 for r in rr)  # no inhibitory population
    if p.quant_scale:  # every weight on the fixed-point grid and in range
        assert np.array_equal(np.floor(Wr * p.quant_scale), Wr * p.quant_scale)
        assert Wr.max() <= p.quant_max and Wr.min() >= 0
    if not p.depress_on_pre:
        assert all(r[1].sum() == 0 for r in rr)  # no weight rows written
    if p.state_scale:  # membrane potentials and thresholds on the fixed-point grid
        for x in (sr.v_e, sr.theta, sr.v_i):
            assert np.array_equal(np.floor(x * p.state_scale), x * p.state_scale)


def test_timestep_based_updates_write_each_column_once_per_window(kern):
    """A spike at step 0 of a 10-step window: its column is written once, at the window end."""
    p = make_params(n_exc=3, present_ms=5.0, update_every=10)  # 10 steps
    W = np.full((784, 3), 0.5, np.float32)
    st = DCState.initial(p, 20.0)
    st.pre[:2] = 1.0
    st.post2[1] = 1.0
    st.v_e[1] = 0.0  # spikes at step 0 (then refractory and locked out)
    buf = PresentBuffers(p)
    kern.present(p, W, st, np.zeros(784, np.uint8), 1, RATE, True, buf)
    assert list(buf.col_cnt[:10]) == [0] * 9 + [1] and buf.col_idx[0] == 1
    assert W[0, 1] > 0.5 and np.all(W[:, [0, 2]] == 0.5)
    assert not st.dw.any() and not st.dirty_col.any()


def test_stochastic_rounding_is_unbiased():
    p = make_params(n_exc=50, quant_scale=4.0, quant_max=0.75, rounding=2)
    x = np.full((784, 50), 0.3)  # between grid points 0.25 and 0.5
    q = R.quantise(x, p, key=3, step=0, i=np.arange(784)[:, None], j=np.arange(50)[None, :])
    assert set(np.unique(q)) == {0.25, 0.5}
    assert abs(q.mean() - 0.3) < 0.005


@pytest.mark.parametrize("min_spikes", [0, 2])
def test_spurious_reduction_drops_a_silent_neurons_depression_too(kern, min_spikes):
    """Input spikes depress every column whose post trace is up; with commit_min_spikes=2 no
    neuron fires twice in the window, so every change is dropped (rows are still written)."""
    p = make_params(n_exc=3, present_ms=5.0, update_every=10, commit_min_spikes=min_spikes)
    W = np.full((784, 3), 0.5, np.float32)
    st = DCState.initial(p, 1e6)  # thresholds out of reach: no excitatory spike
    st.post1[:] = 1.0  # traces carried over: depression applies to every column
    buf = PresentBuffers(p)
    img = np.zeros(784, np.uint8)
    img[:50] = 255
    tot = kern.present(p, W, st, img, 3, 0.5, True, buf)
    assert tot[0] > 0 and tot[1] == 0
    assert buf.row_cnt[:10].sum() > 0  # dirty rows written back at the window end
    if min_spikes:
        assert np.all(W == 0.5)
    else:
        assert W[:50].min() < 0.5 and np.all(W[50:] == 0.5)


@pytest.mark.parametrize("ref, cap, factor", [(0.0, 1.0, 1.0), (2.0, 3.0, 0.5), (0.5, 1.5, 1.5)])
def test_adaptive_rate_scales_a_window_by_its_spikes(kern, ref, cap, factor):
    """One spike in the window: the neuron's committed change is min(1 / ref, cap) times
    the plain one (ref 0: adaptive rates off)."""
    p = make_params(n_exc=2, present_ms=5.0, update_every=10, depress_on_pre=0,
                    commit_rate_ref=ref, commit_rate_max=cap)
    W = np.full((784, 2), 0.5, np.float32)
    st = DCState.initial(p, 20.0)
    st.pre[:4] = 1.0
    st.post2[0] = 0.5
    st.v_e[0] = 0.0  # neuron 0 spikes once, at step 0
    buf = PresentBuffers(p)
    kern.present(p, W, st, np.zeros(784, np.uint8), 1, RATE, True, buf)
    plain = 1e-2 * np.exp(-0.5 / 20.0) * 0.5 * np.exp(-0.5 / 40.0)  # nu_post x pre x post2
    assert np.allclose(W[:4, 0] - 0.5, factor * plain, rtol=1e-4)
    assert np.all(W[4:, 0] == 0.5) and np.all(W[:, 1] == 0.5)


def test_commit_gain_closed_form():
    p = make_params(commit_min_spikes=2, commit_rate_ref=3.0, commit_rate_max=2.0)
    assert R.commit_gain(np.array([0, 1, 2, 3, 6, 7]), p).tolist() == [0, 0, 2 / 3, 1, 2, 2]


def test_fixed_point_state_rounds_to_nearest_and_clamps():
    p = make_params(state_scale=4.0, state_lo=-128.0, state_hi=127.75)
    x = np.array([-65.0, -64.9, -64.87, 0.124, 0.125, 1000.0, -1000.0])
    assert R.quantise_state(x, p).tolist() == [-65.0, -65.0, -64.75, 0.0, 0.25, 127.75, -128.0]


def test_a_theta_decay_below_half_a_step_is_lost_in_a_fixed_point_state(kern):
    """tau_theta 1e7 ms at dt 0.5: theta * (1 - 5e-8) per step, far below half of 2**-8."""
    fixed = make_params(n_exc=4, present_ms=5.0, state_scale=256.0, state_lo=-2.0**15,
                        state_hi=2.0**15)
    out = {}
    for name, p in (("float", make_params(n_exc=4, present_ms=5.0)), ("fixed", fixed)):
        W = np.zeros((784, 4), np.float32)
        st = DCState.initial(p, 20.0)
        kern.present(p, W, st, np.zeros(784, np.uint8), 1, RATE, True, PresentBuffers(p))
        out[name] = st.theta.copy()
    assert np.all(out["float"] < 20.0) and np.all(out["fixed"] == 20.0)
