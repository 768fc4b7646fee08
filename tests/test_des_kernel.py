"""The compiled calendar of the `simpy` fidelity (ext/des_kernels.pyx) runs the arrivals
of its Python reference (accel_sim/chip/arrivals.py) in the same order: the same cycles of
every step, the same SimPy arrivals, with and without the barrier, on hand-built contended
traces and on real traces; and the fidelity picks it unless told otherwise."""
import numpy as np
import pytest
from conftest import requires_des_kernels
from test_chip_graph import _flood_trace, chip, real_traces  # noqa: F401 (a fixture)
from test_event_kernel import _contended_spec

from accel_sim import load_hardware
from accel_sim.chip import Chip

pytestmark = requires_des_kernels


def _replay(tr, hw, backend, monkeypatch):
    """(cycles of every step of every presentation, SimPy arrivals) of a simpy replay."""
    monkeypatch.setenv("ACCEL_SIM_BACKEND", backend)
    c = Chip(hw, tr.spec, "simpy")
    assert c.timer.des.backend == backend
    steps, events = [], 0
    for k in range(tr.n_presentations):
        r = c.replay(tr.select(k, k + 1), "infer")
        steps.append(np.asarray(c.timer.last_step_cycles).tolist())
        assert sum(steps[-1]) == r.cycles
        events += r.simpy_events
    return steps, events


def _same(tr, hw, monkeypatch):
    ref = _replay(tr, hw, "numpy", monkeypatch)
    got = _replay(tr, hw, "cython", monkeypatch)
    assert got == ref
    assert ref[1] > 0 and sum(map(sum, ref[0])) > 0
    return ref


@pytest.mark.parametrize("over", [
    {},
    {"noc": {"cast": "unicast", "local": "network", "message_cycles": 3}},
    {"cores": {"soma_cycles": {"idle": 2, "active": 1, "spike": 4}, "soma_blocks_synapses": False}},
    {"cores": {"message_receive_cycles": 5, "synop_cycles": 2}, "noc": {"link_latency_ns_cycles": 3}},
    {"sram": {"size_kib": 0.25}},
    {"sync": {"barrier_cycles": 0}},
])
@pytest.mark.parametrize("barrier", [True, False])
def test_compiled_equals_reference_on_contended_traces(over, barrier, monkeypatch):
    base = {"cores": {"count": 6, "mesh_width": 3, "mesh_height": 2, "neuron_lanes": 2,
                      "synapse_lanes": 2}, "sync": {"barrier": barrier}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    for seed in (0, 1):
        _same(_flood_trace(_contended_spec(), T=8, seed=seed), chip(**base), monkeypatch)


@pytest.mark.parametrize("name", ["edge", "loihi_sanafe"])
@pytest.mark.parametrize("barrier", ["true", "false"])
def test_compiled_equals_reference_on_real_traces(real_traces, name, barrier, monkeypatch):
    hw = load_hardware(name, [f"sync.barrier={barrier}"])
    steps, _ = _same(real_traces["infer"], hw, monkeypatch)
    assert len(steps) == real_traces["infer"].n_presentations


def test_the_fidelity_uses_the_compiled_calendar_unless_told(monkeypatch):
    hw = chip(cores={"count": 6, "mesh_width": 3, "mesh_height": 2})
    monkeypatch.delenv("ACCEL_SIM_BACKEND", raising=False)
    assert Chip(hw, _contended_spec(), "simpy").timer.des.backend == "cython"
    monkeypatch.setenv("ACCEL_SIM_BACKEND", "numpy")
    assert Chip(hw, _contended_spec(), "simpy").timer.des.backend == "numpy"
