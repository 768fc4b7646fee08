"""Networks imported from NIR: the discretisation rules, spike agreement with snnTorch and
Norse on their own exports (fixtures written by benchmarks/nir_frameworks.py), the run on
the chip, and clear errors for what cannot be mapped."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_nir_kernels

nir = pytest.importorskip("nir")

from accel_sim import load_config, run_experiment
from accel_sim.cli import main
from accel_sim.families.nir import nir_spec
from snn_frontend.nir_model import NirImportError, read_nir

FIX = Path(__file__).resolve().parent / "fixtures" / "nir"


def graph(neuron, n_in=2, n=1, weight=None, extra_nodes=None, extra_edges=()):
    w = np.ones((n, n_in), np.float32) if weight is None else weight
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc": nir.Linear(weight=w), "neuron": neuron,
             "output": nir.Output(output_type={"output": np.array([n])})}
    nodes.update(extra_nodes or {})
    edges = [("input", "fc"), ("fc", "neuron"), ("neuron", "output"), *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def lif(n=1, tau=10e-3, r=1.0, th=1.0):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n),
                   v_threshold=np.full(n, th), v_reset=np.zeros(n))


@pytest.mark.parametrize("fw,dt_ms,policy", [("snntorch", 0.1, ("euler", "subtract")),
                                              ("norse", 0.001, ("euler", "zero"))])
def test_identical_spikes_to_the_framework(fw, dt_ms, policy):
    model = read_nir(FIX / f"{fw}.nir", dt_ms * 1e-3, {"lif": policy})
    ours, _ = model.forward(np.load(FIX / f"{fw}_input.npy"))
    assert set(ours) == {"1", "3"}
    for name, spikes in ours.items():
        theirs = np.load(FIX / f"{fw}_spikes_{name}.npy")
        assert theirs.sum() > 100  # every layer fires
        np.testing.assert_array_equal(spikes, theirs)


@pytest.mark.parametrize("fw,dt_ms,policy", [
    ("snntorch", 0.1, {"lif": ("euler", "subtract")}),
    ("norse", 0.001, {"lif": ("euler", "zero")}),
    ("sinabs", 1.0, {"if": ("euler", "subtract")})])
def test_identical_spikes_to_the_framework_on_a_conv_network(fw, dt_ms, policy):
    """Conv (padding, stride), pools, Flatten and the dense readout exported by each
    framework (benchmarks/nir_conv_frameworks.py) spike as in the framework at every layer,
    step and neuron."""
    model = read_nir(FIX / f"{fw}_conv.nir", dt_ms * 1e-3, policy)
    ours, _ = model.forward(np.load(FIX / f"{fw}_conv_input.npy"))
    assert any(p.shape is not None for p in model.populations)
    for name, spikes in ours.items():
        theirs = np.load(FIX / f"{fw}_conv_spikes_{name}.npy")
        assert theirs.sum() > 10  # every layer fires
        np.testing.assert_array_equal(spikes, theirs)


def test_euler_and_exact_integration_by_hand():
    """One neuron, weight 1, tau 10 ms, r 2, dt 1 ms, an input spike at step 0 only."""
    x = np.zeros((1, 3, 1), bool)
    x[0, 0, 0] = True
    for integration, decay in (("euler", 1 - 0.1), ("exact", math.exp(-0.1))):
        m = read_nir(graph(lif(r=2.0, th=100.0), n_in=1), 1e-3, {"lif": (integration, "zero")})
        p = m.populations[0]
        assert p.decay[0] == pytest.approx(decay, rel=1e-6)
        gain = 0.1 * 2 if integration == "euler" else (1 - math.exp(-0.1)) * 2
        assert p.gain[0] == pytest.approx(gain, rel=1e-6)
        _, v = m.forward(x.astype(bool))  # the last population's spikes (it spikes)
        assert not v.any()


def test_reset_zero_and_subtract():
    """Input current 0.7 every step into a neuron with threshold 1 and no leak (IF, r 1)."""
    neuron = nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))
    g = graph(neuron, n_in=1, weight=np.full((1, 1), 0.7, np.float32))
    x = np.ones((1, 5, 1), bool)
    zero, _ = read_nir(g, 1e-3, {"if": ("euler", "zero")}).forward(x)
    sub, _ = read_nir(g, 1e-3, {"if": ("euler", "subtract")}).forward(x)
    # zero: 0.7, 1.4 (spike, v = 0), 0.7, 1.4 (spike), 0.7
    assert zero["neuron"][0, :, 0].tolist() == [False, True, False, True, False]
    # subtract (at the next update): 0.7, 1.4 (spike), 2.1 - 1 = 1.1 (spike), 1.8 - 1 = 0.8,
    # 1.5 (spike)
    assert sub["neuron"][0, :, 0].tolist() == [False, True, True, False, True]


def test_cuba_lif_current_and_scale_and_bias():
    neuron = nir.CubaLIF(tau_syn=np.full(1, 5e-3), tau_mem=np.full(1, 10e-3), r=np.ones(1),
                         v_leak=np.zeros(1), v_threshold=np.full(1, 100.0),
                         v_reset=np.zeros(1), w_in=np.full(1, 2.0))
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1])}),
        "scale": nir.Scale(scale=np.full(1, 3.0)),
        "fc": nir.Affine(weight=np.ones((1, 1), np.float32), bias=np.full(1, 0.5, np.float32)),
        "neuron": neuron, "output": nir.Output(output_type={"output": np.array([1])})},
        edges=[("input", "scale"), ("scale", "fc"), ("fc", "neuron"), ("neuron", "output")])
    m = read_nir(g, 1e-3, {"cuba_lif": ("euler", "zero")})
    p = m.populations[0]
    assert p.incoming[0].W[0, 0] == pytest.approx(3.0) and p.bias[0] == pytest.approx(0.5)
    assert p.syn_decay[0] == pytest.approx(0.8) and p.w_in[0] == pytest.approx(2.0)


def test_recurrent_graph_uses_the_previous_step():
    """A neuron that excites itself: the recurrent edge carries last step's spike."""
    neuron = nir.IF(r=np.ones(1), v_threshold=np.full(1, 0.5), v_reset=np.zeros(1))
    g = graph(neuron, n_in=1, extra_nodes={"rec": nir.Linear(weight=np.ones((1, 1),
                                                                             np.float32))},
              extra_edges=[("neuron", "rec"), ("rec", "neuron")])
    m = read_nir(g, 1e-3, {"if": ("euler", "zero")})
    x = np.zeros((1, 4, 1), bool)
    x[0, 0, 0] = True
    s, _ = m.forward(x)
    assert s["neuron"][0, :, 0].tolist() == [True, True, True, True]  # it keeps itself going


