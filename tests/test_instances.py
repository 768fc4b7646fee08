"""Per-instance results: a hand-counted case, every action's instances adding up to the
phase total on real runs (STDP training, inference, every shipped mesh, BPTT), per-step
cycles, and the run directory's per_core.csv, mesh.png and latency.png."""
import csv
import json

import numpy as np
import pytest

from accel_sim import load_config, load_hardware, run_experiment, simulate
from accel_sim.chip import Chip
from snn_frontend.spec import NetworkSpec, Population, Projection
from snn_frontend.trace import SpikeTrace


def _hand():
    """One input neuron -> two LIF neurons (dense), on edge's cores 0 and 5; the input
    fires at steps 0, 1, 2 of 4, neuron 1 at step 3."""
    spec = NetworkSpec((Population("in", 1, "input"), Population("a", 2, "lif")),
                       (Projection("in", "a", "dense", 8),))
    rasters = {"in": np.array([[1], [1], [1], [0]], bool),
               "a": np.array([[0, 0], [0, 0], [0, 0], [0, 1]], bool)}
    return SpikeTrace.from_rasters(spec, rasters), {"a": np.array([0, 5])}


def test_instances_by_hand():
    trace, placement = _hand()
    r = simulate(trace, "edge", placement=placement)
    inst = r.instances
    core = {a: np.asarray(v) for a, v in inst["core"].items()}
    assert core["core.synop"][[0, 5]].tolist() == [3, 3] and core["core.synop"].sum() == 6
    assert core["core.spike_out"][5] == 1 and core["core.spike_out"].sum() == 1
    # the whole population is active after a step with input: steps 1, 2, 3 of 4
    assert core["core.neuron_update_active"][[0, 5]].tolist() == [3, 3]
    assert core["core.neuron_update_idle"][[0, 5]].tolist() == [1, 1]
    # from the port at tile (0, 0): core 0 is local there (free), core 5 at (1, 1) is
    # reached by one multicast message over (0,0)>(1,0) then (1,0)>(1,1)
    router = {a: np.asarray(v) for a, v in inst["router"].items()}
    assert router["router.inject"][0] == 3 and router["router.local_delivery"][0] == 3
    assert router["router.hop_ew"][0] == 3 and router["router.hop_ns"][1] == 3
    assert sum(v.sum() for v in router.values()) == 12
    assert dict(zip(inst["links"], inst["link_messages"])) == {"link[0,0>1,0]": 3,
                                                             "link[1,0>1,1]": 3}
    assert inst["unattributed"] == {} and inst["chip"] == {"chip.barrier": 4,
                                                         "chip.input_spike": 3}


def _adds_up(phase: dict) -> None:
    """Every core, SRAM and router action's instances (and the unattributed rest) add up
    to its total; the instances' energy to the phase's."""
    inst = phase["instances"]
    for key, n in phase["counts"].items():
        kind = key.split(".", 1)[0]
        if kind in ("core", "sram", "router"):
            split = inst["core" if kind != "router" else "router"].get(key, [0])
            assert sum(split) + inst["unattributed"].get(key, 0) == n, key
    per = phase["per_instance"]
    total = sum(e["energy_pj"]["total"] for g in ("cores", "routers", "others") for e in per[g])
    assert total == pytest.approx(phase["energy_pj"]["total"], rel=1e-12)


SMALL = ["data.train_samples=20", "data.test_samples=20", "network.n_excitatory=40",
         "encoding.present_ms=60", "run.progress=false", "run.checkpoint_every=0",
         "energy=generic_45nm"]


@pytest.mark.parametrize("chip", ["edge", "loihi_like", "spill"])
def test_a_stdp_run_splits_every_action_without_remainder(chip, tmp_path):
    stats = run_experiment(load_config(None, SMALL + [f"hardware={chip}"]), tmp_path / "r")
    for phase in stats["hardware"]["phases"].values():
        _adds_up(phase)
        assert phase["instances"]["unattributed"] == {}
        assert len(phase["per_instance"]["cores"]) == load_hardware(chip).cores.count
    with open(tmp_path / "r" / "per_core.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    infer = stats["hardware"]["phases"]["infer"]
    n = infer["instances"]
    assert sum(r["phase"] == "infer" for r in rows) == (
        n["cores"] + n["tiles"] + len(n["links"]) + 2)
    synops = sum(int(r["count.core.synop"]) for r in rows if r["phase"] == "infer")
    assert synops == infer["counts"]["core.synop"]
    for name in ("mesh.png", "latency.png"):
        assert (tmp_path / "r" / name).stat().st_size > 10_000
    text = (tmp_path / "r" / "summary.txt").read_text()
    assert "hardware.infer.hottest_core" in text and "hardware.infer.busiest_link" in text


@pytest.mark.slow
def test_bptt_actions_stay_whole_in_unattributed(tmp_path):
    cfg = load_config(None, ["network.model=surrogate", "network.hidden_sizes=[10]",
                             "data.train_samples=32", "data.test_samples=16",
                             "learning.batch_size=16", "encoding.present_ms=10",
                             "run.progress=false", "hardware=edge", "energy=generic_45nm"])
    stats = run_experiment(cfg, tmp_path / "r")
    train = stats["hardware"]["phases"]["train"]
    _adds_up(train)
    assert train["instances"]["unattributed"]  # the BPTT actions, not split by core
    _adds_up(stats["hardware"]["phases"]["infer"])
    assert stats["hardware"]["phases"]["infer"]["instances"]["unattributed"] == {}


@pytest.mark.parametrize("fidelity", ["timestep", "event", "simpy"])
def test_the_first_presentations_steps_add_up_to_its_cycles(fidelity):
    trace, placement = _hand()
    r = simulate(trace, "loihi_like", fidelity=fidelity, placement=placement)
    assert len(r.first_step_cycles) == 4
    assert sum(r.first_step_cycles) == r.presentation_cycles[0]
    if fidelity != "timestep":  # the same model, step by step
        other = simulate(trace, "loihi_like", fidelity="event" if fidelity == "simpy"
                         else "simpy", placement=placement)
        assert other.first_step_cycles == r.first_step_cycles


def test_busy_cycles_do_not_exceed_the_latency(tmp_path):
    trace, placement = _hand()
    hw = load_hardware("edge")
    r = Chip(hw, trace.spec, "event", placement).replay(trace, "infer")
    busy = r.instances["core_busy_cycles"]
    assert 0 < busy[0] == busy[5] <= r.cycles and busy[1] == 0
    # a link carries flits x messages: three 1-flit messages on each used link
    flits = r.instances["link_flits"]  # per link
    assert set(flits) == {1} and len(flits) == len(r.instances["links"])
    assert 3 * max(flits) <= r.cycles
    assert json.loads(json.dumps(r.instances)) == r.instances  # plain data for stats.json


def test_a_checkpoint_without_instances_is_a_clear_error():
    from accel_sim.errors import RunError

    trace, placement = _hand()
    chip = Chip(load_hardware("edge"), trace.spec, "timestep", placement)
    ph = chip.phase("infer")
    ph.consume(trace)
    state = ph.snapshot()
    del state["instances"]
    with pytest.raises(RunError, match="earlier version"):
        chip.phase("infer").restore(state)
