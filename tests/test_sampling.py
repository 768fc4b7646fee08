"""Sampled simulation (run.chip_sample): the ratio estimator by hand, sample keys that do not
depend on how the trace is cut, the sampled replay against the full replays of a real
trace (its sample's cycles are the full replay's at those presentations), the interval's
coverage over many seeds, and runs, checkpoints, sweeps and errors."""
import csv
import json
import math

import numpy as np
import pytest
from conftest import run_killed_after

from accel_sim import ConfigError, SpikeTrace, load_config, load_hardware, run_experiment
from accel_sim.chip import Chip
from accel_sim.chip.sampling import presentation_keys, ratio_interval
from accel_sim.config.schema import ChipSample

SMALL = ["data.train_samples=20", "data.test_samples=297", "network.n_excitatory=40",
         "encoding.present_ms=60", "run.progress=false", "run.checkpoint_every=0",
         "hardware=edge", "energy=generic_45nm"]


def test_ratio_estimate_by_hand():
    # y = 2x exactly: R = 2, every difference 0, the interval a point
    r = ratio_interval([2, 4, 6], [1, 2, 3], x_total=12, n_total=6)
    assert r["estimate"] == 24 and r["ratio"] == 2 and r["interval"] == [24, 24]
    # y = [3, 4, 7], x = [1, 2, 3]: R = 14/6; d = y - R x = [2/3, -2/3, 0], s_d^2 = 4/9;
    # N = 10, n = 3: se = 10 sqrt((1 - 0.3) (4/9) / 3) ; t(0.975, 2) = 4.302653
    r = ratio_interval([3, 4, 7], [1, 2, 3], x_total=20, n_total=10)
    se = 10 * math.sqrt(0.7 * (4 / 9) / 3)
    assert r["estimate"] == pytest.approx(20 * 14 / 6)
    assert r["se"] == pytest.approx(se)
    assert r["interval"] == pytest.approx([20 * 14 / 6 - 4.302653 * se,
                                           20 * 14 / 6 + 4.302653 * se], rel=1e-6)
    # the whole population sampled: the total itself, no uncertainty
    r = ratio_interval([3, 4, 7], [1, 2, 3], x_total=6, n_total=3)
    assert r["estimate"] == pytest.approx(14) and r["se"] == 0
    with pytest.raises(ValueError, match="at least 2"):
        ratio_interval([3], [1], x_total=6, n_total=3)


def test_keys_are_a_function_of_the_position_only():
    whole = presentation_keys(7, "infer", 0, 10_000)
    cut = np.concatenate([presentation_keys(7, "infer", 0, 3000),
                          presentation_keys(7, "infer", 3000, 4500),
                          presentation_keys(7, "infer", 7500, 2500)])
    assert np.array_equal(whole, cut) and whole.min() >= 0 and whole.max() < 1
    assert not np.array_equal(whole, presentation_keys(8, "infer", 0, 10_000))
    assert not np.array_equal(whole, presentation_keys(7, "train", 0, 10_000))


@pytest.fixture(scope="module")
def infer(tmp_path_factory):
    """A real run's inference trace (all 297 test images of digits) and its full replays per chip."""
    out = tmp_path_factory.mktemp("sample") / "run"
    run_experiment(load_config(None, SMALL + ["run.phases=[train, label, infer]"]), out)
    trace = SpikeTrace.load(out / "trace_infer")
    full = {}
    for chip, part in (("edge", trace), ("loihi_like", trace.select(0, 120))):  # 128 cores: slow
        hw = load_hardware(chip)
        full[chip] = {fid: np.array(Chip(hw, trace.spec, fid).replay(part, "infer")
                                    .presentation_cycles, float)
                      for fid in ("timestep", "event")}
    return out, trace, full


def _bottom(seed: int, n: int, size: int) -> np.ndarray:
    """The positions `presentations: n` samples: the n smallest keys."""
    return np.sort(np.argsort(presentation_keys(seed, "infer", 0, size), kind="stable")[:n])


@pytest.mark.slow
@pytest.mark.parametrize("plan", [{"presentations": 30, "seed": 4}, {"fraction": 0.1, "seed": 9}])
def test_a_sampled_replay_is_the_full_replays_at_its_sample(infer, plan):
    _, trace, full = infer
    hw = load_hardware("edge")
    r = Chip(hw, trace.spec, "event").replay(trace.shards(3), "infer",
                                             sample=ChipSample(**plan))
    x, y = full["edge"]["timestep"], full["edge"]["event"]
    n = len(x)
    if "presentations" in plan:
        pos = _bottom(plan["seed"], plan["presentations"], n)
    else:
        pos = np.flatnonzero(presentation_keys(plan["seed"], "infer", 0, n) < plan["fraction"])
    expect = ratio_interval(y[pos], x[pos], x.sum(), n)
    s = r.sampled
    assert s["presentations"] == len(pos) and s["of"] == n == trace.n_presentations
    assert s["sampled_cycles"] == y[pos].sum() and s["auxiliary_cycles"] == x.sum()
    assert s["latency_cycles_interval"] == expect["interval"]
    assert r.cycles == round(expect["estimate"])
    whole = Chip(hw, trace.spec, "timestep").replay(trace, "infer")
    assert r.counts == whole.counts and r.instances == whole.instances


