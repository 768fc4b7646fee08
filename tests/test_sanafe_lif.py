"""SANA-FE's neuron (snn_frontend.sanafe_lif) on hand-counted cases: the order leak,
truncation, bias and input, threshold, reset; when a neuron counts as updated; float32
parameters; a network run giving the `:active` streams the chip counts."""
import numpy as np
import pytest

from accel_sim import load_hardware, simulate
from snn_frontend.sanafe_lif import SanafeLif, run_sanafe_lif, sanafe_step
from snn_frontend.spec import NetworkSpec, Population, Projection, SpecError
from snn_frontend.trace import active_stream


def _steps(p: SanafeLif, n_steps, current=None, mode="hard"):
    arrays = p.arrays("x", 1)
    v = np.zeros(1)
    out = []
    for t in range(n_steps):
        i = np.zeros(1) if current is None else np.array([current[t]], float)
        fired, updated = sanafe_step(v, i, np.array([current is not None and current[t] != 0]),
                                     t == 0, arrays, mode)
        out.append((float(v[0]), bool(fired[0]), bool(updated[0])))
    return out


def test_leak_skips_the_first_step_and_a_bias_drives_the_neuron_to_its_threshold():
    # v: 10; 5 + 10 = 15; 7.5 + 10 = 17.5; 8.75 + 10 = 18.75 > 18: fires, reset to 0; 10
    out = _steps(SanafeLif(threshold=18.0, leak_decay=0.5, bias=10.0), 5)
    assert [v for v, _, _ in out] == [10.0, 15.0, 17.5, 0.0, 10.0]
    assert [f for _, f, _ in out] == [False, False, False, True, False]
    assert all(u for _, _, u in out)  # a bias updates the neuron every step


def test_the_leaked_membrane_is_truncated_toward_zero_to_1_64():
    # 1; 0.7 -> trunc(44.8) / 64 = 0.6875, + 1; 1.6875 x 0.7 = 1.18125 -> 75 / 64 + 1
    out = _steps(SanafeLif(threshold=100.0, leak_decay=0.7, bias=1.0), 3)
    assert [v for v, _, _ in out] == [1.0, 1.6875, 75 / 64 + 1]
    neg = _steps(SanafeLif(threshold=100.0, leak_decay=0.7), 2, current=[-1.0, 0.0])
    assert neg[1][0] == -44 / 64  # -44.8 truncated toward zero


def test_soft_reset_subtracts_and_a_reset_value_is_kept():
    soft = _steps(SanafeLif(threshold=5.0, bias=3.0), 3, mode="soft")
    assert [v for v, _, _ in soft] == [3.0, 1.0, 4.0]  # 6 > 5 fires: 6 - 5 = 1
    hard = _steps(SanafeLif(threshold=5.0, bias=3.0, reset=2.0), 3)
    assert [v for v, _, _ in hard] == [3.0, 2.0, 5.0]  # 6 fires: reset to 2; 5 is not > 5


def test_updated_means_state_input_or_bias():
    # input at step 0, then nothing: updated while |v| > 0 (it leaks away), then idle
    out = _steps(SanafeLif(threshold=100.0, leak_decay=0.25), 4, current=[1.0, 0, 0, 0])
    assert [u for _, _, u in out] == [True, True, True, True]  # 1, 0.25, 1/16, 1/64
    out = _steps(SanafeLif(threshold=100.0, leak_decay=0.25), 6, current=[1.0, 0, 0, 0, 0, 0])
    assert [v for v, _, _ in out][-2:] == [0.0, 0.0]  # 1/256 truncates to 0
    assert [u for _, _, u in out][-1] is False
    idle = _steps(SanafeLif(threshold=1.0), 3)
    assert [u for _, _, u in idle] == [False, False, False]


def test_parameters_are_float32_as_sanafe_stores_them():
    """A weight and a threshold of 0.1 are the same float32: v = 0.1f is not > 0.1f (in
    double, 0.1f > 0.1 would fire)."""
    spec = NetworkSpec((Population("in", 1, "input"), Population("a", 1, "lif")),
                       (Projection("in", "a", "dense", 8),))
    trace, spikes = run_sanafe_lif(spec, {"in->a": [[0.1]]}, {"a": SanafeLif(threshold=0.1)},
                                   3, {"in": np.array([[1], [0], [0]], bool)})
    assert not spikes["a"].any()
    trace2, spikes2 = run_sanafe_lif(spec, {"in->a": [[0.1]]},
                                     {"a": SanafeLif(threshold=0.0999)}, 3,
                                     {"in": np.array([[1], [0], [0]], bool)})
    assert spikes2["a"].tolist() == [[False], [True], [False]]  # arrives a step later


