"""FSpiNN, SpikeDyn, ASP: defaults by model, mechanisms on/off, continual learning, compare."""
import json

import numpy as np
import pytest
from conftest import run_killed_after

from accel_sim import ConfigError, load_config, resume_experiment, run_experiment
from accel_sim.cli import main
from accel_sim.memory import network_memory
from snn_frontend.models import dc_family_spec
from snn_frontend.trace import SpikeTrace

TINY = ["name=tinyvar", "data.train_samples=40", "data.test_samples=30", "network.n_excitatory=20",
        "encoding.present_ms=60", "encoding.max_rate_hz=255", "learning.norm_total=12.8",
        "run.progress=false", "run.checkpoint_every=0", "run.trace_phases=[]"]


def test_switching_the_model_is_one_override_and_brings_its_defaults():
    dc = load_config(None, TINY)
    fs = load_config(None, TINY + ["network.model=fspinn"])
    assert dc.network.inhibition == "population" and fs.network.inhibition == "lateral"
    assert fs.network.weights.kind == "fixed" and fs.network.weights.bits == 8
    assert fs.learning.timestep_updates and not fs.learning.depression_on_pre
    assert fs.learning.adaptive_potentiation and fs.learning.adaptive_inhibition
    sd = load_config(None, TINY + ["network.model=spikedyn"])
    assert sd.learning.spurious_update_reduction and sd.learning.weight_decay
    assert sd.learning.adaptive_rates and not sd.learning.adaptive_potentiation
    assert sd.network.exc.tau_theta_ms == dc.network.exc.tau_theta_ms  # D&C's threshold
    assert load_config(None, TINY + ["network.model=asp"]).learning.asp_leak
    # what the config sets wins over the model's defaults
    own = load_config(None, TINY + ["network.model=fspinn", "network.weights.kind=float32",
                                    "learning.adaptive_inhibition=false"])
    assert own.network.weights.kind == "float32" and not own.learning.adaptive_inhibition


@pytest.mark.parametrize("over,message", [
    (["learning.spurious_update_reduction=true"], "needs learning.timestep_updates"),
    (["learning.adaptive_inhibition=true"], "set network.inhibition: lateral"),
    (["network.weights.kind=fixed", "network.weights.bits=4", "network.weights.frac_bits=6"],
     "frac_bits must not exceed bits"),
    (["learning.adaptive_rates=true"], "adaptive_rates needs learning.timestep_updates"),
    (["network.state_format.kind=fixed", "network.state_format.bits=12",
      "network.state_format.frac_bits=6"], "cannot hold the -65 mV resting potential"),
])
def test_inconsistent_mechanisms_are_config_errors(over, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, TINY + over)


def test_memory_follows_the_weight_format_and_the_inhibition():
    dc = network_memory(dc_family_spec(784, 400, False, 32), 32)
    assert dc["total_weights"] == 473_600  # seeds.md 2.4
    assert dc["state_variables"] == {"input": 784, "exc": 400 * 8, "inh": 400 * 3}
    fs = network_memory(dc_family_spec(784, 400, True, 8), 32)
    assert fs["weights"] == {"input->exc": 313_600, "exc->exc": 0}  # lateral: one scalar
    assert fs["weight_bytes"]["input->exc"] == 313_600
    assert dc["total_bytes"] / fs["total_bytes"] > 5


def test_a_fixed_point_state_runs_and_sets_the_state_memory(tmp_path):
    over = ["network.state_format.kind=fixed", "network.state_format.bits=16",
            "network.state_format.frac_bits=6", "hardware=edge", "energy=generic_45nm"]
    stats = run_experiment(load_config(None, TINY + over), tmp_path / "q")
    assert stats["memory"]["state_bits"] == 16
    assert stats["memory"] == network_memory(dc_family_spec(64, 20, False, 32, 16), 16)
    mapping = stats["hardware"]["mapping"]
    # v, g_e, g_i, theta, refractory, lockout per excitatory; v, g_e, refractory per inhibitory
    assert sum(mapping["state_bytes_per_core"]) == (20 * 6 + 20 * 3) * 16 / 8
    theta = np.load(tmp_path / "q" / "model.npz")["theta"]
    assert np.array_equal(np.floor(theta * 64), theta * 64)  # thresholds on the Q10.6 grid


@pytest.mark.parametrize("mechanism,key", [
    ("learning.weight_decay=true", "decay_ops"),
    ("learning.asp_leak=true", "decay_ops"),
])
def test_each_mechanism_shows_up_in_the_counts(tmp_path, mechanism, key):
    off = run_experiment(load_config(None, TINY), tmp_path / "off")
    on = run_experiment(load_config(None, TINY + [mechanism]), tmp_path / "on")
    assert off["frontend"]["train"][key] == 0
    assert on["frontend"]["train"][key] == on["frontend"]["train"]["presentations"] * 64 * 20