def test_unmappable_nodes_are_named():
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                            "integ": nir.I(r=np.ones(2)),
                            "output": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("input", "integ"), ("integ", "output")])
    with pytest.raises(NirImportError, match="node 'integ': I cannot be mapped"):
        read_nir(g, 1e-3)
    with pytest.raises(NirImportError, match="no NIR file"):
        read_nir("/nonexistent.nir", 1e-3)


def csnn(rng, c_in=2, hw=(10, 10), threshold=0.6):
    """input (2, 10, 10) -> Conv2d 3x3 stride 1 pad 1 (4 ch) -> LIF (one value per parameter)
    -> SumPool2d 2 -> IF -> Flatten -> Linear -> LI: a CSNN with every map node."""
    k1 = (rng.random((4, c_in, 3, 3)) * 0.5).astype(np.float32)
    w2 = (rng.standard_normal((3, 4 * 5 * 5)) * 0.3).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([c_in, *hw])}),
        "conv": nir.Conv2d(input_shape=hw, weight=k1, stride=1, padding=1, dilation=1, groups=1,
                           bias=np.full(4, 0.05, np.float32)),
        "lif": nir.LIF(tau=np.array([5e-3]), r=np.array([1.0]), v_leak=np.array([0.0]),
                       v_threshold=np.array([threshold]), v_reset=np.array([0.0])),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "if": nir.IF(r=np.ones((4, 5, 5)), v_threshold=np.full((4, 5, 5), 1.5),
                     v_reset=np.zeros((4, 5, 5))),
        "flat": nir.Flatten(input_type={"input": np.array([4, 5, 5])}),
        "fc": nir.Linear(weight=w2),
        "out": nir.LI(tau=np.full(3, 5e-3), r=np.ones(3), v_leak=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "if"),
             ("if", "flat"), ("flat", "fc"), ("fc", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), k1, w2


