"""D&C's input delays (network.input_delay_max_ms; docs/equations.md, "Input delays"):
compiled == reference bit for bit, hand-countable arrivals and STDP at arrival, one slot
== no delays bit for bit, the config's checks, and the model file carrying the delays."""
import numpy as np
import pytest

from accel_sim import load_config, resume_experiment, run_experiment
from accel_sim.errors import ConfigError, RunError
from accel_sim.families.stdp import build_network, load_data
from snn_frontend import _reference as R
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.numerics import flush, subnormals
from snn_frontend.params import sample_key
from snn_frontend.state import DCState, PresentBuffers

from conftest import _dc_kernels as C
from conftest import digit_like, make_params, requires_compiled, run_killed_after

RATE = 63.75 / 255 * 0.5 / 1000  # D&C rate scale at dt 0.5 ms
TINY = ["name=tiny", "data.train_samples=40", "data.test_samples=30", "network.n_excitatory=20",
        "encoding.present_ms=100", "encoding.max_rate_hz=255", "run.progress=false"]
DELAYED = TINY + ["network.input_delay_max_ms=10"]
STATE = [f for f in DCState.__dataclass_fields__ if f not in DCState.DELAY_FIELDS]


def _one_spike(n_exc, rest_steps, slots, **over):
    """Params with one input step (then `rest_steps` steps) and input 42 always on: exactly
    one input spike, at step 0."""
    p = make_params(n_exc=n_exc, present_ms=0.5, rest_ms=0.5 * rest_steps, delay_slots=slots,
                    **over)
    img = np.zeros(784, np.uint8)
    img[42] = 255
    return p, img


def _train(K, p, W, st, D, samples, learn=True, reset=False, key_seed=3):
    """Present `samples` digit-like images; the outputs of each presentation."""
    buf, out = PresentBuffers(p), []
    for s in range(samples):
        if reset:
            st.reset(p)
        if learn:
            K.normalise_columns(W, 78.0, p.quant_scale, p.quant_max)
        tot = K.present(p, W, st, digit_like(s), sample_key(key_seed, s, 0), RATE * 3, learn,
                        buf, w_lat=12.0, pot_gain=1.5, delays=D)
        T = p.steps_per_attempt
        out.append((tot, buf.response.copy(), buf.in_idx[:tot[0]].copy(),
                    buf.exc_idx[:tot[1]].copy(), buf.inh_idx[:tot[2]].copy(),
                    buf.row_cnt[:T].copy(), buf.col_cnt[:T].copy(),
                    buf.row_idx[:buf.row_cnt[:T].sum()].copy(),
                    buf.col_idx[:buf.col_cnt[:T].sum()].copy()))
    return out


def _same(a, b):
    for x, y in zip(a, b):
        assert x[0] == y[0]
        for u, v in zip(x[1:], y[1:]):
            assert np.array_equal(u, v)


VARIANTS = {
    "dc": {},
    "buffered": dict(update_every=10),
    "q8_stochastic_lateral": dict(lateral=1, quant_scale=256.0, quant_max=255 / 256, rounding=2),
    "potentiation_only": dict(depress_on_pre=0),
    "adaptive_rates_state_q": dict(lateral=1, update_every=40, commit_min_spikes=2,
                                   commit_rate_ref=3.0, commit_rate_max=3.0, state_scale=256.0,
                                   state_lo=-2.0**23 / 256, state_hi=(2.0**23 - 1) / 256),
}


def _w0(p, seed=0):
    W0 = np.random.default_rng(seed).uniform(0.003, 0.303, (784, p.n_exc)).astype(np.float32)
    if p.quant_scale:
        W0 = R.quantise(W0.astype(np.float64), p, rounding=1).astype(np.float32)
    return W0


# ------------------------------------------------------------------ parity
@requires_compiled
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("slots, rest_ms, reset", [(20, 20.0, False), (20, 0.0, False),
                                                   (20, 0.0, True), (7, 2.0, False)])
def test_compiled_equals_reference_with_delays(variant, slots, rest_ms, reset):
    p = make_params(n_exc=20, present_ms=60.0, rest_ms=rest_ms, delay_slots=slots,
                    **VARIANTS[variant])
    D = np.random.default_rng(1).integers(0, slots, (784, 20), dtype=np.uint8)
    W0, res = _w0(p), {}
    for name, K in (("ref", R), ("cy", C)):
        W, st = W0.copy(), DCState.initial(p, 20.0)
        out = _train(K, p, W, st, D, 3, reset=reset)
        out += _train(K, p, W, st, D, 2, learn=False, reset=reset, key_seed=4)
        res[name] = (W, st, out)
    (Wr, sr, outr), (Wc, sc, outc) = res["ref"], res["cy"]
    assert sum(o[0][1] for o in outr) > 0, "the test needs excitatory activity"
    assert np.array_equal(Wr, Wc) and not np.array_equal(Wr, W0)
    for k, v in sr.arrays().items():
        assert np.array_equal(v, sc.arrays()[k]), k
    _same(outr, outc)
    assert subnormals({**sr.arrays(), "W": Wr}) == {}