def test_reduced_stdp_and_timestep_updates_write_less(tmp_path):
    dc = run_experiment(load_config(None, TINY), tmp_path / "dc")["frontend"]["train"]
    red = run_experiment(load_config(None, TINY + ["learning.depression_on_pre=false",
                                                    "learning.timestep_updates=true",
                                                    "learning.update_every_steps=120",
                                                    "network.exc.lockout_ms=0",
                                                    "run.trace_phases=[train]"]),
                         tmp_path / "red")["frontend"]["train"]
    assert red["weight_updates"] == red["exc_spikes"] * 64  # potentiation only
    assert dc["weight_writes"] == dc["weight_updates"]  # immediate: every update is a write
    # timestep-based: each neuron's column is written once per 120-step window in which it
    # spiked, however often it spiked there (no rows: no depression)
    windows = 0
    for p in SpikeTrace.load(tmp_path / "red" / "trace_train"):
        step = np.repeat(np.arange(p.n_steps), p.counts["exc"].astype(int))
        windows += len(set(zip((step // 120).tolist(), p.indices["exc"].tolist())))
        assert p.counts["input->exc:row"].sum() == 0
    assert red["weight_writes"] == windows * 64
    assert windows < red["exc_spikes"]  # some windows held several spikes of one neuron


def test_fspinn_resume_restores_the_adaptive_state(tmp_path, monkeypatch):
    over = TINY + ["network.model=fspinn", "run.checkpoint_every=10"]
    cfg = load_config(None, over)
    run_experiment(cfg, tmp_path / "a")
    run_killed_after(cfg, tmp_path / "b", monkeypatch, 15)
    resume_experiment(tmp_path / "b")
    wa, wb = (np.load(tmp_path / d / "model.npz")["weights"] for d in "ab")
    assert np.array_equal(wa, wb)


def test_class_incremental_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path,
                                                                            monkeypatch):
    over = TINY + ["network.model=spikedyn", "data.protocol=class_incremental",
                   "data.train_samples=40", "data.classes=[0, 1, 2, 3]", "data.test_samples=40",
                   "run.checkpoint_every=1", "run.trace_phases=[train, label, infer]",
                   "hardware=edge", "energy=generic_45nm"]
    cfg = load_config(None, over)
    ref = run_experiment(cfg, tmp_path / "a")
    run_killed_after(cfg, tmp_path / "b", monkeypatch, 25)  # in task 2
    with np.load(tmp_path / "b" / "checkpoint.npz") as z:
        assert int(z["position"]) == 2  # tasks 0 and 1 done
    got = resume_experiment(tmp_path / "b")
    assert got["accuracy"] == ref["accuracy"] and got["frontend"] == ref["frontend"]
    for ph in ("train", "label", "infer"):  # the chip replays resumed too
        a, b = ref["hardware"]["phases"][ph], got["hardware"]["phases"][ph]
        assert a["counts"] == b["counts"] and a["latency_per_sample_s"] == b["latency_per_sample_s"]
    wa, wb = (np.load(tmp_path / d / "model.npz")["weights"] for d in "ab")
    assert np.array_equal(wa, wb)


def test_class_incremental_reports_every_task(tmp_path):
    cfg = load_config(None, TINY + ["data.protocol=class_incremental", "data.train_samples=50",
                                    "data.classes=[0, 1, 2, 3, 4]", "data.test_samples=50"])
    stats = run_experiment(cfg, tmp_path / "ci")
    tasks = stats["accuracy"]["tasks"]
    assert [t["class"] for t in tasks] == [0, 1, 2, 3, 4]
    assert all(t["samples"] == 10 for t in tasks)
    assert tasks[0]["earlier"] is None and all(t["earlier"] is not None for t in tasks[1:])
    assert all(0 <= t["newest"] <= 1 for t in tasks)
    assert stats["frontend"]["train"]["samples"] == 50
    # labelling after task k uses the k+1 learned tasks' training samples
    assert stats["frontend"]["label"]["samples"] == sum(10 * (k + 1) for k in range(5))
    assert (tmp_path / "ci" / "continual.png").stat().st_size > 0
    assert "continual learning" in (tmp_path / "ci" / "summary.txt").read_text()


def test_compare_writes_ratios(tmp_path, capsys):
    a = run_experiment(load_config(None, TINY + ["hardware=edge", "energy=generic_45nm"]),
                       tmp_path / "a")
    b = run_experiment(load_config(None, TINY + ["hardware=edge", "energy=generic_45nm",
                                                 "network.model=fspinn"]), tmp_path / "b")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    res = json.loads((tmp_path / "b" / "compare.json").read_text())
    rows = {r["quantity"]: r for r in res["rows"]}
    mem = rows["memory.total_bytes"]
    assert mem["b_over_a"] == pytest.approx(b["memory"]["total_bytes"] / a["memory"]["total_bytes"])
    assert mem["a_over_b"] > 1  # FSpiNN needs less memory
    e = rows["infer.energy_per_sample_pj"]
    assert e["b"] == pytest.approx(b["hardware"]["phases"]["infer"]["energy_per_sample_pj"])
    assert "| memory.total_bytes |" in (tmp_path / "b" / "compare.md").read_text()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "nope")]) == 2