@pytest.mark.slow
@pytest.mark.parametrize("chip", ["edge", "loihi_like"])
def test_the_interval_holds_the_full_replay_nine_times_in_ten(infer, chip):
    """400 samples of 30 presentations (10 % on edge, 25 % of the first 120 on loihi_like)
    from the same real trace: the full `event` replay's latency lies in at least 90 % of
    the 95 % intervals."""
    _, _, full = infer
    x, y = full[chip]["timestep"], full[chip]["event"]
    truth, hits = y.sum(), 0
    assert not np.allclose(y / x, (y / x)[0])  # the ratio varies: the interval has work
    for seed in range(400):
        pos = _bottom(seed, 30, len(x))
        lo, hi = ratio_interval(y[pos], x[pos], x.sum(), len(x))["interval"]
        hits += lo <= truth <= hi
    assert hits / 400 >= 0.90


@pytest.mark.slow
def test_a_run_reports_the_interval_in_stats_summary_and_beside_the_full_run(infer, tmp_path):
    out, _, _ = infer
    cfg = load_config(None, SMALL + ["run.fidelity=event",
                                     "run.chip_sample={presentations: 40, seed: 1}"])
    stats = run_experiment(cfg, tmp_path / "s")
    ph = stats["hardware"]["phases"]["infer"]
    assert ph["sampled"]["presentations"] == 40 and ph["sampled"]["fidelity"] == "event"
    lo, hi = ph["interval"]["latency_cycles"]
    assert lo <= ph["latency_cycles"] <= hi
    e_lo, e_hi = ph["interval"]["energy_pj"]
    assert e_lo <= ph["energy_pj"]["total"] <= e_hi
    full = json.loads((out / "stats.json").read_text())["hardware"]["phases"]["infer"]
    assert ph["counts"] == full["counts"]
    text = (tmp_path / "s" / "summary.txt").read_text()
    assert "hardware.infer.sampled.presentations" in text
    assert "hardware.infer.latency_cycles.lo" in text


def test_a_resumed_sampled_run_ends_as_the_uninterrupted_one(tmp_path, monkeypatch):
    """The reservoir of `presentations: n` rides in the checkpoint."""
    from accel_sim import resume_experiment

    over = SMALL + ["data.test_samples=30", "data.train_samples=40", "run.fidelity=event",
                    "run.phases=[train]", "run.trace_phases=[]",
                    "run.chip_sample={presentations: 6, seed: 2}"]
    whole = run_experiment(load_config(None, over), tmp_path / "a")
    run_killed_after(load_config(None, over + ["run.checkpoint_every=20"]), tmp_path / "b",
                     monkeypatch, samples=25)  # checkpoint at 20
    resumed = resume_experiment(tmp_path / "b", progress=False)
    a, b = whole["hardware"]["phases"]["train"], resumed["hardware"]["phases"]["train"]
    assert a["sampled"] == b["sampled"] and a["latency_cycles"] == b["latency_cycles"]
    assert a["counts"] == b["counts"]


@pytest.mark.slow
def test_a_barrier_free_chip_is_sampled_against_its_barrier_twin(infer):
    _, trace, _ = infer
    part = trace.select(0, 24)
    hw = load_hardware("edge", ["sync.barrier=false"])
    full = Chip(hw, part.spec, "simpy").replay(part, "infer")
    r = Chip(hw, part.spec, "simpy").replay(part, "infer",
                                           sample=ChipSample(presentations=8, seed=3))
    y = np.array(full.presentation_cycles, float)
    pos = _bottom(3, 8, 24)
    assert r.sampled["sampled_cycles"] == y[pos].sum()
    assert r.sampled["auxiliary"] == "timestep" and r.counts == full.counts
    assert r.sampled["ratio"] < 1  # without barriers the steps overlap


def test_chip_sample_settings_are_checked():
    with pytest.raises(ConfigError, match="exactly one of presentations"):
        load_config(None, ["run.chip_sample={presentations: 10, fraction: 0.1}"])
    with pytest.raises(ConfigError, match="run.chip_sample: a sampled replay runs a sample at "
                                          "a detailed fidelity"):
        load_config(None, ["hardware=edge", "energy=generic_45nm",
                           "run.chip_sample={fraction: 0.1}"])
    with pytest.raises(ConfigError, match="presentations"):
        load_config(None, ["run.chip_sample={presentations: 1}"])


@pytest.mark.slow
def test_a_sweep_carries_the_interval_in_results_csv(tmp_path):
    from pathlib import Path

    from accel_sim.sweep import run_sweep

    body = {"version": 1, "base": str(Path(__file__).resolve().parents[1] / "configs" /
                                      "default.yaml"),
            "set": {"data.train_samples": 20, "data.label_samples": None,
                    "data.test_samples": 60, "run.checkpoint_every": 0,
                    "run.fidelity": "event", "run.chip_sample": {"fraction": 0.3}},
            "grid": {"energy": ["generic_45nm", "loihi_2018"]}}
    p = tmp_path / "sw.yaml"
    p.write_text(json.dumps(body))
    run_sweep(p, tmp_path / "o", workers=2, progress=False)
    with open(tmp_path / "o" / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        lo, mid, hi = (float(r[f"infer.energy_per_sample_pj{s}"]) for s in (".lo", "", ".hi"))
        assert lo <= mid <= hi  # a point when event = R x timestep on every presentation


def test_too_small_a_sample_is_a_clear_error():
    from accel_sim.errors import RunError
    from snn_frontend.spec import NetworkSpec, Population, Projection

    spec = NetworkSpec((Population("in", 1, "input"), Population("a", 1, "lif")),
                       (Projection("in", "a", "dense", 8),))
    trace = SpikeTrace.from_rasters(spec, {"in": np.ones((5, 1), bool),
                                           "a": np.zeros((5, 1), bool)})
    with pytest.raises(RunError, match="1 of the 1 presentations of phase infer were sampled"):
        Chip(load_hardware("edge"), spec, "event").replay(
            trace, "infer", sample=ChipSample(presentations=5))