def _conv_by_hand(x, k, bias):
    """(C, H, W) conv, 3x3, stride 1, padding 1, loop by loop."""
    C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((k.shape[0], H, W), np.float64)
    for o in range(k.shape[0]):
        for y in range(H):
            for z in range(W):
                out[o, y, z] = (xp[:, y:y + 3, z:z + 3] * k[o]).sum() + bias[o]
    return out


def test_a_conv_network_is_imported_as_maps_and_runs_by_hand():
    """The conv layer's input current equals a convolution done by hand; the shapes flow
    through conv, pool, flatten; scalar neuron parameters broadcast to the map."""
    rng = np.random.default_rng(4)
    g, k1, _ = csnn(rng)
    m = read_nir(g, 1e-3, {"lif": ("euler", "zero"), "if": ("euler", "zero")})
    by = {p.name: p for p in m.populations}
    assert [p.name for p in m.populations] == ["lif", "if", "out"]
    assert (by["lif"].shape, by["if"].shape, by["out"].shape) == ((4, 10, 10), (4, 5, 5), None)
    assert by["lif"].size == 400 and by["lif"].decay.shape == (400,)  # scalars broadcast
    assert [sy.connectivity for sy in by["lif"].incoming] == ["conv2d"]
    assert [sy.connectivity for sy in by["if"].incoming] == ["sumpool2d"]
    # one input step, the LIF's first update: v = dt/tau (I) with I = conv(x) + bias
    x = rng.random((1, 1, 200)) < 0.3
    from snn_frontend import _nir_reference as ref
    I = np.zeros((1, 400), np.float32)
    ref.set_bias(I, by["lif"].bias, 0, 1)
    sy = by["lif"].incoming[0]
    adds = ref.add_spiking_csr(I, x[:, 0].view(np.uint8), sy.ptr, sy.post, sy.w, 0, 1)
    want = _conv_by_hand(x[0, 0].reshape(2, 10, 10).astype(float), k1, np.full(4, 0.05))
    np.testing.assert_allclose(I[0], want.ravel(), rtol=1e-5, atol=1e-6)
    # every synapse of a spike whose 3x3 field lands in the map, for each of 4 channels
    ys, xs = np.divmod(np.flatnonzero(x[0, 0]) % 100, 10)
    field = (np.minimum(ys + 1, 9) - np.maximum(ys - 1, 0) + 1) * (
        np.minimum(xs + 1, 9) - np.maximum(xs - 1, 0) + 1)
    assert adds == 4 * int(field.sum())


@requires_nir_kernels
def test_conv_kernels_equal_the_reference_at_any_thread_count():
    rng = np.random.default_rng(5)
    g, _, _ = csnn(rng, threshold=0.3)
    policy = {"lif": ("exact", "subtract"), "if": ("euler", "zero")}
    x = rng.random((7, 25, 200)) < 0.2
    ref = read_nir(g, 1e-3, policy)
    s_ref, o_ref = ref.forward(x, backend="numpy")
    assert s_ref["lif"].sum() > 100 and s_ref["if"].sum() > 10
    for threads in (1, 2, 3):
        m = read_nir(g, 1e-3, policy)
        s, o = m.forward(x, backend="cython", threads=threads)
        assert m.synops == ref.synops
        for name in s_ref:
            np.testing.assert_array_equal(s[name], s_ref[name])
        np.testing.assert_array_equal(o, o_ref)


