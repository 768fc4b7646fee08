"""`accel-sim estimate`: the closed forms against the simulator on the same activity, on
every shipped config, and exact counts on a hand-countable case."""
import json
import math
from pathlib import Path

import pytest
from conftest import has_mnist

from accel_sim import load_config, run_experiment
from accel_sim.cli import main
from accel_sim.estimate import PhaseActivity, activity_of_run, estimate, estimate_phase
from snn_frontend.spec import NetworkSpec, Population, Projection

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in [*ROOT.glob("configs/*.yaml"), *ROOT.glob("configs/papers/*.yaml")])


def _needs(path: Path) -> str | None:
    text = path.read_text()
    if "dataset: shd" in text:
        return "SHD is not available here"
    if path.name != "default.yaml" and not has_mnist:
        return "needs $ACCEL_SIM_DATA"
    return None


def _small(cfg_path: Path) -> list[str]:
    cfg = load_config(cfg_path)
    sets = ["data.train_samples=60", "data.test_samples=40", "run.checkpoint_every=0",
            f"run.trace_phases={json.dumps(list(cfg.run.phases))}"]
    if cfg.data.label_samples is not None:
        sets.append("data.label_samples=40")
    if cfg.network.model == "surrogate":
        sets += ["learning.batch_size=20", "learning.epochs=1"]
    if cfg.data.protocol == "class_incremental":
        sets[0] = "data.train_samples=30"
    return sets


@pytest.mark.parametrize("path", [p if p.name == "default.yaml"
                                  else pytest.param(p, marks=pytest.mark.slow) for p in SHIPPED],
                         ids=lambda p: p.name)
def test_estimate_within_5_percent_of_the_simulator(path, tmp_path, monkeypatch):
    reason = _needs(path)
    if reason:
        pytest.skip(reason)
    cfg = load_config(path, _small(path))
    if cfg.hardware is None:
        cfg = load_config(path, _small(path) + ["hardware=edge", "energy=generic_45nm"])
    _same_as_the_simulator(cfg, tmp_path)


@pytest.mark.parametrize("power", [
    ["hardware.power.sram=gate_unused"],
    ["hardware.power.sram=retention_when_idle", "hardware.power.retention_after_cycles=3",
     "hardware.power.wake_cycles=1"]], ids=["gate_unused", "retention_when_idle"])
def test_estimate_of_the_sram_power_states_within_5_percent(power, tmp_path):
    """Banks off (exact share of the latency) and in retention (Poisson reads per bank,
    estimate/power.py): wake-ups, bank-cycles per state and energy as the replay's."""
    path = ROOT / "configs" / "default.yaml"
    _same_as_the_simulator(load_config(path, _small(path) + power), tmp_path)


def _same_as_the_simulator(cfg, tmp_path) -> None:
    stats = run_experiment(cfg, tmp_path / "run", progress=False)
    spec, activity = activity_of_run(tmp_path / "run")
    est = estimate(cfg, spec, activity)
    sim = stats["hardware"]["phases"]
    assert set(est["phases"]) == set(sim)
    for phase, e in est["phases"].items():
        s = sim[phase]
        assert e["energy_pj"] == pytest.approx(s["energy_pj"]["total"], rel=0.05), phase
        total = sum(s["counts"].values())
        for key, n in s["counts"].items():
            if n > 1e-3 * total:  # every count that matters to the energy
                assert e["counts"].get(key, 0) == pytest.approx(n, rel=0.05), (phase, key)


