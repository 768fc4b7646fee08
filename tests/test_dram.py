"""DRAM row buffers (chip/dram.py): hand-counted hits, misses and conflicts, the same in
every fidelity, priced per kind."""
import numpy as np
import pytest
from test_chip import dc, hw

from accel_sim.chip import Chip
from accel_sim.chip.dram import row_outcomes
from accel_sim.config.energy import EnergyTableConfig
from accel_sim.config.hardware import DRAM_PRESETS, DRAMConfig
from accel_sim.energy import EnergyTable
from snn_frontend.trace import TraceBuilder


def test_an_access_hits_only_the_row_its_bank_left_open():
    # banks 2: chunks 0 and 2 share bank 0, 1 and 3 bank 1
    miss, conflict = row_outcomes(np.array([0, 2, 0, 1, 3, 1, 1]), np.zeros(7, np.int64), 2)
    assert miss.tolist() == [True, True, True, True, True, True, False]
    assert conflict.tolist() == [False, True, True, False, True, True, False]
    # a new group (step) starts with every bank precharged
    miss, conflict = row_outcomes(np.zeros(4, np.int64), np.array([0, 0, 1, 1]), 4)
    assert miss.tolist() == [True, False, True, False] and not conflict.any()


def spill_chip(page="open", fidelity="timestep", net=None):
    """1 KiB SRAM of 64-bit words (128 words); input rows of 16 x 32-bit weights are 8 words,
    so rows 0-15 fill the SRAM and rows 16-63 are in DRAM, word 8 (r - 16) onwards; a
    256-byte DRAM row holds 4 of them: input row r is in chunk (r - 16) // 4, bank
    chunk % 2."""
    h = hw(sram={"size_kib": 1, "word_bits": 64},
           dram={"row_bytes": 256, "banks": 2, "burst_bytes": 8, "page_policy": page})
    return Chip(h, net or dc(64, 16), fidelity)


def trace(inputs_per_step, learn=False):
    tb = TraceBuilder({"spec": dc(64, 16).to_dict(), "learn": learn})
    T = len(inputs_per_step)
    cnt = {p: np.zeros(T, np.int32) for p in ("input", "exc", "inh")}
    cnt["input"][:] = [len(s) for s in inputs_per_step]
    idx = {"input": np.array([i for s in inputs_per_step for i in s], np.int32),
           "exc": np.zeros(0, np.int32), "inh": np.zeros(0, np.int32)}
    tb.add(0, 0, False, T, cnt, idx)
    return tb.build()


STEPS = [[16, 17, 20, 24, 18], [19]]


def test_open_page_counts_hits_misses_and_conflicts_by_hand():
    chip = spill_chip()
    p = next(iter(trace(STEPS)))
    cnt, work = chip.counter.count(p, learn=False, learning={}, state_reset=True)
    rows = work.dram_rows
    # step 0: 16 opens chunk 0 (bank 0), 17 hits it, 20 opens chunk 1 (bank 1), 24 closes
    # chunk 0 for chunk 2 (a conflict), 18 closes chunk 2 for chunk 0 (another);
    # step 1 starts precharged: 19 opens chunk 0 again
    assert rows.stream_acts.tolist() == [1, 0, 1, 1, 1, 1]
    assert rows.stream_conflicts.tolist() == [0, 0, 0, 1, 1, 0]
    assert rows.acts.tolist() == [4, 1] and rows.conflicts.tolist() == [2, 0]
    assert cnt["dram", "activate"] == cnt["dram", "precharge"] == 5
    # each row is eight 8-byte bursts: 48 bursts, all but the five that activated hit
    assert cnt["dram", "row_hit"] == 6 * 8 - 5
    assert cnt["dram", "read_bit"] == 6 * 8 * 64  # six rows of eight 64-bit words
    # the timestep fidelity's DRAM time: 200 MHz (5 ns cycles), 12.8 GB/s = 64 B a cycle;
    # a hit 22.5 ns = 5 cycles per stream, tRCD 18.125 ns = 4 per activation, tRP 4 per conflict
    r = chip.rates
    assert (r.dram_hit, r.dram_act, r.dram_pre) == (5, 4, 4)
    assert r.dram_step_cycles(work).tolist() == [5 + 5 * 5 + 4 * 4 + 2 * 4, 1 + 5 + 4]