def test_a_conv_network_on_the_chip_counts_what_the_kernels_add(tmp_path):
    """The chip's synaptic operations of a CSNN run equal the kernels' additions (conv and
    pool: the synapses of every spike that land in the map)."""
    rng = np.random.default_rng(6)
    g, _, _ = csnn(rng)
    nir.write(tmp_path / "csnn.nir", g)
    x = rng.random((6, 20, 200)) < 0.2
    np.save(tmp_path / "x.npy", x)
    cfg = load_config(None, ["network.model=nir", f"network.path={tmp_path / 'csnn.nir'}",
                             "network.dt_ms=1.0", "data.dataset=events",
                             f"data.path={tmp_path / 'x.npy'}", "encoding.present_ms=20",
                             "hardware=edge", "energy=generic_45nm"])
    stats = run_experiment(cfg, tmp_path / "run", progress=False)
    front = stats["frontend"]["infer"]
    counts = stats["hardware"]["phases"]["infer"]["counts"]
    assert counts["core.synop_conv"] + counts["core.synop"] == front["synops"] > 0
    assert stats["memory"]["weights"] == {"input->lif": 4 * 2 * 9, "lif->if": 0,
                                          "if->out": 3 * 100}


def test_shape_mismatches_name_the_node_and_the_shapes():
    rng = np.random.default_rng(7)
    g, _, _ = csnn(rng)
    g.nodes["fc"] = nir.Linear(weight=np.zeros((3, 99), np.float32))
    with pytest.raises(NirImportError, match="node 'fc': weights \\(3, 99\\) \\(out, in\\) take "
                                             "99 inputs, its input has shape \\(4, 5, 5\\)"):
        read_nir(g, 1e-3)
    g, _, _ = csnn(rng)
    g.nodes["lif"] = lif(7)  # 7 neurons' parameters for a map of 400
    with pytest.raises(NirImportError, match="node 'lif': r has 7 values for 400 neurons"):
        read_nir(g, 1e-3)


def test_zero_weights_become_sparse_connectivity():
    w = np.zeros((50, 40), np.float32)
    w[np.arange(50), np.arange(50) % 40] = 1.0  # one weight per target
    m = read_nir(graph(lif(50), n_in=40, n=50, weight=w), 1e-3)
    spec = nir_spec(m, 32)
    assert spec.projections[0].connectivity == "sparse"
    assert len(spec.projections[0].pairs[0]) == 50
    dense = nir_spec(read_nir(graph(lif(50), n_in=40, n=50), 1e-3), 32)
    assert dense.projections[0].connectivity == "dense"


def _events_config(tmp_path, fw="snntorch", extra=()):
    x = np.load(FIX / f"{fw}_input.npy")
    np.savez(tmp_path / "ev.npz", spikes=x, labels=np.arange(len(x)) % 4)
    return load_config(None, ["network.model=nir", f"network.path={FIX / (fw + '.nir')}",
                              "network.dt_ms=0.1", "network.nir_reset={lif: subtract}",
                              "data.dataset=events", f"data.path={tmp_path / 'ev.npz'}",
                              "encoding.present_ms=30", "hardware=edge", "energy=generic_45nm",
                              "run.trace_phases=[infer]", *extra])


def test_run_prices_the_frameworks_spikes_on_the_chip(tmp_path):
    cfg = _events_config(tmp_path)
    stats = run_experiment(cfg, tmp_path / "run", progress=False)
    theirs = sum(int(np.load(FIX / f"snntorch_spikes_{k}.npy").sum()) for k in ("1", "3"))
    counts = stats["hardware"]["phases"]["infer"]["counts"]
    assert counts["core.spike_out"] == theirs  # the chip replays the framework's spikes
    assert counts["chip.input_spike"] == int(np.load(FIX / "snntorch_input.npy").sum())
    assert stats["accuracy"]["n_test"] == 8
    assert (tmp_path / "run" / "energy_breakdown.png").is_file()


