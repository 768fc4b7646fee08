"""A run with a chip: frontend and chip agree, fidelities agree, pricing is by construction."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from accel_sim import ConfigError, load_config, run_experiment
from accel_sim.chip import Chip
from accel_sim.cli import main
from accel_sim.run.reprice import reprice
from snn_frontend.models import dc_family_spec
from snn_frontend.trace import SpikeTrace

ROOT = Path(__file__).resolve().parent.parent
TINY = ["name=tinychip", "data.train_samples=30", "data.test_samples=20", "network.n_excitatory=40",
        "encoding.present_ms=60", "encoding.max_rate_hz=255", "learning.norm_total=12.8",
        "run.progress=false", "run.checkpoint_every=0", "run.trace_phases=[train, infer]",
        "hardware=edge", "energy=generic_45nm"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    stats = run_experiment(load_config(None, TINY), out)
    return out, stats


def test_frontend_and_chip_count_the_same_things(tiny_run):
    _, stats = tiny_run
    for phase in ("train", "label", "infer"):
        fe, hw = stats["frontend"][phase], stats["hardware"]["phases"][phase]["counts"]
        assert hw["core.synop"] == fe["synaptic_events"]
        assert hw["core.neuron_update_active"] + hw["core.neuron_update_idle"] == fe["neuron_updates"]
        assert hw["chip.input_spike"] == fe["input_spikes"]
        assert hw["core.spike_out"] == fe["exc_spikes"] + fe["inh_spikes"]
        assert stats["hardware"]["phases"][phase]["presentations"] == fe["presentations"]
    train_fe, train_hw = stats["frontend"]["train"], stats["hardware"]["phases"]["train"]["counts"]
    assert train_hw["core.stdp_update"] == train_fe["weight_updates"]
    assert train_hw["core.normalise_op"] == train_fe["normalisation_ops"]
    assert train_hw["core.threshold_update"] == train_fe["theta_updates"]


@pytest.mark.parametrize("model", ["fspinn", "spikedyn", "asp"])
def test_variants_run_on_the_chip_and_agree_with_the_frontend(tmp_path, model):
    over = TINY + [f"network.model={model}", "run.trace_phases=[]"]
    stats = run_experiment(load_config(None, over), tmp_path / model)
    lateral = model != "asp"
    for phase in ("train", "infer"):
        fe, hw = stats["frontend"][phase], stats["hardware"]["phases"][phase]["counts"]
        assert hw["core.synop"] == fe["synaptic_events"]
        assert hw["core.neuron_update_active"] + hw["core.neuron_update_idle"] == fe["neuron_updates"]
        if lateral:
            assert fe["inh_spikes"] == 0
            assert fe["neuron_updates"] == fe["time_steps"] * 40  # no inhibitory population
    hw = stats["hardware"]["phases"]["train"]["counts"]
    assert hw["core.stdp_update"] == stats["frontend"]["train"]["weight_updates"]
    # SpikeDyn's weight decay and ASP's leak: one whole-matrix pass per presentation, priced
    fe = stats["frontend"]["train"]
    assert hw.get("core.decay_op", 0) == fe["decay_ops"]
    assert (fe["decay_ops"] == fe["presentations"] * 64 * 40) == (model != "fspinn")
    if model == "fspinn":  # potentiation only, 8-bit weights, buffered write-backs
        assert stats["frontend"]["train"]["weight_updates"] == stats["frontend"]["train"]["exc_spikes"] * 64
        assert stats["memory"]["weight_bits"] == {"input->exc": 8, "exc->exc": 0}
        assert stats["memory"]["weights"]["exc->exc"] == 0  # one scalar strength
        w = np.load(tmp_path / model / "model.npz")["weights"]
        assert np.array_equal(np.floor(w * 256), w * 256)


def test_wall_times_of_a_run_with_a_chip_are_never_negative(tiny_run):
    """The replay runs inside the phases as their traces stream: each phase's frontend time
    is its time minus that replay, the replay is reported apart, and the parts add up to
    no more than the whole."""
    out, _ = tiny_run
    t = json.loads((out / "run.json").read_text())["timing_s"]
    assert set(t) == {"load", "train", "label", "infer", "simulate", "total"}
    assert all(v >= 0 for v in t.values()) and t["simulate"] > 0
    assert t["load"] + t["train"] + t["label"] + t["infer"] + t["simulate"] <= t["total"]


def test_run_directory_has_the_hardware_outputs(tiny_run):
    out, stats = tiny_run
    for name in ("energy.csv", "energy_breakdown.png", "summary.txt", "stats.json"):
        assert (out / name).stat().st_size > 0
    rows = (out / "energy.csv").read_text().splitlines()
    assert rows[0] == "phase,component,action,count,pj_per_action,energy_pj"
    total = sum(float(r.split(",")[-1]) for r in rows[1:] if r.startswith("infer,"))
    assert total == pytest.approx(stats["hardware"]["phases"]["infer"]["energy_pj"]["total"])
    assert "dominant component" in (out / "summary.txt").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["timing_s"]["simulate"] > 0


@pytest.mark.parametrize("chip", ["edge", "loihi_like", "spill"])
def test_fidelities_agree_on_every_shipped_chip(tiny_run, chip):
    out, _ = tiny_run
    hw = load_config(None, TINY + [f"hardware={chip}"]).hardware
    res = {}
    spec = SpikeTrace.load(out / "trace_infer").spec
    for fid in ("timestep", "event"):
        c = Chip(hw, spec, fid)
        res[fid] = (c.replay(SpikeTrace.parts(out / "trace_train"), "train"),
                    c.replay(SpikeTrace.parts(out / "trace_infer"), "infer"))
    for a, b in zip(res["timestep"], res["event"]):
        assert a.counts == b.counts
        assert abs(a.cycles - b.cycles) / a.cycles < 0.10


def test_spill_chip_streams_weights_from_dram(tiny_run):
    out, _ = tiny_run
    cfg = load_config(None, TINY + ["hardware=spill", "network.n_excitatory=400"])
    c = Chip(cfg.hardware, dc_family_spec(64, 400, False, 32))
    assert c.mapping.words_spilled.sum() > 0
    edge = Chip(load_config(None, TINY + ["network.n_excitatory=400"]).hardware,
                dc_family_spec(64, 400, False, 32))
    assert edge.mapping.words_spilled.sum() == 0


def test_loihi_table_prices_synops_and_neuron_updates_as_table_2(tiny_run):
    out, _ = tiny_run
    dest = reprice(out, "loihi_2018")
    stats = json.loads((dest / "stats.json").read_text())
    ph = stats["hardware"]["phases"]["infer"]
    assert ph["pj_per_action"]["core.synop"] == 23.6
    assert ph["pj_per_action"]["core.neuron_update_active"] == 81.0
    assert ph["pj_per_action"]["core.neuron_update_idle"] == 52.0
    assert stats["hardware"]["phases"]["train"]["pj_per_action"]["core.stdp_update"] == 120.0
    assert stats["hardware"]["energy_table"] == "loihi_2018"
    # re-pricing keeps counts and cycles (no re-simulation)
    orig = json.loads((out / "stats.json").read_text())["hardware"]["phases"]["infer"]
    assert ph["counts"] == orig["counts"] and ph["latency_cycles"] == orig["latency_cycles"]
    dyn = sum(n * ph["pj_per_action"][k] for k, n in ph["counts"].items())
    assert ph["energy_pj"]["dynamic"] == pytest.approx(dyn)


def test_report_cli_regenerates_and_reprices(tiny_run, capsys):
    out, _ = tiny_run
    (out / "energy.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "energy.csv").exists()
    assert main(["report", str(out), "--energy", "sanafe_loihi"]) == 0
    assert (out / "reprice-sanafe_loihi" / "energy_breakdown.png").exists()
    assert main(["report", str(out), "--energy", "no_such_table"]) == 2
    assert "shipped:" in capsys.readouterr().err


@pytest.mark.parametrize("override,message", [
    (["network.n_excitatory=3000"], "the chip holds 16 x 256"),
    (["hardware.sram.word_bits=16"], "narrower than one 32-bit weight"),
    (["hardware.sram.banks=0"], "hardware.sram.banks"),
    (["hardware.cores.mesh_width=3"], "must equal the 16 tiles"),
    (["hardware.cores.cores_per_tile=3"], "not a whole number of tiles"),
    (["hardware.formats.weight_bits=8"], "leave weight_bits unset"),
    (["hardware.cores.learning_unit=false"], "needs a learning unit"),
    (["hardware.noc.input_port=[9, 0]"], "outside the 4x4 mesh"),
    (["hardware=nonexistent_chip"], "no chip file"),
    (["energy=null"], "needs an energy table"),
])
def test_impossible_chips_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(None, TINY + override)


GOLDEN = Path(__file__).parent / "golden" / "default_stats.json"


def _golden_view(stats: dict) -> dict:
    """The parts of stats.json that must not change by accident: counts, cycles, accuracy."""
    return {
        "accuracy": stats["accuracy"],
        "frontend": {p: {k: v for k, v in c.items() if k != "per_sample"}
                     for p, c in stats["frontend"].items()},
        "hardware": {p: {"counts": h["counts"], "latency_cycles": h["latency_cycles"],
                         "energy_pj_total": round(h["energy_pj"]["total"], 3)}
                     for p, h in stats["hardware"]["phases"].items()},
        "memory_total_bytes": stats["memory"]["total_bytes"],
    }


@pytest.mark.slow
def test_golden_stats_of_the_default_config(tmp_path):
    """Set ACCEL_SIM_UPDATE_GOLDEN=1 to rewrite the file after an intended change."""
    stats = run_experiment(load_config(ROOT / "configs" / "default.yaml",
                                       ["run.progress=false", "run.trace_phases=[]"]),
                           tmp_path / "d")
    view = json.loads(json.dumps(_golden_view(stats)))
    if os.environ.get("ACCEL_SIM_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(view, indent=1, sort_keys=True) + "\n")
    assert GOLDEN.exists(), "run with ACCEL_SIM_UPDATE_GOLDEN=1 once to create the golden file"
    golden = json.loads(GOLDEN.read_text())
    assert view["frontend"] == golden["frontend"]
    assert view["hardware"].keys() == golden["hardware"].keys()
    for p in golden["hardware"]:
        assert view["hardware"][p]["counts"] == golden["hardware"][p]["counts"]
        assert view["hardware"][p]["latency_cycles"] == golden["hardware"][p]["latency_cycles"]
        assert view["hardware"][p]["energy_pj_total"] == pytest.approx(
            golden["hardware"][p]["energy_pj_total"], rel=1e-9)
    assert view["accuracy"] == golden["accuracy"]
    assert np.isclose(view["memory_total_bytes"], golden["memory_total_bytes"])


@pytest.mark.parametrize("over,bits", [([], 16), (["hardware.formats.state_bits=24"], 24),
                                       (["network.state_format.kind=fixed",
                                         "network.state_format.bits=12",
                                         "network.state_format.frac_bits=4"], 12)])
def test_memory_and_mapping_hold_state_at_one_width(tmp_path, over, bits):
    """A floating-point network's state is stored in the chip's format, a fixed-point one at
    its own width; the memory section and the mapping say the same (D&C, 40 excitatory:
    6 state variables each, 40 inhibitory: 3 each)."""
    cfg = load_config(None, TINY + ["run.trace_phases=[]", "data.train_samples=5",
                                    "data.test_samples=5"] + over)
    stats = run_experiment(cfg, tmp_path / "r")
    mem = stats["memory"]
    assert mem["state_bits"] == bits
    mapped = sum(stats["hardware"]["mapping"]["state_bytes_per_core"])
    assert mapped == (40 * 6 + 40 * 3) * bits / 8
    assert mem["state_bytes"]["inh"] == 40 * 3 * bits // 8  # inh has no traces


def test_memory_without_a_chip_holds_float_state_as_float32(tmp_path):
    stats = run_experiment(load_config(None, TINY + ["hardware=null", "energy=null",
                                                     "run.trace_phases=[]",
                                                     "data.train_samples=5",
                                                     "data.test_samples=5"]), tmp_path / "r")
    assert stats["memory"]["state_bits"] == 32 and "hardware" not in stats
