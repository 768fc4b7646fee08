"""The compiled `event` fidelity (ext/event_kernels.pyx) gives the cycles of its NumPy
reference (accel_sim/chip/event.py) step for step, on hand-built contended traces (every
kind of resource contending: unicast copies, network-local deliveries, a soma that does
not block the synapses, receive costs, spilled weights on the shared DRAM channel) and on
real traces on the shipped chips; and the fidelity picks it unless told otherwise."""
import numpy as np
import pytest
from conftest import requires_event_kernels
from test_chip_graph import _flood_trace, chip, real_traces  # noqa: F401 (a fixture)

from accel_sim import NetworkSpec, Population, Projection, load_hardware, simulate
from accel_sim.chip import Chip
from accel_sim.chip import event as reference
from accel_sim.chip.messages import DeliveryPlan

pytestmark = requires_event_kernels


def _both(tr, hw):
    """Per presentation: (reference cycles, compiled cycles) of every step."""
    from accel_sim.chip import _event_kernels as compiled

    c = Chip(hw, tr.spec, "timestep")
    plan = DeliveryPlan(c.counter, c.rates)
    levels = reference._levels(plan)
    learn, learning = bool(tr.meta.get("learn", False)), tr.meta.get("learning", {})
    for p in tr:
        _, work = c.counter.count(p, learn=learn, learning=learning,
                                  state_reset=bool(tr.meta.get("state_reset", True)))
        yield (reference.event_cycles(p, work, plan, c.rates, levels),
               compiled.event_cycles(p, work, plan, c.rates, None))


def _contended_spec():
    return NetworkSpec(
        (Population("in", 20, "input"), Population("a", 12, "lif"), Population("b", 12, "lif")),
        (Projection("in", "a", "dense", 8), Projection("a", "b", "dense", 8),
         Projection("b", "a", "all_but_self", 8), Projection("a", "a", "lateral"),
         Projection("b", "b", "sparse", 8, pairs=(np.arange(12), (np.arange(12) * 5) % 12))))


@pytest.mark.parametrize("over", [
    {},
    {"noc": {"cast": "unicast"}},
    {"noc": {"cast": "unicast", "local": "network", "message_cycles": 3}},
    {"cores": {"soma_cycles": {"idle": 2, "active": 1, "spike": 4}, "soma_blocks_synapses": False}},
    {"cores": {"soma_cycles": {"idle": 2, "active": 1, "spike": 4}}},
    {"cores": {"message_receive_cycles": 5, "synop_cycles": 2}, "noc": {"link_latency_ns_cycles": 3}},
    {"sram": {"size_kib": 0.25}},
    {"sram": {"size_kib": 0.25}, "dram": {"banks": 1, "row_bytes": 64}},
    {"sram": {"size_kib": 0.25}, "dram": {"page_policy": "closed"}},
    {"sync": {"barrier_cycles": 0}},
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_equals_reference_on_contended_traces(over, seed):
    base = {"cores": {"count": 6, "mesh_width": 3, "mesh_height": 2, "neuron_lanes": 2,
                      "synapse_lanes": 2}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    tr = _flood_trace(_contended_spec(), T=8, seed=seed)
    for ref, got in _both(tr, chip(**base)):
        assert ref.dtype == got.dtype == np.int64
        np.testing.assert_array_equal(got, ref)
        assert ref.sum() > 0


def test_a_presentation_without_spikes_is_its_neuron_phases_and_barriers():
    spec = _contended_spec()
    from accel_sim import SpikeTrace
    tr = SpikeTrace.from_rasters(spec, {p.name: np.zeros((3, p.size), bool)
                                        for p in spec.populations})
    hw = chip(cores={"count": 6, "mesh_width": 3, "mesh_height": 2, "neuron_lanes": 2})
    (ref, got), = _both(tr, hw)
    np.testing.assert_array_equal(got, ref)
    # 12 + 12 neurons on 6 cores: 4 per core, 2 lanes -> 2 cycles, then the barrier
    r = Chip(hw, spec, "timestep").rates
    assert got.tolist() == [2 + r.barrier] * 3


@pytest.mark.parametrize("name", ["edge", "spill", "loihi_sanafe"])
def test_compiled_equals_reference_on_real_traces(real_traces, name):
    hw = load_hardware(name)
    for phase, tr in real_traces.items():
        if phase == "train" and tr.spec.projection("input->exc").weight_bits > hw.sram.word_bits:
            continue
        n = 0
        for ref, got in _both(tr, hw):
            np.testing.assert_array_equal(got, ref)
            n += 1
        assert n == tr.n_presentations


def test_the_fidelity_uses_the_compiled_kernel_unless_told(monkeypatch):
    spec = _contended_spec()
    tr = _flood_trace(spec, T=5)
    hw = chip(cores={"count": 6, "mesh_width": 3, "mesh_height": 2})
    assert Chip(hw, spec, "event").timer.backend == "cython"
    compiled = simulate(tr, hw, fidelity="event")
    monkeypatch.setenv("ACCEL_SIM_BACKEND", "numpy")
    c = Chip(hw, spec, "event")
    assert c.timer.backend == "numpy"
    assert c.replay(tr, "infer").presentation_cycles == compiled.presentation_cycles