def test_inference_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Checkpoints after the batch passing each multiple of run.checkpoint_every: a run
    killed in its third batch resumes from the samples done to the same figures."""
    from accel_sim.families import nir as family

    x = np.load(FIX / "snntorch_input.npy")
    many = np.concatenate([x] * 80)  # 640 samples: three batches of 256
    np.savez(tmp_path / "ev.npz", spikes=many, labels=np.arange(len(many)) % 4)
    sets = ["network.model=nir", f"network.path={FIX / 'snntorch.nir'}", "network.dt_ms=0.1",
            "network.nir_reset={lif: subtract}", "data.dataset=events",
            f"data.path={tmp_path / 'ev.npz'}", "encoding.present_ms=30", "hardware=edge",
            "energy=generic_45nm", "run.checkpoint_every=300"]
    full = run_experiment(load_config(None, sets), tmp_path / "full", progress=False)
    calls = {"n": 0}
    real = family.NirModel.forward

    def dies(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(family.NirModel, "forward", dies)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_config(None, sets), tmp_path / "k", progress=False)
    monkeypatch.setattr(family.NirModel, "forward", real)
    with np.load(tmp_path / "k" / "checkpoint.npz") as z:
        assert int(z["position"]) == 512  # the batch that passed 300 ended at 512
    assert main(["run", "--resume", str(tmp_path / "k"), "--no-progress"]) == 0
    again = json.loads((tmp_path / "k" / "stats.json").read_text())
    assert again["accuracy"] == full["accuracy"]
    assert again["frontend"] == json.loads(json.dumps(full["frontend"]))
    assert again["hardware"]["phases"] == json.loads(json.dumps(full["hardware"]["phases"]))


def test_export_of_an_imported_network_writes_the_graph_it_imported(tmp_path):
    from accel_sim.export import export_nir

    run_experiment(_events_config(tmp_path), tmp_path / "run", progress=False)
    again = nir.read(export_nir(tmp_path / "run"))
    original = nir.read(FIX / "snntorch.nir")
    assert set(again.nodes) == set(original.nodes) and again.edges == original.edges


def test_cli_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"version": 1, "network": {"model": "nir"}}))
    assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "network.path" in capsys.readouterr().err
    cfg.write_text(json.dumps({"version": 1, "network": {"model": "nir", "path": "/none.nir"},
                               "data": {"dataset": "events", "path": "/none.npz"}}))
    assert main(["run", str(cfg), "--out", str(tmp_path / "o2")]) == 2
    assert "data.path /none.npz does not exist" in capsys.readouterr().err  # data first
    np.save(tmp_path / "in.npy", np.zeros((2, 5, 3), bool))
    cfg.write_text(json.dumps({"version": 1, "network": {"model": "nir", "path": "/none.nir"},
                               "data": {"dataset": "events", "path": str(tmp_path / "in.npy")}}))
    assert main(["run", str(cfg), "--out", str(tmp_path / "o3")]) == 2
    assert "no NIR file /none.nir" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_export_and_reimport_give_the_same_spikes(tmp_path):
    """A trained surrogate network, exported to NIR and imported again, spikes exactly as
    the network itself on the same input."""
    from accel_sim.export import export_nir
    from accel_sim.families.surrogate import REIMPORT_SETTINGS, SurrogateFamily
    from snn_frontend.surrogate import spikeset_events

    sets = ["network.model=surrogate", "data.dataset=digits", "data.train_samples=128",
            "data.test_samples=64", "network.hidden_sizes=[40,30]", "learning.batch_size=32",
            "learning.epochs=2", "encoding.present_ms=30"]
    run_experiment(load_config(None, sets), tmp_path / "run", progress=False)
    path = export_nir(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "again.nir")]) == 0
    cfg = load_config(tmp_path / "run" / "config.resolved.yaml",
                      [f"network.init_model={tmp_path / 'run' / 'model.npz'}"])
    family = SurrogateFamily()
    data = family.load_data(cfg)
    net = family.build(cfg, data)
    idx = np.arange(len(data.test))
    rec = net.forward(spikeset_events(data.test, idx), train=False)
    policy = {k: (v, REIMPORT_SETTINGS["nir_reset"].get(k))
              for k, v in REIMPORT_SETTINGS["nir_integration"].items()}
    model = read_nir(path, cfg.encoding.dt_ms * 1e-3, policy)
    spikes, readout = model.forward(data.test.batch(idx))
    B, T = len(idx), data.test.steps
    for k, layer in enumerate(rec.layers):
        raster = np.zeros((B * T, layer.size), bool)
        raster[np.repeat(np.arange(B * T), np.diff(layer.spikes.off)), layer.spikes.idx] = True
        assert raster.sum() > 50
        np.testing.assert_array_equal(spikes[f"hidden_{k + 1}"], raster.reshape(B, T, -1))
    np.testing.assert_allclose(readout, rec.O, atol=1e-5)


def test_snntorch_runs_our_snntorch_form_export_to_our_spikes():
    """A trained network exported with `--format nir-snntorch` (no Delay, no LI: what
    snnTorch's import_from_nir loads), run by snnTorch itself (fixture written by
    benchmarks/nir_snntorch_export.py): our import of the same file with the settings the
    export names gives snnTorch's spikes in every layer, the readout included."""
    from accel_sim.families.surrogate import SNNTORCH_DT_MS, SNNTORCH_REIMPORT_SETTINGS

    s = SNNTORCH_REIMPORT_SETTINGS
    policy = {k: (v, s["nir_reset"].get(k)) for k, v in s["nir_integration"].items()}
    model = read_nir(FIX / "ours_snntorch_form.nir", SNNTORCH_DT_MS * 1e-3, policy)
    ours, _ = model.forward(np.load(FIX / "ours_snntorch_form_input.npy"))
    assert list(ours) == ["l01_hidden", "l02_hidden", "l03_readout"]
    for name, spikes in ours.items():
        theirs = np.load(FIX / f"ours_snntorch_form_spikes_{name}.npy")
        assert theirs.sum() > 100
        np.testing.assert_array_equal(spikes, theirs)