def test_closed_page_opens_every_stream_s_rows_afresh():
    chip = spill_chip("closed")
    p = next(iter(trace(STEPS)))
    cnt, work = chip.counter.count(p, learn=False, learning={}, state_reset=True)
    assert work.dram_rows.stream_acts.tolist() == [1] * 6
    assert not work.dram_rows.conflicts.any()
    assert cnt["dram", "activate"] == cnt["dram", "precharge"] == 6
    assert cnt["dram", "row_hit"] == 6 * 8 - 6


def test_a_row_written_back_finds_its_row_open():
    """Learning at an input spike: the delivery opens chunk 0, the row's read-modify-write
    (read, then write: 2 x 8 bursts) finds it open."""
    chip = spill_chip()
    p = next(iter(trace([[16]], learn=True)))
    cnt, _ = chip.counter.count(p, learn=True, learning={}, state_reset=True)
    assert cnt["dram", "activate"] == 1 and cnt["dram", "row_hit"] == 3 * 8 - 1
    assert cnt["dram", "read_bit"] == cnt["dram", "write_bit"] * 2 == 2 * 8 * 64


@pytest.mark.parametrize("page", ["open", "closed"])
def test_event_and_simpy_pay_the_same_activations_as_the_counter(page):
    rng = np.random.default_rng(3)
    steps = [rng.choice(64, 6, replace=False).tolist() for _ in range(8)]
    t = trace(steps)
    res = {f: spill_chip(page, f).replay([t], "infer") for f in ("timestep", "event", "simpy")}
    assert res["timestep"].counts == res["event"].counts == res["simpy"].counts
    assert res["event"].presentation_cycles == res["simpy"].presentation_cycles
    assert res["event"].counts["dram.activate"] > 0


def test_the_row_buffers_lengthen_the_event_fidelity_by_their_latency():
    t = trace([[16, 24, 16, 24]])  # chunks 0, 2, 0, 2 on bank 0: four activations, three conflicts
    chip = spill_chip("open", "event")
    base = chip.replay([t], "infer").presentation_cycles[0]
    cheap = Chip(chip.hw.model_copy(update={"dram": DRAMConfig.model_validate(
        {"row_hit_ns": 22.5, "row_miss_ns": 22.5 + 18.125, "precharge_ns": 18.125,
         "row_bytes": 256, "banks": 2, "burst_bytes": 8})}), dc(64, 16), "event")
    # tRCD 0 in `cheap`: every activation 4 cycles less; the DRAM channel is the step's
    # critical path here (one core, four streams in a row)
    assert base - cheap.replay([t], "infer").presentation_cycles[0] == 4 * 4


def test_every_preset_kind_prices_its_activations_and_precharges():
    cfg = EnergyTableConfig.model_validate(_yaml("configs/energy/generic_45nm.yaml"))
    for kind, preset in DRAM_PRESETS.items():
        h = hw(dram={"kind": kind})
        assert h.dram.row_bytes == preset["row_bytes"] and h.dram.banks == preset["banks"]
        t = EnergyTable(cfg).resolve(h)
        assert t.pj["dram", "activate"] > 0 and t.pj["dram", "precharge"] > 0
    # LPDDR4 x32: the activate-precharge pair is DRAMsim3's 2409.4 pJ, split as DRAMPower does
    t = EnergyTable(cfg).resolve(hw())
    assert t.pj["dram", "activate"] + t.pj["dram", "precharge"] == pytest.approx(2409.375)


def test_a_kind_without_a_preset_names_the_fields_it_needs():
    with pytest.raises(ValueError, match="gddr5.*no timing preset.*bandwidth_gb_s"):
        DRAMConfig.model_validate({"kind": "gddr5"})
    with pytest.raises(ValueError, match="row_miss_ns"):
        DRAMConfig.model_validate({"row_hit_ns": 30.0, "row_miss_ns": 40.0})


def _yaml(path):
    import pathlib

    import yaml
    return yaml.safe_load((pathlib.Path(__file__).parents[1] / path).read_text())
