"""Systems of chips (hardware.system): the board's mesh, chip-to-chip hops counted,
timed and priced apart, the same at every fidelity."""
import numpy as np
import pytest
from test_chip import table

from accel_sim.chip import Chip
from accel_sim.chip.topology import Topology
from accel_sim.config.hardware import HardwareConfig
from accel_sim.energy import EnergyTable
from accel_sim.errors import MappingError
from snn_frontend.models import dc_family_spec
from snn_frontend.trace import TraceBuilder


def board(**system) -> HardwareConfig:
    """Two chips side by side, each 2 x 2 tiles of one core (4 neurons a core)."""
    return HardwareConfig.model_validate(
        {"cores": {"count": 4, "mesh_width": 2, "mesh_height": 2, "neurons_per_core": 4},
         "mapping": "contiguous", "sync": {"barrier_cycles": 10},
         "system": {"chips": [2, 1], **system}})


def test_the_board_is_one_mesh_numbered_chip_by_chip():
    topo = Topology(board())
    assert (topo.width, topo.height, topo.n_tiles) == (4, 2, 8)
    assert [topo.xy(t) for t in range(8)] == [(0, 0), (1, 0), (0, 1), (1, 1),
                                              (2, 0), (3, 0), (2, 1), (3, 1)]
    assert all(topo.tile_at(*topo.xy(t)) == t for t in range(8))
    # core 0 (0, 0) to core 5 (3, 0): two hops on the chips, one between them
    r = topo.route(0, (5,))
    assert (r.hops_ew, r.hops_ns, r.hops_chip, r.max_hops, r.max_chip_hops) == (2, 0, 1, 3, 1)
    r = topo.route(3, (6,))  # (1, 1) -> (2, 1)
    assert (r.hops_ew, r.hops_chip) == (0, 1)


def trace(n_in, n_exc, inputs, steps=2):
    spec = dc_family_spec(n_in, n_exc, False, 32)
    tb = TraceBuilder({"spec": spec.to_dict(), "learn": False})
    cnt = {p: np.zeros(steps, np.int32) for p in ("input", "exc", "inh")}
    cnt["input"][0] = len(inputs)
    tb.add(0, 0, False, steps, cnt, {"input": np.array(inputs, np.int32),
                                     "exc": np.zeros(0, np.int32), "inh": np.zeros(0, np.int32)})
    return spec, tb.build()


def test_a_network_one_chip_cannot_hold_spreads_over_the_board():
    # 2 inputs, 12 excitatory + 12 inhibitory = 24 neurons: 6 cores of 4, two chips' worth
    spec, tr = trace(2, 12, [0])
    res = {f: Chip(board(), spec, f).replay([tr], "infer") for f in ("timestep", "event", "simpy")}
    assert res["timestep"].counts == res["event"].counts == res["simpy"].counts
    assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
    c = res["event"].counts
    # the port (0, 0) multicasts to the 3 cores of exc (cores 0-2) on chip 0: no chip hop
    assert c["router.hop_chip"] == 0
    with pytest.raises(MappingError, match="system of 2 chips"):
        Chip(board(), dc_family_spec(2, 20, False, 32), "timestep")


def test_chip_to_chip_hops_are_counted_timed_and_priced_apart():
    # exc -> inh one-to-one: exc neuron 10 on core 2 (chip 0, tile (0, 1)) drives inh 10
    # on core 5 (chip 1, (3, 0)); input 0 drives every exc neuron
    spec = dc_family_spec(2, 12, False, 32)
    tb = TraceBuilder({"spec": spec.to_dict(), "learn": False})
    cnt = {p: np.zeros(2, np.int32) for p in ("input", "exc", "inh")}
    cnt["exc"][0] = 1
    tb.add(0, 0, False, 2, cnt, {"input": np.zeros(0, np.int32), "exc": np.array([10], np.int32),
                                 "inh": np.zeros(0, np.int32)})
    tr = tb.build()
    slow, fast = ({f: Chip(board(link_latency_cycles=lat), spec, f).replay([tr], "infer")
                   for f in ("timestep", "event", "simpy")} for lat in (11, 1))
    for res in (slow, fast):
        assert res["timestep"].counts == res["event"].counts == res["simpy"].counts
        assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
    # XY from (0, 1) to (3, 0): east over (1, 1) -> (2, 1), the chip link, then (3, 1),
    # north to (3, 0)
    c = slow["event"].counts
    assert (c["router.hop_ew"], c["router.hop_ns"], c["router.hop_chip"]) == (2, 1, 1)
    # ten more cycles on the chip link: ten more on the way (every fidelity)
    for f in ("timestep", "event", "simpy"):
        assert slow[f].cycles - fast[f].cycles == 10
    t = EnergyTable(table(**{"router.hop_chip": 100.0})).resolve(board())
    assert t.pj["router", "hop_chip"] == 100.0
    # static power per instance: 8 cores, 8 routers, 2 chips, one DRAM
    assert t.static_mw["core"] == 8 * 2.0 and t.static_mw["chip"] == 2 * 2.0
    assert t.static_mw["dram"] == 2.0


