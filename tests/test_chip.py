"""The chip: exact action counts and latencies on hand-countable cases, pricing identities."""
import math

import numpy as np
import pytest

from accel_sim.chip import Chip
from accel_sim.chip.mapping import Mapping
from accel_sim.chip.timing import HwRates
from accel_sim.chip.topology import Topology
from accel_sim.config.energy import EnergyTableConfig
from accel_sim.config.hardware import HardwareConfig
from accel_sim.energy import EnergyTable, price_phase
from accel_sim.registry import COMPONENT_ACTIONS
from snn_frontend.models import dc_family_spec
from snn_frontend.trace import TraceBuilder


def hw(**over) -> HardwareConfig:
    base = {"cores": {"count": 1, "mesh_width": 1, "mesh_height": 1, "neurons_per_core": 64},
            "sram": {"size_kib": 64, "word_bits": 64, "banks": 2},
            "sync": {"barrier_cycles": 10}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v) if isinstance(v, dict) else base.__setitem__(k, v)
    return HardwareConfig.model_validate(base)


def dc(n_in, n_exc, weight_bits=32):
    """The D&C graph: n_in inputs, n_exc excitatory and as many inhibitory neurons."""
    return dc_family_spec(n_in, n_exc, False, weight_bits)


def one_step_trace(n_in, n_exc, inputs=(), exc=(), inh=(), steps=1, learn=False, normalised=False,
                   weight_bits=32):
    """A trace of one presentation whose first step has the given spikes."""
    tb = TraceBuilder({"spec": dc(n_in, n_exc, weight_bits).to_dict(), "learn": learn})
    cnt = {p: np.zeros(steps, np.int32) for p in ("input", "exc", "inh")}
    for p, idx in (("input", inputs), ("exc", exc), ("inh", inh)):
        cnt[p][0] = len(idx)
    tb.add(0, 0, normalised, steps, cnt, {"input": np.array(inputs, np.int32),
                                          "exc": np.array(exc, np.int32),
                                          "inh": np.array(inh, np.int32)})
    return tb.build()


def table(**pj) -> EnergyTableConfig:
    """A table with 1 pJ for every action (or the given ones) and 2 mW static per class."""
    comps = {}
    for comp, actions in COMPONENT_ACTIONS.items():
        comps[comp] = {"static_mw": 2.0, "static_source": "test",
                       "actions": {a: {"energy_pj": pj.get(f"{comp}.{a}", 1.0), "source": "test"}
                                   for a in actions}}
    return EnergyTableConfig.model_validate(
        {"name": "t", "technology": "test", "basis": "derived", "source": "test",
         "components": comps})


@pytest.mark.parametrize("k,b,w", [(10, 32, 64), (10, 8, 64), (7, 32, 32), (33, 8, 256)])
def test_one_input_spike_reads_ceil_k_b_over_w_words_and_makes_k_synops(k, b, w):
    h = hw(sram={"word_bits": w}, cores={"neurons_per_core": 2 * k})
    chip = Chip(h, dc(5, k, b))
    r = chip.replay([one_step_trace(5, k, inputs=[3], weight_bits=b)], "infer")
    assert r.counts["core.synop"] == k
    assert r.counts["sram.read_word"] == math.ceil(k * b / w)
    assert r.counts["chip.input_spike"] == 1
    assert r.counts.get("sram.write_word", 0) == 0 and r.counts.get("core.stdp_update", 0) == 0


@pytest.mark.parametrize("h", [1, 2, 5])
def test_a_packet_over_h_hops_counts_h_hops_and_takes_h_hop_latencies(h):
    """Input port at the far end of a 1 x (h+1) row; all neurons on core 0."""
    def chip(hops):
        cfg = hw(cores={"count": hops + 1, "mesh_width": hops + 1, "neurons_per_core": 8},
                 mapping="contiguous", noc={"input_port": [hops, 0], "router_latency_cycles": 2,
                                             "link_latency_cycles": 1})
        return Chip(cfg, dc(4, 4), "event")
    c = chip(h)
    r = c.replay([one_step_trace(4, 4, inputs=[0])], "infer")
    assert r.counts["router.hop_ew"] == h and r.counts.get("router.hop_ns", 0) == 0
    assert r.counts["router.inject"] == 1
    r2 = chip(h + 1).replay([one_step_trace(4, 4, inputs=[0])], "infer")
    assert r2.cycles - r.cycles == 3  # one more hop = router (2) + link (1) cycles
    grid = hw(cores={"count": 16, "mesh_width": 4, "mesh_height": 4})
    assert Topology(grid).route(0, [15]).hops_ns == 3