def test_a_zero_weight_synapse_still_updates_its_target_and_the_chip_counts_it():
    """SANA-FE connects every pair of a dense layer: a spike reaching b through a zero
    weight updates b (the update energy), though its membrane stays 0."""
    spec = NetworkSpec((Population("in", 2, "input"), Population("a", 2, "lif")),
                       (Projection("in", "a", "dense", 8),))
    raster = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], bool)
    trace, spikes = run_sanafe_lif(spec, {"in->a": [[0.0, 2.0], [0.0, 0.0]]},
                                   {"a": SanafeLif(threshold=10.0, leak_decay=0.5)}, 4,
                                   {"in": raster})
    p = next(iter(trace))
    st = active_stream("a")
    # step 1: both reached (a0 by a zero weight); a1 = 2; step 2: a1 = 1 (leak), a0 idle;
    # step 3: both reached again (input 1's zero weights); a1 = 0.5
    assert p.counts[st].tolist() == [0, 2, 1, 2]
    hw = load_hardware("loihi_sanafe")
    r = simulate(trace, hw, placement={"a": np.array([0, 0])})
    assert r.counts["core.neuron_update_active"] == 5
    assert r.counts["core.neuron_update_idle"] == 2 * 4 - 5


def test_errors_name_the_population_and_the_projection():
    spec = NetworkSpec((Population("in", 4, "input", state_vars=(), shape=(1, 2, 2)),
                        Population("c", 2, "lif", shape=(2, 1, 1))),
                       (Projection("in", "c", "conv2d", 8, kernel=2),))
    with pytest.raises(SpecError, match="no SanafeLif for population.*c"):
        run_sanafe_lif(spec, {}, {}, 2)
    with pytest.raises(SpecError, match=r"in->c: a kernel of 4 weights, expected 8"):
        run_sanafe_lif(spec, {"in->c": np.ones(4)}, {"c": SanafeLif(1.0)}, 2)
    with pytest.raises(SpecError, match="reset_mode 'sometimes'"):
        run_sanafe_lif(spec, {"in->c": np.ones(8)},
                       {"c": SanafeLif(1.0, reset_mode="sometimes")}, 2)


def test_price_warns_when_a_state_rule_chip_replays_a_trace_without_active_streams():
    import warnings

    from accel_sim import SpikeTrace, load_energy_table, price
    from accel_sim.errors import PricingWarning

    spec = NetworkSpec((Population("in", 2, "input"), Population("a", 2, "lif")),
                       (Projection("in", "a", "dense", 8),))
    raster = np.array([[1, 0], [0, 0]], bool)
    hw = load_hardware("loihi_sanafe")
    place = {"a": np.array([0, 0])}
    bare = simulate(SpikeTrace.from_rasters(spec, {"in": raster}), hw, placement=place)
    assert bare.without_active == ("a",)
    with pytest.warns(PricingWarning, match=r"update_rule: state.*no ':active' stream for a"):
        price(bare, load_energy_table("sanafe_loihi"))
    trace, _ = run_sanafe_lif(spec, {"in->a": np.ones((2, 2))}, {"a": SanafeLif(5.0)}, 2,
                              {"in": raster})
    full = simulate(trace, hw, placement=place)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the frontend wrote the stream: nothing to say
        price(full, load_energy_table("sanafe_loihi"))
    edge = simulate(SpikeTrace.from_rasters(spec, {"in": raster}), load_hardware("edge"))
    assert edge.without_active == ()  # an `input` rule chip needs no stream


