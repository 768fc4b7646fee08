"""Network wrapper, SpikeTrace, counts, labelling, checkpoints and resume."""
import numpy as np
from conftest import requires_compiled, run_killed_after

from accel_sim import load_config, resume_experiment, run_experiment
from accel_sim.families.stdp import load_data
from snn_frontend.counts import FrontendCounts
from snn_frontend.labelling import assign_labels, predict
from snn_frontend.models import dc_family_spec
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.trace import SpikeTrace, TraceBuilder

TINY = ["name=tiny", "data.train_samples=40", "data.test_samples=30", "network.n_excitatory=20",
        "encoding.present_ms=100", "encoding.max_rate_hz=255", "run.progress=false"]


def _net(overrides=(), backend="auto"):
    cfg = load_config(None, TINY + list(overrides))
    data = load_data(cfg)
    return cfg, data, DiehlCookNetwork.from_config(cfg, data.n_in, backend=backend)


def _builder(net, learn=False, **kw):
    """A trace builder for this network (with its learning event streams when learning)."""
    return TraceBuilder(net.trace_meta(net.spec(32), learn=learn),
                        net.events() if learn else (), **kw)


def test_inference_does_not_depend_on_the_thread_count():
    _, data, net = _net()
    runs = []
    for threads in (1, 2, 3):
        counts = FrontendCounts()
        tb = _builder(net)
        resp = net.infer(data.test.images, 7, threads=threads, counts=counts, trace=tb)
        runs.append((resp, counts.as_dict(), tb.build()))
    for resp, counts, tr in runs[1:]:
        assert np.array_equal(resp, runs[0][0])
        assert counts == runs[0][1]
        for p in ("input", "exc", "inh"):
            assert np.array_equal(tr.indices[p], runs[0][2].indices[p])
    assert runs[0][0].sum() > 0


def test_trace_totals_equal_counts_and_round_trip(tmp_path):
    _, data, net = _net()
    counts = FrontendCounts()
    tb = _builder(net, learn=True)
    for s in range(5):
        net.train_sample(data.train.images[s], s, sample=s, counts=counts, trace=tb)
    tr = tb.build()
    assert tr.n_samples == 5 and tr.n_presentations == counts.presentations
    assert tr.total("input") == counts.input_spikes
    assert tr.total("exc") == counts.exc_spikes and tr.total("inh") == counts.inh_spikes
    n, m = 20, 64
    assert counts.synaptic_events == (tr.total("input") * n + tr.total("exc")
                                      + tr.total("inh") * (n - 1))
    assert counts.weight_updates == tr.total("input") * n + tr.total("exc") * m
    assert counts.neuron_updates == tr.n_steps * 2 * n
    assert counts.normalisation_ops == tr.normalised.sum() * m * n
    assert tr.events == ("input->exc:row", "input->exc:col")
    assert np.array_equal(tr.counts["input->exc:row"], tr.counts["input"])  # D&C: every spike
    assert np.array_equal(tr.counts["input->exc:col"], tr.counts["exc"])
    path = tr.save(tmp_path / "t.npz")
    back = SpikeTrace.load(path)
    assert back.events == tr.events and back.spec == net.spec(32)
    assert back.meta["learning"] == {"input->exc": {"rule": "stdp", "pre_updates": True}}
    pres = list(back)
    assert len(pres) == tr.n_presentations
    assert sum(int(p.counts["exc"].sum()) for p in pres) == counts.exc_spikes
    # the per-step view of a presentation reproduces its flat indices
    p0 = pres[0]
    steps = [p0.step_spikes("input", t) for t in range(p0.n_steps)]
    assert np.array_equal(np.concatenate(steps), p0.indices["input"])


def test_silent_sample_is_re_presented_at_a_higher_rate():
    _, _, net = _net(["encoding.max_retries=3"])
    counts = FrontendCounts()
    attempts = net.train_sample(np.zeros(64, np.uint8), 0, counts=counts)
    assert attempts == 4 and counts.presentations == 4 and counts.samples == 1
    assert counts.input_spikes == 0 and counts.exc_spikes == 0
    assert counts.neuron_updates == 4 * 200 * 2 * 20  # 100 ms at dt 0.5: 200 steps
    assert net.plan.rate_scale(1) > net.plan.rate_scale(0)