def test_multicast_tree_vs_unicast_hops():
    line = {"cores": {"count": 4, "mesh_width": 4, "mesh_height": 1}}
    multi = Topology(hw(**line)).route(0, [1, 2, 3])
    uni = Topology(hw(**line, noc={"cast": "unicast"})).route(0, [1, 2, 3])
    assert (multi.hops_ew, multi.packets) == (3, 1)
    assert (uni.hops_ew, uni.packets) == (1 + 2 + 3, 3)


def test_column_update_of_a_row_major_matrix_touches_one_word_per_row():
    n_in, k = 12, 8
    for layout, expect in (("row_major", n_in), ("column_major", math.ceil(n_in * 32 / 64))):
        chip = Chip(hw(sram={"layout": layout}), dc(n_in, k))
        r = chip.replay([one_step_trace(n_in, k, exc=[2], learn=True)], "train")
        assert r.counts["core.stdp_update"] == n_in
        # column RMW: words read and written, plus the one exc->inh word read for delivery
        assert r.counts["sram.write_word"] == expect
        assert r.counts["sram.read_word"] == expect + 1


def test_spilled_weights_are_read_from_dram_word_for_word():
    """4 KiB SRAM of 64-bit words (512 words); rows of 25 weights x 32 bit = 13 words."""
    h = hw(sram={"size_kib": 4, "word_bits": 64}, dram={"burst_bytes": 8},
           cores={"neurons_per_core": 64})
    net = dc(100, 25)
    m = Mapping(net, h)
    assert m.capacity_words == 512
    assert m.words_used[0] == 100 * 13 + 25 * 12 + 25  # input rows, inh rows (24 targets), exc->inh
    rows = m.blocks["input->exc"][0]
    spilled_rows = [i for i in range(100) if rows.row_dram[i] > 0]
    chip = Chip(h, net)
    inputs = [0, 50, 99]
    r = chip.replay([one_step_trace(100, 25, inputs=inputs)], "infer")
    touched = sum(int(rows.row_dram[i]) for i in inputs)
    assert touched == 13 * sum(i in spilled_rows for i in inputs) > 0
    assert r.counts["dram.read_bit"] == touched * 64  # one 8-byte burst per word
    assert r.counts["sram.read_word"] + touched == 3 * 13
    assert r.counts["dram.activate"] == sum(1 for i in inputs if i in spilled_rows)


@pytest.mark.parametrize("normalised, decays", [(False, 0), (True, 0), (False, 2), (True, 1)])
def test_each_whole_matrix_pass_reads_and_writes_every_weight_word(normalised, decays):
    """A normalisation before and d decay passes after a presentation: each pass makes
    n_in x N multiplies and one read and one write of every input->exc word."""
    net = dc(10, 6)
    block = 10 * 3  # 10 rows of 6 x 32-bit weights = 192 bits = 3 64-bit words each
    tb = TraceBuilder({"spec": net.to_dict(), "learn": True})
    cnt = {p: np.zeros(2, np.int32) for p in ("input", "exc", "inh")}
    idx = {p: np.zeros(0, np.int32) for p in ("input", "exc", "inh")}
    tb.add(0, 0, normalised, 2, cnt, idx, decays=decays)
    r = Chip(hw(), net).replay([tb.build()], "train")
    passes = int(normalised) + decays
    assert r.counts.get("core.normalise_op", 0) == normalised * 60
    assert r.counts.get("core.decay_op", 0) == decays * 60
    assert r.counts.get("sram.read_word", 0) == r.counts.get("sram.write_word", 0) == passes * block


def test_neuron_updates_split_active_and_idle():
    chip = Chip(hw(), dc(4, 6))
    r = chip.replay([one_step_trace(4, 6, inputs=[1], steps=3)], "infer")
    # step 0: nothing arrived yet; step 1: all 6 exc got the input spike; step 2: nothing
    assert r.counts["core.neuron_update_active"] == 6
    assert r.counts["core.neuron_update_idle"] == 3 * 12 - 6
    assert r.counts["chip.barrier"] == 3


def test_idle_chip_static_energy_is_power_times_time():
    h = hw()
    t = EnergyTable(table()).resolve(h)
    cycles = 2_000_000  # 10 ms at 200 MHz
    out = price_phase({}, cycles, h.clock_mhz, t, samples=1, presentations=1, time_steps=1)
    assert out["energy_pj"]["dynamic"] == 0
    # 5 classes: core, sram, router (1 instance each here), dram, chip; 2 mW each
    assert out["energy_pj"]["static"] == pytest.approx(5 * 2e-3 * 0.01 * 1e12)
    assert out["latency_s"] == pytest.approx(0.01)