def test_the_snntorch_form_has_only_nodes_snntorch_imports(tmp_path):
    """Linear and LIF in name order, LIF parameters as snnTorch's importer reads them
    (dt 0.1 ms: beta = 1 - dt / tau, r dt / tau = 1), beside the exact form's Delay and LI."""
    from accel_sim.export import export_nir

    sets = ["network.model=surrogate", "data.dataset=digits", "data.train_samples=64",
            "data.test_samples=16", "network.hidden_sizes=[12]", "learning.batch_size=32",
            "learning.epochs=1", "encoding.present_ms=20"]
    run_experiment(load_config(None, sets), tmp_path / "run", progress=False)
    assert main(["export", str(tmp_path / "run"), "--format", "nir-snntorch"]) == 0
    g = nir.read(str(tmp_path / "run" / "model.snntorch.nir"))
    kinds = {name: type(node).__name__ for name, node in g.nodes.items()}
    assert kinds == {"input": "Input", "l01_fc": "Linear", "l01_hidden": "LIF",
                     "l02_fc": "Linear", "l02_readout": "LIF", "output": "Output"}
    lif = g.nodes["l01_hidden"]
    beta = math.exp(-1.0 / 10.0)  # dt 1 ms, tau_mem 10 ms
    np.testing.assert_allclose(1 - 1e-4 / lif.tau, beta, rtol=1e-12)
    np.testing.assert_allclose(lif.r * 1e-4 / lif.tau, 1.0, rtol=1e-12)
    exact = nir.read(str(export_nir(tmp_path / "run")))
    assert {type(n).__name__ for n in exact.nodes.values()} >= {"Delay", "LI"}


