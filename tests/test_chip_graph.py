"""The chip over a network graph: any spec, tiles, explicit placement, traces of format 1,
and the three fidelities: `event` equals `simpy` exactly, `timestep` agrees within 10 %."""
import json
from pathlib import Path

import numpy as np
import pytest

from accel_sim import (
    NetworkSpec,
    Population,
    Projection,
    SpikeTrace,
    load_config,
    load_hardware,
    run_experiment,
    simulate,
)
from accel_sim.chip import Chip, MappingError
from accel_sim.chip.topology import Topology
from accel_sim.errors import ConfigError
from snn_frontend.models import dc_family_spec

ROOT = Path(__file__).resolve().parent.parent


def chip(**over):
    base = {"name": "t", "cores": {"count": 2, "mesh_width": 2, "mesh_height": 1,
                                   "neurons_per_core": 16, "neuron_lanes": 1, "synapse_lanes": 1},
            "sram": {"size_kib": 16, "word_bits": 64, "banks": 1},
            "sync": {"barrier_cycles": 10}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v) if isinstance(v, dict) else base.__setitem__(k, v)
    return load_hardware(base)


def test_a_sparse_projection_counts_its_pairs_and_one_message_per_destination_core():
    spec = NetworkSpec((Population("in", 3, "input"), Population("a", 4, "lif")),
                       (Projection("in", "a", "sparse", 8, pairs=([0, 0, 1], [0, 3, 1])),))
    hw = chip(noc={"cast": "unicast"})
    place = {"a": np.array([0, 0, 1, 1])}  # neurons 0, 1 on core 0; 2, 3 on core 1
    r = simulate(SpikeTrace.from_rasters(spec, {"in": np.array([[1, 1, 0]], bool)}), hw,
                 placement=place)
    assert r.counts["core.synop_sparse"] == 3  # input 0 -> a0, a3; input 1 -> a1
    assert r.counts.get("core.synop", 0) == 0  # all by the sparse synapse unit
    assert r.counts["chip.input_spike"] == 2
    # the port sits at core 0's router: input 0 reaches core 0 locally and core 1 by a
    # message (1 hop); input 1 only core 0, locally
    assert (r.counts["router.inject"], r.counts["router.local_delivery"],
            r.counts["router.hop_ew"]) == (1, 2, 1)
    assert r.counts["sram.read_word"] == 3  # one 8-bit weight per row and core: a word each