def test_components_add_up_and_doubling_one_action_changes_only_its_term():
    h = hw()
    chip = Chip(h, dc(4, 6))
    r = chip.replay([one_step_trace(4, 6, inputs=[0, 1], exc=[2], inh=[3], steps=4, learn=True)],
                    "train")
    base = price_phase(r.counts, r.cycles, h.clock_mhz, EnergyTable(table()).resolve(h),
                       samples=1, presentations=1, time_steps=4)
    e = base["energy_pj"]
    assert sum(c["total"] for c in e["by_component"].values()) == pytest.approx(e["total"])
    assert e["dynamic"] == pytest.approx(sum(r.counts.values()))  # 1 pJ per action
    doubled = price_phase(r.counts, r.cycles, h.clock_mhz,
                          EnergyTable(table(**{"core.synop": 2.0})).resolve(h),
                          samples=1, presentations=1, time_steps=4)
    d = doubled["energy_pj"]
    assert d["total"] - e["total"] == pytest.approx(r.counts["core.synop"])
    for comp in ("sram", "dram", "router", "chip"):
        assert d["by_component"][comp] == e["by_component"][comp]


def test_fidelities_count_identically():
    rng = np.random.default_rng(0)
    tb = TraceBuilder({"spec": dc(30, 20).to_dict(), "learn": True})
    for s in range(5):
        T = 20
        cnt = {p: rng.integers(0, 3, T).astype(np.int32) for p in ("input", "exc", "inh")}
        idx = {"input": rng.integers(0, 30, cnt["input"].sum()),
               "exc": np.concatenate([rng.choice(20, c, replace=False) for c in cnt["exc"]]),
               "inh": np.concatenate([rng.choice(20, c, replace=False) for c in cnt["inh"]])}
        tb.add(s, 0, True, T, cnt, idx)
    trace = tb.build()
    h = hw(cores={"count": 4, "mesh_width": 2, "mesh_height": 2, "neurons_per_core": 16})
    res = {f: Chip(h, dc(30, 20), f).replay([trace], "train")
           for f in ("timestep", "event", "simpy")}
    assert res["timestep"].counts == res["event"].counts == res["simpy"].counts
    assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
    a, b = res["timestep"].cycles, res["event"].cycles
    assert abs(a - b) / a < 0.10


def test_interleaved_phases_each_keep_their_own_cycles():
    """Continual runs alternate train / label / infer on one chip: each phase's latency is
    its own presentations' cycles, as if replayed alone (the chip clock keeps the sum)."""
    a = one_step_trace(4, 6, inputs=[0, 1], exc=[2], steps=5)
    b = one_step_trace(4, 6, inputs=[3], steps=3)
    alone = {name: Chip(hw(), dc(4, 6)).replay([t, t], name).cycles
             for name, t in (("label", a), ("infer", b))}
    chip = Chip(hw(), dc(4, 6))
    la = chip.phase("label")
    inf = chip.phase("infer")
    for _ in range(2):
        la.consume(a)
        inf.consume(b)
    assert la.finish().cycles == alone["label"] > 0 and inf.finish().cycles == alone["infer"] > 0
    assert chip.env.now == alone["label"] + alone["infer"]


def test_rates_from_the_chip_config():
    h = hw(noc={"packet_bits": 64, "link_width_bits": 32}, clock_mhz=500.0,
           dram={"bandwidth_gb_s": 16.0, "row_hit_ns": 15.0, "row_miss_ns": 40.0,
                 "precharge_ns": 12.5})
    r = HwRates(h, Mapping(dc(4, 6), h), Topology(h))
    assert r.flits == 2 and r.ports == 2
    assert r.dram_bytes_per_cycle == pytest.approx(32.0)  # 16 GB/s at 2 ns per cycle
    # a hit 15 ns, tRP 12.5 ns, tRCD the rest of the 40 ns miss: 12.5 ns, at 2 ns per cycle
    assert (r.dram_hit, r.dram_pre, r.dram_act) == (8, 7, 7)


def test_ceil_div_by_a_power_of_two_is_the_division():
    from accel_sim.chip.timing import ceil_div
    a = np.arange(-70, 70, dtype=np.int64)
    for b in (1, 2, 3, 4, 8, 64):
        got = ceil_div(a, b)
        np.testing.assert_array_equal(got, [math.ceil(x / b) for x in a.tolist()])
        assert got is not a
    assert ceil_div(7, 2) == 4 and ceil_div(np.array([0.5, 2.0]), 2).tolist() == [1.0, 1.0]