# ------------------------------------------------------- hand-countable cases
@pytest.mark.parametrize("steps", range(1, 10))
def test_one_input_spike_reaches_each_neuron_after_its_delay(kern, steps):
    """Input 42 spikes at step 0; neuron j's g_e receives W[42, j] at step d_j exactly (then
    decays), and nothing before."""
    p, img = _one_spike(n_exc=5, rest_steps=steps - 1, slots=8)
    D = np.zeros((784, 5), np.uint8)
    D[42] = [0, 1, 3, 5, 7]
    W = np.zeros((784, 5), np.float32)
    W[42] = [0.1, 0.2, 0.3, 0.4, 0.5]
    st = DCState.initial(p, 1e6)  # thresholds out of reach: input only
    tot = kern.present(p, W, st, img, 1, 1.0 / 255, False, PresentBuffers(p), delays=D)
    assert tot == (1, 0, 0)
    for j, d in enumerate(D[42]):
        g = 0.0
        if d <= steps - 1:
            g = float(W[42, j])
            for _ in range(steps - 1 - d):  # the decays after its arrival step
                g = float(flush(g * p.decay_ge))
        assert st.ge_e[j] == g, (j, d)
        pending = st.in_ring[:, j].sum()  # still in the ring: exactly the undelivered weight
        assert pending == (0.0 if d <= steps - 1 else np.float64(W[42, j]))


def test_pending_input_carries_over_and_a_reset_drops_it(kern):
    p, img = _one_spike(n_exc=2, rest_steps=1, slots=8)
    D = np.zeros((784, 2), np.uint8)
    D[42] = [1, 6]
    W = np.zeros((784, 2), np.float32)
    W[42] = [0.25, 0.5]
    st = DCState.initial(p, 1e6)
    buf = PresentBuffers(p)
    kern.present(p, W, st, img, 1, 1.0 / 255, False, buf, delays=D)  # steps 0, 1
    assert st.ge_e[0] == 0.25 and st.ge_e[1] == 0.0
    blank = np.zeros(784, np.uint8)
    kern.present(p, W, st, blank, 2, 1.0 / 255, False, buf, delays=D)  # steps 2, 3
    kern.present(p, W, st, blank, 3, 1.0 / 255, False, buf, delays=D)  # steps 4, 5
    assert st.ge_e[1] == 0.0
    kern.present(p, W, st, blank, 4, 1.0 / 255, False, buf, delays=D)  # step 6: arrives
    assert st.ge_e[1] == flush(0.5 * p.decay_ge)
    # a reset (state_reset) drops what is still pending, as it resets the membranes
    kern.present(p, W, st, img, 5, 1.0 / 255, False, buf, delays=D)
    assert st.in_ring.sum() > 0
    st.reset(p)
    assert st.in_ring.sum() == 0 and st.ring_pos[0] == 0 and st.emit_cnt.sum() == 0


def test_potentiation_reads_each_synapse_trace_at_arrival(kern):
    """Neurons fire at every step; input 42 spikes at step 0. Synapse (42, j) is potentiated
    by nu_post * x_pre(t - d_j) * x_post2: nothing before the spike arrives, then the trace
    of the arrived spike (D&C's Brian 1 STDP on a DelayConnection)."""
    steps, slots = 12, 8
    p, img = _one_spike(n_exc=4, rest_steps=steps - 1, slots=slots, refrac_steps_e=0,
                        lockout_steps_e=0, depress_on_pre=0)
    D = np.zeros((784, 4), np.uint8)
    D[42] = [0, 2, 5, 7]
    W = np.full((784, 4), 0.25, np.float32)
    st = DCState.initial(p, -1e6)  # every neuron fires at every step
    st.post2[:] = 1.0
    tot = kern.present(p, W, st, img, 1, 1.0 / 255, True, PresentBuffers(p), delays=D)
    assert tot[:2] == (1, 4 * steps)
    pre = [1.0]  # the trace of input 42 at steps 0, 1, ...: set at 0, then decays
    for _ in range(steps):
        pre.append(float(flush(pre[-1] * p.decay_pre)))
    for j, d in enumerate(D[42]):
        w = np.float32(0.25)
        for t in range(steps):
            x = pre[t - d] if t >= d else 0.0
            w = np.float32(flush(min(np.float64(w) + p.nu_post * x * p.decay_post2, p.w_max)))
        assert W[42, j] == w, (j, d)
        assert W[42, j] > 0.25
    assert np.all(np.delete(W, 42, axis=0) == 0.25)  # silent inputs: trace 0