def test_same_tile_cores_share_a_router_and_tiles_count_the_hops():
    hw = chip(cores={"count": 8, "cores_per_tile": 4, "mesh_width": 2, "mesh_height": 1})
    topo = Topology(hw)
    assert [topo.tile_of(c) for c in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    same = topo.route(1, [2, 3])
    assert (same.packets, same.local, same.hops_ew) == (0, 2, 0)  # within the tile: no link
    far = topo.route(0, [5, 6])
    assert (far.packets, far.hops_ew) == (1, 1)  # multicast: one packet, one tile hop
    uni = Topology(chip(cores={"count": 8, "cores_per_tile": 4, "mesh_width": 2,
                               "mesh_height": 1}, noc={"cast": "unicast", "local": "network"}))
    r = uni.route(0, [0, 1, 5])
    assert (r.packets, r.local, r.hops_ew) == (3, 0, 1)  # SANA-FE: every core a message


def test_explicit_placement_from_the_api_and_from_a_file(tmp_path):
    spec = dc_family_spec(4, 6, False, 32)
    hw = chip(cores={"count": 4, "mesh_width": 2, "mesh_height": 2})
    place = {"exc": np.array([3, 3, 3, 2, 2, 2]), "inh": np.array([0, 0, 0, 1, 1, 1])}
    c = Chip(hw, spec, placement=place)
    assert c.mapping.neurons_per_core().tolist() == [3, 3, 3, 3]
    assert c.mapping.core["exc"].tolist() == [3, 3, 3, 2, 2, 2]
    np.savez(tmp_path / "place.npz", **place)
    cfg = load_config(ROOT / "configs" / "default.yaml",
                      ["hardware.mapping=explicit", f"hardware.placement_file={tmp_path}/place.npz",
                       "network.n_excitatory=6", "data.train_samples=4", "data.test_samples=4",
                       "run.progress=false", "run.trace_phases=[]"])
    stats = run_experiment(cfg, tmp_path / "r")
    assert stats["hardware"]["mapping"]["neurons_per_core"][:4] == [3, 3, 3, 3]
    with pytest.raises(MappingError, match="core 3 holds 4 neurons"):
        Chip(chip(cores={"count": 4, "mesh_width": 2, "mesh_height": 2, "neurons_per_core": 3}),
             spec, placement={"exc": np.array([3] * 4 + [2] * 2), "inh": np.arange(6) % 2})
    with pytest.raises(MappingError, match="no cores for population 'inh'"):
        Chip(hw, spec, placement={"exc": np.zeros(6, int)})


def test_a_format_1_trace_still_loads(tmp_path):
    """Traces written before the spec existed (D&C family, populations input/exc/inh and
    events row_update/col_update) load with their spec rebuilt from the meta."""
    meta = {"model": "diehl_cook", "n_input": 4, "n_exc": 3, "n_inh": 3, "lateral": False,
            "dt_ms": 0.5, "steps_present": 2, "steps_rest": 0, "idle_rest_steps": 0,
            "seed": 0, "phase": "train", "learn": True, "format_version": 1,
            "events": ["row_update", "col_update"]}
    arrays = {"sample": np.array([0], np.int32), "attempt": np.array([0], np.int16),
              "normalised": np.array([True]), "decays": np.array([0], np.int8),
              "step_ptr": np.array([0, 2]), "meta_json": np.array(json.dumps(meta))}
    for name, cnt, idx in (("input", [2, 0], [1, 3]), ("exc", [0, 1], [2]), ("inh", [0, 0], []),
                           ("row_update", [2, 0], [1, 3]), ("col_update", [0, 1], [2])):
        arrays[f"{name}_cnt"] = np.array(cnt, np.uint16)
        arrays[f"{name}_idx"] = np.array(idx, np.uint16)
    np.savez(tmp_path / "v1.npz", **arrays)
    tr = SpikeTrace.load(tmp_path / "v1.npz")
    assert tr.spec == dc_family_spec(4, 3, False, 32)
    assert tr.events == ("input->exc:row", "input->exc:col")
    assert tr.meta["learning"]["input->exc"]["pre_updates"] is True
    r = simulate(tr, chip(cores={"count": 2, "mesh_width": 2, "neurons_per_core": 8}))
    assert r.counts["core.stdp_update"] == 2 * 3 + 4  # two rows of 3, one column of 4


def _flood_trace(spec, T=6, seed=0):
    rng = np.random.default_rng(seed)
    rasters = {p.name: rng.random((T, p.size)) < (0.5 if p.kind == "input" else 0.2)
               for p in spec.populations}
    return SpikeTrace.from_rasters(spec, rasters)


@pytest.mark.parametrize("over", [
    {},
    {"noc": {"cast": "unicast"}},
    {"noc": {"cast": "unicast", "local": "network", "message_cycles": 3}},
    {"cores": {"soma_cycles": {"idle": 2, "active": 1, "spike": 4}, "soma_blocks_synapses": False}},
    {"cores": {"message_receive_cycles": 5, "synop_cycles": 2}, "noc": {"link_latency_ns_cycles": 3}},
    {"sram": {"size_kib": 0.25}},  # most weights in DRAM: the shared channel contends
])
def test_event_equals_simpy_on_a_contended_hand_built_trace(over):
    """Many spikes per step from every core through shared links and cores."""
    spec = NetworkSpec(
        (Population("in", 20, "input"), Population("a", 12, "lif"), Population("b", 12, "lif")),
        (Projection("in", "a", "dense", 8), Projection("a", "b", "dense", 8),
         Projection("b", "a", "all_but_self", 8), Projection("a", "a", "lateral"),
         Projection("b", "b", "sparse", 8, pairs=(np.arange(12), (np.arange(12) * 5) % 12))))
    base = {"cores": {"count": 6, "mesh_width": 3, "mesh_height": 2, "neuron_lanes": 2,
                      "synapse_lanes": 2}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    hw = chip(**base)
    trace = _flood_trace(spec)
    ev, sp = (simulate(trace, hw, fidelity=f) for f in ("event", "simpy"))
    assert ev.counts == sp.counts
    assert ev.presentation_cycles == sp.presentation_cycles and ev.cycles > 0
    assert sp.simpy_events > 0


def test_without_a_barrier_cores_only_wait_for_what_they_depend_on():
    """Hand-counted: core 0 gets the input spike each step (neuron phase 1 cycle, the job
    1 cycle + 1 read latency), core 1 has nothing to do. With the barrier (10 cycles) each
    step is 1 + 2 + 10 = 13 cycles; without, core 1 runs ahead and the port sends step t's
    spike when both neuron phases of step t are over: steps end at 3 and 6."""
    spec = NetworkSpec((Population("in", 1, "input"), Population("a", 1, "lif"),
                        Population("b", 1, "lif")), (Projection("in", "a", "dense", 8),))
    trace = SpikeTrace.from_rasters(spec, {"in": np.ones((2, 1), bool)})
    place = {"a": np.array([0]), "b": np.array([1])}
    with_barrier = simulate(trace, chip(), fidelity="simpy", placement=place)
    assert with_barrier.cycles == 26
    assert simulate(trace, chip(), fidelity="event", placement=place).cycles == 26
    free = chip(sync={"barrier": False})
    assert simulate(trace, free, fidelity="simpy", placement=place).cycles == 6
    with pytest.raises(ConfigError, match="use fidelity simpy"):
        simulate(trace, free, fidelity="event", placement=place)


@pytest.fixture(scope="module")
def real_traces(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "r"
    run_experiment(load_config(ROOT / "configs" / "default.yaml",
                               ["data.train_samples=3", "data.label_samples=3",
                                "data.test_samples=3", "encoding.present_ms=40",
                                "encoding.max_rate_hz=255", "run.progress=false",
                                "run.trace_phases=[train, infer]"]), out)
    return {ph: SpikeTrace.load(out / f"trace_{ph}") for ph in ("train", "infer")}


@pytest.mark.parametrize("name", ["edge", "edge_small", "spill",
                                  *(pytest.param(n, marks=pytest.mark.slow)
                                    for n in ("loihi_like", "loihi_sanafe"))])
def test_event_equals_simpy_and_timestep_is_within_10_percent_on_every_shipped_chip(
        real_traces, name):
    hw = load_hardware(name)
    for phase, tr in real_traces.items():
        if phase == "train" and tr.spec.projection("input->exc").weight_bits > hw.sram.word_bits:
            continue
        res = {f: Chip(hw, tr.spec, f).replay(tr, phase) for f in ("timestep", "event", "simpy")}
        assert res["event"].presentation_cycles == res["simpy"].presentation_cycles, phase
        assert res["timestep"].counts == res["event"].counts == res["simpy"].counts
        ts, ev = res["timestep"].cycles, res["event"].cycles
        assert abs(ts - ev) / ev < 0.10, (phase, ts, ev)


@pytest.mark.parametrize("cast", ["multicast", "unicast"])
def test_timestep_agrees_with_event_for_multicast_and_unicast(real_traces, cast):
    """The port sends one copy of a spike per destination core when unicast (a Loihi-shaped
    chip with 128 cores: the port term dominates)."""
    hw = load_hardware("loihi_like", [f"noc.cast={cast}"])
    tr = real_traces["infer"]
    ts, ev = (Chip(hw, tr.spec, f).replay(tr, "infer").cycles for f in ("timestep", "event"))
    assert abs(ts - ev) / ev < 0.10, (ts, ev)