def test_dc_family_has_no_nir_form(tmp_path, capsys):
    run_experiment(load_config(None, ["data.train_samples=20", "data.test_samples=10",
                                      "network.n_excitatory=10"]), tmp_path / "dc",
                   progress=False)
    assert main(["export", str(tmp_path / "dc")]) == 2
    assert "no NIR form" in capsys.readouterr().err


def _random_model(rng):
    """784-free small network with every population kind and a recurrent edge."""
    n_in, n1, n2, n3 = 12, 9, 7, 3
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "f1": nir.Affine(weight=rng.normal(0, 1, (n1, n_in)).astype(np.float32),
                              bias=rng.normal(0, 0.1, n1).astype(np.float32)),
             "a": nir.CubaLIF(tau_syn=np.full(n1, 5e-3), tau_mem=np.full(n1, 10e-3),
                              r=np.ones(n1), v_leak=np.zeros(n1), v_threshold=np.full(n1, 0.3),
                              v_reset=np.zeros(n1), w_in=np.ones(n1)),
             "f2": nir.Linear(weight=rng.normal(0, 1, (n2, n1)).astype(np.float32)),
             "r2": nir.Linear(weight=rng.normal(0, 0.5, (n2, n2)).astype(np.float32)),
             "b": nir.LIF(tau=np.full(n2, 8e-3), r=np.full(n2, 2.0), v_leak=np.zeros(n2),
                          v_threshold=np.full(n2, 0.5), v_reset=np.zeros(n2)),
             "f3": nir.Linear(weight=rng.normal(0, 1, (n3, n2)).astype(np.float32)),
             "c": nir.LI(tau=np.full(n3, 5e-3), r=np.ones(n3), v_leak=np.zeros(n3)),
             "output": nir.Output(output_type={"output": np.array([n3])})}
    edges = [("input", "f1"), ("f1", "a"), ("a", "f2"), ("f2", "b"), ("b", "r2"), ("r2", "b"),
             ("b", "f3"), ("f3", "c"), ("c", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges), n_in


@pytest.mark.parametrize("policy", [{"cuba_lif": ("euler", "zero"), "lif": ("euler", "subtract")},
                                    {"cuba_lif": ("exact", "subtract"), "lif": ("exact", "zero"),
                                     "li": ("exact", None)}])
@requires_nir_kernels
def test_compiled_kernels_equal_the_reference_at_any_thread_count(policy):
    rng = np.random.default_rng(3)
    g, n_in = _random_model(rng)
    x = rng.random((10, 40, n_in)) < 0.3
    ref = read_nir(g, 1e-3, policy)
    s_ref, o_ref = ref.forward(x, backend="numpy")
    assert ref.backend == "numpy" and all(s.sum() > 20 for s in s_ref.values())
    for threads in (1, 2, 3):
        m = read_nir(g, 1e-3, policy)
        s, o = m.forward(x, backend="cython", threads=threads)
        assert m.backend == "cython" and m.synops == ref.synops
        for name in s_ref:
            np.testing.assert_array_equal(s[name], s_ref[name])
        np.testing.assert_array_equal(o, o_ref)  # bit for bit


def test_nir_event_data_as_input(tmp_path):
    """Recorded input events in NIR's event-data format feed the run like an .npz."""
    from accel_sim.families.nir import load_events

    x = np.load(FIX / "snntorch_input.npy")
    grid = nir.TimeGriddedData(data=x, dt=1e-3)
    events = grid.to_event(n_events=int(x.sum(axis=(1, 2)).max()))
    nir.write_data(tmp_path / "input.nir",
                   nir.NIRGraphData(nodes={"input": nir.NIRNodeData(
                       observables={"spikes": events})}))
    spikes, labels = load_events(tmp_path / "input.nir", x.shape[2], dt_ms=1.0)
    assert labels is None
    np.testing.assert_array_equal(spikes, x)
    cfg = load_config(None, ["network.model=nir", f"network.path={FIX / 'snntorch.nir'}",
                             "network.dt_ms=0.1", "network.nir_reset={lif: subtract}",
                             "data.dataset=events", f"data.path={tmp_path / 'input.nir'}",
                             "encoding.present_ms=30"])
    stats = run_experiment(cfg, tmp_path / "run", progress=False)
    assert stats["frontend"]["infer"]["spikes"]["3"] == int(np.load(FIX / "snntorch_spikes_3.npy").sum())
    assert "test" not in stats["accuracy"]


def test_nested_subgraphs_are_named():
    inner = graph(lif(2), n_in=2, n=2)
    outer = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "block": inner,
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "block"), ("block", "output")], type_check=False)
    with pytest.raises(NirImportError, match="node 'block': nested subgraphs are not supported"):
        read_nir(outer, 1e-3)