def test_labelling_by_hand():
    responses = np.array([[5, 0, 1], [4, 0, 0], [0, 3, 0], [0, 2, 0]])
    labels = np.array([0, 0, 1, 1])
    a = assign_labels(responses, labels, n_classes=3)
    assert list(a) == [0, 1, 0]  # neuron 2 fires 0.5 for class 0, 0 for class 1
    assert list(predict(responses, a, 3)) == [0, 0, 1, 1]
    silent = assign_labels(np.zeros((2, 2)), np.array([0, 1]), 2)
    assert list(silent) == [-1, -1]


def _model(out):
    with np.load(out / "model.npz") as z:
        return z["weights"].copy(), z["theta"].copy()


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    cfg = load_config(None, TINY + ["run.checkpoint_every=10", "run.trace_phases=[train, infer]"])
    ref = run_experiment(cfg, tmp_path / "a")

    run_killed_after(cfg, tmp_path / "b", monkeypatch, 25)
    with np.load(tmp_path / "b" / "checkpoint.npz") as z:
        assert int(z["position"]) == 20
    got = resume_experiment(tmp_path / "b")

    wa, ta = _model(tmp_path / "a")
    wb, tb = _model(tmp_path / "b")
    assert np.array_equal(wa, wb) and np.array_equal(ta, tb)
    assert got["frontend"] == ref["frontend"] and got["accuracy"] == ref["accuracy"]
    tra, trb = (SpikeTrace.load(tmp_path / d / "trace_train") for d in "ab")
    assert np.array_equal(tra.indices["exc"], trb.indices["exc"])
    assert np.array_equal(tra.step_ptr, trb.step_ptr)


def test_spilled_trace_equals_in_memory_trace(tmp_path):
    _, data, net = _net()
    mem = _builder(net)
    disk = _builder(net, out_dir=tmp_path / "tr", part_size=7)
    net.infer(data.test.images, 3, trace=mem, block_size=4)
    net.infer(data.test.images, 3, trace=disk, block_size=4)
    disk.close()
    assert len(list((tmp_path / "tr").glob("part-*.npz"))) == disk.parts_written > 1
    a, b = mem.build(), SpikeTrace.load(tmp_path / "tr")
    assert np.array_equal(a.step_ptr, b.step_ptr) and np.array_equal(a.sample, b.sample)
    for p in ("input", "exc", "inh"):
        assert np.array_equal(a.indices[p], b.indices[p])
        assert np.array_equal(a.counts[p], b.counts[p])
    assert sum(t.n_presentations for t in SpikeTrace.parts(tmp_path / "tr")) == a.n_presentations


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    cfg = load_config(None, TINY)
    a = run_experiment(cfg, tmp_path / "a")
    b = run_experiment(cfg, tmp_path / "b")
    run_experiment(load_config(None, TINY + ["seed=1"]), tmp_path / "c")
    assert a["frontend"] == b["frontend"]
    assert np.array_equal(_model(tmp_path / "a")[0], _model(tmp_path / "b")[0])
    assert not np.array_equal(_model(tmp_path / "a")[0], _model(tmp_path / "c")[0])


@requires_compiled
def test_numpy_backend_gives_the_same_run(tmp_path):
    over = ["data.train_samples=6", "data.test_samples=6", "encoding.present_ms=40"]
    a = run_experiment(load_config(None, TINY + over + ["run.backend=numpy"]), tmp_path / "n")
    b = run_experiment(load_config(None, TINY + over + ["run.backend=cython"]), tmp_path / "c")
    assert a["frontend"] == b["frontend"]
    assert np.array_equal(_model(tmp_path / "n")[0], _model(tmp_path / "c")[0])


def test_trace_keeps_decay_passes_through_save_load_and_parts(tmp_path):
    tb = TraceBuilder({"spec": dc_family_spec(4, 3, False, 32).to_dict()}, out_dir=tmp_path / "tr",
                      part_size=2)
    cnt = {p: np.zeros(2, np.int32) for p in ("input", "exc", "inh")}
    idx = {p: np.zeros(0, np.int32) for p in ("input", "exc", "inh")}
    for s, d in enumerate([0, 1, 2]):
        tb.add(s, 0, True, 2, cnt, idx, decays=d)
    tb.close()
    tr = SpikeTrace.load(tmp_path / "tr")
    assert tr.decays.tolist() == [0, 1, 2]
    assert [p.decays for p in tr] == [0, 1, 2]