def test_depression_is_written_when_all_arrived_with_post1_at_each_arrival(kern):
    """Input 42 spikes at step 0; its row is depressed at step R - 1 (when every synapse has
    received it), synapse (42, j) by nu_pre * x_post1 of the step d_j it arrived."""
    slots = 6
    D = np.zeros((784, 4), np.uint8)
    D[42] = [0, 1, 3, 5]
    for steps in (slots - 1, slots):
        p, img = _one_spike(n_exc=4, rest_steps=steps - 1, slots=slots)
        W = np.full((784, 4), 0.25, np.float32)
        st = DCState.initial(p, 1e6)
        st.post1[:] = 1.0
        buf = PresentBuffers(p)
        kern.present(p, W, st, img, 1, 1.0 / 255, True, buf, delays=D)
        if steps < slots:  # not all arrived yet: nothing written
            assert np.all(W == 0.25) and buf.row_cnt[:steps].sum() == 0
            continue
        assert list(buf.row_cnt[:steps]) == [0] * (slots - 1) + [1] and buf.row_idx[0] == 42
        post1 = [1.0]
        for _ in range(slots):
            post1.append(float(flush(post1[-1] * p.decay_post1)))
        for j, d in enumerate(D[42]):  # x_post1 after the decay of step d
            assert W[42, j] == np.float32(flush(max(0.25 - p.nu_pre * post1[d + 1], 0.0)))
        assert W[42, 3] > W[42, 0]  # a later arrival meets a smaller trace


def test_no_depression_is_due_from_a_presentation_without_learning(kern):
    p, img = _one_spike(n_exc=3, rest_steps=0, slots=4)
    D = np.full((784, 3), 2, np.uint8)
    W = np.full((784, 3), 0.25, np.float32)
    st = DCState.initial(p, 1e6)
    st.post1[:] = 1.0
    buf = PresentBuffers(p)
    kern.present(p, W, st, img, 1, 1.0 / 255, False, buf, delays=D)
    assert st.emit_cnt.sum() == 0
    blank = np.zeros(784, np.uint8)
    for k in range(5):
        kern.present(p, W, st, blank, 2 + k, 1.0 / 255, True, buf, delays=D)
    assert np.all(W == 0.25)


# ----------------------------------------------- one slot == no delays, bit for bit
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("rest_ms", [0.0, 20.0])
def test_one_slot_reproduces_the_network_without_delays_bit_for_bit(kern, variant, rest_ms):
    """delay_slots 1 (input_delay_max_ms = dt: every delay 0) runs the delayed path and gives
    exactly the results of the path without delays."""
    res = {}
    for slots in (0, 1):
        p = make_params(n_exc=20, present_ms=60.0, rest_ms=rest_ms, delay_slots=slots,
                        **VARIANTS[variant])
        D = np.zeros((784, 20), np.uint8) if slots else None
        W, st = _w0(p), DCState.initial(p, 20.0)
        out = _train(kern, p, W, st, D, 3) + _train(kern, p, W, st, D, 1, learn=False)
        res[slots] = (W, st, out)
    (W0, s0, o0), (W1, s1, o1) = res[0], res[1]
    assert sum(o[0][1] for o in o0) > 0
    assert np.array_equal(W0, W1)
    for k in STATE:
        assert np.array_equal(getattr(s0, k), getattr(s1, k)), k
    _same(o0, o1)


def test_the_kernels_refuse_mismatched_delays(kern):
    p = make_params(n_exc=3, present_ms=1.0, delay_slots=4)
    st, buf, W = DCState.initial(p, 20.0), PresentBuffers(p), np.zeros((784, 3), np.float32)
    img = np.zeros(784, np.uint8)
    with pytest.raises(ValueError, match="input delays"):
        kern.present(p, W, st, img, 1, RATE, True, buf)  # missing
    with pytest.raises(ValueError, match="does not fit 4 ring slots"):
        kern.present(p, W, st, img, 1, RATE, True, buf, delays=np.full((784, 3), 4, np.uint8))
    q = make_params(n_exc=3, present_ms=1.0)
    with pytest.raises(ValueError, match="delay_slots is 0"):
        kern.present(q, W, DCState.initial(q, 20.0), img, 1, RATE, True, PresentBuffers(q),
                     delays=np.zeros((784, 3), np.uint8))