def test_exact_on_a_hand_countable_case():
    """Two inputs, each firing once per 4 steps (uniform), dense onto 3 neurons on 2 cores
    of the edge chip: synops, SRAM words and spikes are exact closed forms."""
    spec = NetworkSpec(
        populations=(Population("in", 2, kind="input"), Population("out", 3)),
        projections=(Projection("in", "out", "dense", weight_bits=8),))
    cfg = load_config(None, ["hardware=edge", "energy=generic_45nm", "hardware.cores.count=2",
                             "hardware.cores.mesh_width=2", "hardware.cores.mesh_height=1"])
    act = PhaseActivity(samples=5, presentations=1.0, steps=4.0, rates={"in": 0.5, "out": 0.0})
    from accel_sim.chip.counting import ChipCounter
    from accel_sim.chip.mapping import Mapping
    from accel_sim.chip.timing import HwRates
    from accel_sim.chip.topology import Topology

    m = Mapping(spec, cfg.hardware)
    topo = Topology(cfg.hardware)
    r = estimate_phase(ChipCounter(m, topo), HwRates(cfg.hardware, m, topo), act)
    c = r["counts"]
    # 5 samples x 4 steps x 0.5 spikes = 10 input spikes, each reaching all 3 targets
    assert c["chip.input_spike"] == pytest.approx(10)
    assert c["core.synop"] == pytest.approx(30)
    # a spike reads one 64-bit word per core holding its 8-bit weights (2 cores)
    assert c["sram.read_word"] == pytest.approx(20)
    assert c["chip.barrier"] == pytest.approx(20)
    assert c["core.neuron_update_active"] + c["core.neuron_update_idle"] == pytest.approx(60)
    # active: steps 2..4 of each presentation, when the previous step held an input spike
    # (Poisson with 0.5 per step: 1 - e^-0.5 of them)
    assert c["core.neuron_update_active"] == pytest.approx(5 * 3 * 3 * (1 - math.exp(-0.5)))
    assert r["samples"] == 5 and r["time_steps"] == pytest.approx(20)


def test_cli_estimate_json_from_a_run(tmp_path, capsys):
    cfg = ROOT / "configs" / "default.yaml"
    sets = ["data.train_samples=40", "data.test_samples=30", "run.checkpoint_every=0",
            "run.trace_phases=[train,label,infer]"]
    run_experiment(load_config(cfg, sets), tmp_path / "run", progress=False)
    assert main(["estimate", str(cfg), "--from-run", str(tmp_path / "run"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["phases"]) == {"train", "label", "infer"}
    infer = out["phases"]["infer"]
    assert infer["counts"]["core.synop"] > 0 and infer["energy_pj"] > 0 and infer["latency_s"] > 0
    assert out["memory_bytes"] > 0


def test_cli_estimate_calibrates_and_prints(tmp_path, capsys):
    """The printed table is the estimate: per phase the full run's samples, the energy
    and latency per sample and the dominant component (the same calibration is seeded, so
    --json gives the same numbers)."""
    args = ["estimate", str(ROOT / "configs" / "default.yaml"), "--set",
            "data.train_samples=60", "--calibrate", "20"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert main(args + ["--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert lines[0].startswith("estimate of default on edge (generic_45nm), activity from a "
                               "calibration run on 20 samples per phase")
    rows = {ln.split()[0]: ln.split() for ln in lines[3:]}
    assert set(rows) == {"train", "label", "infer"}
    full = {"train": 60, "label": 60, "infer": 297}  # the run's samples, not the calibration's
    for phase, row in rows.items():
        ph = est["phases"][phase]
        comp, pj = max(ph["energy_by_component_pj"].items(), key=lambda kv: kv[1])
        assert int(row[1]) == full[phase] == est["activity"][phase]["samples"]
        assert row[2] == f"{ph['energy_per_sample_pj'] * 1e-6:.4g}"
        assert row[3] == f"{ph['latency_per_sample_s'] * 1e6:.4g}"
        assert row[4] == comp and row[5] == f"({pj / ph['energy_pj'] * 100:.0f}"


def test_estimate_needs_a_chip(capsys):
    assert main(["estimate", str(ROOT / "configs" / "default.yaml"), "--set", "hardware=null",
                 "--set", "energy=null"]) == 2
    assert "needs a chip" in capsys.readouterr().err