def test_a_narrow_chip_link_holds_each_message_longer():
    """Two spikes in a step cross the same chip link: at 8 bits a cycle a 32-bit packet
    holds it 4 cycles, so the second waits 3 cycles more than at 32 bits."""
    spec = dc_family_spec(2, 12, False, 32)
    tb = TraceBuilder({"spec": spec.to_dict(), "learn": False})
    cnt = {p: np.zeros(2, np.int32) for p in ("input", "exc", "inh")}
    cnt["exc"][0] = 2
    tb.add(0, 0, False, 2, cnt, {"input": np.zeros(0, np.int32),
                                 "exc": np.array([10, 11], np.int32),
                                 "inh": np.zeros(0, np.int32)})
    tr = tb.build()
    cyc = {}
    for width in (8, 32):
        res = {f: Chip(board(link_width_bits=width), spec, f).replay([tr], "infer")
               for f in ("event", "simpy")}
        assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
        cyc[width] = res["event"].cycles
    assert cyc[8] - cyc[32] == 3


def test_the_shipped_board_replays_alike_at_every_fidelity():
    """loihi_board (16 chips, 2,048 cores): a D&C trace spread over the board."""
    from accel_sim import load_hardware

    hw = load_hardware("loihi_board")
    assert (hw.n_chips, hw.n_cores) == (16, 2048)
    spec, tr = trace(784, 100, list(range(0, 784, 7)), steps=3)
    res = {f: Chip(hw, spec, f).replay([tr], "infer") for f in ("timestep", "event", "simpy")}
    assert res["timestep"].counts == res["event"].counts == res["simpy"].counts
    assert res["event"].counts["router.hop_chip"] > 0
    assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
    a, b = res["timestep"].cycles, res["event"].cycles
    assert abs(a - b) / b < 0.10


def test_the_estimate_counts_chip_hops_as_the_replay_does():
    from accel_sim.estimate import activity_from_traces, estimate_phase

    spec = dc_family_spec(2, 12, False, 32)
    tb = TraceBuilder({"spec": spec.to_dict(), "learn": False})
    cnt = {p: np.zeros(2, np.int32) for p in ("input", "exc", "inh")}
    cnt["input"][0], cnt["exc"][0], cnt["inh"][1] = 1, 3, 2
    tb.add(0, 0, False, 2, cnt, {"input": np.array([1], np.int32),
                                 "exc": np.array([2, 10, 11], np.int32),
                                 "inh": np.array([0, 9], np.int32)})
    tr = tb.build()
    chip = Chip(board(), spec, "timestep")
    r = chip.replay([tr], "infer")
    est = estimate_phase(chip.counter, chip.rates, activity_from_traces([tr]))["counts"]
    assert r.counts["router.hop_chip"] > 0
    for key in ("router.hop_ew", "router.hop_ns", "router.hop_chip", "core.synop"):
        assert est.get(key, 0) == pytest.approx(r.counts[key])


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_the_host_link_delays_and_paces_input_spikes(backend, monkeypatch):
    """Two input spikes in a step through the port: a byte-wide host link holds each
    32-bit packet 4 cycles (the second leaves 3 cycles later than at 32 bits), and its
    latency delays every input message by as many cycles."""
    monkeypatch.setenv("ACCEL_SIM_BACKEND", backend)
    spec, tr = trace(2, 12, [0, 1])

    def cycles(**system):
        res = {f: Chip(board(**system), spec, f).replay([tr], "infer")
               for f in ("timestep", "event", "simpy")}
        assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
        return {f: r.cycles for f, r in res.items()}

    base, narrow, late = cycles(), cycles(host_link_width_bits=8), cycles(host_latency_cycles=7)
    assert narrow["event"] - base["event"] == 3
    assert all(late[f] - base[f] == 7 for f in base)
    assert narrow["timestep"] - base["timestep"] == 2 * 4 - 2 * 1