# ---------------------------------------------------------------- the config
def test_delays_are_drawn_once_from_the_seed_in_whole_steps():
    cfg = load_config(None, ["network.input_delay_max_ms=10"])
    off = DiehlCookNetwork.from_config(load_config(None, []), 784)
    a, b = (DiehlCookNetwork.from_config(cfg, 784) for _ in range(2))
    assert a.params.delay_slots == 20  # 10 ms / 0.5 ms: delays 0 .. 19 steps
    assert a.input_delays.dtype == np.uint8 and a.input_delays.shape == (784, 100)
    assert np.array_equal(a.input_delays, b.input_delays)  # the run seed's
    counts = np.bincount(a.input_delays.ravel(), minlength=20)
    assert len(counts) == 20 and counts.min() > 0.9 * 784 * 100 / 20  # uniform over 0..19
    assert np.array_equal(a.weights, off.weights)  # drawn after the weights
    assert off.params.delay_slots == 0 and off.input_delays is None
    seeded = DiehlCookNetwork.from_config(
        load_config(None, ["network.input_delay_max_ms=10", "seed=1"]), 784)
    assert not np.array_equal(seeded.input_delays, a.input_delays)
    assert a.spec(32).info["max_delay_steps"] == {"input->exc": 19}
    assert "max_delay_steps" not in off.spec(32).info


@pytest.mark.parametrize("value, fragment", [
    ("-1", "greater than or equal to 0"),
    ("10.3", "10.3 ms is not a whole number of encoding.dt_ms steps (20.6 steps of 0.5 ms)"),
    ("0.25", "not a whole number of encoding.dt_ms steps"),
    ("200", "at most 128 ms (256 steps)"),
])
def test_a_bad_delay_is_a_config_error(value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"network.input_delay_max_ms={value}"])
    (problem,) = info.value.problems
    assert problem.startswith("network.input_delay_max_ms: ") and fragment in problem


# ---------------------------------------------------------- model file, resume
def test_the_model_file_carries_the_delays_and_a_trained_model_infers_with_them(tmp_path):
    cfg = load_config(None, DELAYED)
    first = run_experiment(cfg, tmp_path / "a")
    with np.load(tmp_path / "a" / "model.npz") as z:
        delays = z["input_delays"].copy()
    n_in = load_data(cfg).n_in
    assert np.array_equal(delays, DiehlCookNetwork.from_config(cfg, n_in).input_delays)
    # another seed draws other delays; from the model file, the model's are used
    model = f"network.init_model={tmp_path / 'a' / 'model.npz'}"
    other = load_config(None, DELAYED + ["seed=7", model])
    assert not np.array_equal(DiehlCookNetwork.from_config(other, n_in).input_delays, delays)
    assert np.array_equal(build_network(other, n_in).input_delays, delays)
    # the trained model labelled and tested again: the same accuracy
    again = run_experiment(load_config(None, DELAYED + [model, "run.phases=[label, infer]"]),
                           tmp_path / "b")
    assert again["accuracy"] == first["accuracy"]
    with np.load(tmp_path / "b" / "model.npz") as z:
        assert np.array_equal(z["input_delays"], delays)
    # a model and a config that disagree on delays: a clear error
    with pytest.raises(RunError, match="trained with input delays"):
        run_experiment(load_config(None, TINY + [
            f"network.init_model={tmp_path / 'a' / 'model.npz'}", "run.phases=[label, infer]"]),
            tmp_path / "c")
    run_experiment(load_config(None, TINY + ["run.phases=[train]"]), tmp_path / "d")
    with pytest.raises(RunError, match="trained without input delays"):
        run_experiment(load_config(None, DELAYED + [
            f"network.init_model={tmp_path / 'd' / 'model.npz'}", "run.phases=[label, infer]"]),
            tmp_path / "e")


def test_resume_with_delays_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    over = ["run.checkpoint_every=10", "encoding.rest_ms=5", "network.state_reset=false"]
    cfg = load_config(None, DELAYED + over)
    ref = run_experiment(cfg, tmp_path / "a")
    run_killed_after(cfg, tmp_path / "b", monkeypatch, 25)
    with np.load(tmp_path / "b" / "checkpoint.npz") as z:
        assert int(z["position"]) == 20 and "net_input_delays" in z.files
    got = resume_experiment(tmp_path / "b")
    with np.load(tmp_path / "a" / "model.npz") as za, np.load(tmp_path / "b" / "model.npz") as zb:
        for k in ("weights", "theta", "input_delays"):
            assert np.array_equal(za[k], zb[k]), k
    assert got["frontend"] == ref["frontend"] and got["accuracy"] == ref["accuracy"]