def _has_nmnist() -> bool:
    root = os.environ.get("ACCEL_SIM_DATA")
    return bool(root) and (Path(root) / "NMNIST-small" / "nmnist_small.tar.gz").is_file()


@pytest.mark.skipif(not _has_nmnist(), reason="set ACCEL_SIM_DATA to a folder with NMNIST-small")
def test_the_nmnist_csnn_example_predicts_as_snntorch_did(tmp_path, monkeypatch):
    """configs/nir_nmnist_csnn.yaml: the CSNN snnTorch trained (benchmarks/
    train_nmnist_csnn.py) makes, on every one of the 100 test recordings, the prediction
    snnTorch made, so the run's accuracy is snnTorch's; the chip counts its synapses."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    theirs = json.loads((root / "benchmarks/results/nmnist_csnn_snntorch.json").read_text())
    cfg = load_config(root / "configs/nir_nmnist_csnn.yaml")
    from accel_sim.families.nir import load_model, test_inputs

    data, model = test_inputs(cfg), load_model(cfg)
    _, last = model.forward(data.batch(0, data.n))
    assert last.sum(axis=1).argmax(axis=1).tolist() == theirs["predictions"]
    stats = run_experiment(cfg, tmp_path / "run", progress=False)
    assert stats["accuracy"]["test"] == pytest.approx(theirs["test_accuracy"], abs=1e-6)  # float32
    counts = stats["hardware"]["phases"]["infer"]["counts"]
    assert counts["core.synop_conv"] + counts["core.synop"] == stats["frontend"]["infer"]["synops"]
    assert stats["memory"]["weights"] == {"input->1": 8 * 25, "1->3": 16 * 8 * 9,
                                          "3->6": 784 * 10}


def test_neurobench_metrics_by_hand(tmp_path):
    """2 inputs -> 3 LIF through weights with one zero: each input spike adds 2 or 3 non-zero
    weights (effective ACs), every synapse at every step is the dense count; footprint:
    6 weights, no bias, 2 parameters per neuron, float32."""
    w = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]], np.float32)  # (out, in)
    g = graph(lif(3, th=100.0), n_in=2, n=3, weight=w)
    nir.write(tmp_path / "g.nir", g)
    x = np.zeros((2, 5, 2), bool)
    x[0, 0, 0] = x[0, 1, 1] = x[1, 3, 1] = True  # input 0 reaches 3, input 1 reaches 2
    np.save(tmp_path / "x.npy", x)
    cfg = load_config(None, ["network.model=nir", f"network.path={tmp_path / 'g.nir'}",
                             "data.dataset=events", f"data.path={tmp_path / 'x.npy'}",
                             "encoding.present_ms=5"])
    nb = run_experiment(cfg, tmp_path / "run", progress=False)["neurobench"]
    assert nb["synaptic_operations"] == {"effective_acs": (3 + 2 + 2) / 2,
                                         "effective_macs": 0.0, "dense": 6 * 5}
    assert nb["connection_sparsity"] == pytest.approx(1 / 6)
    assert nb["activation_sparsity"] == 1.0  # threshold 100: nothing fires
    assert nb["footprint_bytes"] == 4 * (6 + 3 * 2)