# ------------------------------------------------------------ NIR: integration sanafe
def _nir_conv_if(rng):
    """Input 1x9x9 -> Conv2d 4x3x3 stride 2 -> IF -> Flatten -> Linear 64->5 -> IF."""
    nir = pytest.importorskip("nir")
    k = rng.integers(-60, 120, (4, 1, 3, 3)).astype(np.float32)
    d = rng.integers(-30, 90, (5, 64)).astype(np.float32)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 9, 9])),
        "conv": nir.Conv2d(input_shape=(9, 9), weight=k, stride=2, padding=0, dilation=1,
                           groups=1, bias=np.zeros(4, np.float32)),
        "if1": nir.IF(r=np.ones((4, 4, 4), np.float32),
                      v_threshold=np.full((4, 4, 4), 150.0, np.float32)),
        "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 4, 4])}),
        "fc": nir.Linear(weight=d),
        "if2": nir.IF(r=np.ones(5, np.float32), v_threshold=np.full(5, 120.0, np.float32)),
        "output": nir.Output(output_type=np.array([5]))},
        edges=[("input", "conv"), ("conv", "if1"), ("if1", "flat"), ("flat", "fc"),
               ("fc", "if2"), ("if2", "output")])
    spec = NetworkSpec((Population("input", 81, "input", state_vars=(), shape=(1, 9, 9)),
                        Population("if1", 64, "lif", shape=(4, 4, 4)),
                        Population("if2", 5, "lif")),
                       (Projection("input", "if1", "conv2d", 8, kernel=3, stride=2),
                        Projection("if1", "if2", "dense", 8)))
    return g, spec, {"input->if1": k, "if1->if2": d.T}


@pytest.mark.parametrize("backend", ["numpy", None])
def test_nir_integration_sanafe_runs_sanafes_neuron(backend):
    """An imported IF network with `sanafe` integration gives, sample by sample, the spikes
    and updated neurons of `run_sanafe_lif` on the same graph (which equal SANA-FE's:
    test_sanafe_parity), on the reference and the compiled kernels."""
    from snn_frontend.nir_model import read_nir

    rng = np.random.default_rng(3)
    g, spec, weights = _nir_conv_if(rng)
    model = read_nir(g, 1e-3, {"if": ("sanafe", "zero")})
    x = rng.random((3, 30, 81)) < 0.3
    spikes, _ = model.forward(x, backend=backend)
    neurons = {"if1": SanafeLif(150.0), "if2": SanafeLif(120.0)}
    for b in range(3):
        trace, ref = run_sanafe_lif(spec, weights, neurons, 30, {"input": x[b]})
        p = next(iter(trace))
        for name in ("if1", "if2"):
            assert np.array_equal(spikes[name][b], ref[name]), (b, name)
            assert model.active[name][b].sum(axis=1).tolist() == \
                p.counts[active_stream(name)].tolist(), (b, name)
    assert spikes["if1"].any() and spikes["if2"].any()


def test_a_run_with_sanafe_neurons_on_a_state_rule_chip_prices_without_warning(tmp_path):
    """`accel-sim run` of the NIR network on loihi_sanafe: with `sanafe` integration the
    trace carries the updated neurons (the chip's active updates are their count); with
    the default euler integration stats.json warns that they are missing."""
    nir = pytest.importorskip("nir")
    from accel_sim import load_config, run_experiment

    rng = np.random.default_rng(3)
    g, _, _ = _nir_conv_if(rng)
    nir.write(tmp_path / "net.nir", g)
    np.save(tmp_path / "x.npy", rng.random((2, 30, 81)) < 0.3)
    base = ["network.model=nir", f"network.path={tmp_path / 'net.nir'}", "network.dt_ms=1.0",
            "data.dataset=events", f"data.path={tmp_path / 'x.npy'}", "encoding.present_ms=30",
            "hardware=loihi_sanafe", "energy=sanafe_loihi"]
    stats = run_experiment(load_config(None, base + ["network.nir_integration={if: sanafe}"]),
                           tmp_path / "sanafe", progress=False)
    assert stats["hardware"]["warnings"] == []
    from snn_frontend.nir_model import read_nir

    model = read_nir(g, 1e-3, {"if": ("sanafe", "zero")})
    model.forward(np.load(tmp_path / "x.npy"))
    counts = stats["hardware"]["phases"]["infer"]["counts"]
    assert counts["core.neuron_update_active"] == sum(int(a.sum()) for a in model.active.values())
    plain = run_experiment(load_config(None, base), tmp_path / "plain", progress=False)
    assert any("no ':active' stream for if1, if2" in w for w in plain["hardware"]["warnings"])
